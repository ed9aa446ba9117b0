"""CIFAR-10 sources, class order, subsets and the device-resident loader (no network)."""
import os
import urllib.error

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
