"""Shared code for the "Going Deeper" GoogLeNet course.

Modules by topic: ``models`` (the GoogLeNet family), ``cost`` (parameters, multiply-adds,
time, the memory of a training step), ``data`` (CIFAR-10, the device loader), ``train`` (the training
loop), ``checkpoint`` (saving and resuming a run), ``cli`` (``python -m utils.train``, the training
recipe as a script), ``stats`` (paired comparisons of two models), ``explain`` (class activation
maps, gradient norms), ``plots``, ``widgets``, ``progress`` (progress bars), ``translate`` (the
Korean edition's catalogs); ``config`` reads smoke mode and the repository path, and holds
:class:`RunTimer`, the run-time line at the end of a lesson.
"""
from .config import REPO_ROOT, SMOKE, RunTimer, pick

__all__ = ["REPO_ROOT", "SMOKE", "RunTimer", "pick", "environment"]


def environment():
    """Print what this notebook runs on: torch, device, data source, smoke mode. Returns the device.

    It also applies the course's figure style (``utils.plots.use_course_style``).
    """
    import platform

    import torch

    from .data import cifar10_source
    from .plots import use_course_style
    from .train import get_device

    use_course_style()
    device = get_device()
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else _cpu_name(platform)
    print(f"torch {torch.__version__} | device: {device.type} ({name}), {torch.get_num_threads()} CPU threads")
    print(f"data: {cifar10_source()}")
    print(f"smoke mode: {'ON (COURSE_SMOKE=1: small data, few epochs)' if SMOKE else 'off (full run)'}")
    return device


def _cpu_name(platform):
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()
