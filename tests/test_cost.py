"""Cost accounting: analytic formulas against PyTorch's own FlopCounterMode and shapes."""
import logging
import re

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


# ---------------------------------------------------------------------------------------------
# Mutation testing: the behaviours below were left unpinned by the tests above.

def test_conv_output_size_defaults_are_a_plain_valid_convolution():
    """stride 1, no padding, no dilation: a 3x3 conv over 32 pixels leaves 30, a 5x5 leaves 28 (by hand)."""
    assert conv_output_size(32, 3) == 30 and conv_output_size(32, 5) == 28
    assert conv_output_size(7, 7) == 1  # a 7x7 window over a 7x7 map: one position


def test_conv_counts_defaults_rectangles_and_whole_numbers():
    """bias=True and groups=1 by default; (k_h, k_w) kernels and H_out != W_out are counted as PyTorch runs them;
    the counts are ints (a learner prints them; a float would read '296.0')."""
    assert conv_params(4, 8, 3) == 3 * 3 * 4 * 8 + 8 == count_params(nn.Conv2d(4, 8, 3))
    assert conv_params(4, 8, 3, groups=2) == 3 * 3 * 2 * 8 + 8
    assert conv_params(4, 8, (1, 7)) == 1 * 7 * 4 * 8 + 8 == count_params(nn.Conv2d(4, 8, (1, 7)))
    conv = nn.Conv2d(4, 8, (1, 7), groups=2, bias=False)
    x = torch.zeros(1, 4, 5, 11)  # output 5 x 5: (5 - 1 + 1) x (11 - 7 + 1)
    assert measure_macs(conv, x) == conv_macs(4, 8, (1, 7), 5, 5, groups=2) == 5 * 5 * 1 * 7 * 2 * 8
    wide = nn.Conv2d(4, 8, 3, padding=1, groups=4)
    assert measure_macs(wide, torch.zeros(1, 4, 3, 6)) == conv_macs(4, 8, 3, 3, 6, groups=4) == 3 * 6 * 9 * 1 * 8
    counts = [conv_params(4, 8, 3, groups=2), conv_macs(4, 8, 3, 10, groups=2), measure_macs(conv, x),
              *measure_macs(nn.Sequential(conv), x, per_module=True).values()]
    assert all(type(c) is int for c in counts), counts


def test_groups_error_says_why_and_how_to_fix():
    """The message names PyTorch's rule and the fix, word for word."""
    with pytest.raises(ValueError) as error:
        conv_params(6, 8, 3, groups=4)
    assert str(error.value) == ("groups=4 must divide both in_channels=6 and out_channels=8 (PyTorch's Conv2d refuses "
                                "anything else); pick channel counts that are multiples of groups.")


def test_measure_macs_per_module_names_and_silence(capsys):
    """Keys are exactly the module names ('' for the model, no FlopCounterMode 'Global' row); a plain function
    that calls a module keeps the module's own names; nothing is printed (display=False)."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5))
    x = torch.zeros(1, 3, 6, 6)
    conv_ops, fc_ops = 6 * 6 * 9 * 3 * 8, 8 * 36 * 5
    assert measure_macs(model, x, per_module=True) == {"": conv_ops + fc_ops, "0": conv_ops, "3": fc_ops}
    by_function = measure_macs(lambda t: model(t), x, per_module=True)
    assert by_function == {"Sequential": conv_ops + fc_ops, "Sequential.0": conv_ops, "Sequential.3": fc_ops}
    assert measure_macs(model, x) == conv_ops + fc_ops
    assert capsys.readouterr().out == ""


class _FakeTimer:
    """Stands in for torch.utils.benchmark.Timer: records how it was built and run, returns 0.25 s."""

    made = []

    def __init__(self, stmt, globals, num_threads=1):  # noqa: A002 (the real Timer's argument name)
        self.stmt, self.globals, self.num_threads = stmt, globals, num_threads
        _FakeTimer.made.append(self)

    def blocked_autorange(self, min_run_time=0.2):
        self.min_run_time = min_run_time
        return type("Measurement", (), {"median": 0.25})()


@pytest.fixture
def fake_timer(monkeypatch):
    from torch.utils import benchmark

    _FakeTimer.made = []
    monkeypatch.setattr(benchmark, "Timer", _FakeTimer)
    root, ext = logging.getLogger(), logging.getLogger("torch.utils.cpp_extension")
    levels = root.level, ext.level
    root.setLevel(logging.WARNING)
    ext.setLevel(logging.NOTSET)
    yield _FakeTimer.made
    root.setLevel(levels[0])
    ext.setLevel(levels[1])


def test_measure_latency_defaults_and_logging(fake_timer):
    """By default it times for 0.5 s on all of PyTorch's threads; it quiets only torch's cpp_extension logger
    (its harmless CUDA warning), not the root logger a learner's own messages go through."""
    assert measure_latency(len, [1, 2]) == 0.25
    (timer,) = fake_timer
    assert timer.min_run_time == 0.5 and timer.num_threads == torch.get_num_threads()
    assert timer.globals["fn"] is len and timer.globals["inputs"] == ([1, 2],)
    assert logging.getLogger("torch.utils.cpp_extension").level == logging.ERROR
    assert logging.getLogger().level == logging.WARNING
    measure_latency(len, [1], min_run_time=0.1, num_threads=3)
    assert (fake_timer[-1].min_run_time, fake_timer[-1].num_threads) == (0.1, 3)


def test_compare_latency_rounds_settings_and_fastest(monkeypatch):
    """3 rounds of 0.2 s by default, jobs in alternation, threads passed on, each job keeps its fastest median."""
    calls, replies = [], iter([0.5, 3.0, 0.2, 2.0, 0.4, 1.0, 0.3, 4.0])

    def fake(fn, *inputs, min_run_time, num_threads):
        calls.append((fn, inputs, min_run_time, num_threads))
        return next(replies)

    monkeypatch.setattr(cost, "measure_latency", fake)
    jobs = {"a": ("fa", 1), "b": ("fb", 2, 3)}
    assert compare_latency(jobs) == {"a": 0.2, "b": 1.0}
    assert calls == [("fa", (1,), 0.2, None), ("fb", (2, 3), 0.2, None)] * 3
    calls.clear()
    assert compare_latency(jobs, rounds=1, min_run_time=0.05, num_threads=2) == {"a": 0.3, "b": 4.0}
    assert calls == [("fa", (1,), 0.05, 2), ("fb", (2, 3), 0.05, 2)]


def test_patch_reads_kernel_and_stride_of_convs_and_pools_only():
    """'k_h x k_w / stride' of a conv (bare, in a BasicConv2d, or a separable conv's depthwise step) or a pool;
    '' for anything else."""
    from utils.models import BasicConv2d, SeparableConv2d

    assert cost._patch(nn.Conv2d(3, 4, (1, 7), stride=(2, 1))) == "1x7/2"
    assert cost._patch(BasicConv2d(3, 4, 5, stride=3)) == "5x5/3"
    assert cost._patch(SeparableConv2d(3, 4, 7, stride=2)) == "7x7/2"
    assert cost._patch(nn.MaxPool2d(3, stride=2)) == "3x3/2" and cost._patch(nn.AvgPool2d(5, 3)) == "5x5/3"
    assert cost._patch(nn.ReLU()) == "" and cost._patch(nn.AdaptiveAvgPool2d(1)) == ""


# The paper's Table 1 (Szegedy et al. 2014), typed in row by row from the paper, softmax row left out: type,
# patch size/stride, output size, depth, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, params (K), ops (M).
# A blank cell is None.
_ = None
PAPER_ROWS = [
    ("convolution", "7x7/2", "112x112x64", 1, _, _, _, _, _, _, 2.7, 34),
    ("max pool", "3x3/2", "56x56x64", 0, _, _, _, _, _, _, _, _),
    ("convolution", "3x3/1", "56x56x192", 2, _, 64, 192, _, _, _, 112, 360),
    ("max pool", "3x3/2", "28x28x192", 0, _, _, _, _, _, _, _, _),
    ("inception (3a)", "", "28x28x256", 2, 64, 96, 128, 16, 32, 32, 159, 128),
    ("inception (3b)", "", "28x28x480", 2, 128, 128, 192, 32, 96, 64, 380, 304),
    ("max pool", "3x3/2", "14x14x480", 0, _, _, _, _, _, _, _, _),
    ("inception (4a)", "", "14x14x512", 2, 192, 96, 208, 16, 48, 64, 364, 73),
    ("inception (4b)", "", "14x14x512", 2, 160, 112, 224, 24, 64, 64, 437, 88),
    ("inception (4c)", "", "14x14x512", 2, 128, 128, 256, 24, 64, 64, 463, 100),
    ("inception (4d)", "", "14x14x528", 2, 112, 144, 288, 32, 64, 64, 580, 119),
    ("inception (4e)", "", "14x14x832", 2, 256, 160, 320, 32, 128, 128, 840, 170),
    ("max pool", "3x3/2", "7x7x832", 0, _, _, _, _, _, _, _, _),
    ("inception (5a)", "", "7x7x832", 2, 256, 160, 320, 32, 128, 128, 1072, 54),
    ("inception (5b)", "", "7x7x1024", 2, 384, 192, 384, 48, 128, 128, 1388, 71),
    ("avg pool", "7x7/1", "1x1x1024", 0, _, _, _, _, _, _, _, _),
    ("dropout (40%)", "", "1x1x1024", 0, _, _, _, _, _, _, _, _),
    ("linear", "", "1x1x1000", 1, _, _, _, _, _, _, 1000, 1),
]
TABLE_NAMES = ["conv1", "pool1", "conv2", "pool2", "3a", "3b", "pool3", "4a", "4b", "4c", "4d", "4e", "pool4",
               "5a", "5b", "avgpool", "dropout", "linear"]
COLUMNS = ("type", "patch_stride", "output_size", "depth", "#1x1", "#3x3 reduce", "#3x3", "#5x5 reduce", "#5x5",
           "pool proj", "paper_params_K", "paper_ops_M")


def _columns(row):
    return tuple(row[c] for c in COLUMNS)


def test_table1_of_the_paper_layout_model_is_the_published_table(table):
    """Every row and column of the recomputed table against Table 1 as published. One cell differs on purpose:
    the model pools adaptively ('global'), which on 224x224 images is the paper's 7x7/1 over 5b's 7x7 map."""
    assert [r["name"] for r in table] == TABLE_NAMES
    expected = [row if row[0] != "avg pool" else (row[0], "global", *row[2:]) for row in PAPER_ROWS]
    for row, paper in zip(table, expected):
        assert _columns(row) == paper, row["name"]
    assert table[14]["output_size"].startswith("7x7x") and PAPER_ROWS[15][1] == "7x7/1"


def test_table1_with_a_separable_conv1_only_changes_conv1():
    """conv1='separable': a 7x7/2 depthwise step (3 -> 24) then 1x1 to 64, one layer deep as Table 1 counts it;
    params and ops by hand: 7*7*24 + 24*64 + 64 = 2,776 (paper 2.7K); 112*112*(49*24 + 24*64) = 34.0M (paper 34M)."""
    rows = googlenet_table(GoogLeNet(aux_logits=False, conv1="separable"))
    conv1 = rows[0]
    assert _columns(conv1) == ("convolution (depthwise separable)", *PAPER_ROWS[0][1:])
    assert conv1["params"] == 7 * 7 * 24 + 24 * 64 + 64 == 2776
    assert conv1["ops"] == 112 * 112 * (49 * 24 + 24 * 64) == 34_019_328
    assert [_columns(r) for r in rows[1:]] == PAPER_ROWS[1:2] + [
        (p if p[0] != "avg pool" else (p[0], "global", *p[2:])) for p in PAPER_ROWS[2:]]


def test_table1_of_the_cifar_stem():
    """stem='cifar': 32x32 images by default, one 3x3/1 conv to 192 channels and no pool1/conv2/pool2; the
    blocks run at 32, 16 and 8 pixels; the paper's params/ops columns are left blank away from 224x224."""
    rows = googlenet_table(GoogLeNet(num_classes=10, aux_logits=False, stem="cifar"))
    assert [r["name"] for r in rows] == ["conv1"] + TABLE_NAMES[4:]
    assert _columns(rows[0]) == ("convolution", "3x3/1", "32x32x192", 1, _, _, _, _, _, _, _, _)
    paper = {name: row for name, row in zip(TABLE_NAMES, PAPER_ROWS)}
    side = {"3a": 32, "3b": 32, "pool3": 16, "4a": 16, "4b": 16, "4c": 16, "4d": 16, "4e": 16, "pool4": 8,
            "5a": 8, "5b": 8}
    for r in rows[1:-3]:
        p = paper[r["name"]]
        channels = p[2].split("x")[-1]
        size = side[r["name"]]
        assert _columns(r) == (*p[:2], f"{size}x{size}x{channels}", *p[3:-2], _, _), r["name"]
    assert [_columns(r) for r in rows[-3:]] == [
        ("avg pool", "global", "1x1x1024", 0, *[_] * 8), ("dropout (40%)", "", "1x1x1024", 0, *[_] * 8),
        ("linear", "", "1x1x10", 1, *[_] * 8)]


def test_table1_of_the_torchvision_layout_equals_torchvision_itself():
    """torchvision_layout=True, built as from_torchvision builds it, against torchvision's own googlenet (which has
    no 'stem' attribute: 224x224 by default) and its published size (6,624,904 params, 1.498 G multiply-adds);
    the differences from the paper: a 3x3 conv in the '5x5' branch, a 2x2/2 pool before 5a, dropout 20%."""
    torchvision = pytest.importorskip("torchvision")
    ours = googlenet_table(GoogLeNet(aux_logits=False, batch_norm=True, torchvision_layout=True, dropout=0.2))
    theirs = googlenet_table(torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False))
    assert ours == theirs
    meta = torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1.meta
    assert sum(r["params"] for r in ours) == meta["num_params"] == 6_624_904
    assert round(sum(r["ops"] for r in ours) / 1e9, 3) == meta["_ops"] == 1.498
    assert [r["name"] for r in ours] == TABLE_NAMES
    for r, p in zip(ours, PAPER_ROWS):
        if p[0].startswith("inception"):
            p = (p[0] + ", '#5x5' is a 3x3 conv", *p[1:])
        elif r["name"] == "pool4":
            p = (p[0], "2x2/2", *p[2:])
        elif r["name"] == "avgpool":
            p = (p[0], "global", *p[2:])
        elif r["name"] == "dropout":
            p = ("dropout (20%)", *p[1:])
        assert _columns(r) == p, r["name"]


def test_table1_weights_only_leaves_batch_norm_out():
    """With batch norm, weights_only counts conv weights alone (no conv biases exist; BN's scale and shift are
    left out): torchvision's 3a, whose '5x5' branch is 3x3, by hand."""
    model = GoogLeNet(aux_logits=False, batch_norm=True, torchvision_layout=True)
    rows = {r["name"]: r for r in googlenet_table(model, image_size=64, weights_only=True)}
    assert rows["3a"]["params"] == 192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 9 * 16 * 32 + 192 * 32 == 155_136
    assert rows["conv1"]["params"] == 7 * 7 * 3 * 64 and rows["linear"]["params"] == 1024 * 1000


def test_table_output_size_is_height_by_width_by_channels():
    """A conv1 with stride (2, 1) halves the height only: 64x64 images give 32x64x64 after conv1, 16x32x64 after
    pool1 (by hand), height first."""
    from utils.models import BasicConv2d

    model = GoogLeNet(aux_logits=False)
    model.conv1 = BasicConv2d(3, 64, 7, stride=(2, 1), padding=3)
    rows = googlenet_table(model, image_size=64)
    assert [r["output_size"] for r in rows[:2]] == ["32x64x64", "16x32x64"]
    assert rows[-1]["output_size"] == "1x1x1000"


def test_saved_activations_defaults_bf16_and_the_model_left_untouched():
    """Default 32x32 images in fp32: a lone conv keeps only its input, 2 x 3 x 32 x 32 values of 4 bytes (by hand);
    bf16 stores 2 bytes a value. The count runs on a copy: the model keeps its device, dtype and eval mode."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)).eval()
    assert cost.saved_activation_bytes(net, batch_size=2) == 4 * 2 * 3 * 32 * 32
    assert cost.saved_activation_bytes(net, 2, precision="bf16") == 2 * 2 * 3 * 32 * 32
    weight = net[0].weight
    assert (weight.device.type, weight.dtype, net.training, net[0].training) == ("cpu", torch.float32, False, False)
    assert net(torch.ones(1, 3, 4, 4)).shape == (1, 4, 4, 4)


def test_training_step_memory_defaults_and_bf16():
    """Default 32x32 images in fp32, one optimizer copy; bf16 autocast, like fp16, adds a 2-byte copy of the
    weights and halves the activations (a lone conv: its input, by hand)."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    n = 3 * 3 * 3 * 4 + 4
    fp32 = cost.training_step_memory(net, 2)
    parts = {"weights": 4 * n, "gradients": 4 * n, "optimizer": 4 * n, "half_weights": 0,
             "activations": 4 * 2 * 3 * 32 * 32}
    assert fp32 == {**parts, "total": sum(parts.values())}
    bf16 = cost.training_step_memory(net, 2, precision="bf16")
    assert (bf16["half_weights"], bf16["activations"]) == (2 * n, 2 * 2 * 3 * 32 * 32)


@pytest.fixture
def fake_step_memory(monkeypatch):
    """training_step_memory replaced by 10 MB a sample (1 MB = 10**6 bytes); records each call."""
    calls = []

    def fake(model, batch_size, image_size, precision):
        calls.append((model, batch_size, image_size, precision))
        return {"total": batch_size * 10**7}

    monkeypatch.setattr(cost, "training_step_memory", fake)
    return calls


def test_largest_batch_that_fits_plans_for_margin_times_the_free_memory(fake_step_memory):
    """Candidates are tried smallest first, on 32x32 fp32 images by default; a step fits when it needs at most
    margin (0.8 by default) x the free bytes: 1 GB free leaves 800 MB, so 80 samples (800 MB) fit, 100 do not."""
    picked, rows = cost.largest_batch_that_fits("model", 10**9, candidates=(100, 20, 80))
    assert picked == 80
    assert rows == [{"batch_size": 20, "bytes": 2 * 10**8, "fits": True},
                    {"batch_size": 80, "bytes": 8 * 10**8, "fits": True},
                    {"batch_size": 100, "bytes": 10**9, "fits": False}]
    assert fake_step_memory == [("model", 20, 32, "fp32"), ("model", 80, 32, "fp32"), ("model", 100, 32, "fp32")]
    fake_step_memory.clear()
    assert cost.largest_batch_that_fits("m", 10**9, (20, 100), image_size=64, precision="bf16", margin=1)[0] == 100
    assert fake_step_memory == [("m", 20, 64, "bf16"), ("m", 100, 64, "bf16")]


def test_largest_batch_that_fits_refuses_a_margin_outside_0_to_1(fake_step_memory):
    """margin is a share of the free memory: 0 < margin <= 1, else a ValueError that says so and echoes it."""
    for bad in (0, -0.5, 1.5, 2):
        with pytest.raises(ValueError, match=re.escape(
                f"margin is the share of the free memory to plan for, between 0 and 1; got {bad}.")):
            cost.largest_batch_that_fits("model", 10**9, margin=bad)
    assert fake_step_memory == []


def test_largest_batch_that_fits_says_what_the_smallest_step_needs(fake_step_memory):
    """Nothing fits: the message names the smallest candidate, its need and the free memory in GB (10**9 bytes,
    one decimal: 1.35 GB prints as 1.4) and the three ways out."""
    with pytest.raises(ValueError) as error:
        cost.largest_batch_that_fits("model", 1.35e9, candidates=(270, 135), margin=0.5)
    assert str(error.value) == (
        "even a batch of 135 needs about 1.4 GB, more than 50% of the 1.4 GB free: use a narrower model, a lower "
        "precision ('fp16' or 'bf16'), or free GPU memory (restart the runtime).")
