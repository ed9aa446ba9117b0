"""Lesson 04 (global average pooling): the head costs its prose states and its hand-drawn diagram shows.

The class activation map identity the lesson checks is tested with utils.explain (tests/test_explain.py).
"""
import re
import xml.etree.ElementTree as ElementTree

import pytest
import torch
from torch import nn

from utils.config import REPO_ROOT
from utils.cost import conv_params, count_params
from utils.models import GoogLeNet, count_parameters


@pytest.fixture(scope="module")
def googlenet_heads():
    """The head costs on GoogLeNet's last feature map, computed the way the lesson computes them."""
    model = GoogLeNet(num_classes=1000, aux_logits=False).eval()
    with torch.no_grad():
        channels, height, width = model.features(torch.zeros(1, 3, 224, 224)).shape[1:]
    return {
        "shape": (channels, height, width),
        "fc": conv_params(channels, 1000, kernel_size=height),
        "gap": conv_params(channels, 1000, kernel_size=1),
        "model_fc": count_params(model.fc),
        "whole": count_parameters(model),
        "flat_linear": count_params(nn.Linear(channels * height * width, 1000, device="meta")),
    }


def test_googlenet_head_costs(googlenet_heads):
    assert googlenet_heads["shape"] == (1024, 7, 7)
    assert googlenet_heads["fc"] == googlenet_heads["flat_linear"] == 50_176 * 1000 + 1000 == 50_177_000
    assert googlenet_heads["gap"] == googlenet_heads["model_fc"] == 1_025_000
    assert googlenet_heads["whole"] == 6_998_552


def test_diagram_states_the_computed_numbers(googlenet_heads):
    """images/04_gap_vs_fc_head.svg is drawn by hand: every number in it must be the computed one."""
    root = ElementTree.parse(REPO_ROOT / "images" / "04_gap_vs_fc_head.svg").getroot()
    text = " ".join(element.text or "" for element in root.iter() if element.tag.endswith("text"))
    fc, gap, whole = googlenet_heads["fc"], googlenet_heads["gap"], googlenet_heads["whole"]
    for number in (fc, gap, whole, 50_176, 1_024):
        assert f"{number:,}" in text, f"{number:,} missing from the diagram"
    assert f"{round(fc / gap)}x fewer" in text
    assert re.search(r"over (\d+)x", text).group(1) == str(int(fc / whole))
    assert "7 x 7 x 1024" in text
