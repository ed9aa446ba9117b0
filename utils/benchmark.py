"""The speed check: training throughput (images/s), an ablation of speed techniques, the 224x224
comparison with torchvision's GoogLeNet, and time to accuracy. Prints a table; ``--json`` saves it.

    python -m utils.benchmark                          # every model, on the best device
    python -m utils.benchmark --model googlenet --batch-size 512 --precision auto --channels-last --compile
    python -m utils.benchmark --ablation               # one row per speed technique, lesson 06's table
    python -m utils.benchmark --compare-torchvision    # ours (batch norm) vs torchvision at 224x224
    python -m utils.benchmark --time-to-accuracy 0.92 --epochs 30   # real CIFAR-10, the lesson-06 recipe

Throughput runs on synthetic uint8 images held on the device (augmented by the DeviceLoader), so
the number measures the model and the loop, not the disk. Each measurement trains two epochs of
``batches`` steps; the first is a warm-up (``torch.compile`` compiles there), the second is timed.
"""
import argparse
import json
import pathlib

import torch
from torch import nn

from . import train as _train
from .data import DeviceLoader, random_crop_flip
from .models import GoogLeNet, SmallInceptionNet, count_parameters
from .train import fit, get_device, resolve_precision


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

#: Lesson 06's ablation: each row adds one technique to the row above it.
ABLATION = (
    ("fp32, eager, batch 128 (the common recipe)", {}),
    ("+ mixed precision (bf16, or fp16 + scaler)", {"precision": "auto"}),
    ("+ channels_last memory format", {"channels_last": True}),
    ("+ batch 512", {"batch_size": 512}),
    ("+ torch.compile", {"compile": True}),
    ("+ CUDA graphs (compile mode 'reduce-overhead')", {"compile": "reduce-overhead"}),
)


def train_throughput(model, device, batch_size=128, batches=20, image_size=32, num_classes=10, **options):
    """Images per second of training steps (forward, aux losses, backward, optimizer step), timed
    over the second of two epochs of ``batches`` steps each on synthetic data. With ``compile``, the
    first (warm-up) epoch compiles, and ``fit`` shows the seconds that takes (``show_elapsed``)."""
    device = torch.device(device)
    images = torch.randint(0, 256, (batch_size * batches, 3, image_size, image_size), dtype=torch.uint8)
    labels = torch.randint(0, num_classes, (len(images),))
    loader = DeviceLoader(images, labels, batch_size, shuffle=True, augment=True, device=device, drop_last=True,
                          channels_last=options.get("channels_last", False))
    history = fit(model, loader, epochs=2, schedule="constant", lr=0.01, device=device, progress=False,
                  log_every=batches, **options)
    return history.images_per_second[-1]


def augment_throughput(device, n=50_000, batch_size=512):
    """Images per second of the device-side random crop + flip alone."""
    device = torch.device(device)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, device=device)
    random_crop_flip(images[:batch_size])
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = _train._clock()
    for i in range(0, n, batch_size):
        random_crop_flip(images[i:i + batch_size])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (_train._clock() - start)


def ablation(device, model=MODELS["googlenet"], batches=20, rows=ABLATION, skip_compile=None):
    """One measured row per step of :data:`ABLATION`, each step keeping the ones above it.

    On a CPU the compile rows are skipped (``skip_compile`` defaults to True there): compiling
    takes minutes on a CPU and CUDA graphs exist only on GPUs. Returns a list of dicts.
    """
    device = torch.device(device)
    skip_compile = device.type != "cuda" if skip_compile is None else skip_compile
    options, results, base = {"batch_size": 128}, [], None
    for label, change in rows:
        options = {**options, **change}
        if skip_compile and options.get("compile"):
            results.append({"step": label, "images_per_second": None, "note": "skipped: GPU only"})
            continue
        torch.manual_seed(0)
        settings = {k: v for k, v in options.items() if k != "batch_size"}
        speed = train_throughput(model(), device, options["batch_size"], batches, **settings)
        base = base or speed
        results.append({"step": label, "images_per_second": speed, "speedup": speed / base,
                        "precision": resolve_precision(options.get("precision"), device),
                        "batch_size": options["batch_size"], "compile": options.get("compile", False)})
    return results


def compare_torchvision(device, batch_size=64, batches=10, **options):
    """Training images/s at 224x224 of our GoogLeNet with batch norm and of torchvision's, same settings.

    Both keep their auxiliary heads (weight 0.3). Ours has the paper's true 5x5 convolutions and
    so more multiply-adds; torchvision's "5x5" branch is a 3x3 (see utils.models)."""
    import torchvision

    from .cost import measure_macs

    rows = []
    for name, build in (("ours (GoogLeNet, batch_norm=True)", lambda: GoogLeNet(batch_norm=True)),
                        ("torchvision.models.googlenet", lambda: torchvision.models.googlenet(
                            weights=None, aux_logits=True, init_weights=False))):
        torch.manual_seed(0)
        model = build()
        macs = measure_macs(model.eval(), torch.zeros(1, 3, 224, 224))
        speed = train_throughput(model.train(), device, batch_size, batches, image_size=224, num_classes=1000,
                                 **options)
        rows.append({"model": name, "images_per_second": speed, "params": count_parameters(model),
                     "multiply_adds": macs})
    return rows


def time_to_accuracy(target, device, epochs=30, batch_size=512, lr=0.4, per_class=None, **options):
    """Train the lesson-06 recipe on CIFAR-10 and report when the test accuracy first reaches ``target``.

    Returns (rows, seconds to target or None, History); the clock counts training only."""
    from .data import cifar10_loaders

    train, test = cifar10_loaders(per_class=per_class, batch_size=batch_size, device=device,
                                  channels_last=options.get("channels_last", False))
    torch.manual_seed(0)
    model = GoogLeNet(num_classes=10, stem="cifar", batch_norm=True)
    history = fit(model, train, test, epochs=epochs, lr=lr, label_smoothing=0.1, device=device, **options)
    rows, elapsed, reached = [], 0.0, None
    for epoch, seconds, accuracy in zip(history.epoch, history.seconds, history.test_acc):
        elapsed += seconds
        rows.append({"epoch": epoch, "train_seconds": elapsed, "test_accuracy": accuracy})
        if reached is None and accuracy >= target:
            reached = elapsed
    return rows, reached, history


def _device_name(device):
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), action="append")
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=None, help="timed batches (default: 20 on GPU, 3 on CPU)")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16", "auto"], default=None)
    parser.add_argument("--bf16", action="store_true", help="the same as --precision bf16")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", nargs="?", const=True, default=False,
                        help="torch.compile; optionally a mode, e.g. max-autotune")
    parser.add_argument("--ablation", action="store_true", help="lesson 06's table: one row per speed technique")
    parser.add_argument("--compare-torchvision", action="store_true", help="224x224 training, ours vs torchvision")
    parser.add_argument("--time-to-accuracy", type=float, default=None, metavar="TARGET",
                        help="train on CIFAR-10 and report when test accuracy reaches TARGET (e.g. 0.92)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.4)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    device = torch.device(args.device) if args.device else get_device()
    batches = args.batches or (20 if device.type == "cuda" else 3)
    precision = args.precision or ("bf16" if args.bf16 else None)
    options = {"precision": precision, "channels_last": args.channels_last, "compile": args.compile}
    report = {"device": _device_name(device), "torch": torch.__version__}
    print(f"torch {torch.__version__} on {report['device']}")
    if args.ablation:
        report["ablation"] = ablation(device, batches=batches)
        for row in report["ablation"]:
            speed = row["images_per_second"]
            print(f"{row['step']:<48} " + (f"{speed:>10,.0f} img/s  x{row['speedup']:.2f}" if speed else row["note"]))
    elif args.compare_torchvision:
        report["compare_torchvision"] = compare_torchvision(device, args.batch_size, batches, **options)
        for row in report["compare_torchvision"]:
            print(f"{row['model']:<36} {row['images_per_second']:>10,.1f} img/s at 224x224  "
                  f"({row['params']:,} params, {row['multiply_adds'] / 1e9:.2f} G multiply-adds)")
    elif args.time_to_accuracy is not None:
        rows, reached, history = time_to_accuracy(args.time_to_accuracy, device, args.epochs, args.batch_size,
                                                  args.lr, **options)
        report.update(time_to_accuracy=rows, target=args.time_to_accuracy, seconds_to_target=reached,
                      first_step_seconds=history.first_step_seconds)
        for row in rows:
            print(f"epoch {row['epoch']:>3}  {row['train_seconds']:>8.1f} s  test accuracy {row['test_accuracy']:.2%}")
        print(f"target {args.time_to_accuracy:.0%}: " + (f"reached after {reached:.1f} s of training" if reached
                                                        else "not reached"))
    else:
        report["augment_images_per_second"] = augment_throughput(device)
        print(f"{'augment (crop+flip)':>20}: {report['augment_images_per_second']:>12,.0f} img/s")
        report["models"] = {}
        for model_name in args.model or sorted(MODELS):
            torch.manual_seed(0)
            model = MODELS[model_name]()
            speed = train_throughput(model, device, args.batch_size, batches, **options)
            report["models"][model_name] = speed
            print(f"{model_name:>20}: {speed:>12,.0f} img/s training ({count_parameters(model):,} params)")
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1))
        print(f"results written to {path}")
    return report


if __name__ == "__main__":
    main()
