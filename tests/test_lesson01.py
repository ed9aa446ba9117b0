"""Lesson 01 (CNN basics): the pool layouts it compares, the receptive fields and parameter counts it prints,
the design of its section 5, and the committed run's numbers and verdicts as its prose states them."""
import json
import re
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from helpers import printed, source
from torch import nn

from utils.config import REPO_ROOT, RunTimer
from utils.cost import conv_output_size, count_params, receptive_field
from utils.models import GoogLeNet

LESSON = REPO_ROOT / "notebooks" / "01_cnn_basics.ipynb"


@pytest.fixture(scope="module")
def cells():
    return json.loads(LESSON.read_text())["cells"]


def code_cells(cells):
    return [c for c in cells if c["cell_type"] == "code" and source(c).strip()]


def cell_defining(cells, text):
    (found,) = [c for c in cells if text in source(c)]
    return found


def test_googlenet_pools_the_course_pads_torchvision_rounds_up():
    """Section 3: both first pools give Table 1's sizes at every even size, differ at 15, sit one pixel apart."""
    torchvision = pytest.importorskip("torchvision")
    course = GoogLeNet(num_classes=10, aux_logits=False).maxpool1
    theirs = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).maxpool1
    assert (course.kernel_size, course.stride, course.padding, course.ceil_mode) == (3, 2, 1, False)
    assert (theirs.kernel_size, theirs.stride, theirs.padding, theirs.ceil_mode) == (3, 2, 0, True)
    for size, expected in ((112, 56), (56, 28), (28, 14), (14, 7)):
        x = torch.zeros(1, 1, size, size)
        assert course(x).shape[-1] == theirs(x).shape[-1] == expected
        assert conv_output_size(size, 3, 2, padding=1) == conv_output_size(size, 3, 2, ceil_mode=True) == expected
    odd = torch.zeros(1, 1, 15, 15)
    assert (course(odd).shape[-1], theirs(odd).shape[-1]) == (8, 7)
    x = torch.randn(1, 1, 14, 14, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(course(x), theirs(x))
    assert torch.equal(course(x), theirs(F.pad(x, (1, 0, 1, 0), value=float("-inf"))))


def test_receptive_fields_the_lesson_prints(cells):
    """Section 3's three stacks and section 5's stage fields, with the shared utils.cost.receptive_field."""
    stacks = {
        "3x3 conv": [(3, 1, 1)] * 6,
        "3x3 conv + 2x2 pool /2": [(3, 1, 1), (2, 2, 1)] * 6,
        "3x3 conv, dilation 1, 2, 4, ...": [(3, 1, 2 ** level) for level in range(6)],
    }
    expected = {"3x3 conv": [3, 5, 7, 9, 11, 13], "3x3 conv + 2x2 pool /2": [4, 10, 22, 46, 94, 190],
                "3x3 conv, dilation 1, 2, 4, ...": [3, 7, 15, 31, 63, 127]}
    table = printed(cell_defining(cells, "measured == formula")).splitlines()
    for name, layers in stacks.items():
        fields = receptive_field(layers)
        assert (fields[1::2] if "pool" in name else fields) == expected[name]
        (line,) = [line for line in table if line[:32].strip() == name]
        assert line[32:].split() == [*map(str, expected[name]), "True"]   # the formula, and autograd agrees
    assert receptive_field([(5, 1), (2, 2), (3, 1), (2, 2)]) == [5, 6, 10, 12]
    assert "stage-1 value: 6x6 pixels, of one stage-2 value: 12x12 pixels" in printed(
        cell_defining(cells, "stage_fields = receptive_field"))
    # the notebook uses the shared function and no longer defines its own
    assert not any("def receptive_field" in source(c) for c in cells)
    assert "receptive_field" in source(cell_defining(cells, "from utils.cost import"))


def test_parameter_counts_of_section_5(cells):
    namespace = {"OrderedDict": OrderedDict, "nn": nn}
    exec(source(cell_defining(cells, "def make_mlp")), namespace)
    mlp, cnn = count_params(namespace["make_mlp"]()), count_params(namespace["make_cnn"]())
    assert (mlp, cnn, round(mlp / cnn)) == (820_874, 34_602, 24)
    assert "The MLP has 24x as many parameters as the CNN." in printed(cell_defining(cells, "parameter_counts = "))


def test_section_5_trains_fixed_epochs_with_three_seeds(cells):
    """Deterministic training: a fixed number of epochs, no time budget, three seeds per arm (a verdict is possible)."""
    assert not any("max_seconds" in source(c) for c in code_cells(cells))
    training = source(cell_defining(cells, "training_seeds = "))
    assert "epochs = pick(full=6, smoke=2)" in training and "training_seeds = [0, 1, 2]" in training
    reports = [text for c in code_cells(cells) for text in printed(c).split("paired comparison on ")[1:]]
    assert len(reports) == 4
    assert all(text.startswith("3,000 test images, 3 seeds per model") for text in reports)


def test_verdicts_are_the_ones_the_prose_states(cells):
    outputs = "\n".join(printed(c) for c in code_cells(cells))
    assert "verdict: CNN is more accurate than MLP by" in outputs
    assert "verdict: inconclusive: the 95% interval" in outputs
    assert "These runs cannot tell MLP, shuffled and MLP apart." in outputs
    assert "verdict: CNN is more accurate than CNN, shuffled by" in outputs
    assert "verdict: MLP, shuffled is more accurate than CNN, shuffled by" in outputs
    assert "-> the CNN is more accurate on new images" in outputs
    prose = {c["id"]: source(c) for c in cells if c["cell_type"] == "markdown"}
    assert "the verdict names the CNN" in prose["38eca283"]
    assert "The verdict is inconclusive" in prose["191c6293"]


@pytest.mark.parametrize("cell_id", ["38eca283", "191c6293", "210466a6"])
def test_prose_states_only_printed_numbers(cells, cell_id):
    """Every number with a decimal point that section 5's interpretations and the Summary state is printed above."""
    index = next(i for i, c in enumerate(cells) if c["id"] == cell_id)
    above = "\n".join(printed(c) for c in code_cells(cells[:index]))
    for number in re.findall(r"(?<![\w.])\d+\.\d+", source(cells[index])):
        assert number in above, f"{number} is not printed above the cell {cell_id}"


def test_every_time_stated_is_computed(cells):
    """No run time written into the prose; the last code cell prints the run's own time (utils.RunTimer)."""
    markdown = "\n".join(source(c) for c in cells if c["cell_type"] == "markdown")
    assert not re.search(r"\b\d+(?:\.\d+)?\s?(?:min|minutes|s|seconds)\b", markdown)
    last = code_cells(cells)[-1]
    assert source(last).strip() == "timer.report()"
    wall, cpu = RunTimer.parse(printed(last))
    assert wall > 0 and 0 < cpu <= 5.0
    assert "timer = utils.RunTimer()" in source(cell_defining(cells, "from utils.cost import"))
