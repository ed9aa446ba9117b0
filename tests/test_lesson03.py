"""Lesson 03 (the Inception module): the numbers its prose states, computed the way the lesson computes them.

The separable conv1 row itself (2,712 weights, 34,019,328 multiply-adds) is pinned in tests/test_models.py.
"""
import json

import pytest
import torch

from utils.config import REPO_ROOT
from utils.cost import PAPER_TABLE1, conv_params, count_params, googlenet_table, measure_macs
from utils.models import PAPER_CHANNELS, GoogLeNet

LESSON = REPO_ROOT / "notebooks" / "03_inception_module.ipynb"


def block_weights(row, in_channels):
    """Weights (no biases) of a reduced Inception block, as the lesson's section 5 writes them."""
    c1, r3, c3, r5, c5, proj = row
    return in_channels * (c1 + r3 + r5 + proj) + 9 * r3 * c3 + 25 * r5 * c5


@pytest.fixture(scope="module")
def separable():
    return GoogLeNet(aux_logits=False, conv1="separable").eval()


def test_separable_total_is_consistent_with_the_budget(separable):
    """'about 1,499M': the whole network with the separable conv1, and the sum of its recomputed ops column."""
    macs = measure_macs(separable, torch.zeros(1, 3, 224, 224))
    assert macs == sum(row["ops"] for row in googlenet_table(separable)) == 1_498_677_248
    assert abs(macs / 1.5e9 - 1) < 0.002
    assert sum(paper_M for _, paper_M in PAPER_TABLE1.values()) == 1502


def test_alexnet_ratio_is_not_twelve(separable):
    params = count_params(separable)
    assert params == 6_991_856
    assert round(60e6 / params, 1) == 8.6
    assert round(60e6 / (params - count_params(separable.fc)), 1) == 10.1


def test_5a_hypothesis_928_input_channels():
    """A hypothesis the lesson marks as such: 928 inputs make the 5a row fit exactly in units of 1024."""
    weights = block_weights(PAPER_CHANNELS["5a"], 928)
    assert weights == 1_097_728 == 1072 * 1024
    assert round(weights * 7 * 7 / 1e6) == PAPER_TABLE1["5a"][1] == 54
    assert block_weights(PAPER_CHANNELS["5a"], 832) == 1_042_432   # what 4e hands on


@pytest.mark.parametrize("c_in, middle, c_out, pair_is_smaller", [(16, 29, 32, True), (16, 32, 32, False),
                                                                  (64, 64, 16, False), (64, 35, 16, True)])
def test_exercise_3_condition(c_in, middle, c_out, pair_is_smaller):
    """Two 3x3 beat one 5x5 on weights exactly when m < 25 Cin Cout / (9 (Cin + Cout))."""
    pair = conv_params(c_in, middle, 3, bias=False) + conv_params(middle, c_out, 3, bias=False)
    single = conv_params(c_in, c_out, 5, bias=False)
    assert (pair < single) == pair_is_smaller == (middle < 25 * c_in * c_out / (9 * (c_in + c_out)))


def test_lesson_states_the_condition_and_the_xception_quote():
    text = "\n".join("".join(cell["source"]) for cell in json.loads(LESSON.read_text())["cells"])
    assert "m < \\frac{25\\, C_{in} C_{out}}{9\\,(C_{in} + C_{out})}" in text
    assert ("Later, a depthwise separable convolution was used as the first layer of Inception V1 and "
            "Inception V2 [20, 7].") in text
    assert "keep a\ncomputational budget of 1.5 billion multiply-adds at inference time" in text
