"""The GoogLeNet family: parameter counts pinned to the architecture, shapes, modes, errors."""
import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.cost import measure_macs
from utils.models import (PAPER_CHANNELS, AuxClassifier, GoogLeNet, Inception, NaiveInception, SmallInceptionNet,
                          count_parameters, from_torchvision)


@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return GoogLeNet(aux_logits=False).eval()


def test_paper_parameter_counts(paper_model):
    assert count_parameters(paper_model) == 6_998_552
    assert count_parameters(GoogLeNet(aux_logits=True)) == 13_378_280


def test_torchvision_layout_parameter_count():
    tv = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    assert count_parameters(tv) == 6_624_904
    assert count_parameters(from_torchvision(tv.state_dict())) == 6_624_904


def test_paper_multiply_adds_at_224(paper_model):
    assert measure_macs(paper_model, torch.zeros(1, 3, 224, 224)) == 1_582_671_872


def test_paper_model_is_faithful(paper_model):
    m = paper_model
    assert m.inception3a.branch3[1].conv.kernel_size == (5, 5)  # a true 5x5, not torchvision's 3x3
    assert m.conv1.conv.bias is not None and not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())
    assert m.dropout.p == 0.4
    assert [getattr(m, f"inception{b}").out_channels for b in PAPER_CHANNELS] == [
        256, 480, 512, 512, 512, 528, 832, 832, 1024]


def test_train_mode_returns_aux_logits_eval_mode_only_logits():
    torch.manual_seed(0)
    model = GoogLeNet(num_classes=10)
    x = torch.randn(2, 3, 224, 224)
    model.train()
    logits, aux1, aux2 = model(x)
    assert logits.shape == aux1.shape == aux2.shape == (2, 10)
    model.eval()
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


def test_cifar_stem_and_width():
    model = GoogLeNet(num_classes=10, stem="cifar", width=0.25, batch_norm=True)
    model.train()
    outs = model(torch.randn(3, 3, 32, 32))
    assert [o.shape for o in outs] == [(3, 10)] * 3
    assert model.inception3a.out_channels == 64  # (64 + 128 + 32 + 32) / 4
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=7, max_size=7), st.integers(3, 9))
def test_inception_output_channels(channels, size):
    in_ch, c1, r3, c3, r5, c5, proj = channels
    block = Inception(in_ch, c1, r3, c3, r5, c5, proj)
    out = block(torch.randn(2, in_ch, size, size))
    assert out.shape == (2, c1 + c3 + c5 + proj, size, size) and block.out_channels == out.shape[1]


def test_naive_inception_keeps_input_channels():
    block = NaiveInception(192, 64, 128, 32)
    x = torch.randn(1, 192, 28, 28)
    out = block(x)
    assert out.shape == (1, 192 + 64 + 128 + 32, 28, 28) == (1, block.out_channels, 28, 28)
    assert torch.equal(out[:, -192:], torch.nn.functional.max_pool2d(x, 3, 1, 1))  # the pool branch


def test_aux_classifier_shapes():
    head = AuxClassifier(512, 1000)
    assert head(torch.randn(2, 512, 14, 14)).shape == (2, 1000)
    assert head(torch.randn(2, 512, 16, 16)).shape == (2, 1000)  # CIFAR stem: 4a is 16x16
    assert count_parameters(head) == 512 * 128 + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000
    with pytest.raises(ValueError, match="4x4"):
        head(torch.randn(1, 512, 28, 28))


def _randomise_batch_norm(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize("transform_input", [False, True])
def test_from_torchvision_gives_the_same_outputs(transform_input):
    torch.manual_seed(0)
    tv = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True,
                                      transform_input=transform_input)
    _randomise_batch_norm(tv)
    tv.eval()
    ours = from_torchvision(tv.state_dict(), transform_input=transform_input).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected, got = tv(x), ours(x)
    assert expected.abs().max() > 0.1  # non-trivial outputs
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_from_torchvision_refuses_other_state_dicts():
    with pytest.raises(ValueError, match="not from torchvision's googlenet"):
        from_torchvision(torchvision.models.resnet18(weights=None).state_dict())


def test_wrong_channel_table_is_refused_clearly():
    table = dict(PAPER_CHANNELS)
    del table["4c"]
    with pytest.raises(ValueError, match=r"missing \['4c'\]"):
        GoogLeNet(channel_table=table)
    table = dict(PAPER_CHANNELS, **{"4a": (192, 96, 208, 16, 48)})
    with pytest.raises(ValueError, match=r"channel_table\['4a'\].*expected 6 positive ints"):
        GoogLeNet(channel_table=table)
    with pytest.raises(ValueError, match="positive integers"):
        Inception(192, 64, 0, 128, 16, 32, 32)


def test_mismatched_input_channels_are_explained():
    block = Inception(256, 64, 96, 128, 16, 32, 32)
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 256, H, W\).*previous block's output"):
        block(torch.randn(1, 192, 28, 28))


def test_too_small_input_is_refused_clearly():
    with pytest.raises(ValueError, match=r"16x16 is too small for the imagenet stem.*at least 32x32.*stem='cifar'"):
        GoogLeNet(aux_logits=False).eval()(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="too small for the cifar stem"):
        GoogLeNet(stem="cifar", aux_logits=False, width=0.125).eval()(torch.randn(1, 3, 2, 2))


@pytest.mark.parametrize("block", ["reduced", "naive"])
def test_small_inception_net(block):
    model = SmallInceptionNet(block=block)
    assert model(torch.randn(4, 3, 32, 32)).shape == (4, 10)
    if block == "naive":  # the pool branch passes its input through: width grows block after block
        assert model.out_channels == 64 + sum(c1 + c3 + c5 for c1, _, c3, _, c5, _ in model.DEFAULT_BLOCKS)
