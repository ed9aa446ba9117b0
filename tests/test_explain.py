"""Class activation maps and gradient norms, checked against hand computations."""
import pytest
import torch
from torch import nn

from utils.explain import GradientRecorder, cam, class_activation_maps, weight_gradient_norms
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
