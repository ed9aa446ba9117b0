"""One training loop for every lesson: :func:`fit`, :func:`evaluate`, checkpoints, and a command line.

``fit`` picks the device, seeds everything, and trains with optional mixed precision (bf16, or
fp16 with a gradient scaler on GPUs older than compute capability 8.0), channels_last memory format and
``torch.compile``. It adds the auxiliary heads' losses (weight 0.3 each, as in the paper) for
models that return ``(logits, aux1, aux2)``, evaluates after every epoch, and saves a checkpoint
after every epoch, so that an interrupted run (Colab disconnects) resumes exactly.

How it stays fast on a GPU: the running loss and accuracy are summed on the device, and the host
reads them (one synchronisation) only every ``log_every`` steps, where it also updates the
progress bar and checks that the loss is finite. A non-finite loss stops training with
:class:`TrainingDiverged`, which names the epoch and step.

The semantics a learner can rely on:

* ``max_seconds`` is the training-time budget of the whole run, evaluation excluded. Training
  stops at the first step past it; the cut epoch is recorded (``History.complete`` False) and
  checkpointed mid-epoch, and a resume continues it from the next step. Re-running the same
  cell with ``resume=True`` once the budget is spent trains nothing, loads the saved weights
  and returns the history.
* ``resume=True`` continues a checkpoint exactly (same result as an uninterrupted run) with the
  course's :class:`~utils.data.DeviceLoader`; with no checkpoint there yet it starts a new run
  and says so, so one training cell serves the first run and every rerun. A run with a
  schedule sized to its epochs ('onecycle', 'cosine') cannot be resumed with a different
  ``epochs``: start a new run instead.
* Ctrl-C (Colab's stop button) anywhere in the epochs saves the steps done so far (a mid-epoch
  checkpoint, or the epoch just finished), prints how to resume, and re-raises; a resume
  continues exactly. A Ctrl-C during a weights update takes effect when that update is done.
* An existing checkpoint is never overwritten unasked: without ``resume=True`` (continue it)
  or ``overwrite=True`` (start again and replace it), ``fit`` raises FileExistsError.
* Checkpoints (:mod:`utils.checkpoint`) are written to a temporary file and renamed, so an
  interrupted save leaves the previous checkpoint intact; an unreadable file gets
  :class:`CheckpointError` naming it.

The command line (``python -m utils.train --help``, in :mod:`utils.cli`) runs the same recipe as a
script, and with ``torchrun`` on several GPUs or machines through DistributedDataParallel.
"""
import contextlib
import math
import numbers
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F

from .checkpoint import (  # noqa: F401  (CheckpointMismatchError, load_checkpoint: lessons import them from here)
    CheckpointError,
    CheckpointMismatchError,
    _distributed,
    _loader_generator,
    _read_checkpoint,
    _rng_state,
    _set_rng_state,
    _unwrap,
    load_checkpoint,
    save_checkpoint,
)
from .cli import build_parser  # noqa: F401  (lessons import it from here)
from .progress import progress_bar, say, show_elapsed

#: The clock ``fit`` measures training time with (tests replace it with a fake one).
_clock = time.perf_counter


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite."""


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
    """What :func:`fit` measured, one entry per epoch in each list.

    ``train_loss`` is the loss training minimised: the main head's plus ``aux_weight`` times each
    auxiliary head's; ``train_main_loss`` is the main head's alone (the same number for a model
    without auxiliary heads; None in histories saved before it was recorded). ``complete`` is
    False for an epoch cut short by the time budget; ``lr`` is the learning rate of the epoch's
    last step; ``first_step_seconds`` (one number) is how long the very first step took, which
    includes ``torch.compile``'s compilation when ``compile=True``.
    """

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_main_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    images_per_second: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    complete: list = field(default_factory=list)
    first_step_seconds: float = None

    @classmethod
    def from_dict(cls, saved):
        """A History from :meth:`as_dict`'s output; a list an older version did not record is None per epoch."""
        epochs = len(saved.get("epoch", []))
        return cls(**{f.name: saved.get(f.name, [None] * epochs if f.name != "first_step_seconds" else None)
                      for f in fields(cls)})

    def append(self, **row):
        for key, value in row.items():
            getattr(self, key).append(value)

    def as_dict(self):
        return {key: (list(value) if isinstance(value, list) else value) for key, value in self.__dict__.items()}

    def plot(self, title=None):
        """Loss and accuracy curves (see :func:`utils.plots.plot_history`)."""
        from .plots import plot_history

        return plot_history(self, title=title)

    def summary(self):
        """One line: final accuracies, total training time, and images per second over the whole run."""
        if not self.epoch:
            return "0 epochs: nothing trained"
        acc = f"test acc {self.test_acc[-1]:.1%}, " if self.test_acc and self.test_acc[-1] is not None else ""
        images = sum(s * n for s, n in zip(self.seconds, self.images_per_second))
        cut = "" if all(self.complete) else " (last epoch cut by the time budget)"
        main = self.train_main_loss[-1] if self.train_main_loss else None
        main = f" (main head {main:.3f})" if main is not None and main != self.train_loss[-1] else ""
        return (f"{len(self.epoch)} epochs{cut}: train loss {self.train_loss[-1]:.3f}{main}, "
                f"train acc {self.train_acc[-1]:.1%}, "
                f"{acc}{sum(self.seconds):.1f} s, {images / max(sum(self.seconds), 1e-9):,.0f} img/s on average")


def classification_loss(outputs, targets, aux_weight=0.3, label_smoothing=0.0):
    """Cross-entropy of the main logits, plus ``aux_weight`` times each auxiliary head's.

    ``outputs`` is the logits, or a tuple ``(logits, aux1, aux2)``. Returns (loss, main logits)."""
    loss, _, main = _losses(outputs, targets, aux_weight, label_smoothing)
    return loss, main


def _losses(outputs, targets, aux_weight, label_smoothing):
    """(total loss, the main head's loss, the main logits) of one batch; see :func:`classification_loss`."""
    main, *aux = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    main_loss = F.cross_entropy(main, targets, label_smoothing=label_smoothing)
    loss = main_loss
    for head in aux:
        loss = loss + aux_weight * F.cross_entropy(head, targets, label_smoothing=label_smoothing)
    return loss, main_loss, main


def resolve_precision(precision, device, bf16=False):
    """'fp32', 'bf16' or 'fp16' for ``device``; ``bf16=True`` is the older spelling of 'bf16'.

    ``'auto'`` picks bf16 on GPUs of compute capability 8.0 or above (A100, L4, RTX 30xx and later),
    fp16 with a gradient scaler below (Colab's T4 is 7.5), and fp32 on a CPU or Apple's GPU. It asks
    for the capability, not ``torch.cuda.is_bf16_supported()``: since torch 2.4 that counts emulation
    and says True on a T4, where bf16 convolutions are slow or unsupported.
    """
    precision = precision or ("bf16" if bf16 else "fp32")
    device = torch.device(device)
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.get_device_capability(device) >= (8, 0) else "fp16"
    if precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be 'fp32', 'bf16', 'fp16' or 'auto', got {precision!r}.")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision='fp16' (with a gradient scaler) is for CUDA GPUs; "
                         "on this device use 'bf16' or 'fp32'.")
    return precision


def _autocast(device, precision):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


@torch.no_grad()
def evaluate(model, loader, num_classes=None, bf16=False, precision=None):
    """Loss, accuracy, per-class accuracy, confusion matrix and predictions of ``model`` on ``loader``.

    ``loss`` is the mean cross-entropy per example. ``confusion[i, j]`` counts examples of true class
    i predicted as class j; a class with no examples has accuracy NaN (unknown, not 0).
    ``predictions`` and ``labels`` (CPU tensors, in the loader's order) feed
    :func:`utils.stats.compare_models`. The model's train/eval mode is restored afterwards. Under
    torchrun each process evaluates its own shard and the totals are summed over processes.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    precision = resolve_precision(precision, device, bf16)
    total_loss, predictions, labels = torch.zeros((), device=device, dtype=torch.float64), [], []
    try:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            with _autocast(device, precision):
                logits = model(x)
            total_loss += F.cross_entropy(logits.float(), y, reduction="sum").double()
            predictions.append(logits.argmax(1))
            labels.append(y)
    finally:
        model.train(was_training)
    if not labels:
        raise ValueError("evaluate got an empty loader (no batches): check the test set and its batch size.")
    predictions, labels = torch.cat(predictions), torch.cat(labels)
    k = num_classes or logits.shape[1]
    confusion = torch.bincount(labels * k + predictions, minlength=k * k).view(k, k)
    if _distributed()[1] > 1:
        torch.distributed.all_reduce(confusion)
        torch.distributed.all_reduce(total_loss)
    confusion, n = confusion.cpu(), confusion.sum().item()
    per_class = (confusion.diag().double() / confusion.sum(1)).tolist()  # 0/0 = NaN for an absent class
    return {"loss": total_loss.item() / n, "accuracy": confusion.diag().sum().item() / n,
            "per_class_accuracy": per_class, "confusion": confusion,
            "predictions": predictions.cpu(), "labels": labels.cpu()}


def make_optimizer(model, name="sgd", lr=0.05, weight_decay=5e-4, momentum=0.9):
    """SGD with Nesterov momentum (plain SGD for ``momentum=0``), or AdamW (its own beta1 0.9; ``momentum``
    is SGD's); the fused implementation on a GPU, foreach on a CPU.

    The 'onecycle' schedule (:func:`make_schedule`) then cycles the momentum 0.05 either side of it:
    0.95 -> 0.85 (at the peak learning rate) -> 0.95 for the default 0.9, SGD's and AdamW's beta1 alike.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    on_gpu = params[0].is_cuda if params else False
    if name == "sgd":
        make = lambda **kw: torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0,  # noqa: E731
                                            weight_decay=weight_decay, **kw)
    elif name == "adamw":
        make = lambda **kw: torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **kw)  # noqa: E731
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {name!r}.")
    if on_gpu:
        try:
            return make(fused=True)
        except (TypeError, RuntimeError, ValueError):  # an older torch without a fused version
            pass
    return make(foreach=True)


def make_schedule(optimizer, name, total_steps):
    """Per-step learning-rate schedule: 'onecycle', 'cosine' or 'constant'.

    'onecycle' (torch's OneCycleLR) warms the learning rate up from lr/25 to lr over the first 30% of
    the steps and anneals it to lr/25/1e4, and moves the momentum the other way (``cycle_momentum``):
    from the optimizer's momentum + 0.05 down to momentum - 0.05 at the peak and back, which for 0.9
    is torch's default range 0.95-0.85. A momentum without room for that (0: plain SGD) stays constant.
    'cosine' and 'constant' leave the momentum alone.
    """
    if name == "onecycle":
        cycle = _momentum_cycle(optimizer)
        low, high = cycle or (0.85, 0.95)  # unused when the momentum does not cycle
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                   total_steps=max(total_steps, 1), cycle_momentum=cycle is not None,
                                                   base_momentum=low, max_momentum=high)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise ValueError(f"schedule must be 'onecycle', 'cosine' or 'constant', got {name!r}.")


def _momentum_cycle(optimizer, swing=0.05):
    """(lowest, highest) momentum for one-cycle: the optimizer's (SGD's momentum, AdamW's beta1) +- ``swing``;
    None when that range leaves [0, 1)."""
    group = optimizer.param_groups[0]
    centre = group["betas"][0] if "betas" in group else group["momentum"]
    low, high = round(centre - swing, 10), round(centre + swing, 10)  # round: 0.9 + 0.05 is 0.95, not 0.9500...01
    return (low, high) if low >= 0 and high < 1 else None


def _all_reduce_sum(values, device):
    """Sum a list of numbers over torchrun processes (identity in a single process)."""
    if _distributed()[1] == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return tensor.tolist()


def _any_process(flag, device):
    """True if ``flag`` is True in any torchrun process (so that all stop together)."""
    return bool(_all_reduce_sum([float(flag)], device)[0]) if _distributed()[1] > 1 else flag


#: The allowed values of fit's numeric settings, as a learner reads them, and the check itself.
_SETTINGS = {
    "epochs": ("a whole number >= 1", lambda v: _is_whole(v) and v >= 1),
    "lr": ("a finite number >= 0, such as 0.05", lambda v: _is_number(v) and math.isfinite(v) and v >= 0),
    "weight_decay": ("a finite number >= 0, such as 5e-4", lambda v: _is_number(v) and math.isfinite(v) and v >= 0),
    "momentum": ("a number from 0 up to (not including) 1, such as 0.9", lambda v: _is_number(v) and 0 <= v < 1),
    "label_smoothing": ("a number from 0 up to (not including) 1, such as 0.1",
                        lambda v: _is_number(v) and 0 <= v < 1),
    "aux_weight": ("a finite number >= 0, such as 0.3", lambda v: _is_number(v) and math.isfinite(v) and v >= 0),
    "max_seconds": ("a number of seconds > 0, or None for no budget", lambda v: v is None or _is_number(v) and v > 0),
    "log_every": ("a whole number of steps >= 1, or None", lambda v: v is None or _is_whole(v) and v >= 1),
}


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_whole(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def setting_problem(name, value):
    """What is wrong with ``value`` for fit's setting ``name``, as "must be ..." (None if it is fine).

    The command line checks its options with the same rules."""
    allowed, ok = _SETTINGS[name]
    return None if ok(value) else f"must be {allowed}"


def _check_settings(**settings):
    """Raise ValueError for the first setting out of its range, before anything is trained."""
    for name, value in settings.items():
        problem = setting_problem(name, value)
        if problem:
            raise ValueError(f"{name}={value!r} is not allowed: {name} {problem}.")


@dataclass
class _Run:
    """What every step of one :func:`fit` call needs: the model, its optimizer, and the settings."""

    model: torch.nn.Module  # what the steps call: the model, or its torch.compile'd version
    opt: torch.optim.Optimizer
    sched: object
    scaler: object  # a GradScaler for fp16, else None
    device: torch.device
    precision: str
    channels_last: bool
    aux_weight: float
    label_smoothing: float
    log_every: int
    steps_per_epoch: int
    schedule: dict  # its name and length, saved with checkpoints: {"name": "onecycle", "total_steps": 2940}
    max_seconds: float = None
    compiled: bool = False
    first_step_seconds: float = None  # of this call (on resume, the run's first step was in an earlier one)
    last_step: "_AfterLastStep" = None


@dataclass
class _Epoch:
    """The epoch in progress: how many steps are done and their running totals.

    A checkpoint saved mid-epoch (the time budget or a Ctrl-C cut it) carries the totals, so that a
    resumed epoch is recorded whole."""

    index: int  # 0-based
    step: int = 0  # batches done
    loss_sum: float = 0.0  # summed over examples
    main_loss_sum: float = 0.0  # the main head's alone
    correct: float = 0.0
    seen: int = 0
    seconds: float = 0.0  # training time, evaluation excluded
    lr: float = None  # the learning rate of the last step
    loader_state: torch.Tensor = None  # the loader's generator state at the epoch's start
    stopped: bool = False  # cut short: by the time budget, or interrupted
    recorded: bool = False  # its row is in the history
    saved: bool = False  # and in the checkpoint

    def carried(self):
        """The totals a mid-epoch checkpoint saves (``partial_epoch``)."""
        return {"loss_sum": self.loss_sum, "main_loss_sum": self.main_loss_sum, "correct": self.correct,
                "seen": self.seen, "seconds": self.seconds, "lr": self.lr}


class _Window:
    """The loss, the main head's loss and the correct predictions of the steps since the host last read
    them, summed on the device: reading them is the one host synchronisation, every ``log_every`` steps."""

    def __init__(self, device):
        self.sums = torch.zeros(3, device=device)
        self.seen = self.steps = 0

    def add(self, loss, main_loss, logits, y):
        correct = (logits.detach().argmax(1) == y).sum()
        self.sums += torch.stack([loss.detach().float() * len(y), main_loss.detach().float() * len(y), correct.float()])
        self.seen += len(y)
        self.steps += 1

    def empty_into(self, epoch):
        """Add the sums to ``epoch``'s totals and start again from zero; returns (loss sum, examples, steps)."""
        loss, main_loss, correct = self.sums.tolist()
        with _uninterrupted():  # all or nothing: no step counted twice or lost
            seen, steps = self.seen, self.steps
            epoch.loss_sum += loss
            epoch.main_loss_sum += main_loss
            epoch.correct += correct
            epoch.seen += seen
            self.sums.zero_()
            self.seen = self.steps = 0
        return loss, seen, steps


class _AfterLastStep:
    """What a step changes before its weights update (batch-norm statistics, random numbers), as it was
    after the last whole step: a Ctrl-C in the middle of a step restores it, so a checkpoint saved then
    holds whole steps only. The weights and the optimizer change only in the update, which a Ctrl-C
    cannot cut (see :func:`_uninterrupted`)."""

    def __init__(self, model):
        self.buffers = list(model.buffers())
        self.copies = [buffer.detach().clone() for buffer in self.buffers]
        self.rng = _rng_state()

    def remember(self):
        if self.buffers:
            torch._foreach_copy_(self.copies, self.buffers)  # one device call for every buffer
        self.rng = _rng_state()

    def restore(self):
        if self.buffers:
            torch._foreach_copy_(self.buffers, self.copies)
        _set_rng_state(self.rng)


@contextlib.contextmanager
def _uninterrupted():
    """Hold a Ctrl-C (Colab's stop button) that arrives inside the block until the block is done, so that
    a training step is never left half done. Signals reach only the main thread: elsewhere it does nothing."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return
    held = []
    signal.signal(signal.SIGINT, lambda *received: held.append(received))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held and callable(previous):
            previous(*held[0])  # Python's own handler raises KeyboardInterrupt now


def _continues_a_run(checkpoint, resume, overwrite, rank):
    """True if this call continues the run saved in ``checkpoint``; False if it starts a new one.

    A checkpoint that exists is continued (``resume=True``) or replaced (``overwrite=True``), never
    overwritten unasked; ``resume=True`` with no checkpoint yet starts a new run and says so."""
    if resume and overwrite:
        raise ValueError("resume=True continues the run saved in checkpoint=, overwrite=True replaces it: choose one.")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=, the file of the run to continue.")
    exists = checkpoint is not None and os.path.exists(checkpoint)
    if exists and not (resume or overwrite):
        raise FileExistsError(
            f"{checkpoint} already holds a checkpoint, and this new run would overwrite it. Pass resume=True to "
            "continue the run saved there, or overwrite=True to start again and replace it (or choose another "
            "checkpoint file).")
    if resume and not exists and rank == 0:
        say(f"no checkpoint at {checkpoint} yet: starting a new run (saved there after every epoch)")
    return resume and exists


def _new_run(train_loader, seed, rank):
    """Seed everything (the loader's own generator too) and start at epoch 0 with an empty history."""
    seed_everything(seed + rank)
    generator = _loader_generator(train_loader)
    if generator is not None:
        generator.manual_seed(seed + rank)
    return History(), _Epoch(0)


def _resume(checkpoint, run, epochs, train_loader, rank):
    """(history, the epoch to continue) of the run saved in ``checkpoint``, loaded into the model,
    optimizer, schedule and random-number generators; the epoch is None if nothing is left to train."""
    saved = _read_checkpoint(checkpoint)
    sized, wanted = saved.get("schedule"), run.schedule
    if sized and sized != wanted and (sized["name"] != wanted["name"] or wanted["name"] != "constant"):
        raise CheckpointError(
            f"{checkpoint} was trained with a {sized['name']} schedule over {sized['total_steps']:,} steps, but this "
            f"call asks for {wanted['name']} over {epochs} epochs x {run.steps_per_epoch} steps = "
            f"{wanted['total_steps']:,}. A schedule sized to its epochs cannot be stretched mid-run: keep the epochs "
            "and schedule as they were, or start a new run (another checkpoint file, or overwrite=True).")
    history = History.from_dict(saved["history"])
    state = load_checkpoint(checkpoint, run.model, run.opt, run.sched, loader=train_loader, scaler=run.scaler)
    epoch = _Epoch(state["epoch"], step=state.get("step", 0))
    if run.max_seconds is not None and sum(history.seconds) >= run.max_seconds:
        if rank == 0:  # re-running the cell changes nothing (the model holds the saved weights)
            say(f"the run in {checkpoint} has spent its time budget (max_seconds={run.max_seconds}): nothing to train")
        return history, None
    if epoch.index >= epochs:
        if rank == 0:
            say(f"the run in {checkpoint} has finished its {epoch.index} epochs: nothing to train")
        return history, None
    if epoch.step:  # an epoch cut short (time budget, Ctrl-C) continues now and is recorded whole
        carried = state["partial_epoch"]
        epoch.loss_sum, epoch.correct, epoch.seen = carried["loss_sum"], carried["correct"], carried["seen"]
        epoch.main_loss_sum = carried.get("main_loss_sum", math.nan)  # NaN: unknown, saved by an older version
        epoch.seconds, epoch.lr = carried["seconds"], carried.get("lr")
        if history.epoch and history.epoch[-1] == epoch.index + 1:  # the budget recorded its first part
            history = History.from_dict({k: (v[:-1] if isinstance(v, list) else v)
                                         for k, v in history.as_dict().items()})
    return history, epoch


def _train_step(run, epoch, window, x, y):
    """One optimizer step on the batch ``(x, y)``; its loss and accuracy go into ``window``."""
    with _autocast(run.device, run.precision):
        outputs = run.model(x)
        loss, main_loss, logits = _losses(outputs, y, run.aux_weight, run.label_smoothing)
    run.opt.zero_grad(set_to_none=True)
    (run.scaler.scale(loss) if run.scaler is not None else loss).backward()
    with _uninterrupted():  # a Ctrl-C here waits until the step is done: no half-updated weights
        if run.scaler is not None:
            run.scaler.step(run.opt)
            run.scaler.update()
        else:
            run.opt.step()
        epoch.lr = run.opt.param_groups[0]["lr"]  # the learning rate this step used
        run.sched.step()
        epoch.step += 1
        window.add(loss, main_loss, logits, y)
        run.last_step.remember()


def _train_epoch(run, loader, epoch, used_seconds, bar):
    """Train the rest of ``epoch`` (from step ``epoch.step`` on), updating its totals as it goes.

    The loss and accuracy are summed on the device and read by the host every ``run.log_every``
    steps (one synchronisation), where the progress bar is updated, the loss checked, and, under
    torchrun, the processes agree whether the time budget is spent."""
    device, (rank, world) = run.device, _distributed()
    skip, seconds_before = epoch.step, epoch.seconds
    if skip and rank != 0:  # under torchrun the totals of an epoch's first part are held by process 0
        epoch.loss_sum, epoch.main_loss_sum, epoch.correct, epoch.seen = 0.0, 0.0, 0.0, 0
    window, started = _Window(device), _clock()
    try:
        for index, (x, y) in enumerate(loader):
            if index < skip:
                continue  # replay the loader up to where the interrupted epoch stopped
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if run.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            compiling = run.compiled and run.first_step_seconds is None and rank == 0  # minutes, on a small CPU
            with show_elapsed("compiling the model (torch.compile)") if compiling else contextlib.nullcontext():
                _train_step(run, epoch, window, x, y)
            if run.first_step_seconds is None:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                run.first_step_seconds = _clock() - started
            last = epoch.step == run.steps_per_epoch
            over_budget = (run.max_seconds is not None
                           and used_seconds + seconds_before + _clock() - started >= run.max_seconds)
            # under torchrun every process must reach the same synchronisation points: there the budget
            # is checked at log_every steps only, and all processes stop together
            if window.steps >= run.log_every or last or (over_budget and world == 1):
                _log(run, epoch, window, bar)
                if _any_process(over_budget, device):
                    epoch.stopped = not last
                    break
    except KeyboardInterrupt:
        window.empty_into(epoch)  # the steps done since the last read count too
        raise
    finally:
        epoch.seconds = seconds_before + _clock() - started
    epoch.loss_sum, epoch.main_loss_sum, epoch.correct, epoch.seen = _all_reduce_sum(
        [epoch.loss_sum, epoch.main_loss_sum, epoch.correct, epoch.seen], device)


def _log(run, epoch, window, bar):
    """Move the window's sums into the epoch's totals, stop if the loss is not finite, update the bar."""
    loss, seen, steps = window.empty_into(epoch)
    if not math.isfinite(loss):
        bar.close()
        raise TrainingDiverged(
            f"the training loss became {loss / seen} in epoch {epoch.index + 1}, at step {epoch.step} of "
            f"{run.steps_per_epoch} (learning rate {epoch.lr:.3g}). Likely cause: a learning rate too high for this "
            "batch size and model (try 3-10x lower), or bad input (NaN/inf pixels).")
    bar.update(steps)
    bar.set_postfix(epoch=epoch.index + 1, loss=f"{epoch.loss_sum / epoch.seen:.3f}",
                    acc=f"{epoch.correct / epoch.seen:.1%}", refresh=False)


def _save(checkpoint, run, raw, epoch, history, loader):
    """Save the run after ``epoch``: at its end, or mid-epoch (with its totals) when it was cut short."""
    sized = {"schedule": run.schedule}
    if epoch.stopped:
        save_checkpoint(checkpoint, raw, run.opt, run.sched, epoch.index, history, loader, step=epoch.step,
                        loader_state=epoch.loader_state, scaler=run.scaler,
                        extra={**sized, "partial_epoch": epoch.carried()})
    else:
        save_checkpoint(checkpoint, raw, run.opt, run.sched, epoch.index + 1, history, loader, scaler=run.scaler,
                        extra=sized)


def _save_interrupted(checkpoint, run, raw, epoch, history, loader):
    """Ctrl-C (Colab's stop button) interrupted ``epoch``: save the steps done so far, say how to resume.

    An epoch recorded in the history is saved whole (again, if its own save was cut); otherwise its
    steps are saved as a mid-epoch checkpoint, after undoing what an unfinished step changed."""
    rank, world = _distributed()
    if epoch.recorded or epoch.step == 0:
        done = epoch.index + epoch.recorded
        where = f"training interrupted after epoch {done}" if done else "training interrupted before its first step"
    else:
        where = f"training interrupted in epoch {epoch.index + 1} after {epoch.step} of {run.steps_per_epoch} steps"
    if checkpoint is None or world > 1:
        if rank == 0:
            say(f"{where}; nothing saved: " + ("fit was given no checkpoint=" if checkpoint is None
                                               else "under torchrun the checkpoint of the last epoch is kept"))
        return
    if not epoch.saved:
        if not epoch.recorded:
            run.last_step.restore()  # undo what the unfinished step changed
            epoch.stopped = True
        _save(checkpoint, run, raw, epoch, history, loader)
    say(f"{where}: saved in {checkpoint}; run again with resume=True (command line: --resume) to continue")


def _evaluate(model, test_loader, precision):
    """:func:`evaluate` after an epoch, and how long it took: (result or None, seconds)."""
    if test_loader is None:
        return None, 0.0
    started = _clock()
    result = evaluate(model, test_loader, precision=precision)
    return result, _clock() - started


def _record(history, epoch, result):
    """Append ``epoch``'s row to ``history``: its training totals and the test ``result`` (or None)."""
    seen = max(epoch.seen, 1)
    history.append(epoch=epoch.index + 1, train_loss=epoch.loss_sum / seen, train_main_loss=epoch.main_loss_sum / seen,
                   train_acc=epoch.correct / seen, test_loss=result and result["loss"],
                   test_acc=result and result["accuracy"], seconds=epoch.seconds,
                   images_per_second=epoch.seen / max(epoch.seconds, 1e-9), steps=epoch.step, lr=epoch.lr,
                   complete=not epoch.stopped)


def _forecast(run, epoch, steps, seconds, eval_seconds, epochs, used_seconds):
    """One line after the first epoch of a call: how long it took, and about how long the rest will take.

    ``steps`` and ``seconds`` are what this call trained of the epoch. The forecast leaves out the
    first step, which includes one-time work (``torch.compile``'s compilation), and adds evaluation."""
    first = run.first_step_seconds
    per_step = (seconds - first) / (steps - 1) if steps > 1 else seconds / max(steps, 1)
    left = epochs - epoch.index - 1
    name = f"epoch {epoch.index + 1}" if steps == run.steps_per_epoch else f"the rest of epoch {epoch.index + 1}"
    evaluation = f"; evaluation {eval_seconds:.1f} s" if eval_seconds else ""
    line = (f"{name} took {seconds + eval_seconds:.1f} s (first step {first:.1f} s"
            f"{', with compilation' if run.compiled else ''}{evaluation}); {left} epoch{'s' * (left != 1)} to go: "
            f"about {_duration(left * (per_step * run.steps_per_epoch + eval_seconds))}")
    if run.max_seconds is not None and used_seconds + left * per_step * run.steps_per_epoch > run.max_seconds:
        line += (f", but the time budget (max_seconds={run.max_seconds:g}) stops training after "
                 f"{_duration(run.max_seconds - used_seconds)} more")
    return line


def _duration(seconds):
    """'45 s', '20 min' or '2.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 90 * 60 else f"{seconds / 3600:.1f} h"


def fit(model, train_loader, test_loader=None, epochs=1, lr=0.05, optimizer="sgd", weight_decay=5e-4,
        schedule="onecycle", aux_weight=0.3, label_smoothing=0.0, device=None, bf16=False,
        channels_last=False, compile=False, max_seconds=None, checkpoint=None, resume=False, seed=0,
        progress=True, momentum=0.9, precision=None, log_every=None, overwrite=False):
    """Train ``model`` and return a :class:`History` (see the module docstring for the semantics).

    Args:
        train_loader, test_loader: iterables of ``(images, labels)`` (a ``DeviceLoader`` or a DataLoader).
        epochs, lr, optimizer ("sgd" | "adamw"), weight_decay, momentum (SGD, Nesterov),
            schedule ("onecycle" | "cosine" | "constant", stepped every batch). One-cycle cycles the
            momentum too, 0.05 either side of ``momentum``: 0.95 -> 0.85 -> 0.95 for the default 0.9
            (see :func:`make_schedule`); with 'cosine' or 'constant' it stays at ``momentum``.
        aux_weight: weight of each auxiliary head's loss when the model returns a tuple in training.
        label_smoothing: for the main and the auxiliary losses alike.
        device: defaults to :func:`get_device`.
        precision: "fp32", "bf16", "fp16" (CUDA, with a gradient scaler) or "auto"; ``bf16=True`` = "bf16".
        channels_last, compile: speed options for GPUs (``compile`` may name a torch.compile mode, such as
            "reduce-overhead", which adds CUDA graphs). The first step compiles; a line counts its seconds
            (also with ``progress=False``: it can take minutes on a 2-core host).
        max_seconds: the run's training-time budget (evaluation excluded).
        checkpoint: a file to save after each epoch. If it exists, fit refuses to overwrite it unless told:
            ``resume=True`` continues the run saved there (or, with no file yet, starts a new one and says so),
            ``overwrite=True`` starts again and replaces it.
        seed: seeds everything at the start of a fresh run.
        progress: a progress bar, and after the first epoch one line: its time and a forecast for the rest.
        log_every: steps between host synchronisations (progress bar, loss check); default 25 on a
            GPU, 1 on a CPU (where nothing runs ahead of the host anyway).
    """
    _check_settings(epochs=epochs, lr=lr, weight_decay=weight_decay, momentum=momentum,
                    label_smoothing=label_smoothing, aux_weight=aux_weight, max_seconds=max_seconds,
                    log_every=log_every)
    device = torch.device(device) if device is not None else get_device()
    precision = resolve_precision(precision, device, bf16)
    rank, world = _distributed()
    raw = _unwrap(model)
    raw.to(device)
    if channels_last:
        raw.to(memory_format=torch.channels_last)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ValueError("the training loader has no batches: it needs at least one (check the data and batch size).")
    opt = make_optimizer(raw, optimizer, lr, weight_decay, momentum)
    run = _Run(model=model, opt=opt, sched=make_schedule(opt, schedule, epochs * steps_per_epoch),
               scaler=torch.amp.GradScaler("cuda") if precision == "fp16" else None, device=device,
               precision=precision, channels_last=channels_last, aux_weight=aux_weight,
               label_smoothing=label_smoothing, log_every=log_every or (25 if device.type == "cuda" else 1),
               steps_per_epoch=steps_per_epoch, max_seconds=max_seconds,
               schedule={"name": schedule, "total_steps": epochs * steps_per_epoch})
    if _continues_a_run(checkpoint, resume, overwrite, rank):
        history, epoch = _resume(checkpoint, run, epochs, train_loader, rank)
    else:
        history, epoch = _new_run(train_loader, seed, rank)
    if epoch is None:
        return history
    run.last_step = _AfterLastStep(raw)
    if compile:
        run.model = torch.compile(model, mode=compile if isinstance(compile, str) else None)
        run.compiled = True
    used_seconds = sum(history.seconds)  # complete epochs (and cut ones before the last) of this run
    bar = progress_bar(total=(epochs - epoch.index) * steps_per_epoch - epoch.step, desc="training",
                       disable=not progress or rank != 0)
    first_epoch_of_call, steps_before, seconds_before = epoch.index, epoch.step, epoch.seconds
    try:
        while epoch.index < epochs:
            model.train()
            generator = _loader_generator(train_loader)
            epoch.loader_state = generator.get_state() if generator is not None else None
            _train_epoch(run, train_loader, epoch, used_seconds, bar)
            result, eval_seconds = _evaluate(raw, test_loader, precision)
            if history.first_step_seconds is None:
                history.first_step_seconds = run.first_step_seconds
            used_seconds += epoch.seconds
            with _uninterrupted():  # a row is appended whole
                _record(history, epoch, result)
                epoch.recorded = True
            if checkpoint is not None:
                _save(checkpoint, run, raw, epoch, history, train_loader)
                epoch.saved = True
            if epoch.stopped or (max_seconds is not None and used_seconds >= max_seconds):
                bar.total = bar.n  # the budget ended the run: the saved bar reads 100% of what was trained
                break
            trained = epoch.step > steps_before  # not so after a Ctrl-C during evaluation: only evaluation was left
            if epoch.index == first_epoch_of_call and trained and epoch.index + 1 < epochs and progress and rank == 0:
                say(_forecast(run, epoch, epoch.step - steps_before, epoch.seconds - seconds_before, eval_seconds,
                              epochs, used_seconds))
            epoch = _Epoch(epoch.index + 1)
    except KeyboardInterrupt:  # Ctrl-C, Colab's stop button: keep the work done
        bar.close()
        _save_interrupted(checkpoint, run, raw, epoch, history, train_loader)
        raise
    bar.close()
    return history


if __name__ == "__main__":  # python -m utils.train: the command line lives in utils/cli.py
    from .cli import main

    main()
