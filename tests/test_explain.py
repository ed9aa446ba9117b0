"""Class activation maps and gradient norms, checked against hand computations."""
import pytest
import torch
from torch import nn

from utils.explain import (
    GradientRecorder,
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
    import copy

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


def test_aux_gradient_split_leaves_the_model_as_it_was(aux_net):
    model, images, labels = aux_net
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    rng_state = torch.get_rng_state()
    first = aux_gradient_split(model, images, labels)
    assert not model.training and all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())
    assert all(p.grad is None for p in model.parameters()) and torch.equal(torch.get_rng_state(), rng_state)
    assert model.conv1._forward_hooks == {}
    again = aux_gradient_split(model, images, labels)
    assert again.table == first.table and first.n_images == 40  # fewer images than max_images: all of them
    doubled = aux_gradient_split(model, images, labels, aux_weight=0.6)  # the same masks: twice the aux rows
    assert doubled.table["aux1 x 0.6"]["conv1"] == pytest.approx(2 * first.table["aux1 x 0.3"]["conv1"], rel=1e-5)


def test_aux_gradient_split_refuses_what_it_cannot_measure(aux_net):
    model, images, labels = aux_net
    with pytest.raises(ValueError, match="aux_logits=True"):
        aux_gradient_split(GoogLeNet(num_classes=10, stem="cifar", width=0.0625, aux_logits=False), images, labels)
    with pytest.raises(ValueError, match="40 images but 39 labels"):
        aux_gradient_split(model, images, labels[:39])


@pytest.mark.parametrize("features, weight", [
    (torch.zeros(2, 4, 3), torch.zeros(5, 4)),        # features without a batch or a spatial axis, K agreeing
    (torch.zeros(2, 4, 3, 3), torch.zeros(5, 4, 1)),  # a weight that is not (classes, K), K agreeing
])
def test_class_activation_maps_refuses_each_wrong_shape_with_its_own_message(features, weight):
    """Any one wrong shape is refused with the course's message, not einsum's."""
    with pytest.raises(ValueError, match=r"needs features \(N, K, h, w\) and weights \(classes, K\) with the same K"):
        class_activation_maps(features, weight)
