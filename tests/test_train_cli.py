"""`python -m utils.train`: the recipe as a script, under torchrun with 2 processes, and resumed after a kill."""
import errno
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

import utils.train as train
from utils import cli
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


def _ctrl_c_as_in_a_terminal():
    """In the child, before it starts Python: SIGINT at its default, as in a terminal. A command started in the
    background by a shell script (`.ci/run &`) ignores SIGINT, every process under it inherits that, and Python
    then never raises KeyboardInterrupt: the run would finish as if Ctrl-C had not been pressed."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_a_killed_or_interrupted_run_resumes_exactly(tiny_cifar, tmp_path, how):
    """SIGKILL: no chance to clean up, as when Colab drops a runtime; the last epoch's checkpoint resumes.
    SIGINT (Ctrl-C): the run saves the steps done so far, says how to resume, and exits with status 130."""
    args = [*SMALL, "--epochs", "3"]
    straight = _train([*args, "--checkpoint", str(tmp_path / "straight.pt")], tiny_cifar)
    assert straight.returncode == 0, straight.stderr
    expected = json.loads((tmp_path / "straight.json").read_text())

    checkpoint = tmp_path / "killed.pt"
    for _ in range(3):  # the signal goes once the first epoch is saved, while the run has two epochs to go
        checkpoint.unlink(missing_ok=True)
        process = subprocess.Popen([sys.executable, "-m", "utils.train", *args, "--checkpoint", str(checkpoint)],
                                   cwd=REPO_ROOT, env=_environment(tiny_cifar), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_as_in_a_terminal)
        deadline = time.time() + 240
        while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.02)
        if process.poll() is None:
            process.send_signal(getattr(signal, how))
            out, err = process.communicate()
            break
        process.communicate()  # it finished first (this test was kept off the CPU for seconds): try again
    else:
        pytest.fail("three runs of 3 epochs each finished before this test could signal them: a machine this busy "
                    "cannot run this test")
    if how == "SIGKILL":
        assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    else:
        assert process.returncode == 130, "the run ended before it could be interrupted\n" + out + err
        assert err == "python -m utils.train: interrupted\n"
        assert f": saved in {checkpoint}; run again with resume=True (command line: --resume) to continue" in out
    saved = torch.load(checkpoint, weights_only=True)
    assert 1 <= saved["epoch"] + (saved["step"] > 0) <= 3 and (saved["epoch"], saved["step"]) != (3, 0)

    resumed = _train([*args, "--checkpoint", str(checkpoint), "--resume"], tiny_cifar)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "killed.json").read_text())
    assert summary["parameter_hash_per_rank"] == expected["parameter_hash_per_rank"]
    assert summary["history"]["train_loss"] == expected["history"]["train_loss"]
    assert summary["history"]["test_acc"] == expected["history"]["test_acc"]


# A careless user's command lines: each ends with one clear line on stderr and the right exit status.

def _main(args, capsys):
    """Run the command line in this process: (exit status, stdout, stderr)."""
    try:
        cli.main(args)
        status = 0
    except SystemExit as stopped:
        status = stopped.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(("args", "message"), [
    (["--epochs", "-1"], "argument --epochs: must be a whole number >= 1 (got -1)"),
    (["--epochs", "0"], "argument --epochs: must be a whole number >= 1 (got 0)"),
    (["--lr", "nan"], "argument --lr: must be a finite number >= 0, such as 0.05 (got nan)"),
    (["--weight-decay", "-1"], "argument --weight-decay: must be a finite number >= 0, such as 5e-4 (got -1)"),
    (["--momentum", "1"], "argument --momentum: must be a number from 0 up to (not including) 1, such as 0.9 (got 1)"),
    (["--label-smoothing", "1.5"], "argument --label-smoothing: must be a number from 0 up to (not including) 1"),
    (["--aux-weight", "inf"], "argument --aux-weight: must be a finite number >= 0, such as 0.3 (got inf)"),
    (["--batch-size", "0"], "argument --batch-size: must be a whole number > 0 (got 0)"),
    (["--per-class", "-5"], "argument --per-class: must be a whole number > 0 (got -5)"),
    (["--max-seconds", "0"], "argument --max-seconds: must be a number of seconds > 0, or None for no budget (got 0)"),
    (["--epochs", "2.5"], "argument --epochs: invalid whole number value: '2.5'"),
    (["--resume", "--overwrite"], "argument --overwrite: not allowed with argument --resume"),
])
def test_a_bad_option_ends_with_one_line_and_status_2(args, message, tmp_path, capsys):
    status, out, err = _main([*SMALL, *args, "--checkpoint", str(tmp_path / "run.pt")], capsys)
    assert status == 2 and out == ""
    assert err.splitlines()[-1].startswith(f"python -m utils.train: error: {message}")
    assert len(err.splitlines()) == 2 and "Traceback" not in err  # a one-line usage, then the error
    assert not (tmp_path / "run.pt").exists()


def test_no_command_overwrites_a_checkpoint_unasked_or_resumes_what_is_not_there(tiny_cifar, tmp_path, capsys,
                                                                                  monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tiny_cifar))
    path = tmp_path / "run.pt"
    run = [*SMALL, "--epochs", "1", "--checkpoint", str(path)]
    status, out, err = _main([*run, "--resume"], capsys)
    assert status == 2 and err == (
        f"python -m utils.train: error: --resume: there is no checkpoint at {path} to continue. Leave out --resume "
        "to start a new run there, or point --checkpoint at the file of the run to continue.\n")
    assert _main(run, capsys)[0] == 0
    saved = path.read_bytes()
    status, out, err = _main(run, capsys)  # yesterday's command, run again
    assert status == 2 and err == (
        f"python -m utils.train: error: {path} already holds a checkpoint, and this new run would overwrite it. Add "
        "--resume to continue the run saved there, or --overwrite to start again and replace it (or choose another "
        "--checkpoint).\n")
    assert path.read_bytes() == saved
    status, out, err = _main([*run, "--resume"], capsys)
    assert status == 0 and f"the run in {path} has finished its 1 epochs: nothing to train" in out
    status, out, err = _main([*run, "--overwrite", "--seed", "1"], capsys)
    assert status == 0 and path.read_bytes() != saved


def test_a_checkpoint_of_another_run_or_a_broken_one_is_named_with_the_flags(tiny_cifar, tmp_path, capsys,
                                                                            monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tiny_cifar))
    path = tmp_path / "run.pt"
    run = [*SMALL, "--epochs", "1", "--checkpoint", str(path)]
    assert _main(run, capsys)[0] == 0
    status, out, err = _main([*run, "--width", "0.25", "--resume"], capsys)
    assert status == 2 and err.startswith(f"python -m utils.train: error: {path} was saved from a GoogLeNet with ")
    assert err.endswith("or point --checkpoint at a new file to start fresh. (The model's options: --model, "
                        "--width, --stem, --no-batch-norm, --no-aux.)\n")
    status, out, err = _main([*SMALL, "--epochs", "2", "--checkpoint", str(path), "--resume"], capsys)
    assert status == 2 and "cannot be stretched mid-run" in err and err.endswith("or --overwrite).\n")
    path.write_bytes(path.read_bytes()[:3000])  # a save cut short
    status, out, err = _main([*run, "--resume"], capsys)
    assert status == 2 and err == (
        f"python -m utils.train: error: {path} cannot be read as a checkpoint (RuntimeError); it may have been cut "
        "short by an interrupted save, or it is not a checkpoint at all. Delete it to start fresh, or point "
        "--checkpoint at another file.\n")
    assert "checkpoint=" not in err
    with pytest.raises(train.CheckpointError):  # on request, Python's own error and its traceback
        cli.main([*run, "--resume", "--traceback"])


def test_a_full_disk_ends_with_status_1_and_keeps_the_last_checkpoint(tiny_cifar, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tiny_cifar))
    path = tmp_path / "run.pt"
    assert _main([*SMALL, "--epochs", "2", "--schedule", "constant", "--checkpoint", str(path)], capsys)[0] == 0

    def disk_full(obj, f):
        pathlib.Path(f).write_bytes(b"PK\x03\x04 part of a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    status, out, err = _main([*SMALL, "--epochs", "3", "--schedule", "constant", "--checkpoint", str(path),
                              "--resume"], capsys)
    monkeypatch.undo()
    assert status == 1 and err.startswith(f"python -m utils.train: error: [Errno 28] {path} could not be saved: No "
                                          "space left on device. Any checkpoint saved there before is kept")
    assert torch.load(path, weights_only=True)["epoch"] == 2


def test_a_diverged_run_ends_with_status_1():
    status, message = cli._failure(train.TrainingDiverged("the training loss became nan in epoch 1"))
    assert (status, message) == (1, "error: the training loss became nan in epoch 1")
    assert cli._failure(KeyboardInterrupt()) == (130, "interrupted")
    assert cli._failure(ZeroDivisionError()) is None  # not an error the course expects: the traceback shows it
