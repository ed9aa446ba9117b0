"""CIFAR-10 for the lessons, and a loader that keeps a small dataset on the device.

Where the images come from, in order:

1. ``COURSE_DATA_DIR`` names a folder in ImageFolder layout (``train/<class>/*.jpg``,
   ``test/<class>/*.jpg``), e.g. the offline JPEG copy written by
   ``python ../shared/data/unpack_cifar10.py DEST``. Read with ``torchvision.datasets.ImageFolder``.
2. Otherwise ``torchvision.datasets.CIFAR10(root="data", download=True)`` (what Colab gets).
3. If neither works, :class:`DatasetNotFoundError` says how to get the data both ways.
"""
import hashlib
import os
import pathlib

import torch
import torchvision

from .config import DATA_ROOT

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel mean and std of the original CIFAR-10 training images (pixels scaled to 0..1).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class DatasetNotFoundError(RuntimeError):
    """CIFAR-10 could be neither found offline nor downloaded."""


def _offline_dir():
    folder = os.environ.get("COURSE_DATA_DIR", "").strip()
    return pathlib.Path(folder).expanduser() if folder else None


def cifar10_source():
    """A one-line description of where CIFAR-10 will be read from."""
    folder = _offline_dir()
    if folder is not None:
        return f"offline JPEG copy of CIFAR-10 in {folder} (COURSE_DATA_DIR)"
    return f"torchvision CIFAR-10 (original binary batches), downloaded to {DATA_ROOT}"


def load_cifar10(split="train"):
    """The CIFAR-10 ``split`` ("train" or "test") as a torchvision dataset of (PIL image, label).

    Class indices are always torchvision's ``CIFAR10.classes`` order (:data:`CIFAR10_CLASSES`).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    folder = _offline_dir()
    if folder is not None:
        root = folder / split
        if not root.is_dir():
            raise DatasetNotFoundError(
                f"COURSE_DATA_DIR={folder} has no '{split}/' folder. It must hold train/<class>/*.jpg and "
                "test/<class>/*.jpg: write it with `python ../shared/data/unpack_cifar10.py DEST` and set "
                "COURSE_DATA_DIR=DEST, or unset COURSE_DATA_DIR to download CIFAR-10 with torchvision."
            )
        dataset = torchvision.datasets.ImageFolder(str(root))
        if tuple(dataset.classes) != CIFAR10_CLASSES:
            raise DatasetNotFoundError(
                f"{root} has class folders {dataset.classes}, expected CIFAR-10's {list(CIFAR10_CLASSES)}."
            )
        return dataset
    try:
        return torchvision.datasets.CIFAR10(str(DATA_ROOT), train=(split == "train"), download=True)
    except Exception as error:  # no network, or a broken download
        raise DatasetNotFoundError(
            f"Could not download CIFAR-10 to {DATA_ROOT} ({type(error).__name__}: {error}).\n"
            "Either connect to the internet (torchvision downloads it once, about 170 MB), or use an offline "
            "copy in ImageFolder layout: `python ../shared/data/unpack_cifar10.py DEST`, then set "
            "COURSE_DATA_DIR=DEST before starting Jupyter or pytest."
        ) from error


def _manifest_key(dataset):
    """A hash of what an ImageFolder holds: every file's path, size and label. Adding, removing or
    replacing images changes it, so a stale cache is never returned."""
    digest = hashlib.sha1()
    for path, label in dataset.samples:
        digest.update(f"{path}\0{os.path.getsize(path)}\0{label}\n".encode())
    return digest.hexdigest()[:16]


def _read_cache(cache):
    """The cached tensors, or None (with a message) when the file is unreadable, e.g. cut short."""
    try:
        saved = torch.load(cache, weights_only=True)
        return saved["images"], saved["labels"]
    except Exception as error:  # a truncated or corrupted cache: rebuild it
        print(f"The CIFAR-10 cache {cache} is unreadable ({type(error).__name__}); rebuilding it from the images.")
        return None


def cifar10_tensors(split="train"):
    """The whole split as ``(images, labels)``: uint8 (N, 3, 32, 32) and int64 (N,).

    Decoding 50,000 JPEGs takes a few seconds, so the result is cached under ``data/cache``, keyed
    by the images it holds (their paths, sizes and labels) and written atomically; an unreadable
    cache is rebuilt.
    """
    dataset = load_cifar10(split)
    tag = "torchvision" if isinstance(dataset, torchvision.datasets.CIFAR10) else _manifest_key(dataset)
    cache = DATA_ROOT / "cache" / f"cifar10-{tag}-{split}.pt"
    if cache.exists():
        saved = _read_cache(cache)
        if saved is not None:
            return saved
    if isinstance(dataset, torchvision.datasets.CIFAR10):
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        labels = torch.tensor(dataset.targets, dtype=torch.int64)
    else:
        import numpy as np
        from PIL import Image

        pixels = [np.asarray(Image.open(path).convert("RGB")) for path, _ in dataset.samples]
        images = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous()
        labels = torch.tensor(dataset.targets, dtype=torch.int64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        torch.save({"images": images, "labels": labels}, temporary)
        os.replace(temporary, cache)  # atomic: the cache is complete or absent, never half-written
    finally:
        temporary.unlink(missing_ok=True)
    return images, labels


def subset_indices(labels, per_class, seed=0):
    """Indices of a class-balanced random subset: ``per_class`` examples of every class.

    The same ``seed`` always gives the same subset.
    """
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1:
        raise ValueError(f"per_class must be a positive whole number of examples per class, got {per_class!r}.")
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for cls in torch.unique(labels).tolist():
        members = torch.nonzero(labels == cls).flatten()
        if per_class > len(members):
            raise ValueError(f"class {cls} has only {len(members)} examples, asked for {per_class}.")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def cifar10_subset(split="train", per_class=None, seed=0):
    """``(images, labels)`` of CIFAR-10, optionally a balanced subset of ``per_class`` per class."""
    images, labels = cifar10_tensors(split)
    if per_class is None:
        return images, labels
    index = subset_indices(labels, per_class, seed)
    return images[index], labels[index]


def channel_stats(images):
    """Per-channel mean and std of uint8 images (N, C, H, W), on the 0..1 scale."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"channel_stats expects uint8 images (N, C, H, W) with C = 1 or 3, got {images.dtype} "
            f"{tuple(images.shape)}. "
            "Convert floats with (x * 255).round().to(torch.uint8), and NHWC arrays with .permute(0, 3, 1, 2).")
    x = images.float().div_(255)
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).tolist()


def random_crop_flip(images, padding=4, generator=None):
    """Random crop (zero padding ``padding``) and random horizontal flip, for a whole batch.

    One gather does both, on whatever device ``images`` live: for image b, output pixel
    (i, j) reads padded pixel (i + dy[b], j + dx[b]), or (i + dy[b], W - 1 - j + dx[b])
    when it is flipped. No Python loop over images.
    """
    n, c, h, w = images.shape
    device = images.device
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=device)
    flip = torch.randint(0, 2, (n,), generator=generator, device=device).bool()
    rows = offsets[0, :, None] + torch.arange(h, device=device)
    cols = torch.arange(w, device=device).expand(n, w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + offsets[1, :, None]
    batch = torch.arange(n, device=device)[:, None, None, None]
    channel = torch.arange(c, device=device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


class DeviceLoader:
    """Mini-batches from a dataset held on the device as one uint8 tensor.

    Shuffling, augmentation (:func:`random_crop_flip`), the conversion to float and the
    normalisation all run on the device, batch-wise. For CIFAR-10 on a GPU this removes the
    per-image Python work of a DataLoader, which would otherwise be the bottleneck.

    Args:
        images: uint8 tensor (N, 3, H, W); labels: int64 tensor (N,).
        batch_size, shuffle, augment, drop_last: as usual.
        mean, std: per-channel normalisation on the 0..1 scale (CIFAR-10's by default).
        channels_last: emit batches in channels_last memory format (faster convs on GPUs).
        seed: seeds the loader's own generator, saved and restored with checkpoints.
    """

    def __init__(self, images, labels, batch_size=128, shuffle=False, augment=False, device="cpu",
                 mean=CIFAR10_MEAN, std=CIFAR10_STD, drop_last=False, channels_last=False, seed=0):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}.")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels.")
        if len(mean) != images.shape[1] or len(std) != images.shape[1]:
            raise ValueError(
                f"images have {images.shape[1]} channels but mean/std have {len(mean)}/{len(std)} values: pass one "
                "mean and one std per channel (utils.data.channel_stats computes them).")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive whole number, got {batch_size!r}.")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size, self.shuffle, self.augment, self.drop_last = batch_size, shuffle, augment, drop_last
        self.channels_last = channels_last
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def __len__(self):
        full, rest = divmod(len(self.images), self.batch_size)
        # drop_last drops a ragged final batch, but never the only one.
        return full if (rest == 0 or (self.drop_last and full > 0)) else full + 1

    def __iter__(self):
        n = len(self.images)
        order = (torch.randperm(n, generator=self.generator, device=self.device) if self.shuffle
                 else torch.arange(n, device=self.device))
        for i in range(len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[index]
            if self.augment:
                x = random_crop_flip(x, generator=self.generator)
            x = (x.float() - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[index]


def cifar10_loaders(per_class=None, test_per_class=None, batch_size=128, device="cpu", augment=True, seed=0,
                    **options):
    """Train and test :class:`DeviceLoader` for CIFAR-10 (optionally class-balanced subsets)."""
    train_x, train_y = cifar10_subset("train", per_class, seed)
    test_x, test_y = cifar10_subset("test", test_per_class, seed)
    train = DeviceLoader(train_x, train_y, batch_size, shuffle=True, augment=augment, device=device,
                         drop_last=True, seed=seed, **options)
    test = DeviceLoader(test_x, test_y, max(batch_size, 256), device=device, **options)
    return train, test

