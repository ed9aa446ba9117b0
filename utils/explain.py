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
"""
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
