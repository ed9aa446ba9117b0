"""The training recipe from the command line: ``python -m utils.train --help``.

It runs :func:`utils.train.fit` as a script, on one device or, started with ``torchrun``, on
several GPUs or machines through DistributedDataParallel, and writes a JSON summary of the run.

A mistake the course expects (a bad option, a checkpoint of another run, an existing checkpoint
and neither ``--resume`` nor ``--overwrite``) ends with one line, as argparse's own errors do,
and exit status 2; a diverged training or a failed save with status 1; Ctrl-C with 130 (after
``fit`` saved the steps done). ``--traceback`` shows Python's traceback instead.
"""
import argparse
import hashlib
import json
import math
import os
import pathlib

import torch

from .checkpoint import CheckpointMismatchError, _distributed, _unwrap

EPILOG = """examples:
  python -m utils.train --epochs 30 --batch-size 512 --lr 0.4 --label-smoothing 0.1 --precision auto \\
      --channels-last --compile
  python -m utils.train ... --resume          # continue the run saved in --checkpoint
  torchrun --nproc-per-node 8 -m utils.train --epochs 30 --batch-size 64
  torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 -m utils.train ...

An existing --checkpoint is never overwritten unasked: --resume continues it, --overwrite starts again.
Exit status: 0 done; 1 training diverged or a file could not be written; 2 a bad option, checkpoint or
data folder (one line says which and what to do; --traceback shows Python's traceback); 130 Ctrl-C
(the steps done are saved: --resume continues them)."""

#: How the course's messages name fit's arguments, and the command line's flags for them.
_FLAGS = {"`checkpoint=`": "--checkpoint", "resume=True": "--resume", "overwrite=True": "--overwrite"}


class _UsageError(ValueError):
    """A combination of options that cannot work (found before anything is trained)."""


def _positive(parse, name):
    """An argparse type: ``parse`` (int or float), then require a finite value > 0."""
    def parse_positive(text):
        value = parse(text)
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a {name} > 0 (got {text})")
        return value

    parse_positive.__name__ = name  # argparse names it in "invalid <name> value"
    return parse_positive


def _setting(name, parse=float):
    """An argparse type for fit's setting ``name``, checked by the same rules as fit's own."""
    from .train import setting_problem

    def parse_setting(text):
        value = parse(text)
        problem = setting_problem(name, value)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem} (got {text})")
        return value

    parse_setting.__name__ = "whole number" if parse is int else "number"
    return parse_setting


def build_parser():
    """The command line's options (``python -m utils.train --help`` prints them)."""
    parser = argparse.ArgumentParser(
        prog="python -m utils.train", usage="%(prog)s [options]  (--help lists them)",
        description="Train a course model on CIFAR-10 with utils.train.fit: progress bar, checkpoints, exact "
                    "resume, a JSON summary. Several GPUs or machines: start it with torchrun.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--model", choices=["googlenet", "small_inception"], default="googlenet")
    add("--width", type=_positive(float, "number"), default=1.0,
        help="GoogLeNet channel multiplier (1.0 = the paper's Table 1)")
    add("--stem", choices=["cifar", "imagenet"], default="cifar")
    add("--no-batch-norm", action="store_true", help="the paper-faithful network without batch norm")
    add("--no-aux", action="store_true", help="build GoogLeNet without its two auxiliary heads")
    add("--epochs", type=_setting("epochs", int), default=30)
    add("--batch-size", type=_positive(int, "whole number"), default=512, help="per process")
    add("--lr", type=_setting("lr"), default=0.4)
    add("--optimizer", choices=["sgd", "adamw"], default="sgd")
    add("--momentum", type=_setting("momentum"), default=0.9,
        help="SGD's Nesterov momentum; one-cycle cycles it 0.05 either side (0.95 -> 0.85 -> 0.95)")
    add("--weight-decay", type=_setting("weight_decay"), default=5e-4)
    add("--schedule", choices=["onecycle", "cosine", "constant"], default="onecycle")
    add("--label-smoothing", type=_setting("label_smoothing"), default=0.1)
    add("--aux-weight", type=_setting("aux_weight"), default=0.3)
    add("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    add("--channels-last", action="store_true")
    add("--compile", action="store_true")
    add("--per-class", type=_positive(int, "whole number"), default=None,
        help="train on this many images per class (default: all 5,000)")
    add("--test-per-class", type=_positive(int, "whole number"), default=None,
        help="test on this many images per class (default: all 1,000)")
    add("--checkpoint", default="runs/googlenet.pt", help="saved after every epoch")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    again.add_argument("--overwrite", action="store_true",
                       help="start a new run even though --checkpoint exists, replacing it")
    add("--max-seconds", type=_setting("max_seconds"), default=None, help="training-time budget of the run")
    add("--seed", type=int, default=0)
    add("--summary", default=None, help="JSON summary of the run (default: the checkpoint's name with .json)")
    add("--device", default=None)
    add("--log-every", type=_setting("log_every", int), default=None, help="steps between host synchronisations")
    add("--no-progress", action="store_true")
    add("--traceback", action="store_true", help="on an error, show Python's traceback, not just the message")
    return parser


def _in_flags(message):
    """A course message with fit's argument names replaced by the command line's flags."""
    for python, flag in _FLAGS.items():
        message = message.replace(python, flag)
    return message


def _failure(error):
    """(exit status, message) for an error the course expects; None for any other (a bug: show it)."""
    from .data import DatasetNotFoundError
    from .train import TrainingDiverged

    if isinstance(error, KeyboardInterrupt):
        return 130, "interrupted"
    if isinstance(error, CheckpointMismatchError):
        return 2, f"error: {_in_flags(str(error))} (The model's options: --model, --width, --stem, " \
                  "--no-batch-norm, --no-aux.)"
    if isinstance(error, (ValueError, FileExistsError, DatasetNotFoundError)):
        return 2, f"error: {_in_flags(str(error))}"
    if isinstance(error, (TrainingDiverged, OSError)):
        return 1, f"error: {_in_flags(str(error))}"
    return None


def main(argv=None):
    """Run ``fit`` from the command line; under torchrun, one process per GPU (or CPU, gloo).

    Errors the course expects end the program with one line and an exit status (see the module
    docstring), unless ``--traceback`` is given."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _run(args)
    except (Exception, KeyboardInterrupt) as error:
        failure = _failure(error)
        if args.traceback or failure is None:
            raise
        parser.exit(failure[0], f"{parser.prog}: {failure[1]}\n")


def _check_checkpoint_options(args):
    """Refuse, before any work, to overwrite a checkpoint unasked or to resume one that is not there."""
    exists = os.path.exists(args.checkpoint)
    if args.resume and not exists:
        raise _UsageError(f"--resume: there is no checkpoint at {args.checkpoint} to continue. Leave out --resume "
                          "to start a new run there, or point --checkpoint at the file of the run to continue.")
    if exists and not (args.resume or args.overwrite):
        raise _UsageError(f"{args.checkpoint} already holds a checkpoint, and this new run would overwrite it. Add "
                          "--resume to continue the run saved there, or --overwrite to start again and replace it "
                          "(or choose another --checkpoint).")


def _parameter_hash(model):
    """sha256 of every parameter, to check that processes hold identical weights. (Batch-norm running
    statistics are buffers, not parameters: each process updates them from its own batches.)"""
    digest = hashlib.sha256()
    for name, tensor in sorted(_unwrap(model).named_parameters()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _shard(images, labels, rank, world):
    """This process's share: every world-th example from ``rank`` on, the same count in every process."""
    n = len(labels) // world * world
    if n == 0:
        raise ValueError(f"{len(labels)} examples cannot be shared by {world} processes: use more data.")
    return images[rank:n:world], labels[rank:n:world]


def _run(args):
    """Build the model and the data, train with ``fit``, and write the JSON summary."""
    from .data import DeviceLoader, cifar10_subset
    from .models import GoogLeNet, SmallInceptionNet
    from .train import fit, get_device

    _check_checkpoint_options(args)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if distributed:
        backend = "nccl" if torch.cuda.is_available() and args.device != "cpu" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group(backend)
    rank, world = _distributed()
    device = torch.device(args.device) if args.device else get_device()
    if device.type == "cuda" and distributed:
        device = torch.device("cuda", local_rank)
    try:
        torch.manual_seed(args.seed)  # the same initial weights in every process
        if args.model == "googlenet":
            model = GoogLeNet(num_classes=10, stem=args.stem, width=args.width, batch_norm=not args.no_batch_norm,
                              aux_logits=not args.no_aux)
        else:
            model = SmallInceptionNet(batch_norm=not args.no_batch_norm)
        model.to(device)
        if distributed:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[local_rank] if device.type == "cuda" else None)
        train_x, train_y = _shard(*cifar10_subset("train", args.per_class, args.seed), rank, world)
        test_x, test_y = _shard(*cifar10_subset("test", args.test_per_class, args.seed), rank, world)
        train = DeviceLoader(train_x, train_y, args.batch_size, shuffle=True, augment=True, device=device,
                             drop_last=True, channels_last=args.channels_last, seed=args.seed + rank)
        test = DeviceLoader(test_x, test_y, max(args.batch_size, 256), device=device, channels_last=args.channels_last)
        if rank == 0:
            print(f"{args.model} on {device} x {world} process(es); {len(train_y) * world:,} training images "
                  f"({len(train)} steps per epoch of {args.batch_size} per process), "
                  f"{len(test_y) * world:,} test images")
        history = fit(model, train, test, epochs=args.epochs, lr=args.lr, optimizer=args.optimizer,
                      weight_decay=args.weight_decay, momentum=args.momentum, schedule=args.schedule,
                      aux_weight=args.aux_weight, label_smoothing=args.label_smoothing, device=device,
                      precision=args.precision, channels_last=args.channels_last, compile=args.compile,
                      max_seconds=args.max_seconds, checkpoint=args.checkpoint, resume=args.resume,
                      overwrite=args.overwrite, seed=args.seed, progress=not args.no_progress,
                      log_every=args.log_every)
        hashes = [None] * world
        if world > 1:
            torch.distributed.all_gather_object(hashes, _parameter_hash(model))
        else:
            hashes = [_parameter_hash(model)]
        if rank == 0:
            _write_summary(args, device, world, history, hashes)
    finally:
        if distributed:
            torch.distributed.destroy_process_group()


def _write_summary(args, device, world, history, hashes):
    """The run's JSON summary (atomically), and two lines: the result and where the files are."""
    summary = {
        "model": args.model, "config": vars(args), "device": str(device), "world_size": world,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__, "epochs_done": len(history.epoch),
        "final_test_accuracy": history.test_acc[-1] if history.test_acc else None,
        "train_seconds": sum(history.seconds), "first_step_seconds": history.first_step_seconds,
        "images_per_second": (sum(s * n for s, n in zip(history.seconds, history.images_per_second))
                              / max(sum(history.seconds), 1e-9)),
        "parameter_hash_per_rank": hashes, "history": history.as_dict(),
    }
    path = pathlib.Path(args.summary or pathlib.Path(args.checkpoint).with_suffix(".json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(summary, indent=1))
    os.replace(temporary, path)
    print(history.summary())
    print(f"summary: {path}; checkpoint: {args.checkpoint}")
