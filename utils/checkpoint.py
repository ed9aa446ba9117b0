"""Checkpoints that resume a run exactly: :func:`save_checkpoint`, :func:`load_checkpoint`.

A checkpoint holds the weights, the optimizer, the schedule, the gradient scaler, the epoch (and
the step, for an epoch cut short), the run's history, and every random-number state (Python,
PyTorch on CPU and GPU, the data loader's own generator), so that a resumed run continues
exactly as an uninterrupted one would. It loads with ``torch.load(weights_only=True)``, which
refuses to run code hidden in a file.

* Checkpoints are written to a temporary file and renamed, so an interrupted save leaves the
  previous checkpoint intact; an unreadable file gets :class:`CheckpointError` naming it.
* A checkpoint records its model's architecture (:func:`architecture_signature`); loading it into
  another architecture raises :class:`CheckpointMismatchError`.

:func:`utils.train.fit` saves one after every epoch; these functions are for loading a trained
model in a lesson and for code that writes its own loop.
"""
import hashlib
import os
import pathlib
import random

import torch


class CheckpointError(ValueError):
    """A checkpoint file cannot be used: unreadable, not a course checkpoint, or from another run."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint was saved from a different architecture than the model it is loaded into."""


def _distributed():
    """(rank, world size): (0, 1) unless torch.distributed is initialised (torchrun)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _unwrap(model):
    """The plain module inside a compiled (``_orig_mod``) or DistributedDataParallel (``module``) wrapper."""
    while hasattr(model, "_orig_mod") or isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = getattr(model, "_orig_mod", None) or model.module
    return model


def architecture_signature(model):
    """A short fingerprint of a model's architecture: class, parameter count, and a hash of
    every state-dict entry's name and shape. Two models load each other's weights iff equal."""
    model = _unwrap(model)
    entries = sorted(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    digest = hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]
    params = sum(p.numel() for p in model.parameters())
    return {"class": type(model).__name__, "params": params, "hash": digest}


def _loader_generator(loader):
    generator = getattr(loader, "generator", None)
    return generator if isinstance(generator, torch.Generator) else None


def _rng_state(loader=None, loader_state=None):
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    generator = _loader_generator(loader)
    if loader_state is not None or generator is not None:
        state["loader"] = loader_state if loader_state is not None else generator.get_state()
    return state


def _set_rng_state(state, loader=None):
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator = _loader_generator(loader)
    if generator is not None and "loader" in state:
        generator.set_state(state["loader"])


def _atomic_save(obj, path):
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path``.

    A rename is atomic, so ``path`` always holds either the old complete file or the new one. A write
    that fails (a full disk) raises OSError saying so; the file saved before stays as it was."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:  # torch's file writer reports a full disk as a RuntimeError
        reason = getattr(error, "strerror", None) or str(error)
        message = (f"{path} could not be saved: {reason}. Any checkpoint saved there before is kept and still "
                   "loads. Free some disk space (or choose another checkpoint file), then resume.")
        raise OSError(*((error.errno, message) if getattr(error, "errno", None) else (message,))) from error
    finally:
        temporary.unlink(missing_ok=True)


def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch=0, history=None, loader=None, step=0,
                    loader_state=None, scaler=None, extra=None):
    """Save everything needed to resume exactly, atomically (see :func:`_atomic_save`).

    ``epoch`` is the number of complete epochs, or the index of the epoch in progress when
    ``step`` > 0 batches of it are done (a time budget cut it); ``loader_state`` is then the
    loader's generator state at that epoch's start. Under torchrun every process calls this;
    process 0 writes one file holding every process's random-number state.
    """
    rank, world = _distributed()
    rng = _rng_state(loader, loader_state)
    if world > 1:
        gathered = [None] * world
        torch.distributed.all_gather_object(gathered, rng)
        rng = {"per_rank": gathered}
    if rank == 0:
        state = {
            "architecture": architecture_signature(model),
            "model": _unwrap(model).state_dict(),
            "epoch": epoch,
            "step": step,
            "history": history.as_dict() if history is not None else None,
            "rng": rng,
            "world_size": world,
        }
        for key, part in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
            if part is not None:
                state[key] = part.state_dict()
        state.update(extra or {})
        _atomic_save(state, path)
    if world > 1:
        torch.distributed.barrier()


def _read_checkpoint(path):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # truncated, corrupted, or a file of another kind
        raise CheckpointError(
            f"{path} cannot be read as a checkpoint ({type(error).__name__}); it may have been cut short by an "
            "interrupted save, or it is not a checkpoint at all. Delete it to start fresh, or point `checkpoint=` "
            "at another file.") from None
    if not isinstance(state, dict) or "architecture" not in state or "model" not in state:
        raise CheckpointError(f"{path} is not a course checkpoint (saved by utils.train.save_checkpoint).")
    return state


def load_checkpoint(path, model, optimizer=None, scheduler=None, loader=None, restore_rng=True, scaler=None):
    """Load a checkpoint saved by :func:`save_checkpoint` (``torch.load(weights_only=True)``).

    Refuses, with :class:`CheckpointMismatchError`, a checkpoint of a different architecture, and
    with :class:`CheckpointError` a file that cannot be read. Returns the checkpoint dict.
    """
    state = _read_checkpoint(path)
    target = _unwrap(model)
    mine, theirs = architecture_signature(target), state["architecture"]
    if mine != theirs:
        raise CheckpointMismatchError(
            f"{path} was saved from a {theirs['class']} with {theirs['params']:,} parameters (shape hash "
            f"{theirs['hash']}), but this model is a {mine['class']} with {mine['params']:,} parameters "
            f"(hash {mine['hash']}). Build the model with the same options as the run that saved it, "
            "or point `checkpoint=` at a new file to start fresh.")
    target.load_state_dict(state["model"])
    for key, part in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if part is not None and key in state:
            part.load_state_dict(state[key])
    if restore_rng:
        rng = state["rng"]
        if "per_rank" in rng:
            rank, world = _distributed()
            if world != len(rng["per_rank"]):
                raise CheckpointError(f"{path} was saved by {len(rng['per_rank'])} processes; resume it with as many "
                                      f"(this run has {world}).")
            rng = rng["per_rank"][rank]
        _set_rng_state(rng, loader)
    return state
