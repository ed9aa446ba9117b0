"""Cost accounting: analytic formulas against PyTorch's own FlopCounterMode and shapes."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from utils import cost
from utils.cost import (
    PAPER_TABLE1,
    compare_latency,
    conv_macs,
    conv_output_size,
    conv_params,
    count_params,
    googlenet_table,
    measure_latency,
    measure_macs,
    receptive_field,
)
from utils.models import GoogLeNet


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 40), kernel=st.integers(1, 7), stride=st.integers(1, 4), padding=st.integers(0, 3),
       dilation=st.integers(1, 3))
def test_output_size_formula_matches_conv2d(size, kernel, stride, padding, dilation):
    expected_positive = size + 2 * padding - dilation * (kernel - 1) > 0
    n = conv_output_size(size, kernel, stride, padding, dilation)
    if not expected_positive:
        assert n == 0
        return
    out = nn.functional.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, kernel, kernel),
                               stride=stride, padding=padding, dilation=dilation)
    assert out.shape[-1] == n


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 20), kernel=st.integers(1, 6), stride=st.integers(1, 4), ceil=st.booleans(),
       data=st.data())
def test_output_size_formula_matches_pooling(size, kernel, stride, ceil, data):
    padding = data.draw(st.integers(0, kernel // 2))
    if size + 2 * padding < kernel:
        return  # PyTorch refuses a window larger than the padded input
    out = nn.functional.max_pool2d(torch.zeros(1, 1, size, size), kernel, stride, padding, ceil_mode=ceil)
    assert out.shape[-1] == conv_output_size(size, kernel, stride, padding, ceil_mode=ceil)


@settings(max_examples=40, deadline=None)
@given(c_in=st.integers(1, 24), c_out=st.integers(1, 24), kernel=st.integers(1, 5), stride=st.integers(1, 3),
       size=st.integers(5, 20), bias=st.booleans(), groups=st.sampled_from([1, 2, 4]))
def test_analytic_counts_equal_flop_counter(c_in, c_out, kernel, stride, size, bias, groups):
    c_in, c_out = c_in * groups, c_out * groups
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=bias, groups=groups)
    out = conv_output_size(size, kernel, stride, kernel // 2)
    assert count_params(conv) == conv_params(c_in, c_out, kernel, bias=bias, groups=groups)
    assert measure_macs(conv, torch.zeros(1, c_in, size, size)) == conv_macs(c_in, c_out, kernel, out, groups=groups)


def test_one_by_one_reduction_worked_example():
    direct = conv_macs(192, 32, 5, 28)
    reduced = conv_macs(192, 16, 1, 28) + conv_macs(16, 32, 5, 28)
    assert (direct, reduced) == (120_422_400, 12_443_648)
    layers = nn.Sequential(nn.Conv2d(192, 16, 1), nn.Conv2d(16, 32, 5, padding=2))
    assert measure_macs(layers, torch.zeros(1, 192, 28, 28)) == reduced
    assert round(direct / reduced, 1) == 9.7


def test_per_module_counts_sum_to_total():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5))
    per = measure_macs(model, torch.zeros(1, 3, 6, 6), per_module=True)
    assert per["0"] == 6 * 6 * 9 * 3 * 8 and per["3"] == 8 * 36 * 5
    assert per[""] == per["0"] + per["3"] == measure_macs(model, torch.zeros(1, 3, 6, 6))


@pytest.fixture(scope="module")
def table():
    return googlenet_table(GoogLeNet(aux_logits=False))


def test_table1_recomputed_from_the_model(table):
    rows = {r["name"]: r for r in table}
    assert sum(r["params"] for r in table) == 6_998_552
    assert sum(r["ops"] for r in table) == 1_582_671_872
    assert [r["output_size"] for r in table] == [
        "112x112x64", "56x56x64", "56x56x192", "28x28x192", "28x28x256", "28x28x480", "14x14x480", "14x14x512",
        "14x14x512", "14x14x512", "14x14x528", "14x14x832", "7x7x832", "7x7x832", "7x7x1024", "1x1x1024",
        "1x1x1024", "1x1x1000"]
    assert rows["conv1"]["params"] == 7 * 7 * 3 * 64 + 64 and rows["conv1"]["ops"] == 118_013_952
    assert (rows["3a"]["#1x1"], rows["3a"]["#5x5 reduce"], rows["5b"]["pool proj"]) == (64, 16, 128)
    assert rows["conv1"]["paper_params_K"] == 2.7 and rows["5a"]["paper_params_K"] == 1072
    assert set(PAPER_TABLE1) <= set(rows)


def _block_weights(c_in, ch1, r3, ch3, r5, ch5, proj):
    """Weights (no biases) of a reduced Inception block, from the paper's channel columns, by hand."""
    return c_in * ch1 + c_in * r3 + 9 * r3 * ch3 + c_in * r5 + 25 * r5 * ch5 + c_in * proj


def test_table1_weights_only_equal_the_hand_count_of_each_block():
    rows = {r["name"]: r for r in googlenet_table(GoogLeNet(aux_logits=False), weights_only=True)}
    assert rows["3a"]["params"] == _block_weights(192, 64, 96, 128, 16, 32, 32) == 163_328
    assert rows["4c"]["params"] == _block_weights(512, 128, 128, 256, 24, 64, 64) == 509_440  # paper: 463K
    assert rows["5a"]["params"] == _block_weights(832, 256, 160, 320, 32, 128, 128) == 1_042_432  # paper: 1072K
    assert rows["conv2"]["params"] == 64 * 64 + 9 * 64 * 192 == 114_688  # paper: 112K
    assert rows["5a"]["ops"] == 7 * 7 * rows["5a"]["params"]  # a 7x7 map: every weight used 49 times


def test_measure_latency_measures_seconds():
    import time

    seconds = measure_latency(lambda: time.sleep(0.02), min_run_time=0.1)
    assert seconds == pytest.approx(0.02, abs=0.01)


def test_compare_latency_times_every_job_and_ranks_them():
    small, large = torch.zeros(1, 4, 8, 8), torch.zeros(8, 64, 32, 32)
    jobs = {"small": (nn.Conv2d(4, 4, 3), small), "large": (nn.Conv2d(64, 64, 3), large)}
    seconds = compare_latency(jobs, rounds=2, min_run_time=0.05, num_threads=1)
    assert set(seconds) == {"small", "large"}
    assert 0 < seconds["small"] < seconds["large"]  # about 2,000x the multiply-adds


def test_groups_that_pytorch_refuses_are_refused():
    with pytest.raises(ValueError, match=r"groups=2 must divide both in_channels=3"):
        conv_params(3, 8, 3, groups=2)
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(3, 8, 3, groups=2)  # PyTorch agrees
    with pytest.raises(ValueError, match="groups=4"):
        conv_macs(8, 6, 3, 10, groups=4)


def test_receptive_field_by_hand():
    # lesson 01, exercise 1: GoogLeNet's stem, 7x7/2 conv, 3x3/2 pool, 1x1 conv, 3x3 conv
    assert receptive_field([(7, 2, 1), (3, 2, 1), (1, 1, 1), (3, 1, 1)]) == [7, 11, 11, 19]
    assert receptive_field([(5, 1)]) == [5] and receptive_field([(3, 1), (3, 1)]) == [3, 5]  # exercise 5
    assert receptive_field([(3, 1, 2), (3, 1, 4)]) == [5, 13]  # dilation d widens a 3x3 by 2d
    # lesson 04: the CIFAR network's widest path (stem 3x3, pool /2, 1x1 + 5x5 branches, pool /2, ...)
    path = [(3, 1), (2, 2), (1, 1), (5, 1), (2, 2), (1, 1), (5, 1), (1, 1), (5, 1)]
    assert receptive_field(path, jump=True)[-1] == (46, 4)
    assert receptive_field([]) == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3)), min_size=1, max_size=4))
def test_receptive_field_matches_autograd(layers):
    """The input pixels that output value 0 depends on, found by backpropagating from it (all weights 1, so
    nothing cancels; no padding, so the field starts at pixel 0)."""
    convs = []
    for kernel, stride, dilation in layers:
        conv = nn.Conv1d(1, 1, kernel, stride=stride, dilation=dilation, bias=False)
        nn.init.ones_(conv.weight)
        convs.append(conv)
    fields = receptive_field(layers)
    x = torch.ones(1, 1, fields[-1] + 2 * 27, requires_grad=True)  # wide enough for any last stride
    nn.Sequential(*convs)(x)[0, 0, 0].backward()
    touched = torch.nonzero(x.grad[0, 0]).flatten()
    assert touched.max().item() - touched.min().item() + 1 == fields[-1]


def test_receptive_field_refuses_a_malformed_layer():
    with pytest.raises(ValueError, match=r"\(kernel, stride\) or \(kernel, stride, dilation\).*got \(3,\)"):
        receptive_field([(3,)])
    with pytest.raises(ValueError, match="positive whole numbers"):
        receptive_field([(3, 0)])


def test_saved_activations_counted_by_hand():
    """conv keeps its input (5x3x8x8 floats); ReLU keeps its output (5x8x8x8); the linear layer keeps its input,
    a flattened view of that same output (counted once); weights are not activations."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    assert cost.saved_activation_bytes(net, batch_size=5, image_size=8) == 4 * (5 * 3 * 8 * 8 + 5 * 8 * 8 * 8)
    assert cost.saved_activation_bytes(net, batch_size=5, image_size=8, precision="fp16") == 2 * (
        5 * 3 * 8 * 8 + 5 * 8 * 8 * 8)


def test_saved_activations_match_what_the_allocator_keeps_after_a_real_forward_pass():
    """An independent count: PyTorch's profiler adds up every CPU allocation and release of a real
    training-mode forward pass; what is still allocated afterwards is the output plus what autograd keeps."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    model = GoogLeNet(num_classes=10, stem="cifar", width=0.25, batch_norm=True).train()
    images = torch.randn(4, 3, 32, 32)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        outputs = model(images)
    outputs_bytes = sum(o.numel() * o.element_size() for o in outputs)
    kept = sum(event.self_cpu_memory_usage for event in profiler.events()) - outputs_bytes
    estimate = cost.saved_activation_bytes(model, batch_size=4)
    assert estimate > 10 * 2**20
    assert abs(estimate - kept) <= 0.01 * kept, (estimate, kept)
    eight, twelve = (cost.saved_activation_bytes(model, batch_size=n) for n in (8, 12))
    assert twelve - eight == eight - estimate > 0.9 * estimate  # per image, plus batch norm's few statistics


def test_training_step_memory_adds_weights_gradients_and_optimizer_state():
    model = GoogLeNet(num_classes=10, stem="cifar", width=0.25, batch_norm=True)
    n = sum(p.numel() for p in model.parameters())
    fp32 = cost.training_step_memory(model, batch_size=16)
    assert (fp32["weights"], fp32["gradients"], fp32["optimizer"], fp32["half_weights"]) == (4 * n, 4 * n, 4 * n, 0)
    assert fp32["total"] == sum(v for k, v in fp32.items() if k != "total")
    fp16 = cost.training_step_memory(model, batch_size=16, precision="fp16", optimizer_copies=2)
    assert fp16["optimizer"] == 8 * n and fp16["half_weights"] == 2 * n
    assert fp32["activations"] / 2 < fp16["activations"] < fp32["activations"]  # max-pool indices stay int64


def test_largest_batch_that_fits_a_t4_and_a_big_gpu():
    model = GoogLeNet(num_classes=10, stem="cifar", width=1.0, batch_norm=True)
    need = {size: cost.training_step_memory(model, size, precision="fp16")["total"] for size in (256, 512)}
    t4 = 15e9  # a T4's 15 GB
    assert need[256] <= 0.8 * t4 < need[512]  # so the pick below is a real decision, not a default
    picked, rows = cost.largest_batch_that_fits(model, t4, precision="fp16")
    assert picked == 256 and [r["batch_size"] for r in rows] == [32, 64, 128, 256, 512]
    assert [r["fits"] for r in rows] == [True, True, True, True, False] and rows[-1]["bytes"] == need[512]
    assert cost.largest_batch_that_fits(model, 80e9, precision="fp16")[0] == 512
    with pytest.raises(ValueError, match=r"even a batch of 32 needs about .* GB.*lower precision"):
        cost.largest_batch_that_fits(model, 1e9)
