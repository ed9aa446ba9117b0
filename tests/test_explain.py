"""Class activation maps and gradient norms, checked against hand computations."""
import copy
import warnings

import pytest
import torch
from torch import nn

from utils.explain import (
    GradientRecorder,
    GradientSplit,
    aux_gradient_split,
    cam,
    class_activation_maps,
    weight_gradient_norms,
)
from utils.models import GoogLeNet, SmallInceptionNet


def test_cam_of_a_hand_built_head_is_the_weighted_sum_of_channels():
    # Two channels: channel 0 is 1 in the top-left corner, channel 1 is 1 in the bottom-right corner.
    features = torch.zeros(1, 2, 3, 3)
    features[0, 0, 0, 0] = 1.0
    features[0, 1, 2, 2] = 1.0
    weight = torch.tensor([[2.0, 0.0],    # class 0 looks only at channel 0
                           [0.0, -1.0],   # class 1 dislikes channel 1
                           [1.0, 1.0]])   # class 2 likes both
    maps = class_activation_maps(features, weight)
    expected = torch.zeros(1, 3, 3, 3)
    expected[0, 0, 0, 0] = 2.0
    expected[0, 1, 2, 2] = -1.0
    expected[0, 2, 0, 0] = expected[0, 2, 2, 2] = 1.0
    assert torch.equal(maps, expected)


def test_cam_averages_to_the_logit_minus_the_bias():
    """Zhou et al. 2016: with global average pooling, logit_c = mean_xy M_c(x, y) + b_c."""
    torch.manual_seed(0)
    for model in (SmallInceptionNet().eval(), GoogLeNet(num_classes=10, stem="cifar", width=0.125,
                                                        aux_logits=False).eval()):
        x = torch.randn(3, 3, 32, 32)
        maps = cam(model, x, upsample=False)
        with torch.no_grad():
            logits = model(x)
        torch.testing.assert_close(maps.mean((-2, -1)) + model.fc.bias, logits, rtol=1e-4, atol=1e-4)
        assert cam(model, x).shape == (3, 10, 32, 32)


def test_cam_refuses_a_model_without_a_gap_linear_head():
    flatten_head = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 10))
    with pytest.raises(TypeError, match="global average pooling and one linear layer"):
        cam(flatten_head, torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="same K"):
        class_activation_maps(torch.zeros(1, 4, 2, 2), torch.zeros(10, 5))


def test_gradient_recorder_matches_autograd_and_adds_up_by_linearity():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.randn(5, 4)
    with GradientRecorder(model, ["0", "2"]) as recorder:
        out = model(x)
        first, second = out[:, 0].sum(), (out[:, 1] ** 2).sum()
        recorder.measure("first", first)
        recorder.measure("second", second)
        recorder.measure("both", first + second)
        kept = recorder.outputs["0"]
        by_hand = [torch.autograd.grad(loss, kept, retain_graph=True)[0] for loss in (first, second)]
    table = recorder.table()
    assert table["first"]["0"] == pytest.approx(by_hand[0].norm().item())
    assert table["both"]["0"] == pytest.approx((by_hand[0] + by_hand[1]).norm().item())
    # d first / d out has a 1 in column 0 for each of the 5 rows: norm sqrt(5)
    assert table["first"]["2"] == pytest.approx(5 ** 0.5)
    assert recorder.rows[0] == {"loss": "first", "layer": "0", "grad_norm": table["first"]["0"],
                                "grad_rms": pytest.approx(by_hand[0].pow(2).mean().sqrt().item())}
    assert model[0]._forward_hooks == {} and model[0].weight.grad is None  # hooks removed, .grad untouched
    with pytest.raises(ValueError, match="no module named"):
        GradientRecorder(model, ["nope"])


def test_weight_gradient_norms_reads_every_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    model(torch.randn(5, 4)).sum().backward()
    norms = weight_gradient_norms(model)
    assert list(norms) == ["0", "2"]
    assert norms["2"] == pytest.approx(model[2].weight.grad.norm().item())


def test_cam_of_a_model_in_train_mode_is_the_eval_mode_map_and_changes_nothing():
    """In train mode batch norm would normalise with this batch's statistics and update its running averages."""
    torch.manual_seed(0)
    model = SmallInceptionNet()
    x = torch.randn(4, 3, 32, 32)
    for _ in range(3):  # running statistics that differ from a fresh layer's (0 and 1)
        model(torch.randn(8, 3, 32, 32) * 2 + 1)
    model.train()
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    maps = cam(model, x, upsample=False)
    assert model.training  # the mode is restored ...
    assert all(torch.equal(b, buffers[name]) for name, b in model.named_buffers())  # ... and no statistic moved
    with torch.no_grad():
        in_eval = class_activation_maps(model.eval().features(x), model.fc.weight)
        in_train = class_activation_maps(model.train().features(x), model.fc.weight)
    torch.testing.assert_close(maps, in_eval)
    assert not torch.allclose(maps, in_train, atol=1e-3)  # batch statistics would have given other maps


@pytest.fixture(scope="module")
def aux_net():
    torch.manual_seed(0)
    model = GoogLeNet(num_classes=10, stem="cifar", width=0.0625, batch_norm=True).eval()
    images, labels = torch.randn(40, 3, 32, 32), torch.arange(40) % 10
    return model, images, labels


def test_aux_gradient_split_matches_autograd_by_hand(aux_net):
    model, images, labels = aux_net
    layers = ["conv1", "inception3a", "inception4b", "inception4e"]
    split = aux_gradient_split(model, images, labels, layers=layers, label_smoothing=0.1, max_images=32, seed=5)
    # by hand: the same 32 images, the same dropout masks, one gradient per loss at each block's output
    twin = copy.deepcopy(model).train()
    kept = {}
    for name in layers:
        dict(twin.named_modules())[name].register_forward_hook(lambda m, i, o, name=name: kept.__setitem__(name, o))
    torch.manual_seed(5)
    logits, aux1, aux2 = twin(images[:32])
    y = labels[:32]
    losses = [torch.nn.functional.cross_entropy(out, y, label_smoothing=0.1) * w
              for out, w in ((logits, 1.0), (aux1, 0.3), (aux2, 0.3))]
    outputs = [kept[n] for n in layers]
    grads = [[torch.zeros_like(o) if g is None else g for o, g in
              zip(outputs, torch.autograd.grad(loss, outputs, retain_graph=True, allow_unused=True))]
             for loss in losses]
    for row, per_layer in zip(("main", "aux1 x 0.3", "aux2 x 0.3"), grads):
        for name, grad in zip(layers, per_layer):
            assert split.table[row][name] == pytest.approx(grad.norm().item(), rel=1e-4)
    for k, name in enumerate(layers):
        assert split.table["total"][name] == pytest.approx(sum(g[k] for g in grads).norm().item(), rel=1e-4)
        main, first, second = (split.table[row][name] for row in ("main", "aux1 x 0.3", "aux2 x 0.3"))
        assert split.aux_share[name] == pytest.approx((first + second) / (main + first + second))
    # aux1 reads 4a's output: nothing of its loss reaches 4b or later; aux2 reads 4d's: nothing reaches 4e
    assert split.table["aux1 x 0.3"]["inception4b"] == 0 and split.table["aux2 x 0.3"]["inception4e"] == 0
    assert split.table["aux2 x 0.3"]["inception4b"] > 0 and split.n_images == 32
    assert 0 < split.input_dependence["conv1"] < 2 and "aux heads' share" in str(split)
    for name in layers:  # the spread across images (std over dim 0, averaged) over the output's root-mean-square
        out = kept[name]
        assert split.input_dependence[name] == pytest.approx((out.std(dim=0).mean() / out.pow(2).mean().sqrt()).item(),
                                                             rel=1e-5)


def test_aux_gradient_split_leaves_the_model_as_it_was(aux_net):
    model, images, labels = aux_net
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    rng_state = torch.get_rng_state()
    first = aux_gradient_split(model, images, labels)
    assert not model.training and all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())
    assert all(p.grad is None for p in model.parameters()) and torch.equal(torch.get_rng_state(), rng_state)
    assert model.conv1._forward_hooks == {}
    again = aux_gradient_split(model, images, labels, layers=("conv1", "inception3a", "inception3b"), aux_weight=0.3,
                               label_smoothing=0.0, max_images=64, seed=0)  # the defaults, spelt out
    assert again.table == first.table and first.n_images == 40  # fewer images than max_images: all of them
    assert aux_gradient_split(model, images.repeat(2, 1, 1, 1), labels.repeat(2), layers=["conv1"]).n_images == 64
    doubled = aux_gradient_split(model, images, labels, aux_weight=0.6)  # the same masks: twice the aux rows
    assert doubled.table["aux1 x 0.6"]["conv1"] == pytest.approx(2 * first.table["aux1 x 0.3"]["conv1"], rel=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_aux_gradient_split_on_a_gpu_keeps_the_gpus_random_stream(aux_net):
    """On a GPU, dropout draws from the GPU's generator: aux_gradient_split forks that one too, so the caller's
    stream is as it was; it names the device, so torch never warns about forking every GPU."""
    model, images, labels = aux_net
    model = copy.deepcopy(model).cuda()
    state = torch.cuda.get_rng_state(images.cuda().device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aux_gradient_split(model, images.cuda(), labels.cuda())
    assert torch.equal(torch.cuda.get_rng_state(images.cuda().device), state)


def test_aux_gradient_split_refuses_what_it_cannot_measure(aux_net):
    model, images, labels = aux_net
    for no_heads in (GoogLeNet(num_classes=10, stem="cifar", width=0.0625, aux_logits=False), SmallInceptionNet()):
        with pytest.raises(ValueError) as refused:
            aux_gradient_split(no_heads, images, labels)
        assert str(refused.value) == (f"{type(no_heads).__name__} has no auxiliary heads to measure; build it with "
                                      "GoogLeNet(..., aux_logits=True).")
    with pytest.raises(ValueError) as refused:
        aux_gradient_split(model, images, labels[:39])
    assert str(refused.value) == "40 images but 39 labels: pass one label per image."


@pytest.mark.parametrize("features, weight", [
    (torch.zeros(2, 4, 3), torch.zeros(5, 4)),        # features without a batch or a spatial axis, K agreeing
    (torch.zeros(2, 4, 3, 3), torch.zeros(5, 4, 1)),  # a weight that is not (classes, K), K agreeing
])
def test_class_activation_maps_refuses_each_wrong_shape_with_its_own_message(features, weight):
    """Any one wrong shape is refused with the course's message, not einsum's."""
    with pytest.raises(ValueError, match=r"needs features \(N, K, h, w\) and weights \(classes, K\) with the same K"):
        class_activation_maps(features, weight)


class _FixedFeatures(nn.Module):
    """features(x) is a fixed 2x2 map, whatever x; fc is a 1x1 linear layer of weight 1: the map is the CAM."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 1)
        with torch.no_grad():
            self.fc.weight.fill_(1.0)

    def features(self, x):
        return torch.tensor([[0.0, 1.0], [2.0, 3.0]]).expand(len(x), 1, 2, 2)


def test_cam_upsamples_bilinearly_with_pixel_centres_aligned():
    """align_corners=False, by hand: output pixel j of 4 reads input position (j + 0.5) / 2 - 0.5, clamped to
    [0, 1]: 0, 0.25, 0.75, 1. The map x + 2y is linear, so the upsampled map is cx[j] + 2 cx[i]."""
    model = _FixedFeatures()
    maps = cam(model, torch.zeros(2, 3, 4, 4))
    cx = torch.tensor([0.0, 0.25, 0.75, 1.0])
    expected = (cx[None, :] + 2 * cx[:, None]).expand(2, 1, 4, 4)
    torch.testing.assert_close(maps, expected)
    assert torch.equal(cam(model, torch.zeros(2, 3, 4, 4), upsample=False), torch.tensor(
        [[0.0, 1.0], [2.0, 3.0]]).expand(2, 1, 2, 2))


def test_cam_refuses_a_model_without_both_features_and_a_linear_fc_with_the_full_message():
    """features() alone, fc alone, or an fc that is not a Linear: each refused with the whole message."""
    message = ("{} has no features() + fc (Linear) pair. Class activation maps need a network that ends in global "
               "average pooling and one linear layer; a flatten + FC head mixes positions, so its weights do not split "
               "into one map per class.")

    class OnlyFeatures(nn.Module):
        def features(self, x):
            return x

    class OnlyFc(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

    class ConvFc(OnlyFeatures):
        def __init__(self):
            super().__init__()
            self.fc = nn.Conv2d(3, 2, 1)

    for model in (OnlyFeatures(), OnlyFc(), ConvFc()):
        with pytest.raises(TypeError) as refused:
            cam(model, torch.zeros(1, 3, 4, 4))
        assert str(refused.value) == message.format(type(model).__name__)


def test_cam_leaves_a_model_in_eval_mode_in_eval_mode():
    model = _FixedFeatures().eval()
    cam(model, torch.zeros(1, 3, 2, 2))
    assert model.training is False


def test_gradient_recorder_names_the_missing_modules_and_the_first_12_it_has():
    model = nn.Sequential(*[nn.Identity() for _ in range(14)])
    with pytest.raises(ValueError) as refused:
        GradientRecorder(model, ["3", "nope", "conv9"])
    first_12 = [str(k) for k in range(12)]
    assert str(refused.value) == (f"no module named ['nope', 'conv9'] in Sequential; choose from {first_12}... "
                                  "(model.named_modules()).")


def test_gradient_recorder_records_zero_for_a_layer_a_loss_does_not_reach_and_returns_the_norms():
    """A loss that does not depend on a kept output gets 0 for both its norm and its root-mean-square."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    x = torch.ones(3, 2)
    recorder = GradientRecorder(model, ["0", "1"])
    out = model(x)
    first = recorder.measure("first layer only", recorder.outputs["0"].sum())
    assert first == {"0": pytest.approx(6 ** 0.5), "1": 0.0}  # d sum / d out is 1 on each of 3 x 2 entries
    assert recorder.rows == [
        {"loss": "first layer only", "layer": "0", "grad_norm": pytest.approx(6 ** 0.5), "grad_rms": 1.0},
        {"loss": "first layer only", "layer": "1", "grad_norm": 0.0, "grad_rms": 0.0}]
    assert recorder.measure("output", 2 * out.sum())["1"] == pytest.approx(2 * 6 ** 0.5)
    recorder.close()
    assert recorder.outputs == {} and model[0]._forward_hooks == {}
    recorder.close()  # closing twice (by hand, then by a with block) is harmless
    model(x)
    assert recorder.outputs == {}  # no hook is left to keep an output


def test_gradient_split_report_lays_out_a_table_as_wide_as_its_longest_label():
    split = GradientSplit({"main": {"conv1": 1.0, "inception3a": 0.5},
                           "aux1 x 0.3": {"conv1": 0.25, "inception3a": 0.125}},
                          {"conv1": 0.2, "inception3a": 0.75}, {"conv1": 0.75, "inception3a": 1.0}, 3)
    # first column: the title (33 characters); then one column per layer, 2 wider than the longest name (13)
    assert str(split) == split.report() == "\n".join([
        "gradient norm reaching (3 images)" + "conv1".rjust(13) + "inception3a".rjust(13),
        "  main".ljust(33) + "1.00e+00".rjust(13) + "5.00e-01".rjust(13),
        "  aux1 x 0.3".ljust(33) + "2.50e-01".rjust(13) + "1.25e-01".rjust(13),
        "  input dependence".ljust(33) + "7.50e-01".rjust(13) + "1.00e+00".rjust(13),
        "aux heads' share of the summed norms: conv1 20%, inception3a 75%"])
    long = "a label longer than the title, 39 chars"  # 2 + 39 = 41 characters: the first column widens
    split.table = {long: {"conv1": 2.0, "inception3a": 3e-5}}
    assert split.report().splitlines()[:2] == [
        "gradient norm reaching (3 images)".ljust(41) + "conv1".rjust(13) + "inception3a".rjust(13),
        f"  {long}" + "2.00e+00".rjust(13) + "3.00e-05".rjust(13)]
