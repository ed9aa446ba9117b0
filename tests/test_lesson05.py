"""Lesson 05 (vanishing gradients, auxiliary classifiers): every number its hand-drawn diagram states.

images/05_auxiliary_heads.svg is drawn by hand. Each number in its text is computed here from
utils.models.GoogLeNet (and the training loss weight from utils.train.fit), and the diagram may
state no number that is not checked.
"""
import inspect
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
