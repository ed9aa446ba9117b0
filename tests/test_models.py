"""The GoogLeNet family: parameter counts pinned to the architecture, shapes, modes, errors."""
import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.cost import measure_macs
from utils.models import (
    PAPER_CHANNELS,
    AuxClassifier,
    GoogLeNet,
    Inception,
    NaiveInception,
    SmallInceptionNet,
    count_parameters,
    from_torchvision,
    pretrained_googlenet,
)


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


def _capture(model, names, x):
    """Run ``model`` on ``x`` and return {module name: (input, output)} of the named modules."""
    seen, modules = {}, dict(model.named_modules())
    hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, (i[0], o))) for n in names]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def test_auxiliary_heads_read_the_outputs_of_4a_and_4d():
    """Paper, section 5: the heads sit "on top of the output of the Inception (4a) and (4d) modules"."""
    torch.manual_seed(0)
    model = GoogLeNet(num_classes=10, stem="cifar", width=0.125).train()
    seen = _capture(model, ["inception4a", "inception4b", "inception4d", "aux1", "aux2"], torch.randn(2, 3, 32, 32))
    assert seen["aux1"][0] is seen["inception4a"][1] and seen["aux1"][0] is not seen["inception4b"][1]
    assert seen["aux2"][0] is seen["inception4d"][1]


def test_auxiliary_head_is_the_papers():
    """5x5/3 average pool, 1x1 conv to 128 + ReLU, FC 1024 + ReLU, dropout 70%, linear (paper, section 5)."""
    torch.manual_seed(0)
    head = AuxClassifier(512, 1000)
    assert (head.pool.kernel_size, head.pool.stride) == (5, 3) and head.conv.conv.out_channels == 128
    assert (head.fc1.in_features, head.fc1.out_features) == (128 * 4 * 4, 1024) and head.dropout.p == 0.7
    assert GoogLeNet().aux1.dropout.p == GoogLeNet().aux2.dropout.p == 0.7
    x = torch.randn(64, 512, 14, 14)
    head.eval()
    fc2_input = _capture(head, ["fc2"], x)["fc2"][0]
    assert head.fc1(torch.flatten(head.conv(head.pool(x)), 1)).min() < 0 and fc2_input.min() >= 0  # ReLU after fc1
    head.train()
    kept = (_capture(head, ["fc2"], x)["fc2"][0] != 0).float().mean().item()
    active = (fc2_input != 0).float().mean().item()
    assert kept / active == pytest.approx(0.3, abs=0.02)  # dropout keeps 30% of the active units


def test_local_response_normalisation_is_alexnets():
    """AlexNet (Krizhevsky et al. 2012, section 3.3): b = a / (k + alpha * sum of a^2 over n neighbours)^beta,
    k = 2, n = 5, alpha = 1e-4, beta = 0.75 (computed here by hand, channel by channel)."""
    lrn = GoogLeNet().lrn1
    a = torch.randn(1, 12, 3, 3) * 30
    expected = torch.empty_like(a)
    for c in range(12):
        neighbours = a[:, max(0, c - 2):min(12, c + 3)]
        expected[:, c] = a[:, c] / (2 + 1e-4 * (neighbours ** 2).sum(1)) ** 0.75
    torch.testing.assert_close(lrn(a), expected)


def test_separable_conv1_reproduces_table1s_conv1_row():
    from utils.cost import googlenet_table

    model = GoogLeNet(aux_logits=False, conv1="separable")
    rows = {r["name"]: r for r in googlenet_table(model, weights_only=True)}
    assert rows["conv1"]["params"] == 7 * 7 * 3 * 8 + 24 * 64 == 2_712
    assert rows["conv1"]["ops"] == 2_712 * 112 * 112 == 34_019_328
    assert measure_macs(model.eval(), torch.zeros(1, 3, 224, 224)) == 1_498_677_248  # "1.5 billion" budget
    assert GoogLeNet(aux_logits=False).conv1.conv.kernel_size == (7, 7)  # the default is unchanged


def test_contradictory_options_are_refused():
    with pytest.raises(ValueError, match="transform_input=True .*torchvision_layout=True"):
        GoogLeNet(transform_input=True)
    with pytest.raises(ValueError, match="conv1='separable'"):
        GoogLeNet(stem="cifar", conv1="separable")


def test_table_of_the_torchvision_layout_and_the_cifar_stem():
    from utils.cost import googlenet_table

    tv = from_torchvision(torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).state_dict())
    rows = {r["name"]: r for r in googlenet_table(tv)}
    assert rows["pool4"]["patch_stride"] == "2x2/2" and rows["pool3"]["patch_stride"] == "3x3/2"
    assert "'#5x5' is a 3x3 conv" in rows["4a"]["type"]
    cifar = {r["name"]: r for r in googlenet_table(GoogLeNet(num_classes=10, stem="cifar", width=0.25,
                                                             aux_logits=False))}
    assert "pool1" not in cifar and cifar["conv1"]["patch_stride"] == "3x3/1"
    assert cifar["5b"]["output_size"] == "8x8x256" and cifar["linear"]["output_size"] == "1x1x10"


def test_main_dropout_is_applied_in_train_mode_only():
    """Paper, Table 1 and section 5: dropout 40% between the average pool and the linear classifier."""
    torch.manual_seed(0)
    model = GoogLeNet(num_classes=10, stem="cifar", width=0.125, aux_logits=False)
    x = torch.randn(64, 3, 32, 32)
    seen = _capture(model.eval(), ["avgpool", "fc"], x)
    pooled, fc_input = torch.flatten(seen["avgpool"][1], 1), seen["fc"][0]
    assert torch.equal(fc_input, pooled)  # eval: the classifier reads the pooled features unchanged
    seen = _capture(model.train(), ["avgpool", "fc"], x)
    pooled, fc_input = torch.flatten(seen["avgpool"][1], 1), seen["fc"][0]
    kept = fc_input != 0
    dropped = (~kept & (pooled != 0)).sum().item() / (pooled != 0).sum().item()
    assert dropped == pytest.approx(0.4, abs=0.03)  # train: 40% of the features dropped ...
    torch.testing.assert_close(fc_input[kept], pooled[kept] / 0.6)  # ... the rest scaled by 1 / (1 - 0.4)


@pytest.fixture
def no_network(tmp_path, monkeypatch):
    """An empty torch.hub cache in tmp_path; any connection or download attempt fails as it would offline."""
    import socket

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def refuse(*args, **kwargs):
        raise OSError("Network is unreachable (no network in tests)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tmp_path / "checkpoints"


def test_pretrained_googlenet_offline_prints_one_skip_line(no_network, capsys):
    assert pretrained_googlenet(timeout=0.1) is None
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and printed.startswith("Skipped: no pretrained GoogLeNet weights, no connection "
                                                            "to download.pytorch.org (OSError: Network is unreachable")
    assert str(no_network) in printed and "internet" in printed


def test_pretrained_googlenet_download_failure_is_a_skip_too(no_network, monkeypatch, capsys):
    import socket

    class Reachable:
        def close(self):
            pass

    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: Reachable())
    assert pretrained_googlenet() is None
    assert "reading or downloading googlenet-1378be20.pth failed (OSError" in capsys.readouterr().out


def test_pretrained_googlenet_uses_the_cached_weights(no_network, capsys):
    """A file in torch.hub's cache is read without any connection; the model computes what torchvision's does."""
    torch.manual_seed(0)
    tv = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True, transform_input=True)
    _randomise_batch_norm(tv)
    no_network.mkdir()
    torch.save(tv.state_dict(), no_network / "googlenet-1378be20.pth")  # the file name torchvision downloads
    model = pretrained_googlenet()
    assert capsys.readouterr().out == ""
    assert not model.training and model.transform_input and model.aux1 is None and model.aux2 is None
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), tv.eval()(x), atol=1e-5, rtol=1e-5)
