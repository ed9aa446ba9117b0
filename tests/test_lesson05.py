"""Lesson 05 (vanishing gradients, auxiliary classifiers): the numbers its diagram states, its sources, its verdicts.

images/05_auxiliary_heads.svg is drawn by hand. Each number in its text is computed here from
utils.models.GoogLeNet (and the training loss weight from utils.train.fit), and the diagram may
state no number that is not checked. The lesson's quotes are checked against the words of the papers
(verified by hand against their text), and section 9's verdicts against the committed full-mode outputs:
runs above chance, three seeds, and bounds that the intervals give and the prose repeats.
"""
import inspect
import json
import math
import re
import xml.etree.ElementTree as ElementTree

import pytest
import torch
from torch import nn

from utils.config import REPO_ROOT
from utils.models import GoogLeNet, Inception
from utils.train import fit


def _shapes(model, image_size, names):
    """Output shape (C, H, W) of each named module for one image, in training mode (the heads run)."""
    shapes = {}
    modules = dict(model.named_modules())
    hooks = [modules[name].register_forward_hook(
        lambda module, inputs, output, name=name: shapes.__setitem__(name, tuple(output.shape[1:])))
        for name in names]
    with torch.no_grad():
        model.train()(torch.zeros(1, 3, image_size, image_size))
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.fixture(scope="module")
def diagram_text():
    root = ElementTree.parse(REPO_ROOT / "images" / "05_auxiliary_heads.svg").getroot()
    return " ".join(element.text or "" for element in root.iter() if element.tag.endswith("text"))


@pytest.fixture(scope="module")
def imagenet_model():
    torch.manual_seed(0)
    return GoogLeNet(num_classes=1000)


@pytest.fixture(scope="module")
def computed(imagenet_model):
    model = imagenet_model
    names = ("inception4a", "inception4d", "aux1.pool", "aux2.pool", "aux1.conv", "aux2.conv", "aux1.fc1", "aux2.fc1")
    imagenet = _shapes(model, 224, names)
    cifar = _shapes(GoogLeNet(num_classes=10, stem="cifar", width=0.0625), 32,
                    ("inception4a", "inception4d", "aux1.pool", "aux2.pool"))
    inceptions = [m for m in model.modules() if isinstance(m, Inception)]
    # Layers with weights along the deepest path: the stem's three convolutions, two per Inception module
    # (a 1x1 reduction, then the 3x3 or 5x5), and the final linear layer.
    stem_convs = [model.conv1, model.conv2, model.conv3]
    depth = len(stem_convs) + 2 * len(inceptions) + 1
    return {"imagenet": imagenet, "cifar": cifar, "inceptions": len(inceptions), "depth": depth}


def test_heads_sit_on_4a_and_4d_with_the_papers_layers(imagenet_model, computed):
    shapes = computed["imagenet"]
    assert shapes["inception4a"] == (512, 14, 14)
    assert shapes["inception4d"] == (528, 14, 14)
    for head in (imagenet_model.aux1, imagenet_model.aux2):
        assert isinstance(head.pool, nn.AvgPool2d)
        assert (head.pool.kernel_size, head.pool.stride) == (5, 3)
        assert head.conv.conv.kernel_size == (1, 1) and head.conv.conv.out_channels == 128
        assert head.fc1.out_features == 1024
        assert head.dropout.p == pytest.approx(0.7)
        assert head.fc2.out_features == 1000
    for name in ("aux1", "aux2"):
        assert shapes[f"{name}.pool"][1:] == (4, 4)          # 14x14 -> 4x4
        assert shapes[f"{name}.conv"] == (128, 4, 4)
        assert shapes[f"{name}.fc1"] == (1024,)
    assert imagenet_model.dropout.p == pytest.approx(0.4)
    assert computed["inceptions"] == 9
    assert computed["depth"] == 22


def test_cifar_stem_maps(computed):
    shapes = computed["cifar"]
    assert shapes["inception4a"][1:] == shapes["inception4d"][1:] == (16, 16)
    assert shapes["aux1.pool"][1:] == shapes["aux2.pool"][1:] == (4, 4)


def test_aux_loss_weight_is_the_papers():
    assert inspect.signature(fit).parameters["aux_weight"].default == 0.3


def test_diagram_states_the_computed_numbers(diagram_text, computed):
    """Every number in the diagram's text is one of the computed ones, and each computed one is there."""
    imagenet, cifar = computed["imagenet"], computed["cifar"]
    c4a, h4a, w4a = imagenet["inception4a"]
    c4d, h4d, w4d = imagenet["inception4d"]
    pooled = imagenet["aux1.pool"][1]
    expected_phrases = [
        f"4a: {h4a}x{w4a}x{c4a}",
        f"4d: {h4d}x{w4d}x{c4d}",
        "average pool 5x5, stride 3",
        f"{h4a}x{w4a} → {pooled}x{pooled}",
        f"1x1 conv, {imagenet['aux1.conv'][0]} filters + ReLU",
        f"FC {imagenet['aux1.fc1'][0]} + ReLU",
        "dropout 70%",
        "40%",
        "aux loss × 0.3",
        "= main + 0.3 · aux1 + 0.3 · aux2",
        "weight 1",
        f"{computed['depth']} layers with weights",
        "nine Inception modules",
        "224x224 ImageNet input",
        f"(32x32 images), 4a and 4d see {cifar['inception4a'][1]}x{cifar['inception4a'][2]} maps, also pooled to "
        f"{cifar['aux1.pool'][1]}x{cifar['aux1.pool'][2]}",
        "auxiliary classifier 1 (on 4a)",
        "auxiliary classifier 2 (on 4d)",
    ]
    for phrase in expected_phrases:
        assert phrase in diagram_text, f"{phrase!r} missing from the diagram"
    # No number in the diagram that the phrases above do not check.
    number = re.compile(r"\d+(?:\.\d+)?")
    checked = set(number.findall(" ".join(expected_phrases)))
    unchecked = [n for n in number.findall(diagram_text) if n not in checked]
    assert not unchecked, f"numbers in the diagram that no test computes: {unchecked}"


# ---------------------------------------------------------------------------------------------------------------
# The lesson's text and its committed (full-mode) outputs: the sources it quotes, the initialization it attributes
# to Glorot & Bengio, and section 9's verdicts, which must come from runs that learned.

LESSON = REPO_ROOT / "notebooks" / "05_vanishing_gradients_auxiliary_classifiers.ipynb"


@pytest.fixture(scope="module")
def lesson():
    return json.loads(LESSON.read_text())


def _flat(text):
    return " ".join(text.replace("> ", " ").split())


@pytest.fixture(scope="module")
def prose(lesson):
    return _flat("\n".join("".join(c["source"]) for c in lesson["cells"] if c["cell_type"] == "markdown"))


def _printed(lesson, starts_with):
    """The stream output of the code cell whose source starts with `starts_with`."""
    cell = next(c for c in lesson["cells"] if c["cell_type"] == "code" and "".join(c["source"]).startswith(starts_with))
    return "".join("".join(o.get("text", "")) for o in cell["outputs"] if o["output_type"] == "stream")


def test_pytorch_default_is_glorot_and_bengios_standard_initialization():
    """U[-1/sqrt(n), 1/sqrt(n)] with n = fan_in, so n Var(W) = 1/3 (their eq. 1 and 15); biases from the same range."""
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 64, 3)
    n = 64 * 9
    bound = 1 / n ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.99 * bound
    assert n * conv.weight.var().item() == pytest.approx(1 / 3, rel=0.02)
    assert conv.bias.abs().max() <= bound and conv.bias.abs().max() > 0.9 * bound


@pytest.mark.parametrize("quote", [
    # Szegedy et al. 2014, section 5, and Inception-v3 (arXiv:1512.00567), section 4
    "increase the gradient signal that gets propagated back",
    "by combating the vanishing gradient problem in very deep networks",
    "The removal of the lower auxiliary branch did not have any adverse effect on the final quality of the network.",
    # Glorot & Bengio 2010, sections 2.3, 4.2.1, 4.3
    "commonly used heuristic",
    "The standard initialization that we have used (eq.1) gives rise to variance with the following property: "
    "nVar[W] = 1/3",
    "a dense artificial neural network using symmetric activation function f with unit derivative at 0 "
    "(i.e. f'(0) = 1)",
    "even when the back-propagated gradients become smaller (standard initialization), the variance of the weights "
    "gradients is roughly constant across layers",
    # Ioffe & Szegedy 2015, sections 3.2, 3.3, 4.2.2
    "we jointly normalize all the activations in a mini-batch, over all locations",
    "backpropagation through a layer is unaffected by the scale of its parameters",
    "BN-x5-Sigmoid achieves the accuracy of 69.8%. Without Batch Normalization, Inception with sigmoid never achieves "
    "better than 1/1000 accuracy.",
    # He et al. 2015 (arXiv:1512.03385), sections 3.2 and 4.1; He et al. 2016 (arXiv:1603.05027), section 2
    "We argue that this optimization difficulty is unlikely to be caused by vanishing gradients.",
    "We adopt the second nonlinearity after the addition",
    "the gradient of a layer does not vanish even when the weights are arbitrarily small",
])
def test_lesson_quotes_its_sources(prose, quote):
    assert quote in prose


def test_no_false_attribution_and_no_null_result_claimed(prose):
    assert "sigmoid with Xavier initialization (Glorot" not in prose
    assert "a clear null result" not in prose.lower()


def test_sigmoid_with_batch_norm_leaves_chance_as_the_prose_says(lesson):
    printed = _printed(lesson, "def chance_ceiling(")
    assert "plain     : " in printed and "batch norm: " in printed
    plain, batch_norm = (line for line in printed.splitlines() if line.startswith("sigmoid, default init"))
    assert plain.endswith("not above the chance ceiling") and batch_norm.endswith("-> above the chance ceiling")
    assert "chance ceiling for 500 test images: 14.4%" in printed


def test_chance_ceiling_is_the_binomial_quantile(lesson):
    """0.1% of random guessers on 500 images score above it."""
    from scipy import stats

    ceiling = stats.binom.ppf(0.999, 500, 0.1) / 500
    assert f"{ceiling:.1%}" == "14.4%"
    assert stats.binom.sf(ceiling * 500, 500, 0.1) <= 0.001


def test_section_9_compares_runs_that_learned_with_three_seeds(lesson):
    printed = _printed(lesson, "lowest = min(run")
    lowest = float(re.search(r"lowest test accuracy of the 9 runs: (\d+\.\d)%", printed).group(1))
    ceiling = float(re.search(r"chance ceiling for 500 test images: (\d+\.\d)%", printed).group(1))
    assert lowest > ceiling
    assert printed.count("3 seeds per model") == 2


def test_verdicts_state_the_bound_the_intervals_give_and_the_prose_repeats_it(lesson, prose):
    intervals = re.findall(r"95% interval \[([-+]\d+\.\d), ([-+]\d+\.\d)\] resampling seeds and test images",
                           _printed(lesson, "lowest = min(run"))
    bounds = [int(b) for b in re.findall(r"no effect larger than about (\d+) points either way",
                                         _printed(lesson, "def early_training_gap("))]
    assert len(intervals) == len(bounds) == 2
    for (low, high), bound in zip(intervals, bounds):
        farther = max(abs(float(low)), abs(float(high)))
        assert bound in (math.ceil(farther - 0.05), math.ceil(farther + 0.05))
    stated = {int(n) for n in re.findall(r"larger than about (\d+) points", prose)}
    assert stated == set(bounds)


def test_section_9_prompt_states_the_measured_factor(lesson, prose):
    """The prompt before section 9 quotes section 8's factor for the member it trains (the batch-norm one)."""
    printed = _printed(lesson, "EARLY = (")
    batch_norm = printed.split("batch norm:")[1]
    factor = re.search(r"at conv1: total / main = (\d+\.\d\d)", batch_norm).group(1)
    assert f"batch-norm member's `conv1` by only {factor}" in prose
