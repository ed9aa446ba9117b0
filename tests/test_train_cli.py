"""`python -m utils.train`: the recipe as a script, under torchrun with 2 processes, and resumed after a kill."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from utils.config import REPO_ROOT
from utils.data import CIFAR10_CLASSES

SMALL = ["--model", "googlenet", "--width", "0.125", "--batch-size", "8", "--per-class", "6", "--test-per-class", "2",
         "--lr", "0.05", "--device", "cpu", "--no-progress"]


@pytest.fixture
def tiny_cifar(tmp_path):
    """A CIFAR-10 look-alike in ImageFolder layout: 8 training and 2 test images per class."""
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 8), ("test", 2)):
        for label, name in enumerate(CIFAR10_CLASSES):
            folder = tmp_path / "cifar" / split / name
            folder.mkdir(parents=True)
            for k in range(count):
                pixels = torch.randint(0, 256, (32, 32, 3), generator=generator, dtype=torch.uint8)
                pixels[..., label % 3] = 25 * label  # something to learn
                Image.fromarray(pixels.numpy()).save(folder / f"{k:04d}.png")
    return tmp_path / "cifar"


def _environment(data_dir):
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_SMOKE", "WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(COURSE_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    return env


def _train(args, data_dir, torchrun=None, timeout=300):
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(torchrun)]
                if torchrun else [sys.executable])
    return subprocess.run([*launcher, "-m", "utils.train", *args], cwd=REPO_ROOT, env=_environment(data_dir),
                          capture_output=True, text=True, timeout=timeout)


def test_two_processes_on_gloo_hold_identical_parameters(tiny_cifar, tmp_path):
    run = _train([*SMALL, "--epochs", "2", "--checkpoint", str(tmp_path / "ddp.pt")], tiny_cifar, torchrun=2)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads((tmp_path / "ddp.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs_done"] == 2
    first, second = summary["parameter_hash_per_rank"]
    assert first == second  # each process trained on its own half of the data, yet the weights agree
    assert "x 2 process(es)" in run.stdout and 0 <= summary["final_test_accuracy"] <= 1


def test_a_killed_run_resumes_exactly(tiny_cifar, tmp_path):
    args = [*SMALL, "--epochs", "3"]
    straight = _train([*args, "--checkpoint", str(tmp_path / "straight.pt")], tiny_cifar)
    assert straight.returncode == 0, straight.stderr
    expected = json.loads((tmp_path / "straight.json").read_text())

    checkpoint = tmp_path / "killed.pt"
    process = subprocess.Popen([sys.executable, "-m", "utils.train", *args, "--checkpoint", str(checkpoint)],
                               cwd=REPO_ROOT, env=_environment(tiny_cifar), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # no chance to clean up, as when Colab drops a runtime
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    epoch_at_kill = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= epoch_at_kill < 3

    resumed = _train([*args, "--checkpoint", str(checkpoint), "--resume"], tiny_cifar)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "killed.json").read_text())
    assert summary["parameter_hash_per_rank"] == expected["parameter_hash_per_rank"]
    assert summary["history"]["train_loss"] == expected["history"]["train_loss"]
    assert summary["history"]["test_acc"] == expected["history"]["test_acc"]
