"""Print training throughput (images/s) of the course's models: the speed check.

    python -m utils.benchmark                       # every model, on the best device
    python -m utils.benchmark --model googlenet --batch-size 512 --bf16 --channels-last --compile

Synthetic CIFAR-sized data (uint8, on the device, augmented by the DeviceLoader) so that the
number measures the model and the loop, not the disk. The first epoch is a warm-up
(``torch.compile`` compiles there); the second is timed.
"""
import argparse
import time

import torch
from torch import nn

from .data import DeviceLoader, random_crop_flip
from .models import GoogLeNet, SmallInceptionNet, count_parameters
from .train import fit, get_device


def tiny_cnn(num_classes=10):
    """A 4-layer CNN (3 convs + linear), the speed reference for CPU lessons."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, num_classes),
    )


MODELS = {
    "tiny_cnn": tiny_cnn,
    "small_inception": lambda: SmallInceptionNet(block="reduced"),
    "googlenet": lambda: GoogLeNet(num_classes=10, stem="cifar", batch_norm=True),
}


def train_throughput(model, device, batch_size=128, batches=20, **options):
    """Images per second of training steps (forward, aux losses, backward, SGD step)."""
    images = torch.randint(0, 256, (batch_size * batches, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (len(images),))
    loader = DeviceLoader(images, labels, batch_size, shuffle=True, augment=True, device=device, drop_last=True,
                          channels_last=options.get("channels_last", False))
    history = fit(model, loader, epochs=2, schedule="constant", lr=0.01, device=device, progress=False, **options)
    return history.images_per_second[-1]


def augment_throughput(device, n=50_000, batch_size=512):
    """Images per second of the device-side random crop + flip alone."""
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, device=device)
    random_crop_flip(images[:batch_size])
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(0, n, batch_size):
        random_crop_flip(images[i:i + batch_size])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), action="append")
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=None, help="timed batches (default: 20 on GPU, 3 on CPU)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device) if args.device else get_device()
    batches = args.batches or (20 if device.type == "cuda" else 3)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {name}; batch {args.batch_size}, bf16={args.bf16}, "
          f"channels_last={args.channels_last}, compile={args.compile}")
    print(f"{'augment (crop+flip)':>20}: {augment_throughput(device):>12,.0f} img/s")
    for model_name in args.model or sorted(MODELS):
        torch.manual_seed(0)
        model = MODELS[model_name]()
        speed = train_throughput(model, device, args.batch_size, batches, bf16=args.bf16,
                                 channels_last=args.channels_last, compile=args.compile)
        print(f"{model_name:>20}: {speed:>12,.0f} img/s training ({count_parameters(model):,} params)")


if __name__ == "__main__":
    main()
