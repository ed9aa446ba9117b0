"""What a layer or a network costs: parameters, multiply-adds, measured time, and the memory of a
training step (estimated without a GPU); and its geometry (output sizes and receptive fields).

Two ways to count, which the tests hold equal:

* analytic, from a layer's shape (the formulas the lessons teach):
  params = k_h * k_w * C_in/groups * C_out (+ C_out biases),
  multiply-adds = H_out * W_out * k_h * k_w * C_in/groups * C_out;
* measured, by running the model under ``torch.utils.flop_counter.FlopCounterMode``,
  which counts the FLOPs of every matmul and convolution PyTorch executes (1 multiply-add =
  2 FLOPs; bias additions, ReLU and pooling are not counted, as in the paper's "ops").
"""
import copy
import logging
import math

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1, ceil_mode=False):
    """Output length of a convolution or pooling along one axis.

    floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1
    (``ceil_mode=True`` rounds up, as PyTorch pools can; a window may not start in the padding).
    """
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1  # ceil or floor division, as PyTorch does
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return max(out, 0)


def receptive_field(layers, jump=False):
    """Receptive field after each layer of a stack: how many input pixels one output value sees.

    ``layers``: one ``(kernel, stride)`` or ``(kernel, stride, dilation)`` per layer, first layer
    first (a pooling layer counts like a convolution of its window). Each layer widens the field by
    ``(kernel - 1) * dilation * jump``, where the jump, the product of the strides so far, is the
    distance in input pixels between neighbouring values of its input. Padding changes neither.

    Returns one field per layer: ``receptive_field([(3, 1), (3, 1)]) == [3, 5]``. With
    ``jump=True``, one ``(field, jump)`` pair per layer instead: the jump after the last layer is
    how far apart neighbouring output values look, in input pixels.
    """
    field, step, result = 1, 1, []
    for layer in layers:
        if len(layer) not in (2, 3) or not all(isinstance(v, int) and v >= 1 for v in layer):
            raise ValueError(f"each layer must be (kernel, stride) or (kernel, stride, dilation), positive whole "
                             f"numbers; got {layer!r}. A 2x2 pool with stride 2 is (2, 2).")
        kernel, stride, dilation = (*layer, 1)[:3]
        field += (kernel - 1) * dilation * step
        step *= stride
        result.append((field, step) if jump else field)
    return result


def _check_groups(in_channels, out_channels, groups):
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups={groups} must divide both in_channels={in_channels} and out_channels={out_channels} "
            "(PyTorch's Conv2d refuses anything else); pick channel counts that are multiples of groups.")


def conv_params(in_channels, out_channels, kernel_size, bias=True, groups=1):
    """Parameters of a Conv2d: k_h * k_w * (C_in / groups) * C_out weights, plus C_out biases."""
    _check_groups(in_channels, out_channels, groups)
    kh, kw = _pair(kernel_size)
    return kh * kw * (in_channels // groups) * out_channels + (out_channels if bias else 0)


def conv_macs(in_channels, out_channels, kernel_size, out_height, out_width=None, groups=1):
    """Multiply-adds of a Conv2d: one k_h*k_w*(C_in/groups) dot product per output value."""
    _check_groups(in_channels, out_channels, groups)
    kh, kw = _pair(kernel_size)
    out_width = out_height if out_width is None else out_width
    return out_height * out_width * kh * kw * (in_channels // groups) * out_channels


def count_params(model):
    """Number of parameters (weights and biases) of a module."""
    return sum(p.numel() for p in model.parameters())


def measure_macs(model, *inputs, per_module=False):
    """Multiply-adds of one forward pass, counted by PyTorch's FlopCounterMode.

    Returns the total, or with ``per_module=True`` a dict {module name: multiply-adds}
    with names as in ``model.named_modules()`` ("" for the whole model).
    """
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*inputs)
    if not per_module:
        return counter.get_total_flops() // 2
    prefix = type(model).__name__
    result = {}
    for name, ops in counter.get_flop_counts().items():
        if name == "Global":
            continue
        key = name[len(prefix) + 1:] if name.startswith(prefix + ".") else ("" if name == prefix else name)
        result[key] = sum(ops.values()) // 2
    return result


def measure_latency(fn, *inputs, min_run_time=0.5, num_threads=None):
    """Median seconds per call of ``fn(*inputs)``, timed with ``torch.utils.benchmark``.

    It runs the call repeatedly for about ``min_run_time`` seconds on ``num_threads`` threads
    (default: all the threads PyTorch uses), synchronising CUDA when the inputs live on a GPU.
    """
    # On a CUDA build of torch without a GPU, importing the benchmark module logs a harmless warning.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import benchmark

    timer = benchmark.Timer(
        stmt="with torch.no_grad(): fn(*inputs)",
        globals={"fn": fn, "inputs": inputs, "torch": torch},
        num_threads=num_threads or torch.get_num_threads(),
    )
    return timer.blocked_autorange(min_run_time=min_run_time).median


def compare_latency(jobs, rounds=3, min_run_time=0.2, num_threads=None):
    """Fastest median seconds per call of several calls, timed in alternation.

    ``jobs`` maps a name to ``(fn, *inputs)``. Each round times every job once with
    ``measure_latency``; each job keeps its fastest median. Background work on a shared
    machine can only slow a measurement down, and interleaving the jobs keeps a burst of it
    from landing on one job only.
    """
    best = {}
    for _ in range(rounds):
        for name, (fn, *inputs) in jobs.items():
            seconds = measure_latency(fn, *inputs, min_run_time=min_run_time, num_threads=num_threads)
            best[name] = min(best.get(name, math.inf), seconds)
    return best


# The paper's Table 1 as published: params in thousands, ops (multiply-adds) in millions.
PAPER_TABLE1 = {
    "conv1": (2.7, 34), "conv2": (112, 360), "3a": (159, 128), "3b": (380, 304),
    "4a": (364, 73), "4b": (437, 88), "4c": (463, 100), "4d": (580, 119), "4e": (840, 170),
    "5a": (1072, 54), "5b": (1388, 71), "linear": (1000, 1),
}


def _patch(module):
    """'7x7/2'-style patch size and stride of a conv or pool module ('' for anything else)."""
    module = getattr(module, "depthwise", getattr(module, "conv", module))
    if not isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return ""
    (kh, kw), (stride, _) = _pair(module.kernel_size), _pair(module.stride)
    return f"{kh}x{kw}/{stride}"


def _table_rows(model):
    """(row label, type, patch/stride, module names, channel columns) in Table 1's order.

    Rows whose module is absent (the CIFAR stem has no pools or conv2) are left out; patch sizes
    and strides are read from the modules themselves.
    """
    m = model
    separable = hasattr(m.conv1, "depthwise")
    rows = [("conv1", "convolution (depthwise separable)" if separable else "convolution", _patch(m.conv1),
             ["conv1"], {})]
    if not isinstance(m.conv2, nn.Identity):
        rows += [("pool1", "max pool", _patch(m.maxpool1), ["maxpool1"], {}),
                 ("conv2", "convolution", _patch(m.conv3), ["conv2", "conv3"],
                  {"#3x3 reduce": m.conv2.conv.out_channels, "#3x3": m.conv3.conv.out_channels}),
                 ("pool2", "max pool", _patch(m.maxpool2), ["maxpool2"], {})]
    for name in ("3a", "3b", "pool3", "4a", "4b", "4c", "4d", "4e", "pool4", "5a", "5b"):
        if name.startswith("pool"):
            rows.append((name, "max pool", _patch(getattr(m, f"max{name}")), [f"max{name}"], {}))
            continue
        block = getattr(m, f"inception{name}")
        cols = {
            "#1x1": block.branch1.conv.out_channels,
            "#3x3 reduce": block.branch2[0].conv.out_channels, "#3x3": block.branch2[1].conv.out_channels,
            "#5x5 reduce": block.branch3[0].conv.out_channels, "#5x5": block.branch3[1].conv.out_channels,
            "pool proj": block.branch4[1].conv.out_channels,
        }
        kind = f"inception ({name})"
        k = block.branch3[1].conv.kernel_size[0]
        if k != 5:  # torchvision's layout: the "5x5" columns then describe a 3x3 convolution
            kind += f", '#5x5' is a {k}x{k} conv"
        rows.append((name, kind, "", [f"inception{name}"], cols))
    rows += [
        ("avgpool", "avg pool", "global", ["avgpool"], {}),
        ("dropout", f"dropout ({m.dropout.p:.0%})", "", ["dropout"], {}),
        ("linear", "linear", "", ["fc"], {}),
    ]
    return rows


def googlenet_table(model, image_size=None, weights_only=False):
    """The paper's Table 1 recomputed from ``model`` (a :class:`utils.models.GoogLeNet`).

    One dict per row: type, patch/stride, output size, depth, the channel columns, params and
    ops (multiply-adds, FlopCounterMode) computed from the model, and the paper's published
    params (K) and ops (M) beside them. ``weights_only=True`` leaves biases (and batch-norm
    parameters) out of params. ``image_size`` defaults to 224 (32 for the CIFAR stem).
    """
    if image_size is None:
        image_size = 32 if getattr(model, "stem", "imagenet") == "cifar" else 224
    was_training = model.training
    model.eval()
    x = torch.zeros(1, 3, image_size, image_size)
    shapes, hooks = {}, []
    for name, module in model.named_children():
        hooks.append(module.register_forward_hook(lambda mod, inp, out, name=name: shapes.__setitem__(name, out.shape)))
    try:
        macs = measure_macs(model, x, per_module=True)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    table = []
    for label, kind, patch, modules, cols in _table_rows(model):
        params = sum(
            p.numel() for mod in modules for pname, p in getattr(model, mod).named_parameters()
            if not (weights_only and (pname.endswith("bias") or ".bn." in f".{pname}"))
        )
        shape = shapes[modules[-1]]
        size = f"{shape[2]}x{shape[3]}x{shape[1]}" if len(shape) == 4 else f"1x1x{shape[1]}"
        # depth counts layers with parameters as the paper does; a depthwise step is part of its separable conv
        convs = [mm for mod in modules for mm in getattr(model, mod).modules()
                 if isinstance(mm, nn.Conv2d) and mm.groups == 1]
        depth = 1 if label == "linear" else (2 if label.startswith(("3", "4", "5")) else len(convs))
        paper = PAPER_TABLE1.get(label, (None, None)) if image_size == 224 else (None, None)
        table.append(dict(
            name=label, type=kind, patch_stride=patch, output_size=size, depth=depth,
            **{k: cols.get(k) for k in ("#1x1", "#3x3 reduce", "#3x3", "#5x5 reduce", "#5x5", "pool proj")},
            params=params, ops=sum(macs.get(mod, 0) for mod in modules),
            paper_params_K=paper[0], paper_ops_M=paper[1],
        ))
    return table


# ---------------------------------------------------------------------------------------------
# Memory: what one training step holds, estimated without a GPU.

#: The floating-point type a precision stores activations in ("fp16" and "bf16" under autocast).
PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def saved_activation_bytes(model, batch_size, image_size=32, precision="fp32"):
    """Bytes that autograd keeps for the backward pass after one training-mode forward pass of ``model``.

    Counted on PyTorch's meta device, which knows every tensor's shape and type but stores no data, so
    a batch of any size is counted in a fraction of a second on a CPU. A saved-tensor hook
    (``torch.autograd.graph.saved_tensors_hooks``) sees each tensor that a layer keeps for its backward
    pass (a convolution's input, a batch norm's input and statistics, a max pool's indices); each is
    counted once, however many layers keep it, and the weights are left out (they are counted as
    weights). For "fp16" and "bf16" the model runs in that type, as its convolutions do under autocast.
    """
    meta = copy.deepcopy(model).to(device="meta", dtype=PRECISION_DTYPES[precision]).train()
    weights = {id(p) for p in meta.parameters()}
    kept = {}

    def pack(tensor):
        base = tensor if tensor._base is None else tensor._base  # a view is counted as the tensor it views
        if id(tensor) not in weights and id(base) not in weights:
            kept[id(base)] = base  # holding the tensor keeps its id from being reused
        return tensor

    images = torch.empty(batch_size, 3, image_size, image_size, device="meta", dtype=PRECISION_DTYPES[precision])
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        meta(images)
    return sum(t.numel() * t.element_size() for t in kept.values())


def training_step_memory(model, batch_size, image_size=32, precision="fp32", optimizer_copies=1):
    """Estimated bytes one training step of ``model`` holds at once, part by part (a dict).

    * ``weights``, ``gradients``: one float32 copy each; ``optimizer``: ``optimizer_copies`` more (SGD
      with momentum keeps 1, Adam and AdamW 2);
    * ``half_weights``: under fp16/bf16 autocast, the half-precision copy of the weights it makes;
    * ``activations``: what the forward pass keeps for the backward pass (:func:`saved_activation_bytes`).

    Left out, and so the reason to keep a margin: the backward pass's temporary buffers, the
    convolution libraries' workspace and the allocator's rounding. ``torch.compile`` keeps fewer
    activations than this eager count.
    """
    n = sum(p.numel() for p in model.parameters())
    parts = {"weights": 4 * n, "gradients": 4 * n, "optimizer": 4 * n * optimizer_copies,
             "half_weights": 2 * n if precision in ("fp16", "bf16") else 0,
             "activations": saved_activation_bytes(model, batch_size, image_size, precision)}
    return {**parts, "total": sum(parts.values())}


def largest_batch_that_fits(model, free_bytes, candidates=(32, 64, 128, 256, 512), image_size=32, precision="fp32",
                            margin=0.8):
    """The largest batch size of ``candidates`` whose estimated step fits in ``margin`` x ``free_bytes``.

    ``free_bytes`` is the memory the GPU has free (``torch.cuda.mem_get_info()[0]``); the other fifth
    (``margin=0.8``) is kept for what :func:`training_step_memory` leaves out. Returns ``(batch_size,
    rows)``, one row per candidate: ``{"batch_size", "bytes", "fits"}``. Raises ValueError, naming the
    smallest step's need, when not even the smallest candidate fits.
    """
    if not 0 < margin <= 1:
        raise ValueError(f"margin is the share of the free memory to plan for, between 0 and 1; got {margin}.")
    rows = []
    for size in sorted(candidates):
        need = training_step_memory(model, size, image_size, precision)["total"]
        rows.append({"batch_size": size, "bytes": need, "fits": need <= margin * free_bytes})
    fitting = [row["batch_size"] for row in rows if row["fits"]]
    if not fitting:
        raise ValueError(f"even a batch of {rows[0]['batch_size']} needs about {rows[0]['bytes'] / 1e9:.1f} GB, more "
                         f"than {margin:.0%} of the {free_bytes / 1e9:.1f} GB free: use a narrower model, a lower "
                         "precision ('fp16' or 'bf16'), or free GPU memory (restart the runtime).")
    return fitting[-1], rows
