"""CIFAR-10 sources, class order, subsets and the device-resident loader (no network)."""
import os
import pathlib
import pickle
import re
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import utils.data as data
from utils.data import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    DatasetNotFoundError,
    DeviceLoader,
    channel_stats,
    random_crop_flip,
    subset_indices,
)

# torchvision.datasets.CIFAR10(...).classes, in the order of the label indices.
TORCHVISION_CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _candidates(image, padding):
    """Every crop-with-padding and flip of one image."""
    c, h, w = image.shape
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    crops = [padded[:, dy:dy + h, dx:dx + w] for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)]
    return crops + [crop.flip(-1) for crop in crops]


def test_random_crop_flip_is_a_crop_or_flip_of_the_same_image():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (12, 3, 8, 8), dtype=torch.uint8, generator=g)
    out = random_crop_flip(images, padding=2, generator=g)
    assert out.shape == images.shape and out.dtype == torch.uint8
    for i in range(len(images)):
        assert any(torch.equal(out[i], cand) for cand in _candidates(images[i], 2))


def test_random_crop_flip_uses_every_offset_and_both_flips():
    g = torch.Generator().manual_seed(1)
    # one distinct value per pixel position lets us read back the offset and the flip
    base = torch.arange(16 * 16, dtype=torch.int64).view(1, 1, 16, 16) + 1
    out = random_crop_flip(base.expand(4000, 1, 16, 16).contiguous(), padding=2, generator=g)
    seen = {(int(o[0, 8, 8]), bool(o[0, 8, 7] > o[0, 8, 8])) for o in out}
    assert len(seen) == 5 * 5 * 2


def test_loader_keeps_labels_with_their_images():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (50, 3, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(50)  # the label is the image's index
    loader = DeviceLoader(images, labels, batch_size=16, shuffle=True, augment=True, mean=(0, 0, 0), std=(1, 1, 1))
    seen = []
    for x, y in loader:
        pixels = (x * 255).round().to(torch.uint8)
        for image, label in zip(pixels, y):
            assert any(torch.equal(image, cand) for cand in _candidates(images[label], 4))
        seen += y.tolist()
    assert sorted(seen) == list(range(50)) and seen != list(range(50))  # all of them, shuffled


def test_loader_pixel_statistics():
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(2000, 3, 32, 32, generator=g) * torch.tensor([200.0, 120, 60]).view(1, 3, 1, 1)
              + torch.tensor([20.0, 60, 100]).view(1, 3, 1, 1)).to(torch.uint8)
    mean, std = channel_stats(images)
    plain = torch.cat([x for x, _ in DeviceLoader(images, torch.zeros(2000, dtype=torch.int64), 500,
                                                  mean=mean, std=std)])
    torch.testing.assert_close(plain.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-3, rtol=0)
    torch.testing.assert_close(plain.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3, rtol=0)
    raw = torch.cat([x for x, _ in DeviceLoader(images, torch.zeros(2000, dtype=torch.int64), 500, augment=True,
                                                mean=(0, 0, 0), std=(1, 1, 1))]) * 255
    # Padding 4 shifts an image by |d - 4| pixels, d uniform on 0..8: on average 20/9 rows and
    # 20/9 columns of zeros. Everything else is the image's own pixels, so their mean is unchanged.
    expected_zero_fraction = 1 - (1 - 20 / 9 / 32) ** 2
    assert abs((raw == 0).float().mean().item() - expected_zero_fraction) < 0.005
    for channel in range(3):
        values = raw[:, channel]
        own_mean = values[values > 0].mean().item() / 255
        assert abs(own_mean - mean[channel]) < 0.005


def test_loader_batches_and_channels_last():
    images = torch.zeros(10, 3, 4, 4, dtype=torch.uint8)
    loader = DeviceLoader(images, torch.zeros(10, dtype=torch.int64), batch_size=4, drop_last=True,
                          channels_last=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 2 and batches[0][0].is_contiguous(memory_format=torch.channels_last)
    assert len(DeviceLoader(images, torch.zeros(10, dtype=torch.int64), batch_size=4)) == 3
    with pytest.raises(ValueError, match="uint8"):
        DeviceLoader(images.float(), torch.zeros(10), batch_size=4)


def test_subset_indices_are_balanced_and_seeded():
    labels = torch.arange(1000) % 10
    a, b, c = subset_indices(labels, 7, seed=0), subset_indices(labels, 7, seed=0), subset_indices(labels, 7, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.bincount(labels[a]).tolist() == [7] * 10


@pytest.fixture
def tiny_image_folder(tmp_path):
    """A 2-images-per-class CIFAR-10 look-alike in ImageFolder layout."""
    for split in ("train", "test"):
        for index, name in enumerate(reversed(CIFAR10_CLASSES)):  # created in another order on purpose
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for k in range(2):
                Image.new("RGB", (32, 32), (index * 20, k * 100, 7)).save(folder / f"{k:04d}.png")
    return tmp_path


def test_image_folder_class_indices_match_torchvision(tiny_image_folder, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tiny_image_folder))
    dataset = data.load_cifar10("train")
    assert dataset.class_to_idx == {name: i for i, name in enumerate(TORCHVISION_CIFAR10_CLASSES)}
    monkeypatch.setattr(data, "DATA_ROOT", tiny_image_folder / "cache-root")
    images, labels = data.cifar10_tensors("test")
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [2] * 10
    # the red channel encodes the class folder's position: the label must follow the folder name
    red = images[:, 0, 0, 0].long()
    assert all(CIFAR10_CLASSES[label] == list(reversed(CIFAR10_CLASSES))[r // 20] for r, label in zip(red, labels))


@pytest.mark.skipif(not os.environ.get("COURSE_DATA_DIR"), reason="no offline CIFAR-10 copy configured")
def test_offline_copy_is_complete_cifar10():
    for split, n in (("train", 50_000), ("test", 10_000)):
        dataset = data.load_cifar10(split)
        assert len(dataset) == n and tuple(dataset.classes) == CIFAR10_CLASSES


def test_missing_offline_folder_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError, match=r"(?s)no 'train/' folder.*unpack_cifar10\.py.*COURSE_DATA_DIR"):
        data.load_cifar10("train")


def test_failed_download_says_both_ways(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DATA_ROOT", tmp_path)

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", no_network)
    expected = r"(?s)Could not download.*internet.*unpack_cifar10.*COURSE_DATA_DIR"
    with pytest.raises(DatasetNotFoundError, match=expected):
        data.load_cifar10("test")


def test_loader_reshuffles_every_epoch():
    images = torch.zeros(64, 3, 4, 4, dtype=torch.uint8)
    loader = DeviceLoader(images, torch.arange(64), batch_size=64, shuffle=True)
    first, second = (next(iter(loader))[1].tolist() for _ in range(2))
    assert sorted(first) == sorted(second) == list(range(64)) and first != second


def test_cache_follows_the_images_it_caches(tiny_image_folder, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tiny_image_folder))
    monkeypatch.setattr(data, "DATA_ROOT", tiny_image_folder / "cache-root")
    assert len(data.cifar10_tensors("train")[1]) == 20
    for name in CIFAR10_CLASSES:  # add an image to every class folder: the cache must not be reused
        Image.new("RGB", (32, 32), (1, 2, 3)).save(tiny_image_folder / "train" / name / "0009.png")
    images, labels = data.cifar10_tensors("train")
    assert len(labels) == len(data.load_cifar10("train")) == 30


def test_a_truncated_cache_is_rebuilt(tiny_image_folder, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tiny_image_folder))
    monkeypatch.setattr(data, "DATA_ROOT", tiny_image_folder / "cache-root")
    images, labels = data.cifar10_tensors("test")
    (cache,) = (tiny_image_folder / "cache-root" / "cache").glob("*-test.pt")
    cache.write_bytes(cache.read_bytes()[:200])  # a write cut short
    again, again_labels = data.cifar10_tensors("test")
    assert torch.equal(again, images) and torch.equal(again_labels, labels)
    assert "unreadable" in capsys.readouterr().out and torch.load(cache, weights_only=True)["images"].shape[0] == 20
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]  # no temporary file left behind


def test_bad_input_is_refused_with_a_clear_error():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    with pytest.raises(ValueError, match="uint8 images"):
        channel_stats(images.float() / 255)
    with pytest.raises(ValueError, match=r"permute\(0, 3, 1, 2\)"):
        channel_stats(images.permute(0, 2, 3, 1).contiguous())
    with pytest.raises(ValueError, match="per_class must be a positive"):
        subset_indices(torch.arange(100) % 10, -1)
    with pytest.raises(ValueError, match="1 channels but mean/std have 3"):
        DeviceLoader(images[:, :1], torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="batch_size must be a positive"):
        DeviceLoader(images, torch.zeros(4, dtype=torch.int64), batch_size=0)


def test_normalisation_constants_are_the_published_cifar10_values():
    """Per-channel mean and std of the 50,000 original training images on the 0..1 scale, as computed from
    torchvision's CIFAR10(train=True).data in kuangliu/pytorch-cifar#19 ("Correct Normalization Values for
    CIFAR-10") and MadryLab/robustness#70: mean (0.49139968, 0.48215841, 0.44653091), std (0.24703223,
    0.24348513, 0.26158784). The widely copied std (0.2023, 0.1994, 0.2010) is not the std of the pixels."""
    ours = {"mean": CIFAR10_MEAN, "std": CIFAR10_STD}
    assert ours["mean"] == pytest.approx((0.49139968, 0.48215841, 0.44653091), abs=5e-4)
    assert ours["std"] == pytest.approx((0.24703223, 0.24348513, 0.26158784), abs=5e-4)


@pytest.mark.skipif(not os.environ.get("COURSE_DATA_DIR"), reason="no offline CIFAR-10 copy configured")
def test_normalisation_constants_match_the_training_images():
    """Recomputed from every 10th training image (5,000) of the copy the tests read: sampling moves the mean by
    about 0.002 and the JPEG copy's std is within 0.002 of the original's, so 0.01 leaves room for both and still
    refuses the wrong std (0.2023, ...), 0.04 off, and ImageNet's mean (0.485, 0.456, 0.406)."""
    import numpy as np

    dataset = data.load_cifar10("train")
    pixels = np.stack([np.asarray(dataset[i][0]) for i in range(0, len(dataset), 10)])
    mean, std = channel_stats(torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous())
    assert mean == pytest.approx(CIFAR10_MEAN, abs=0.01) and std == pytest.approx(CIFAR10_STD, abs=0.01)


@pytest.fixture
def split_folder(tmp_path):
    """A CIFAR-10 look-alike whose train and test images differ: blue 0 in train, 255 in test, 3 per class."""
    for split, blue in (("train", 0), ("test", 255)):
        for index, name in enumerate(CIFAR10_CLASSES):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for k in range(3):
                Image.new("RGB", (32, 32), (index * 20, k * 80, blue)).save(folder / f"{k:04d}.png")
    return tmp_path


def test_test_loader_reads_the_test_split(split_folder, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(split_folder))
    monkeypatch.setattr(data, "DATA_ROOT", split_folder / "cache-root")
    train, test = data.cifar10_loaders(per_class=2, test_per_class=1, batch_size=4, seed=3)
    assert (test.images[:, 2] == 255).all() and (train.images[:, 2] == 0).all()
    expected_images, expected_labels = data.cifar10_subset("test", per_class=1, seed=3)
    assert torch.equal(test.images, expected_images) and torch.equal(test.labels, expected_labels)
    _, everything = data.cifar10_loaders(batch_size=4)
    assert torch.equal(everything.images, data.cifar10_tensors("test")[0]) and len(everything.images) == 30


# --- Where the data comes from: cifar10_source, the split argument and the errors a learner reads ---------------


def _assert_says(message, *fragments):
    """Every fragment appears, exactly, in the message."""
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_source_names_the_offline_folder_or_the_download_folder(tmp_path, monkeypatch):
    """cifar10_source says which source load_cifar10 will use: COURSE_DATA_DIR's folder when set, else the download."""
    monkeypatch.setattr(data, "DATA_ROOT", tmp_path / "downloads")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "offline"))
    _assert_says(data.cifar10_source(), "offline JPEG copy of CIFAR-10", f"in {tmp_path / 'offline'} (COURSE_DATA_DIR)")
    monkeypatch.delenv("COURSE_DATA_DIR")
    _assert_says(data.cifar10_source(), "torchvision CIFAR-10", f"downloaded to {tmp_path / 'downloads'}")


def test_the_train_split_is_the_default_everywhere(split_folder, monkeypatch):
    """load_cifar10(), cifar10_tensors() and cifar10_subset() read the train split when no split is named."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(split_folder))
    monkeypatch.setattr(data, "DATA_ROOT", split_folder / "cache-root")
    dataset = data.load_cifar10()
    assert len(dataset) == 30 and {pathlib.Path(path).parts[-3] for path, _ in dataset.samples} == {"train"}
    images, labels = data.cifar10_tensors()
    assert len(labels) == 30 and (images[:, 2] == 0).all()  # blue 0: the train images of split_folder
    images, labels = data.cifar10_subset(per_class=1)
    assert torch.bincount(labels).tolist() == [1] * 10 and (images[:, 2] == 0).all()


def test_an_unknown_split_is_refused_with_the_two_choices():
    with pytest.raises(ValueError, match=re.escape("split must be 'train' or 'test', got 'valid'.")):
        data.load_cifar10("valid")


def test_missing_split_folder_message_gives_the_layout_and_both_fixes(tmp_path, monkeypatch):
    """A COURSE_DATA_DIR without test/: the message names the missing folder, the layout, and both ways out."""
    (tmp_path / "train").mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as caught:
        data.load_cifar10("test")
    _assert_says(str(caught.value),
                 f"COURSE_DATA_DIR={tmp_path} has no 'test/' folder.",
                 "It must hold train/<class>/*.jpg and test/<class>/*.jpg: ",
                 "write it with `python ../shared/data/unpack_cifar10.py DEST` and set COURSE_DATA_DIR=DEST, ",
                 "or unset COURSE_DATA_DIR to download CIFAR-10 with torchvision.")


def test_offline_folder_with_other_classes_is_refused_naming_both_lists(tmp_path, monkeypatch):
    """Class folders that are not CIFAR-10's ten: the message lists what was found and what is expected."""
    for name in ("cat", "dog"):
        (tmp_path / "train" / name).mkdir(parents=True)
        Image.new("RGB", (32, 32), (1, 2, 3)).save(tmp_path / "train" / name / "0000.png")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as caught:
        data.load_cifar10("train")
    _assert_says(str(caught.value), f"{tmp_path / 'train'} has class folders ['cat', 'dog'], ",
                 f"expected CIFAR-10's {TORCHVISION_CIFAR10_CLASSES}.")


def test_failed_download_message_names_the_error_and_both_fixes(tmp_path, monkeypatch):
    """torchvision's own CIFAR10 with the network cut: the error type, the size to download and the offline way."""
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DATA_ROOT", tmp_path)

    def no_network(url, download_root, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", no_network)
    with pytest.raises(DatasetNotFoundError) as caught:
        data.load_cifar10("train")
    assert isinstance(caught.value.__cause__, urllib.error.URLError)
    _assert_says(str(caught.value),
                 f"Could not download CIFAR-10 to {tmp_path} (URLError: <urlopen error no network>).\n",
                 ").\nEither connect to the internet (torchvision downloads it once, about 170 MB), ",
                 "or use an offline copy in ImageFolder layout: `python ../shared/data/unpack_cifar10.py DEST`, ",
                 "then set COURSE_DATA_DIR=DEST before starting Jupyter or pytest.")


# --- The download path, with only the network faked: torchvision's CIFAR10 reads tiny batches in its real format ---


@pytest.fixture
def fake_download(tmp_path, monkeypatch):
    """No COURSE_DATA_DIR; the 'download' writes tiny CIFAR-10 python batches (the format described on
    https://www.cs.toronto.edu/~kriz/cifar.html: a dict with 'data', uint8 rows of 3072 = 1024 red, then 1024 green,
    then 1024 blue values, each plane row-major, and 'labels', a list of ints). 2 images per train batch, 4 test."""
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # a wrong (relative) root would land here, not in the repository
    root = tmp_path / "data"
    monkeypatch.setattr(data, "DATA_ROOT", root)
    rng = np.random.default_rng(0)
    batches = {f"data_batch_{i}": 2 for i in range(1, 6)} | {"test_batch": 4}
    content = {name: (rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist())
               for name, n in batches.items()}
    downloads = []

    def download_and_extract_archive(url, download_root, **kwargs):
        downloads.append(pathlib.Path(download_root))
        folder = pathlib.Path(download_root) / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        for name, (rows, labels) in content.items():
            (folder / name).write_bytes(pickle.dumps({"data": rows, "labels": labels}))
        (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(TORCHVISION_CIFAR10_CLASSES)}))

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", download_and_extract_archive)
    # the tiny files cannot have the real MD5 sums: present counts as intact, absent as missing
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    train_rows = np.concatenate([content[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = sum((content[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    return {"root": root, "downloads": downloads, "train": (train_rows, train_labels), "test": content["test_batch"]}


def test_download_path_gives_nchw_uint8_images_and_int64_labels(fake_download):
    """Without COURSE_DATA_DIR, each split is downloaded to DATA_ROOT and becomes (N, 3, 32, 32) uint8 images (the
    rows reshaped as 3 planes of 32 x 32) and int64 labels; the second read comes from the cache, unchanged."""
    for split, train in (("train", True), ("test", False)):
        dataset = data.load_cifar10(split)
        assert isinstance(dataset, torchvision.datasets.CIFAR10) and dataset.train is train
        assert pathlib.Path(dataset.root) == fake_download["root"] and dataset.classes == TORCHVISION_CIFAR10_CLASSES
        rows, targets = fake_download[split]
        for _ in range(2):  # built, then read back from the cache
            images, labels = data.cifar10_tensors(split)
            assert images.dtype == torch.uint8 and images.is_contiguous()
            assert torch.equal(images, torch.from_numpy(rows).view(-1, 3, 32, 32))
            assert labels.dtype == torch.int64 and labels.tolist() == targets
    assert set(fake_download["downloads"]) == {fake_download["root"]}


# --- The cache: reused when valid, never unpickled beyond tensors, rebuilt with a message when unreadable ---------


def test_a_valid_cache_is_read_back_without_decoding_any_image(tiny_image_folder, monkeypatch, capsys):
    """The second call returns the cached tensors: no image is opened and nothing is printed."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tiny_image_folder))
    monkeypatch.setattr(data, "DATA_ROOT", tiny_image_folder / "cache-root")
    images, labels = data.cifar10_tensors("test")
    capsys.readouterr()
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *args, **kwargs: opened.append(args) or real_open(*args, **kwargs))
    again, again_labels = data.cifar10_tensors("test")
    assert opened == [] and capsys.readouterr().out == ""
    assert torch.equal(again, images) and torch.equal(again_labels, labels) and again_labels.dtype == torch.int64


def test_an_unreadable_cache_message_names_the_file_and_the_error(tiny_image_folder, monkeypatch, capsys):
    """The message gives the cache's path and the type of the error torch.load raised on it."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tiny_image_folder))
    monkeypatch.setattr(data, "DATA_ROOT", tiny_image_folder / "cache-root")
    data.cifar10_tensors("test")
    (cache,) = (tiny_image_folder / "cache-root" / "cache").glob("*-test.pt")
    cache.write_bytes(b"not a torch file")
    with pytest.raises(Exception) as expected:
        torch.load(cache, weights_only=True)
    capsys.readouterr()
    data.cifar10_tensors("test")
    assert capsys.readouterr().out == (f"The CIFAR-10 cache {cache} is unreadable ({type(expected.value).__name__}); "
                                       "rebuilding it from the images.\n")


class NotATensor:
    """A Python object in a pickle: what a weights-only torch.load refuses to build."""


def test_a_cache_holding_other_objects_is_never_unpickled(tiny_image_folder, monkeypatch, capsys):
    """The cache is loaded weights-only, even when TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 would let torch unpickle
    anything by default: a file holding other Python objects counts as unreadable and is rebuilt from the images."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tiny_image_folder))
    monkeypatch.setattr(data, "DATA_ROOT", tiny_image_folder / "cache-root")
    images, labels = data.cifar10_tensors("test")
    (cache,) = (tiny_image_folder / "cache-root" / "cache").glob("*-test.pt")
    torch.save({"images": torch.zeros_like(images), "labels": torch.zeros_like(labels), "note": NotATensor()}, cache)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    again, again_labels = data.cifar10_tensors("test")
    assert torch.equal(again, images) and torch.equal(again_labels, labels)
    assert "is unreadable (UnpicklingError); rebuilding it from the images." in capsys.readouterr().out


def test_grayscale_and_transparent_images_are_decoded_as_rgb(tmp_path, monkeypatch):
    """Every image becomes 3 channels: a grayscale one repeats its value in R, G and B (PIL's L to RGB), an RGBA one
    loses its alpha."""
    for index, name in enumerate(CIFAR10_CLASSES):
        (tmp_path / "train" / name).mkdir(parents=True)
        if name == "bird":
            image = Image.new("L", (32, 32), 77)
        elif name == "cat":
            image = Image.new("RGBA", (32, 32), (10, 20, 30, 128))
        else:
            image = Image.new("RGB", (32, 32), (index, index, index))
        image.save(tmp_path / "train" / name / "0000.png")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data, "DATA_ROOT", tmp_path / "cache-root")
    images, labels = data.cifar10_tensors("train")
    assert images.shape == (10, 3, 32, 32) and labels.tolist() == list(range(10))
    assert (images[CIFAR10_CLASSES.index("bird")] == 77).all()
    assert images[CIFAR10_CLASSES.index("cat"), :, 5, 5].tolist() == [10, 20, 30]


# --- subset_indices and cifar10_subset -----------------------------------------------------------------------------


def test_subset_indices_default_seed_is_zero_and_a_whole_class_can_be_taken():
    labels = torch.arange(60) % 3
    assert torch.equal(subset_indices(labels, 4), subset_indices(labels, 4, seed=0))
    assert not torch.equal(subset_indices(labels, 4, seed=0), subset_indices(labels, 4, seed=1))
    assert subset_indices(labels, 20).tolist() == list(range(60))  # all 20 examples of every class


def test_subset_indices_refuses_what_is_not_a_positive_whole_number_or_too_many():
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1])
    for bad in (2.5, True, "3", 0):
        expected = f"per_class must be a positive whole number of examples per class, got {bad!r}."
        with pytest.raises(ValueError, match=re.escape(expected)):
            subset_indices(labels, bad)
    with pytest.raises(ValueError, match=re.escape("class 1 has only 3 examples, asked for 4.")):
        subset_indices(labels, 4)


@pytest.fixture
def fake_tensors(monkeypatch):
    """cifar10_tensors replaced by tiny random splits: 300 train and 600 test 8 x 8 images, pixels 1..255 (so a 0 can
    only be padding), labels 0..9 in turn."""
    g = torch.Generator().manual_seed(0)
    splits = {split: (torch.randint(1, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(n) % 10)
              for split, n in (("train", 300), ("test", 600))}
    monkeypatch.setattr(data, "cifar10_tensors", lambda split="train": splits[split])
    return splits


def test_cifar10_subset_is_the_seeded_balanced_subset(fake_tensors):
    """cifar10_subset picks subset_indices(labels, per_class, seed) of the split (seed 0 by default), or all of it."""
    images, labels = fake_tensors["train"]
    for kwargs, seed in (({}, 0), ({"seed": 5}, 5)):
        index = subset_indices(labels, 2, seed=seed)
        sub_images, sub_labels = data.cifar10_subset("train", per_class=2, **kwargs)
        assert torch.equal(sub_images, images[index]) and torch.equal(sub_labels, labels[index])
        assert torch.bincount(sub_labels).tolist() == [2] * 10
    assert not torch.equal(subset_indices(labels, 2, seed=0), subset_indices(labels, 2, seed=5))
    everything = data.cifar10_subset("test")
    assert everything[0] is fake_tensors["test"][0] and everything[1] is fake_tensors["test"][1]


# --- cifar10_loaders --------------------------------------------------------------------------------------------------


def _epoch(loader):
    """One epoch's batch sizes, inputs and labels."""
    batches = list(loader)
    return [len(y) for _, y in batches], torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def test_cifar10_loaders_defaults(fake_tensors):
    """Defaults: train batches of 128 in a shuffled order (seed 0), ragged end dropped, augmented; test batches of
    256, in order, not augmented; both normalised with CIFAR-10's mean and std."""
    train, test = data.cifar10_loaders()
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    sizes, x, y = _epoch(train)
    assert sizes == [128, 128]  # 300 = 2 x 128 + 44 dropped
    order = torch.randperm(300, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, fake_tensors["train"][1][order[:256]])
    assert ((x * std + mean) * 255).round().eq(0).any()  # zero padding: the crops moved
    sizes, x, y = _epoch(test)
    assert sizes == [256, 256, 88]
    test_images, test_labels = fake_tensors["test"]
    torch.testing.assert_close(x, (test_images.float() / 255 - mean) / std)
    assert torch.equal(y, test_labels)


def test_cifar10_loaders_passes_its_arguments_on(fake_tensors):
    """per_class, test_per_class, batch_size, seed, augment and the DeviceLoader options reach the right loader."""
    train, test = data.cifar10_loaders(per_class=20, test_per_class=5, batch_size=16, seed=5, augment=False,
                                       mean=(0, 0, 0), std=(1, 1, 1), channels_last=True)
    (train_images, train_labels), (test_images, test_labels) = fake_tensors["train"], fake_tensors["test"]
    train_index, test_index = subset_indices(train_labels, 20, seed=5), subset_indices(test_labels, 5, seed=5)
    sizes, x, y = _epoch(train)
    assert sizes == [16] * 12  # 200 = 12 x 16 + 8 dropped
    order = torch.randperm(200, generator=torch.Generator().manual_seed(5))
    assert torch.equal(y, train_labels[train_index][order[:192]])
    assert torch.equal((x * 255).round().to(torch.uint8), train_images[train_index][order[:192]])  # raw pixels
    assert next(iter(train))[0].is_contiguous(memory_format=torch.channels_last)
    sizes, x, y = _epoch(test)
    assert sizes == [50] and torch.equal(y, test_labels[test_index])
    assert torch.equal((x * 255).round().to(torch.uint8), test_images[test_index])
    assert next(iter(test))[0].is_contiguous(memory_format=torch.channels_last)
    _, big = data.cifar10_loaders(batch_size=300)
    assert _epoch(big)[0] == [300, 300]  # the test batches are never smaller than the train ones


def test_cifar10_loaders_puts_both_loaders_on_the_requested_device(fake_tensors, monkeypatch):
    """Both loaders are built for the device asked for (a stand-in records it and builds on the CPU, so that this
    runs without a GPU)."""
    asked = []

    class RecordingLoader(DeviceLoader):
        def __init__(self, *args, device="cpu", **kwargs):
            asked.append(device)
            super().__init__(*args, device="cpu", **kwargs)

    monkeypatch.setattr(data, "DeviceLoader", RecordingLoader)
    data.cifar10_loaders(per_class=1, test_per_class=1, device="cuda:1")
    assert asked == ["cuda:1", "cuda:1"]


# --- channel_stats: values by hand, and what it refuses -----------------------------------------------------------


def test_channel_stats_of_one_and_three_channel_images_by_hand():
    """Grayscale (C = 1) and RGB (C = 3) images are accepted; the mean and std are over all images and pixels on the
    0..1 scale (std with torch's default n - 1 divisor): pixels 0, 255, 255, 0 give mean 0.5 and std sqrt(1/3)."""
    gray = torch.tensor([[[[0, 255]]], [[[255, 0]]]], dtype=torch.uint8)  # (2, 1, 1, 2)
    mean, std = channel_stats(gray)
    assert mean == pytest.approx([0.5]) and std == pytest.approx([(1 / 3) ** 0.5])
    rgb = torch.cat([torch.full((2, 1, 1, 2), 51, dtype=torch.uint8), torch.full((2, 1, 1, 2), 255, dtype=torch.uint8),
                     gray], dim=1)
    mean, std = channel_stats(rgb)
    assert mean == pytest.approx([0.2, 1.0, 0.5]) and std == pytest.approx([0.0, 0.0, (1 / 3) ** 0.5])


@pytest.mark.parametrize("channels", [2, 4])
def test_channel_stats_refuses_other_channel_counts_and_says_how_to_convert(channels):
    """Only C = 1 or 3: the message gives the dtype and shape it got and the two usual conversions."""
    images = torch.zeros(2, channels, 1, 2, dtype=torch.uint8)
    expected = ("channel_stats expects uint8 images (N, C, H, W) with C = 1 or 3, got torch.uint8 "
                f"(2, {channels}, 1, 2). Convert floats with (x * 255).round().to(torch.uint8), and NHWC arrays with "
                ".permute(0, 3, 1, 2).")
    with pytest.raises(ValueError, match=re.escape(expected)):
        channel_stats(images)


# --- random_crop_flip against a hand-made padded image --------------------------------------------------------------


def _numbered_images(n, c=3, size=32):
    """n copies of one image whose pixels are numbered 1, 2, ... row by row (channel after channel): 0 is padding,
    and any output pixel tells where it came from."""
    return (torch.arange(c * size * size, dtype=torch.int32).view(1, c, size, size) + 1).expand(n, -1, -1, -1)


def _hand_window(image, padding, dy, dx, flip):
    """The window at rows dy.., columns dx.. of the image zero-padded by hand, mirrored left-right if flip."""
    c, h, w = image.shape
    padded = torch.zeros(c, h + 2 * padding, w + 2 * padding, dtype=image.dtype)
    padded[:, padding:padding + h, padding:padding + w] = image
    window = padded[:, dy:dy + h, dx:dx + w]
    return window.flip(-1) if flip else window


def _read_back_crops(images, out, padding):
    """(dy, dx, flip) of every output, read from its centre pixel and the one to its right (both inside the image
    for these sizes and paddings), after checking that the whole output is exactly that hand-made window."""
    draws = []
    h, w = images.shape[-2:]
    for image, crop in zip(images, out):
        centre, right = int(crop[0, h // 2, w // 2]) - 1, int(crop[0, h // 2, w // 2 + 1]) - 1
        flip = right < centre
        row, col = divmod(centre, w)
        # unflipped, output (i, j) reads padded (i + dy, j + dx); flipped, padded (i + dy, w - 1 - j + dx)
        dy = row + padding - h // 2
        dx = col + padding - (w - 1 - w // 2 if flip else w // 2)
        assert torch.equal(crop, _hand_window(image, padding, dy, dx, flip))
        draws.append((dy, dx, flip))
    return draws


def test_random_crop_flip_by_default_crops_32x32_windows_of_the_image_padded_by_4():
    """Every output is a 32 x 32 window of the image zero-padded by 4 (so offsets 0..8 both ways), mirrored or not:
    over 2,000 draws all 81 offsets and both flips occur, each offset about 1/9 of the time, each flip about half."""
    images = _numbered_images(2000)
    out = random_crop_flip(images, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    draws = _read_back_crops(images, out, padding=4)
    assert {(dy, dx) for dy, dx, _ in draws} == {(dy, dx) for dy in range(9) for dx in range(9)}
    flips = [flip for _, _, flip in draws]
    assert abs(sum(flips) / len(flips) - 0.5) < 0.05  # 0.5 +- 6 standard deviations of a fair coin over 2,000
    for axis in (0, 1):
        counts = torch.bincount(torch.tensor([draw[axis] for draw in draws]), minlength=9)
        assert (abs(counts / len(draws) - 1 / 9) < 0.03).all()  # 1/9 +- 4 standard deviations


def test_random_crop_flip_draws_offsets_then_flips_from_the_generator():
    """Reproducible augmentation (a checkpoint saves the loader's generator; the committed lesson outputs depend on
    it): with a generator, dy and dx are torch.randint(0, 2 * padding + 1, (2, n)) and the flips then
    torch.randint(0, 2, (n,)), drawn from it in that order."""
    images = _numbered_images(40, c=2, size=10)
    draws = _read_back_crops(images, random_crop_flip(images, padding=3, generator=torch.Generator().manual_seed(7)), 3)
    g = torch.Generator().manual_seed(7)
    offsets, flips = torch.randint(0, 7, (2, 40), generator=g), torch.randint(0, 2, (40,), generator=g)
    assert draws == [(int(dy), int(dx), bool(flip)) for dy, dx, flip in zip(offsets[0], offsets[1], flips)]


def test_random_crop_flip_works_on_the_images_device_whatever_the_default_device():
    """Inside `with torch.device(...)` (a notebook idiom) every index tensor is still made on the images' device:
    'meta' stands in for another default device, so that this runs without a GPU."""
    images = _numbered_images(50, size=8)
    with torch.device("meta"):
        out = random_crop_flip(images, padding=2, generator=torch.Generator().manual_seed(0))
    assert out.device == images.device
    assert len(_read_back_crops(images, out, padding=2)) == 50


# --- DeviceLoader: defaults, batches, normalisation, errors, devices ---------------------------------------------


def _loader_data(n, channels=3):
    """n uint8 images of 2 x 2 pixels, image k filled with k % 256, and labels 0..n-1 (the image's index)."""
    images = (torch.arange(n) % 256).to(torch.uint8).view(n, 1, 1, 1).expand(n, channels, 2, 2).contiguous()
    return images, torch.arange(n)


def test_loader_defaults():
    """Defaults: batches of 128, in order, the ragged end kept, not augmented, normalised with CIFAR-10's mean and std
    (x / 255 - mean) / std, contiguous NCHW; with shuffle=True the order is torch.randperm seeded with 0."""
    images, labels = _loader_data(300)
    batches = list(DeviceLoader(images, labels))
    sizes, x, y = _epoch(batches)
    assert sizes == [128, 128, 44] and y.tolist() == list(range(300))
    k = (torch.arange(300) % 256).float().view(300, 1, 1, 1)
    expected = (k / 255 - torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(x, expected.expand(300, 3, 2, 2))
    assert all(batch.is_contiguous() for batch, _ in batches)
    _, _, shuffled = _epoch(DeviceLoader(images, labels, shuffle=True))
    assert torch.equal(shuffled, torch.randperm(300, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("n, batch_size, drop_last, sizes", [
    (10, 4, False, [4, 4, 2]),
    (10, 4, True, [4, 4]),  # the ragged end dropped
    (8, 4, True, [4, 4]),  # nothing ragged to drop
    (10, 8, True, [8]),  # one full batch, the ragged 2 dropped
    (5, 8, True, [5]),  # the only batch is never dropped
    (5, 8, False, [5]),
    (3, 1, False, [1, 1, 1]),  # batch_size 1 is allowed
])
def test_loader_batch_sizes(n, batch_size, drop_last, sizes):
    """len() and the batches: full batches in order, then the ragged end unless drop_last (and it is not the only
    batch)."""
    images, labels = _loader_data(n)
    loader = DeviceLoader(images, labels, batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    seen, _, y = _epoch(batches)
    assert len(loader) == len(sizes) and seen == sizes and y.tolist() == list(range(sum(sizes)))
    assert all(len(x) == len(y) for x, y in batches)


def test_loader_normalises_with_the_given_mean_and_std():
    """Pixel p of channel c becomes (p / 255 - mean[c]) / std[c]: 255, 0 and 51 with mean (0.5, 0.25, 0) and std
    (0.5, 0.25, 1) give 1, -1 and 0.2."""
    images = torch.tensor([255, 0, 51], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 2, 2).contiguous()
    (x, _), = DeviceLoader(images, torch.zeros(2, dtype=torch.int64), mean=(0.5, 0.25, 0), std=(0.5, 0.25, 1))
    torch.testing.assert_close(x, torch.tensor([1.0, -1.0, 0.2]).view(1, 3, 1, 1).expand(2, 3, 2, 2))
    (x, _), = DeviceLoader(images[:, :1], torch.zeros(2, dtype=torch.int64), mean=(0.2,), std=(0.4,))  # one channel
    torch.testing.assert_close(x, torch.full((2, 1, 2, 2), 2.0))


def test_loader_mean_and_std_normalise_uint8_pixels_like_the_loader():
    """loader.mean and loader.std (the lessons use them on their own uint8 images) are mean * 255 and std * 255 per
    channel, shaped (1, C, 1, 1): a batch (N, C, H, W) normalises like the loader's batches, and one (C, H, W) image
    becomes a batch of one, (1, C, H, W), ready for a network."""
    images = torch.tensor([255, 0, 51], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 2, 2).contiguous()
    loader = DeviceLoader(images, torch.zeros(2, dtype=torch.int64), mean=(0.5, 0.25, 0), std=(0.5, 0.25, 1))
    assert loader.mean.shape == loader.std.shape == (1, 3, 1, 1)
    assert loader.mean.flatten().tolist() == pytest.approx([127.5, 63.75, 0.0])
    assert loader.std.flatten().tolist() == pytest.approx([127.5, 63.75, 255.0])
    (x, _), = loader
    torch.testing.assert_close((images.float() - loader.mean) / loader.std, x)
    one = (images[0].float() - loader.mean) / loader.std
    assert one.shape == (1, 3, 2, 2)
    torch.testing.assert_close(one, torch.tensor([1.0, -1.0, 0.2]).view(1, 3, 1, 1).expand(1, 3, 2, 2))


def test_loader_seed_fixes_the_shuffle_and_each_epoch_reshuffles():
    """Two loaders with the same seed give the same epochs; epoch e is the e-th torch.randperm of that seed."""
    images, labels = _loader_data(20)
    g = torch.Generator().manual_seed(3)
    expected = [torch.randperm(20, generator=g).tolist() for _ in range(2)]
    for _ in range(2):
        loader = DeviceLoader(images, labels, batch_size=20, shuffle=True, seed=3)
        assert [next(iter(loader))[1].tolist() for _ in range(2)] == expected


def test_loader_refuses_mismatched_inputs_and_says_what_is_wrong():
    """Each message names the problem (and, for mean/std, the fix)."""
    images, labels = _loader_data(3)
    with pytest.raises(ValueError, match=re.escape("3 images but 2 labels.")):
        DeviceLoader(images, labels[:2])
    for mean, std in (((0.5, 0.5, 0.5), (0.2,)), ((0.5,), (0.2, 0.2, 0.2)), ((0.5, 0.5), (0.2, 0.2))):
        expected = (f"images have 3 channels but mean/std have {len(mean)}/{len(std)} values: pass one mean and one "
                    "std per channel (utils.data.channel_stats computes them).")
        with pytest.raises(ValueError, match=re.escape(expected)):
            DeviceLoader(images, labels, mean=mean, std=std)
    for bad in (0, -1, 2.5, "4"):
        with pytest.raises(ValueError, match=re.escape(f"batch_size must be a positive whole number, got {bad!r}.")):
            DeviceLoader(images, labels, batch_size=bad)


@pytest.mark.parametrize("shuffle", [False, True])
def test_loader_works_on_its_device_whatever_the_default_device(shuffle):
    """Inside `with torch.device(...)` the loader still makes its order, mean, std and crops on its own device
    ('meta' stands in for another default device, so that this runs without a GPU): the batches are the same."""
    images, labels = _loader_data(12)
    options = dict(batch_size=5, shuffle=shuffle, augment=True, mean=(0, 0, 0), std=(1, 1, 1), seed=4)
    expected = list(DeviceLoader(images, labels, **options))
    with torch.device("meta"):
        loader = DeviceLoader(images, labels, **options)
        batches = list(loader)
    assert loader.device == torch.device("cpu") and len(batches) == len(expected) == 3
    for (x, y), (x0, y0) in zip(batches, expected):
        assert x.device == y.device == torch.device("cpu")
        assert torch.equal(x, x0) and torch.equal(y, y0)


class _OnAnotherDevice(torch.Tensor):
    """Stands in for a tensor on another device (no GPU needed): .to(device) gives a plain tensor, the moved copy;
    .to(None) leaves it where it is, as torch does."""

    def to(self, *args, **kwargs):
        return self if args[:1] == (None,) else self.as_subclass(torch.Tensor).clone()


def test_loader_moves_images_labels_and_generator_to_its_device(monkeypatch):
    """Images and labels given on another device are moved to the loader's device, and the loader's generator (saved
    with checkpoints) is made for that device too."""
    images, labels = _loader_data(6)
    made_for = []
    real_generator = torch.Generator

    def recording_generator(device="cpu"):
        made_for.append(device)
        return real_generator(device=device if device is not None else "cpu")

    monkeypatch.setattr(torch, "Generator", recording_generator)
    loader = DeviceLoader(images.as_subclass(_OnAnotherDevice), labels.as_subclass(_OnAnotherDevice), batch_size=6)
    monkeypatch.undo()
    assert type(loader.images) is torch.Tensor and type(loader.labels) is torch.Tensor
    assert made_for == [torch.device("cpu")]
    (x, y), = loader
    assert type(x) is torch.Tensor and type(y) is torch.Tensor and y.tolist() == list(range(6))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_loader_on_a_gpu_from_cpu_tensors():
    """The real thing: CPU tensors in, every batch, the generator and the normalisation on the GPU, same values."""
    images, labels = _loader_data(12)
    options = dict(batch_size=5, shuffle=True, augment=True, mean=(0, 0, 0), std=(1, 1, 1))
    loader = DeviceLoader(images, labels, device="cuda", **options)
    assert loader.images.is_cuda and loader.labels.is_cuda and loader.generator.device.type == "cuda"
    seen = []
    for x, y in loader:
        assert x.is_cuda and y.is_cuda
        pixels = (x * 255).round().to(torch.uint8).cpu()
        for image, label in zip(pixels, y.cpu()):
            assert any(torch.equal(image, cand) for cand in _candidates(images[label], 4))
        seen += y.tolist()
    assert sorted(seen) == list(range(12))
