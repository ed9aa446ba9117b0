"""Looking inside a network: class activation maps (lesson 04) and gradient norms (lesson 05).

Class activation maps (Zhou et al., 2016, "Learning Deep Features for Discriminative
Localization", arXiv:1512.04150). For a network that ends in global average pooling and one
linear layer, the score of class c is

    score_c = sum_k w[c, k] * mean_xy f_k(x, y) + b_c = mean_xy M_c(x, y) + b_c,
    with      M_c(x, y) = sum_k w[c, k] * f_k(x, y),

where f_k is channel k of the last feature map. M_c, the class activation map, says how much
each position of that map adds to class c's score. It needs no gradients, only the linear
layer's weights: that is why GAP makes it free.

Gradient norms: :class:`GradientRecorder` hooks named modules, keeps the activations they output
in a forward pass, and measures how large the gradient of any loss is when it reaches each of
them. :func:`weight_gradient_norms` reads the gradients of each layer's weights after ``backward``.
:func:`aux_gradient_split` uses it to split the gradient reaching GoogLeNet's early layers into
what the main loss and each auxiliary loss send (lessons 05 and 06).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def class_activation_maps(features, weight):
    """M_c(x, y) = sum_k weight[c, k] * features[n, k, x, y], for every image n and class c.

    Args:
        features: the last feature map, (N, K, h, w).
        weight: the final linear layer's weight, (num_classes, K).
    Returns (N, num_classes, h, w).
    """
    if features.dim() != 4 or weight.dim() != 2 or weight.shape[1] != features.shape[1]:
        raise ValueError(
            f"class_activation_maps needs features (N, K, h, w) and weights (classes, K) with the same K; got "
            f"{tuple(features.shape)} and {tuple(weight.shape)}. Pass model.features(x) and model.fc.weight.")
    return torch.einsum("ck,nkhw->nchw", weight, features)


@torch.no_grad()
def cam(model, images, upsample=True):
    """Class activation maps of ``model`` for ``images``, every class: (N, num_classes, H, W).

    ``model`` must have ``features(x)`` (the last feature map) and ``fc`` (a linear layer applied
    to its global average), as :class:`utils.models.GoogLeNet` and ``SmallInceptionNet`` do.
    ``upsample`` resizes the maps bilinearly from the feature map's size to the image size, for
    an overlay (``upsample=False`` keeps them at (N, num_classes, h, w)). Index the result:
    ``cam(model, x)[i, c]`` is image i's map for class c.
    """
    if not (hasattr(model, "features") and isinstance(getattr(model, "fc", None), nn.Linear)):
        raise TypeError(
            f"{type(model).__name__} has no features() + fc (Linear) pair. Class activation maps need a network that "
            "ends in global average pooling and one linear layer; a flatten + FC head mixes positions, so its "
            "weights do not split into one map per class.")
    was_training = model.training
    model.eval()
    try:
        maps = class_activation_maps(model.features(images), model.fc.weight)
    finally:
        model.train(was_training)
    if upsample:
        maps = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return maps


class GradientRecorder:
    """Measure the gradient that reaches named modules, for one or several losses.

    Forward hooks keep each named module's output; :meth:`measure` then asks autograd for the
    gradient of a loss with respect to each kept output and records its norm. Parameter
    gradients (``.grad``) are not touched, so it can measure the main loss and each auxiliary
    loss of the same forward pass separately::

        with GradientRecorder(model, ["conv1", "inception3a", "inception3b"]) as recorder:
            logits, aux1, aux2 = model(images)
            recorder.measure("main", F.cross_entropy(logits, labels))
            recorder.measure("aux1 x 0.3", 0.3 * F.cross_entropy(aux1, labels))
        recorder.rows    # [{'loss': 'main', 'layer': 'conv1', 'grad_norm': ..., 'grad_rms': ...}, ...]
    """

    def __init__(self, model, names):
        modules = dict(model.named_modules())
        missing = [name for name in names if name not in modules]
        if missing:
            raise ValueError(f"no module named {missing} in {type(model).__name__}; choose from "
                             f"{[n for n in modules if n][:12]}... (model.named_modules()).")
        self.names = list(names)
        self.outputs = {}
        self.rows = []
        self._hooks = [modules[name].register_forward_hook(self._keeper(name)) for name in self.names]

    def _keeper(self, name):
        def keep(module, inputs, output):
            self.outputs[name] = output
        return keep

    def measure(self, label, loss):
        """Record, for each named module, the norm (and root-mean-square) of d loss / d output."""
        kept = [self.outputs[name] for name in self.names]
        grads = torch.autograd.grad(loss, kept, retain_graph=True, allow_unused=True)
        result = {}
        for name, grad in zip(self.names, grads):
            norm = 0.0 if grad is None else grad.float().norm().item()
            rms = 0.0 if grad is None else grad.float().pow(2).mean().sqrt().item()
            self.rows.append({"loss": label, "layer": name, "grad_norm": norm, "grad_rms": rms})
            result[name] = norm
        return result

    def table(self):
        """{loss label: {layer: gradient norm}}, in the order measured."""
        out = {}
        for row in self.rows:
            out.setdefault(row["loss"], {})[row["layer"]] = row["grad_norm"]
        return out

    def close(self):
        for hook in self._hooks:
            hook.remove()
        self._hooks, self.outputs = [], {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def weight_gradient_norms(model, kinds=(nn.Conv2d, nn.Linear)):
    """{module name: norm of its weight's gradient} for every conv and linear layer, in order.

    Call it after ``loss.backward()``. Layers whose weight has no gradient are left out.
    """
    return {name: module.weight.grad.float().norm().item() for name, module in model.named_modules()
            if isinstance(module, kinds) and module.weight.grad is not None}


@dataclass
class GradientSplit:
    """What :func:`aux_gradient_split` measured. ``print()`` it for a table."""

    table: dict             # {"main": {layer: norm}, "aux1 x 0.3": {...}, "aux2 x 0.3": {...}, "total": {...}}
    aux_share: dict         # {layer: (aux1 + aux2) / (main + aux1 + aux2)}, of the gradient norms
    input_dependence: dict  # {layer: how much its output varies across images: mean std over images / rms}
    n_images: int

    def report(self):
        """The gradient norms (rows: losses, columns: layers), the input dependence and the aux heads' share."""
        layers = list(self.aux_share)
        width = max(map(len, layers)) + 2
        title = f"gradient norm reaching ({self.n_images} images)"
        rows = {**self.table, "input dependence": self.input_dependence}
        first = max(len(title), *(len(label) + 2 for label in rows))
        lines = [title.ljust(first) + "".join(f"{name:>{width}}" for name in layers)]
        lines += [f"  {label}".ljust(first) + "".join(f"{row[name]:>{width}.2e}" for name in layers)
                  for label, row in rows.items()]
        lines.append("aux heads' share of the summed norms: "
                     + ", ".join(f"{name} {share:.0%}" for name, share in self.aux_share.items()))
        return "\n".join(lines)

    def __str__(self):
        return self.report()


def aux_gradient_split(model, images, labels, layers=("conv1", "inception3a", "inception3b"), aux_weight=0.3,
                       label_smoothing=0.0, max_images=64, seed=0):
    """How much gradient GoogLeNet's main loss and each auxiliary loss (x ``aux_weight``) send to ``layers``.

    One forward pass in train mode (the aux heads only run in training) on the first ``max_images``
    images, then one ``autograd.grad`` per loss through :class:`GradientRecorder`: the main loss,
    aux1 x 0.3, aux2 x 0.3 and their sum (the loss training minimises). ``seed`` fixes the dropout
    masks, so every call on the same model and images measures the same thing.

    Memory: the graph of the whole forward pass is kept for the four gradients, in fp32. For the
    full-width network with the CIFAR stem that is about 42 MB per image (autograd's saved tensors,
    measured), so a 512-image training batch would keep about 21 GB, more than a T4's 15 GB; the
    default ``max_images=64`` keeps about 2.7 GB. Pass a probe batch; ``max_images=None`` uses all.
    The model is left as it was: its mode, its batch-norm statistics, its ``.grad`` and the global
    random state are unchanged.

    Returns a :class:`GradientSplit`: ``.table`` {loss: {layer: gradient norm}}, ``.aux_share``
    {layer: (aux1 + aux2) / (main + aux1 + aux2)}, and ``.input_dependence`` {layer: the spread of its
    output across images, divided by its size}, near 0 when a layer's output no longer depends on
    the image (a collapsed signal).
    """
    if not getattr(model, "aux_logits", False):
        raise ValueError(f"{type(model).__name__} has no auxiliary heads to measure; build it with "
                         "GoogLeNet(..., aux_logits=True).")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels: pass one label per image.")
    images, labels = images[:max_images], labels[:max_images]
    was_training = model.training
    saved = {name: buffer.clone() for name, buffer in model.named_buffers()}
    devices = [images.device] if images.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), GradientRecorder(model, layers) as recorder:
            torch.manual_seed(seed)
            logits, aux1, aux2 = model.train()(images)
            losses = {"main": F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)}
            for name, head in (("aux1", aux1), ("aux2", aux2)):
                losses[f"{name} x {aux_weight:g}"] = aux_weight * F.cross_entropy(head.float(), labels,
                                                                                  label_smoothing=label_smoothing)
            for label, loss in losses.items():
                recorder.measure(label, loss)
            recorder.measure("total", sum(losses.values()))
            dependence = {name: (out.std(dim=0).mean() / out.pow(2).mean().sqrt()).item()
                          for name, out in recorder.outputs.items()}
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(saved[name])
    table = recorder.table()
    main, first, second = (table[label] for label in losses)
    share = {name: (first[name] + second[name]) / (main[name] + first[name] + second[name]) for name in layers}
    return GradientSplit(table, share, {name: dependence[name] for name in layers}, len(images))
