"""Lesson 04 (global average pooling): the head costs its prose states and its hand-drawn diagram shows.

The class activation map identity the lesson checks is tested with utils.explain (tests/test_explain.py).
"""
import json
import re
import xml.etree.ElementTree as ElementTree

import pytest
import torch
from torch import nn

from utils.config import REPO_ROOT
from utils.cost import conv_params, count_params, receptive_field
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


def test_mapping_resolution_the_lesson_prints():
    """Section 7: GoogLeNet's last map is 7x7 for a 224x224 image; cut after inception 4e (Zhou et al.'s
    GoogLeNet-GAP) it is 14x14. Shapes only, on the meta device."""
    with torch.device("meta"):
        model = GoogLeNet(num_classes=1000, aux_logits=False, batch_norm=True).eval()
    shapes = {}
    for block in ("inception4e", "inception5b"):
        getattr(model, block).register_forward_hook(
            lambda module, inputs, output, block=block: shapes.__setitem__(block, tuple(output.shape[1:])))
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224, device="meta"))
    assert shapes == {"inception4e": (832, 14, 14), "inception5b": (1024, 7, 7)}


def test_receptive_field_of_the_lesson_backbone():
    """Section 5: the largest path of the small backbone (3x3 stem, 2x2 pool, 5x5, 2x2 pool, 5x5, 5x5)."""
    largest_path = [(3, 1), (2, 2), (1, 1), (5, 1), (2, 2), (1, 1), (5, 1), (1, 1), (5, 1)]
    assert receptive_field(largest_path, jump=True)[-1] == (46, 4)


def test_network_in_network_numbers_are_quoted_and_used_alike():
    """Section 9 quotes Lin et al. (2013, section 4.6) and computes with the same three error rates."""
    cells = json.loads((REPO_ROOT / "notebooks" / "04_global_average_pooling.ipynb").read_text())["cells"]
    markdown = " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    code = " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    quote = ("This CNN model with fully connected layer can only achieve the error rate of 17.56%. When dropout is "
             "added we achieve a similar performance (15.99%) as reported by Hinton et al. [5]. By replacing the "
             "fully connected layer with global average pooling in this model, we obtain the error rate of 16.46%")
    assert " ".join(quote.split()) in " ".join(markdown.split())
    assert 'nin_error = {"FC": 17.56, "FC + dropout": 15.99, "GAP": 16.46}' in code
