"""The course's trained checkpoint (weights/): it loads, and its recorded accuracy is what it really scores."""
import json
import os

import pytest
import torch

from utils.config import REPO_ROOT
from utils.models import COURSE_CHECKPOINT, course_googlenet

SUMMARY = json.loads((REPO_ROOT / COURSE_CHECKPOINT).with_suffix(".json").read_text())


def test_the_checkpoint_holds_the_run_its_summary_describes(capsys):
    model = course_googlenet()
    assert not model.training and model.aux1 is None
    assert sum(p.numel() for p in model.parameters()) == 372_578
    state = torch.load(REPO_ROOT / COURSE_CHECKPOINT, map_location="cpu", weights_only=True)
    assert state["epoch"] == SUMMARY["epochs_done"] == SUMMARY["config"]["epochs"] == 6
    assert state["history"]["test_acc"] == SUMMARY["history"]["test_acc"]
    assert state["history"]["test_acc"][-1] == SUMMARY["final_test_accuracy"]
    printed = capsys.readouterr().out
    assert f"test accuracy {SUMMARY['final_test_accuracy']:.1%}" in printed and "372,578 parameters" in printed


@pytest.mark.skipif(not os.environ.get("COURSE_DATA_DIR"), reason="needs the offline CIFAR-10 copy in "
                    "COURSE_DATA_DIR (the accuracy was recorded on it; tests never download)")
def test_the_recorded_accuracy_is_what_the_checkpoint_scores_on_the_test_images():
    from utils.data import DeviceLoader, cifar10_subset
    from utils.train import evaluate

    test = DeviceLoader(*cifar10_subset("test"), batch_size=500)  # all 10,000, as `python -m utils.train` tests
    result = evaluate(course_googlenet(), test)
    assert len(result["labels"]) == 10_000
    assert result["accuracy"] == SUMMARY["final_test_accuracy"]
