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


def _lesson_text():
    return "\n".join("".join(cell["source"]) for cell in json.loads(LESSON.read_text())["cells"])


def test_the_reduced_module_adds_three_one_by_one_convolutions():
    """'the naive one plus three 1x1 convolutions': the fourth 1x1 of (b) is the 1x1 branch that (a) has too."""
    from torch import nn

    from utils.models import Inception, NaiveInception

    def one_by_ones(module):
        return {name for name, layer in module.named_modules()
                if isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1)}

    naive, reduced = NaiveInception(192, 64, 128, 32), Inception(192, *PAPER_CHANNELS["3a"])
    assert one_by_ones(naive) == {"branch1.conv"}
    assert len(one_by_ones(reduced)) == 4
    assert sorted(one_by_ones(reduced) - one_by_ones(naive)) == ["branch2.0.conv", "branch3.0.conv", "branch4.1.conv"]
    text = _lesson_text()
    flat = " ".join(text.split())
    assert "plus three 1x1 convolutions" in flat
    assert "plus four 1x1" not in flat and "four more 1x1" not in flat


def test_lesson_quotes_the_bn_appendix_and_inception_v3():
    """Checked against the papers' text: the BN paper's appendix ('Variant of the Inception Model Used') and
    Inception-v3, section 1. The lesson quotes them across two lines of a Markdown quote."""
    text = " ".join(_lesson_text().replace("\n> ", " ").split())
    assert ('"Our model employed separable convolution with depth multiplier 8 on the first convolutional layer. '
            'This reduces the computational cost while increasing the memory consumption at training time."') in text
    assert ('"For example, GoogleNet employed only 5 million parameters, which represented a 12× reduction with '
            'respect to its predecessor AlexNet, which used 60 million parameters."') in text
    assert round(60e6 / 5e6) == 12


def test_onecycle_cycles_adamw_beta1_as_the_lesson_states():
    """The setup line: lr from peak/25 up to the peak at 30% of the steps, then to almost zero; beta1 0.95 -> 0.85
    -> 0.95 (OneCycleLR's cycle_momentum default), beta2 0.999, for the optimizer and schedule fit builds."""
    from torch import nn

    from utils.train import make_optimizer, make_schedule

    total_steps = 2 * 31                                  # 2 epochs of 1,000 images in batches of 32 (drop_last)
    optimizer = make_optimizer(nn.Linear(1, 1), "adamw", 2e-3, 5e-4)
    schedule = make_schedule(optimizer, "onecycle", total_steps)
    lrs, beta1s = [], []
    for _ in range(total_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        beta1s.append(optimizer.param_groups[0]["betas"][0])
        optimizer.step()
        schedule.step()
    peak = max(range(total_steps), key=lrs.__getitem__)
    assert lrs[0] == pytest.approx(2e-3 / 25) and lrs[peak] == pytest.approx(2e-3, rel=1e-3)
    assert peak == round(0.3 * total_steps) - 1 and lrs[-1] < 1e-8
    assert beta1s[0] == pytest.approx(0.95) and beta1s[peak] == pytest.approx(0.85, abs=1e-4)
    assert beta1s[-1] == pytest.approx(0.95) and min(beta1s) == beta1s[peak]
    assert optimizer.param_groups[0]["betas"][1] == 0.999


def test_section_7_prose_states_the_committed_outputs():
    """The verdicts of section 7 are worded from the committed full run: every decimal number and interval in the
    Markdown that reads them appears in the outputs of section 7's cells (the runs are deterministic: fixed seeds and
    epochs, one thread), and the verdicts it names are the ones compare_models printed."""
    import re

    cells = json.loads(LESSON.read_text())["cells"]
    start = next(k for k, cell in enumerate(cells) if "".join(cell["source"]).startswith("## 7."))
    end = next(k for k, cell in enumerate(cells) if "".join(cell["source"]).startswith("## 8."))
    outputs = "\n".join("".join(output.get("text", "")) for cell in cells[start:end] if cell["cell_type"] == "code"
                        for output in cell.get("outputs", []))
    reading = next("".join(cell["source"]) for cell in cells[start:end]
                   if "".join(cell["source"]).startswith("**First, chance.**"))
    reading = reading.split("### Time per training step")[0]
    for interval in re.findall(r"\[[-+]\d+\.\d, [-+]\d+\.\d\]", reading):
        assert interval in outputs, interval
    for number in re.findall(r"\d+\.\d", reading):
        assert number in outputs, number
    verdicts = re.findall(r"verdict: (\w+)", outputs)
    assert len(verdicts) == 2
    assert reading.count(": inconclusive.**") == verdicts.count("inconclusive") == 2
