"""The speed check: training throughput (images/s), an ablation of speed techniques, the 224x224
comparison with torchvision's GoogLeNet, and time to accuracy. Prints a table; ``--json`` saves it.

    python -m utils.benchmark                          # every model, on the best device
    python -m utils.benchmark --model googlenet --batch-size 512 --precision auto --channels-last --compile
    python -m utils.benchmark --ablation               # one row per speed technique, lesson 06's table
    python -m utils.benchmark --compare-torchvision    # ours (batch norm) vs torchvision at 224x224
    python -m utils.benchmark --time-to-accuracy 0.92 --epochs 30   # real CIFAR-10, the lesson-06 recipe
    python -m utils.benchmark --t4                     # Colab's T4 path on a bigger GPU: 15 GB cap, fp16 + scaler

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


#: A T4's memory as the course plans for it: the 16 GB card shows programs about 15 GB (a design figure).
T4_MEMORY = 15e9


def t4_check(device, epochs=3, memory=T4_MEMORY, dry_run=False):
    """Colab's T4 path run on a bigger GPU, so that its decisions are tried before a learner meets them.

    The process's GPU memory is capped at ``memory`` bytes (``torch.cuda.set_per_process_memory_fraction``:
    an allocation past it fails as on a 15 GB card), fp16 with a gradient scaler is forced (a T4 has no
    bf16 units), and the batch is the one :func:`utils.cost.largest_batch_that_fits` picks for that
    memory, with the learning rate scaled linearly from 0.4 at 512. It then trains the full GoogLeNet
    (CIFAR stem, batch norm, eager) for ``epochs`` epochs on CIFAR-10 and reports the peak memory
    against the estimate, the images/s of the epochs after the first, and the projected time of the
    lesson's 30 epochs at that speed. It measures THIS GPU under a memory cap, not a T4: a T4 computes
    far more slowly. ``dry_run`` (any device, tiny sizes, fp32 off a GPU) checks the code path only.
    """
    from .cost import largest_batch_that_fits, training_step_memory
    from .data import cifar10_loaders

    device = torch.device(device)
    cuda = device.type == "cuda"
    precision = "fp16" if cuda else "fp32"
    candidates, per_class, test_per_class = ((8, 16), 4, 2) if dry_run else ((64, 128, 256, 512), None, None)
    torch.manual_seed(0)
    model = GoogLeNet(num_classes=10, stem="cifar", batch_norm=True)
    if cuda:
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, memory / total), device)
        torch.cuda.reset_peak_memory_stats(device)
    batch, rows = largest_batch_that_fits(model, memory, candidates=candidates, precision=precision)
    train, test = cifar10_loaders(per_class=per_class, test_per_class=test_per_class, batch_size=batch,
                                  device=device, channels_last=True)
    history = fit(model, train, test, epochs=epochs, lr=0.4 * batch / 512, label_smoothing=0.1, device=device,
                  precision=precision, channels_last=True, progress=False)
    steady = history.images_per_second[1:] or history.images_per_second  # the first epoch warms up
    images_per_second = sum(steady) / len(steady)
    return {"device": _device_name(device), "memory_cap_bytes": memory if cuda else None, "precision": precision,
            "gradient_scaler": precision == "fp16", "batch_table": rows, "batch_size": batch,
            "lr": 0.4 * batch / 512, "epochs": epochs, "test_accuracy": history.test_acc,
            "estimated_step_bytes": training_step_memory(model, batch, precision=precision)["total"],
            "peak_allocated_bytes": torch.cuda.max_memory_allocated(device) if cuda else None,
            "images_per_second": images_per_second,
            "projected_30_epochs_seconds": 30 * len(train) * batch / images_per_second,
            "label": (f"{_device_name(device)} with its memory capped at {memory / 1e9:.0f} GB, fp16 + GradScaler: "
                      "NOT a T4" if cuda else "dry run on the CPU: a check of the code path, not a measurement")}


def _print_t4(result):
    print(result["label"])
    for row in result["batch_table"]:
        print(f"  batch {row['batch_size']:>4}: estimated {row['bytes'] / 1e9:6.2f} GB per training step"
              f"{'' if row['fits'] else '  (does not fit)'}")
    peak = result["peak_allocated_bytes"]
    print(f"  picked batch {result['batch_size']} (lr {result['lr']:.3g}); peak memory "
          + (f"{peak / 1e9:.2f} GB" if peak is not None else "not measured (no GPU)")
          + f", estimate {result['estimated_step_bytes'] / 1e9:.2f} GB")
    print(f"  {result['images_per_second']:,.0f} img/s after the first epoch; 30 epochs projected at this speed: "
          f"{result['projected_30_epochs_seconds'] / 60:.1f} min; test accuracy per epoch "
          + ", ".join(f"{a:.1%}" for a in result["test_accuracy"]))


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
    parser.add_argument("--t4", action="store_true",
                        help="Colab's T4 path on this GPU: memory capped at 15 GB, fp16 + GradScaler, the batch the "
                             "memory estimate picks, a few epochs of CIFAR-10 (3, or --epochs)")
    parser.add_argument("--dry-run", action="store_true", help="with --t4: tiny sizes, on any device (a check of "
                                                                 "the code path, not a measurement)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of --time-to-accuracy (default 30) or "
                                                                  "--t4 (default 3)")
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
        report["ablation"] = ablation(device, model=MODELS[(args.model or ["googlenet"])[0]], batches=batches)
        for row in report["ablation"]:
            speed = row["images_per_second"]
            print(f"{row['step']:<48} " + (f"{speed:>10,.0f} img/s  x{row['speedup']:.2f}" if speed else row["note"]))
    if args.compare_torchvision:
        report["compare_torchvision"] = compare_torchvision(device, args.batch_size, batches, **options)
        for row in report["compare_torchvision"]:
            print(f"{row['model']:<36} {row['images_per_second']:>10,.1f} img/s at 224x224  "
                  f"({row['params']:,} params, {row['multiply_adds'] / 1e9:.2f} G multiply-adds)")
    if args.t4:
        report["t4"] = t4_check(device, epochs=args.epochs or 3, dry_run=args.dry_run)
        _print_t4(report["t4"])
    if args.time_to_accuracy is not None:
        rows, reached, history = time_to_accuracy(args.time_to_accuracy, device, args.epochs or 30, args.batch_size,
                                                  args.lr, **options)
        report.update(time_to_accuracy=rows, target=args.time_to_accuracy, seconds_to_target=reached,
                      first_step_seconds=history.first_step_seconds)
        for row in rows:
            print(f"epoch {row['epoch']:>3}  {row['train_seconds']:>8.1f} s  test accuracy {row['test_accuracy']:.2%}")
        print(f"target {args.time_to_accuracy:.0%}: " + (f"reached after {reached:.1f} s of training" if reached
                                                        else "not reached"))
    if not (args.ablation or args.compare_torchvision or args.t4 or args.time_to_accuracy is not None):
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
