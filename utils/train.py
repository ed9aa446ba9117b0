"""One training loop for every lesson: :func:`fit`, :func:`evaluate`, checkpoints.

``fit`` picks the device, seeds everything, trains with an optional bf16 autocast,
channels_last memory format and ``torch.compile``, shows a ``tqdm`` progress bar with the
live loss and accuracy, adds the auxiliary heads' losses (weight 0.3 each, as in the paper)
for models that return ``(logits, aux1, aux2)``, evaluates after every epoch, and saves a
checkpoint after every epoch so that an interrupted run (Colab disconnects) resumes exactly.
"""
import hashlib
import os
import pathlib
import random
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .progress import progress_bar


def get_device():
    """The best available device: CUDA GPU, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed=0):
    """Seed Python's, NumPy's and PyTorch's random generators (all devices)."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy

        numpy.random.seed(seed)
    except ImportError:
        pass


@dataclass
class History:
    """What :func:`fit` measured, one entry per epoch in each list."""

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    images_per_second: list = field(default_factory=list)

    def append(self, **row):
        for key, value in row.items():
            getattr(self, key).append(value)

    def as_dict(self):
        return {key: list(value) for key, value in self.__dict__.items()}

    def plot(self, title=None):
        """Loss and accuracy curves (see :func:`utils.plots.plot_history`)."""
        from .plots import plot_history

        return plot_history(self, title=title)

    def summary(self):
        """One line: final accuracies, time and throughput."""
        acc = f"test acc {self.test_acc[-1]:.1%}, " if self.test_acc and self.test_acc[-1] is not None else ""
        return (f"{len(self.epoch)} epochs: train loss {self.train_loss[-1]:.3f}, train acc {self.train_acc[-1]:.1%}, "
                f"{acc}{sum(self.seconds):.1f} s, {self.images_per_second[-1]:,.0f} img/s")


def classification_loss(outputs, targets, aux_weight=0.3, label_smoothing=0.0):
    """Cross-entropy of the main logits, plus ``aux_weight`` times each auxiliary head's."""
    if isinstance(outputs, (tuple, list)):
        main, *aux = outputs
        loss = F.cross_entropy(main, targets, label_smoothing=label_smoothing)
        for head in aux:
            loss = loss + aux_weight * F.cross_entropy(head, targets, label_smoothing=label_smoothing)
        return loss, main
    return F.cross_entropy(outputs, targets, label_smoothing=label_smoothing), outputs


@torch.no_grad()
def evaluate(model, loader, num_classes=None, bf16=False):
    """Loss, accuracy, per-class accuracy, confusion matrix and predictions of ``model`` on ``loader``.

    ``confusion[i, j]`` counts examples of true class i predicted as class j. ``predictions`` and
    ``labels`` (CPU tensors, in the loader's order) feed :func:`utils.stats.compare_models`.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, predictions, labels = 0.0, [], []
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        total_loss += F.cross_entropy(logits.float(), y, reduction="sum").item()
        k = num_classes or logits.shape[1]
        predictions.append(logits.argmax(1).cpu())
        labels.append(y.cpu())
    model.train(was_training)
    predictions, labels = torch.cat(predictions), torch.cat(labels)
    confusion = torch.bincount(labels * k + predictions, minlength=k * k).view(k, k)
    n = len(labels)
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1)).tolist()
    return {"loss": total_loss / n, "accuracy": confusion.diag().sum().item() / n,
            "per_class_accuracy": per_class, "confusion": confusion, "predictions": predictions, "labels": labels}


def architecture_signature(model):
    """A short fingerprint of a model's architecture: class, parameter count, and a hash of
    every state-dict entry's name and shape. Two models load each other's weights iff equal."""
    model = getattr(model, "_orig_mod", model)
    entries = sorted(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    digest = hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]
    params = sum(p.numel() for p in model.parameters())
    return {"class": type(model).__name__, "params": params, "hash": digest}


class CheckpointMismatchError(ValueError):
    """A checkpoint was saved from a different architecture than the model it is loaded into."""


def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch=0, history=None, loader=None):
    """Save everything needed to resume exactly: weights, optimizer, schedule, epoch, history,
    and the random-number state (PyTorch's and the training loader's own generator)."""
    model = getattr(model, "_orig_mod", model)
    state = {
        "architecture": architecture_signature(model),
        "model": model.state_dict(),
        "epoch": epoch,
        "history": history.as_dict() if history is not None else None,
        "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
    }
    if torch.cuda.is_available():
        state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if loader is not None and hasattr(loader, "generator"):
        state["loader_rng"] = loader.generator.get_state()
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def load_checkpoint(path, model, optimizer=None, scheduler=None, loader=None, restore_rng=True):
    """Load a checkpoint saved by :func:`save_checkpoint` (``torch.load(weights_only=True)``).

    Refuses, with :class:`CheckpointMismatchError`, a checkpoint of a different architecture.
    Returns the checkpoint dict (``epoch`` and ``history`` included).
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "architecture" not in state:
        raise CheckpointMismatchError(f"{path} is not a course checkpoint (saved by utils.train.save_checkpoint).")
    target = getattr(model, "_orig_mod", model)
    mine, theirs = architecture_signature(target), state["architecture"]
    if mine != theirs:
        raise CheckpointMismatchError(
            f"{path} was saved from a {theirs['class']} with {theirs['params']:,} parameters (shape hash "
            f"{theirs['hash']}), but this model is a {mine['class']} with {mine['params']:,} parameters "
            f"(hash {mine['hash']}). Build the model with the same options as the run that saved it, "
            "or point `checkpoint=` at a new file to start fresh."
        )
    target.load_state_dict(state["model"])
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng:
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        if loader is not None and "loader_rng" in state:
            loader.generator.set_state(state["loader_rng"])
    return state


def make_optimizer(model, name="sgd", lr=0.05, weight_decay=5e-4):
    """SGD with Nesterov momentum 0.9, or AdamW."""
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {name!r}.")


def make_schedule(optimizer, name, total_steps):
    """Per-step learning-rate schedule: 'onecycle', 'cosine' or 'constant'."""
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                   total_steps=max(total_steps, 1))
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise ValueError(f"schedule must be 'onecycle', 'cosine' or 'constant', got {name!r}.")


def fit(model, train_loader, test_loader=None, epochs=1, lr=0.05, optimizer="sgd", weight_decay=5e-4,
        schedule="onecycle", aux_weight=0.3, label_smoothing=0.0, device=None, bf16=False,
        channels_last=False, compile=False, max_seconds=None, checkpoint=None, resume=False, seed=0,
        progress=True):
    """Train ``model`` and return a :class:`History`.

    Args:
        train_loader, test_loader: iterables of ``(images, labels)`` (a ``DeviceLoader`` or a DataLoader).
        epochs, lr, optimizer ("sgd" | "adamw"), weight_decay, schedule ("onecycle" | "cosine" | "constant").
        aux_weight: weight of each auxiliary head's loss when the model returns a tuple in training.
        device: defaults to :func:`get_device`. bf16, channels_last, compile: speed options for GPUs.
        max_seconds: stop once training has used this many seconds (a time budget; evaluation excluded).
        checkpoint: a file to save after each epoch; with ``resume=True`` training continues from it.
        seed: seeds everything at the start of a fresh run.
    """
    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, optimizer, lr, weight_decay)
    sched = make_schedule(opt, schedule, epochs * len(train_loader))
    history, start_epoch = History(), 0
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        state = load_checkpoint(checkpoint, model, opt, sched, loader=train_loader)
        start_epoch = state["epoch"]
        history = History(**state["history"])
    else:
        seed_everything(seed)
        if hasattr(train_loader, "generator"):
            train_loader.generator.manual_seed(seed)
    step_model = torch.compile(model) if compile else model
    used_seconds = sum(history.seconds)
    bar = progress_bar(total=(epochs - start_epoch) * len(train_loader), desc="training", disable=not progress)
    for epoch in range(start_epoch, epochs):
        model.train()
        seen = correct = 0
        loss_sum, started = 0.0, time.perf_counter()
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                outputs = step_model(x)
                loss, logits = classification_loss(outputs, y, aux_weight, label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.1%}", refresh=False)
            if max_seconds is not None and used_seconds + time.perf_counter() - started > max_seconds:
                break
        seconds = time.perf_counter() - started
        used_seconds += seconds
        result = evaluate(model, test_loader, bf16=bf16) if test_loader is not None else None
        history.append(epoch=epoch + 1, train_loss=loss_sum / max(seen, 1), train_acc=correct / max(seen, 1),
                       test_loss=result and result["loss"], test_acc=result and result["accuracy"],
                       seconds=seconds, images_per_second=seen / seconds)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, opt, sched, epoch + 1, history, train_loader)
        if max_seconds is not None and used_seconds > max_seconds:
            break
    bar.close()
    return history
