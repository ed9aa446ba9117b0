"""The GoogLeNet family, built from small modules named after the paper's parts.

Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842).

* :class:`BasicConv2d`  - convolution (+ optional batch norm) + ReLU
* :class:`SeparableConv2d` - depthwise + pointwise convolution, for the separable conv1 option
* :class:`Inception`    - the dimension-reduced module (paper, Figure 2b)
* :class:`NaiveInception` - the plain module without 1x1 reductions (Figure 2a)
* :class:`AuxClassifier` - the auxiliary head attached to 4a and 4d
* :class:`GoogLeNet`    - the 22-layer network of Table 1
* :class:`SmallInceptionNet` - a narrow CIFAR network a 2-core CPU can train in minutes
* :func:`from_torchvision` - load ``torchvision.models.googlenet`` weights into our model
* :func:`pretrained_googlenet` - torchvision's ImageNet weights in our model (None offline)
* :func:`course_googlenet` - the course's own narrow GoogLeNet, trained on CIFAR-10 (weights/)

``GoogLeNet()`` with no arguments is faithful to the paper: Table 1's channels, true 5x5
convolutions, convolution biases, no batch norm, local response normalisation in the stem,
dropout 0.4 before the classifier, auxiliary heads on 4a and 4d. Where we deviate, or where
the paper does not say, the code says so in a comment marked DEVIATION or UNSPECIFIED.
Module names match torchvision's, so its state dicts load without renaming.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

# The paper's Table 1, one row per Inception block:
# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
PAPER_CHANNELS = OrderedDict(
    [
        ("3a", (64, 96, 128, 16, 32, 32)),
        ("3b", (128, 128, 192, 32, 96, 64)),
        ("4a", (192, 96, 208, 16, 48, 64)),
        ("4b", (160, 112, 224, 24, 64, 64)),
        ("4c", (128, 128, 256, 24, 64, 64)),
        ("4d", (112, 144, 288, 32, 64, 64)),
        ("4e", (256, 160, 320, 32, 128, 128)),
        ("5a", (256, 160, 320, 32, 128, 128)),
        ("5b", (384, 192, 384, 48, 128, 128)),
    ]
)
BLOCKS = tuple(PAPER_CHANNELS)
# AlexNet's local response normalisation constants (Krizhevsky et al., 2012, section 3.3).
LRN_SIZE, LRN_ALPHA = 5, 1e-4
CHANNEL_FIELDS = ("ch1x1", "ch3x3_reduce", "ch3x3", "ch5x5_reduce", "ch5x5", "pool_proj")


class BasicConv2d(nn.Module):
    """Convolution followed by ReLU; with ``batch_norm=True``, conv (no bias) + BatchNorm + ReLU.

    The paper's convolutions all have biases and a ReLU ("All the convolutions, including
    those inside the Inception modules, use rectified linear activation"). Batch norm came about
    five months later (Ioffe & Szegedy, February 2015, arXiv:1502.03167; GoogLeNet: September
    2014); torchvision's GoogLeNet uses it, with eps=0.001.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, batch_norm=False):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=not batch_norm
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001) if batch_norm else nn.Identity()

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class SeparableConv2d(nn.Module):
    """A depthwise separable convolution: a ``k x k`` depthwise conv that gives every input channel
    ``depth_multiplier`` filters of its own, then a 1x1 (pointwise) conv + ReLU that mixes channels.

    Weights: k*k*C_in*depth_multiplier + C_in*depth_multiplier*C_out, far fewer than a full k x k conv.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, depth_multiplier=8,
                 batch_norm=False):
        super().__init__()
        mid = in_channels * depth_multiplier
        # UNSPECIFIED: the paper does not describe this layer at all (see GoogLeNet's conv1 option);
        # we put no bias and no nonlinearity on the depthwise step: the pointwise conv that follows is
        # linear in it, so a depthwise bias could be folded into the pointwise bias.
        self.depthwise = nn.Conv2d(in_channels, mid, kernel_size, stride=stride, padding=padding,
                                   groups=in_channels, bias=False)
        self.pointwise = BasicConv2d(mid, out_channels, 1, batch_norm=batch_norm)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


def _check_channels(module, x):
    if x.dim() != 4 or x.shape[1] != module.in_channels:
        got = tuple(x.shape)
        raise ValueError(
            f"{type(module).__name__} expects input of shape (N, {module.in_channels}, H, W), got {got}. "
            "In a channel table each block's input channels must equal the previous block's output "
            "(ch1x1 + ch3x3 + ch5x5 + pool_proj for a reduced block); fix the table or in_channels."
        )


class Inception(nn.Module):
    """The dimension-reduced Inception module (paper, Figure 2b).

    Four branches see the same input and are concatenated along channels:

    1. 1x1 conv                                  -> ``ch1x1`` channels
    2. 1x1 conv (reduce) -> 3x3 conv              -> ``ch3x3`` channels
    3. 1x1 conv (reduce) -> 5x5 conv              -> ``ch5x5`` channels
    4. 3x3 max pool (stride 1) -> 1x1 conv (proj) -> ``pool_proj`` channels

    Output channels: ``ch1x1 + ch3x3 + ch5x5 + pool_proj``; the spatial size is unchanged.
    ``branch3_kernel_size=3`` reproduces torchvision's 3x3 in place of the 5x5.
    """

    def __init__(
        self, in_channels, ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj,
        batch_norm=False, branch3_kernel_size=5, pool_ceil_mode=False,
    ):
        super().__init__()
        values = dict(zip(("in_channels",) + CHANNEL_FIELDS,
                          (in_channels, ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj)))
        bad = {k: v for k, v in values.items() if not (isinstance(v, int) and v > 0)}
        if bad:
            raise ValueError(f"Inception channel counts must be positive integers, got {bad}.")
        self.in_channels = in_channels
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        k = branch3_kernel_size
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1, batch_norm=batch_norm)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3_reduce, 1, batch_norm=batch_norm),
            BasicConv2d(ch3x3_reduce, ch3x3, 3, padding=1, batch_norm=batch_norm),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5_reduce, 1, batch_norm=batch_norm),
            BasicConv2d(ch5x5_reduce, ch5x5, k, padding=k // 2, batch_norm=batch_norm),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=pool_ceil_mode),
            BasicConv2d(in_channels, pool_proj, 1, batch_norm=batch_norm),
        )

    def branches(self, x):
        """The four branch outputs as a list, before concatenation."""
        _check_channels(self, x)
        return [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]

    def forward(self, x):
        return torch.cat(self.branches(x), dim=1)


class NaiveInception(nn.Module):
    """The naive Inception module (paper, Figure 2a): no 1x1 reductions.

    1x1, 3x3 and 5x5 convolutions and a 3x3 max pool (stride 1) run side by side on the same
    input and are concatenated. The pool branch passes all ``in_channels`` through, so the
    output has ``in_channels + ch1x1 + ch3x3 + ch5x5`` channels: stacked, width only grows.
    ("Naive" means plain, the version before the fix; it has nothing to do with Naive Bayes.)
    """

    def __init__(self, in_channels, ch1x1, ch3x3, ch5x5, batch_norm=False):
        super().__init__()
        values = {"in_channels": in_channels, "ch1x1": ch1x1, "ch3x3": ch3x3, "ch5x5": ch5x5}
        bad = {k: v for k, v in values.items() if not (isinstance(v, int) and v > 0)}
        if bad:
            raise ValueError(f"NaiveInception channel counts must be positive integers, got {bad}.")
        self.in_channels = in_channels
        self.out_channels = in_channels + ch1x1 + ch3x3 + ch5x5
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1, batch_norm=batch_norm)
        self.branch2 = BasicConv2d(in_channels, ch3x3, 3, padding=1, batch_norm=batch_norm)
        self.branch3 = BasicConv2d(in_channels, ch5x5, 5, padding=2, batch_norm=batch_norm)
        self.branch4 = nn.MaxPool2d(3, stride=1, padding=1)

    def branches(self, x):
        """The four branch outputs as a list, before concatenation."""
        _check_channels(self, x)
        return [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]

    def forward(self, x):
        return torch.cat(self.branches(x), dim=1)


class AuxClassifier(nn.Module):
    """Auxiliary classifier (paper, section 5), attached to the outputs of 4a and 4d.

    5x5 average pool, stride 3 (14x14 -> 4x4) -> 1x1 conv to 128 + ReLU -> FC 1024 + ReLU ->
    dropout 0.7 -> linear to ``num_classes``. Its loss is added with weight 0.3 in training;
    at inference it is discarded. ``adaptive_pool=True`` pools to 4x4 adaptively, as
    torchvision does (on a 14x14 map that is a 4x4 window with overlaps, not 5x5/3).
    """

    def __init__(self, in_channels, num_classes, batch_norm=False, dropout=0.7, adaptive_pool=False):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4)) if adaptive_pool else nn.AvgPool2d(5, stride=3)
        self.conv = BasicConv2d(in_channels, 128, 1, batch_norm=batch_norm)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = self.conv(self.pool(x))
        if x.shape[-2:] != (4, 4):
            raise ValueError(
                f"AuxClassifier needs a 4x4 map after pooling, got {tuple(x.shape[-2:])}: its input "
                "must be 14x14 to 16x16 (224x224 images, or 32x32 with the CIFAR stem). "
                "Use a matching image size, or build the model with aux_logits=False."
            )
        x = self.dropout(F.relu(self.fc1(torch.flatten(x, 1)), inplace=True))
        return self.fc2(x)


def validate_channel_table(table):
    """Check a channel table: the nine block names of Table 1, each with six positive ints.

    Returns it as an OrderedDict. Raises ValueError naming the problem and the fix.
    """
    if not isinstance(table, dict):
        raise ValueError(f"channel_table must be a dict of block name -> 6 ints, got {type(table).__name__}.")
    missing = [b for b in BLOCKS if b not in table]
    extra = [b for b in table if b not in BLOCKS]
    if missing or extra:
        raise ValueError(
            f"channel_table must name exactly the blocks {list(BLOCKS)}; missing {missing}, unexpected "
            f"{extra}. Start from a copy of utils.models.PAPER_CHANNELS and change the numbers."
        )
    for name in BLOCKS:
        row = tuple(table[name])
        if len(row) != 6 or not all(isinstance(c, int) and c > 0 for c in row):
            raise ValueError(
                f"channel_table['{name}'] = {row}: expected 6 positive ints "
                f"{CHANNEL_FIELDS}, in the order of the paper's Table 1."
            )
    return OrderedDict((name, tuple(table[name])) for name in BLOCKS)


def scale_channels(table, width):
    """Multiply every channel count in ``table`` by ``width``, rounding, at least 1."""
    return OrderedDict((b, tuple(max(1, round(c * width)) for c in row)) for b, row in table.items())


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1), paper-faithful by default.

    Args:
        num_classes: size of the classifier (1000 for ImageNet, 10 for CIFAR-10).
        aux_logits: build the two auxiliary heads (4a, 4d). In training mode the forward pass
            then returns ``(logits, aux1, aux2)``; in eval mode it always returns ``logits``.
        batch_norm: BasicConv2d with batch norm (and no conv bias), as torchvision does.
        stem: ``"imagenet"`` (7x7/2 conv, pools, 1x1 and 3x3 convs: 224x224 -> 28x28x192) or
            ``"cifar"`` (one 3x3 conv to 192 channels at full resolution, as in widely used
            CIFAR versions: 32x32 -> 32x32x192; the Inception body then runs at 32, 16, 8).
        width: channel multiplier for a narrow member of the family (0.25 = quarter width).
        channel_table: replace Table 1's channels (see :func:`validate_channel_table`).
        dropout, aux_dropout: 0.4 and 0.7 as in the paper.
        torchvision_layout: reproduce torchvision's deviations (used by :func:`from_torchvision`).
        transform_input: torchvision's input re-normalisation (only with torchvision_layout).
        conv1: ``"full"`` (default: a 7x7/2 convolution, 3 -> 64 channels, as Table 1's type column
            says) or ``"separable"`` (a 7x7/2 depthwise convolution with depth multiplier 8, 3 -> 24
            channels, then a 1x1 convolution 24 -> 64: the layer whose weights and multiply-adds,
            2,712 and 34.0M, match Table 1's conv1 row; lesson 03 tells the story).
    """

    def __init__(
        self, num_classes=1000, aux_logits=True, batch_norm=False, stem="imagenet", width=1.0,
        channel_table=None, dropout=0.4, aux_dropout=0.7, torchvision_layout=False,
        transform_input=False, in_channels=3, conv1="full",
    ):
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}.")
        if conv1 not in ("full", "separable"):
            raise ValueError(f"conv1 must be 'full' or 'separable', got {conv1!r}.")
        if conv1 == "separable" and (stem != "imagenet" or torchvision_layout):
            raise ValueError("conv1='separable' replaces the ImageNet stem's 7x7 conv: use it with stem='imagenet' "
                             "and without torchvision_layout.")
        if transform_input and not torchvision_layout:
            raise ValueError("transform_input=True re-normalises inputs the way torchvision's pretrained weights "
                             "expect; it only makes sense with torchvision_layout=True (use from_torchvision).")
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}.")
        table = validate_channel_table(PAPER_CHANNELS if channel_table is None else channel_table)
        table = scale_channels(table, width) if width != 1.0 else table
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.stem = stem
        tv = torchvision_layout
        bn = batch_norm
        c64, c192 = max(1, round(64 * width)), max(1, round(192 * width))

        # DEVIATION (torchvision_layout): torchvision pools with ceil_mode=True and no padding;
        # the paper gives only "3x3/2", so we pad by 1, which yields Table 1's output sizes.
        def stem_pool():
            return nn.MaxPool2d(3, stride=2, ceil_mode=True) if tv else nn.MaxPool2d(3, stride=2, padding=1)

        # UNSPECIFIED: the paper's Figure 3 shows LocalRespNorm after the first pool and after
        # conv3 without its constants; we use AlexNet's (n = 5, alpha = 1e-4, beta = 0.75, k = 2).
        # PyTorch divides alpha by the size n (x / (k + alpha/n * sum x^2)^beta), while AlexNet's
        # formula does not, so AlexNet's alpha = 1e-4 is written here as 5 * 1e-4.
        # DEVIATION: torchvision (and any batch-norm version) drops LRN.
        def lrn():
            return nn.Identity() if (tv or bn) else nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_SIZE * LRN_ALPHA,
                                                                       beta=0.75, k=2.0)

        if stem == "imagenet":
            if conv1 == "separable":
                # UNSPECIFIED: Table 1 types conv1 as "convolution 7x7/2" but lists 2.7K params and 34M ops,
                # under a third of what a full 7x7 conv from 3 to 64 channels costs (9.4K, 118M). Chollet (Xception,
                # arXiv:1610.02357, section 2) writes that "a depthwise separable convolution was used as the
                # first layer of Inception V1"; depth multiplier 8 and a 1x1 conv to 64 fit the row exactly
                # (our inference: the paper gives neither).
                self.conv1 = SeparableConv2d(in_channels, c64, 7, stride=2, padding=3, depth_multiplier=8,
                                             batch_norm=bn)
            else:
                self.conv1 = BasicConv2d(in_channels, c64, 7, stride=2, padding=3, batch_norm=bn)
            self.maxpool1 = stem_pool()
            self.lrn1 = lrn()
            self.conv2 = BasicConv2d(c64, c64, 1, batch_norm=bn)
            self.conv3 = BasicConv2d(c64, c192, 3, padding=1, batch_norm=bn)
            self.lrn2 = lrn()
            self.maxpool2 = stem_pool()
        else:
            # DEVIATION (CIFAR stem): a single 3x3 conv to 192 channels keeps 32x32 resolution;
            # the ImageNet stem would shrink a 32x32 image to 4x4 before the first Inception block.
            self.conv1 = BasicConv2d(in_channels, c192, 3, padding=1, batch_norm=bn)
            for name in ("maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2"):
                setattr(self, name, nn.Identity())

        def block(name, in_ch):
            return Inception(in_ch, *table[name], batch_norm=bn,
                             # DEVIATION (torchvision_layout): torchvision's "5x5" branch is a 3x3
                             # conv; its source calls this a known bug kept for weight compatibility.
                             branch3_kernel_size=3 if tv else 5, pool_ceil_mode=tv)

        channels = c192
        for name in BLOCKS:
            setattr(self, f"inception{name}", block(name, channels))
            channels = getattr(self, f"inception{name}").out_channels
            if name == "3b":
                self.maxpool3 = stem_pool()
            if name == "4e":
                # DEVIATION (torchvision_layout): torchvision pools 2x2/2 before 5a, not 3x3/2.
                self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True) if tv else stem_pool()
        self.out_channels = channels

        if aux_logits:
            # Aux heads: on 4a (512 channels at full width) and 4d (528).
            self.aux1 = AuxClassifier(self.inception4a.out_channels, num_classes, bn, aux_dropout, adaptive_pool=tv)
            self.aux2 = AuxClassifier(self.inception4d.out_channels, num_classes, bn, aux_dropout, adaptive_pool=tv)
        else:
            self.aux1 = self.aux2 = None
        # The paper's "avg pool 7x7/1"; adaptive pooling is the same at 224x224 and lets
        # the network take other input sizes (lesson 04).
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        # Smaller images would leave the last Inception blocks looking mostly at padding.
        self.min_input_size = self._total_stride()

    def _total_stride(self):
        """How many input pixels one pixel of the final feature map steps over (32 or 4)."""
        stride = 1
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
                s = module.stride if isinstance(module.stride, int) else module.stride[0]
                stride *= s
        return stride

    def _check_input(self, x):
        if x.dim() != 4:
            raise ValueError(f"GoogLeNet expects a batch of images (N, C, H, W), got shape {tuple(x.shape)}.")
        h, w = x.shape[-2:]
        if min(h, w) < self.min_input_size:
            hint = (
                "Resize the images (e.g. transforms.Resize(224)), or use stem='cifar' for 32x32 images."
                if self.stem == "imagenet" else "Use larger images."
            )
            raise ValueError(
                f"Input {h}x{w} is too small for the {self.stem} stem: "
                f"it needs at least {self.min_input_size}x{self.min_input_size}. {hint}"
            )

    def _transform(self, x):
        # torchvision's transform_input: undo ImageNet normalisation, redo it as (x - 0.5) / 0.5.
        mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return (x * std + mean - 0.5) / 0.5

    def features(self, x):
        """Everything up to the last Inception block (5b); returns the final feature map."""
        return self._body(x)[0]

    def _body(self, x):
        self._check_input(x)
        if self.transform_input:
            x = self._transform(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.lrn2(self.conv3(self.conv2(self.lrn1(x)))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        use_aux = self.aux_logits and self.training
        aux1 = self.aux1(x) if use_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if use_aux else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        return x, aux1, aux2

    def forward(self, x):
        x, aux1, aux2 = self._body(x)
        logits = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        if aux1 is not None:
            return logits, aux1, aux2
        return logits


def from_torchvision(state_dict, transform_input=False):
    """Build a GoogLeNet laid out like ``torchvision.models.googlenet`` and load its weights.

    The number of classes and whether auxiliary heads exist are read from the state dict.
    torchvision's deviations from the paper, each reproduced by ``torchvision_layout=True``:
    batch norm (eps 0.001) instead of conv biases, no LRN, a 3x3 conv in the "5x5" branch,
    ceil-mode pooling without padding, a 2x2 max pool before 5a, adaptive 4x4 pooling in the
    aux heads, and the optional ``transform_input``. (Its dropout is 0.2; eval ignores it.)

    On Colab: ``from_torchvision(torchvision.models.googlenet(weights="DEFAULT").state_dict(),
    transform_input=True)`` gives the pretrained ImageNet model, in the code you built.
    """
    if "fc.weight" not in state_dict or "inception3a.branch1.conv.weight" not in state_dict:
        raise ValueError(
            "This state dict is not from torchvision's googlenet (no 'fc.weight' / "
            "'inception3a.branch1.conv.weight'). Pass torchvision.models.googlenet(...).state_dict()."
        )
    num_classes = state_dict["fc.weight"].shape[0]
    aux = any(k.startswith("aux1.") for k in state_dict)
    model = GoogLeNet(num_classes=num_classes, aux_logits=aux, batch_norm=True, dropout=0.2,
                      torchvision_layout=True, transform_input=transform_input)
    model.load_state_dict(state_dict)
    return model


def pretrained_googlenet(timeout=3.0):
    """torchvision's ImageNet weights for GoogLeNet in our :class:`GoogLeNet` code, or None offline.

    The weights come from torch.hub's cache (``torch.hub.get_dir()/checkpoints``) or are downloaded
    once (about 50 MB). When they are not cached, a connection check of ``timeout`` seconds comes
    first, so an offline machine does not wait for a download to time out: it prints one line
    starting "Skipped:" with the reason, and the function returns None.

    Returns the model in eval mode, built with :func:`from_torchvision` and ``transform_input=True``
    (the input normalisation these weights expect), without the auxiliary heads (torchvision's own
    warning: they are "NOT pretrained"). Class names and preprocessing:
    ``torchvision.models.GoogLeNet_Weights.DEFAULT.meta["categories"]`` and ``.transforms()``.

    These are not the paper's weights, nor its network: torchvision did not train them; they were
    ported from TensorFlow's (tf-slim) Inception v1 (pytorch/vision#821, #2634, #4848), a network
    with batch norm after every convolution, a 3x3 convolution in the "5x5" branch, and no LRN.
    """
    import pathlib
    import socket

    import torchvision

    weights = torchvision.models.GoogLeNet_Weights.DEFAULT
    cached = pathlib.Path(torch.hub.get_dir()) / "checkpoints" / pathlib.Path(weights.url).name
    reason = None
    if not cached.exists():
        try:
            socket.create_connection(("download.pytorch.org", 443), timeout=timeout).close()
        except OSError as error:
            reason = f"no connection to download.pytorch.org ({type(error).__name__}: {error})"
    if reason is None:
        try:
            state = torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=True,
                                                       weights_only=True)
        except Exception as error:  # a failed download, or a damaged file in the cache
            reason = f"reading or downloading {pathlib.Path(weights.url).name} failed ({type(error).__name__}: {error})"
    if reason is not None:
        print(f"Skipped: no pretrained GoogLeNet weights, {reason}. This part needs the internet once, e.g. on "
              f"Colab: about 50 MB from download.pytorch.org, then cached in {cached.parent}.")
        return None
    state = {key: value for key, value in state.items() if not key.startswith(("aux1.", "aux2."))}
    return from_torchvision(state, transform_input=True).eval()


#: The course's own trained network (weights/README.md says how it was made), and its run's JSON summary.
COURSE_CHECKPOINT = "weights/googlenet_w025.pt"


def course_googlenet():
    """The course's own trained GoogLeNet, in eval mode on the CPU; prints where it comes from.

    A narrow member of the family (``width=0.25``, CIFAR stem, batch norm, no auxiliary heads: 372,578
    parameters), trained on 20,000 CIFAR-10 training images for 6 epochs on a CPU by the course's own
    ``python -m utils.train``; the exact command, its log and its JSON summary sit beside the file in
    weights/. It classifies well enough for class activation maps that point at objects, which the
    networks a lesson trains in its few minutes do not. It is not the paper's network (that needs
    ImageNet and a GPU: lesson 06), and its recorded accuracy is on the offline JPEG copy of CIFAR-10.
    """
    import json

    from .config import REPO_ROOT
    from .train import load_checkpoint

    path = REPO_ROOT / COURSE_CHECKPOINT
    summary = json.loads(path.with_suffix(".json").read_text())
    config = summary["config"]
    model = GoogLeNet(num_classes=10, stem=config["stem"], width=config["width"],
                      batch_norm=not config["no_batch_norm"], aux_logits=not config["no_aux"])
    load_checkpoint(path, model, restore_rng=False)
    print(f"course checkpoint {COURSE_CHECKPOINT}: GoogLeNet width {config['width']}, {config['stem']} stem, "
          f"{count_parameters(model):,} parameters, {summary['epochs_done']} epochs on "
          f"{config['per_class'] * 10:,} training images; test accuracy {summary['final_test_accuracy']:.1%} "
          "on the 10,000 test images (offline JPEG copy), as recorded when it was trained")
    return model.eval()


class SmallInceptionNet(nn.Module):
    """A narrow Inception network for 32x32 images that a 2-core CPU trains in minutes.

    stem: 3x3 conv to ``stem_channels`` at 32x32 -> 2x2 max pool (16x16) -> ``len(blocks)``
    Inception blocks -> global average pool -> linear. ``block="reduced"`` uses
    :class:`Inception` with rows ``(ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj)``;
    ``block="naive"`` uses :class:`NaiveInception` with the same ``ch1x1, ch3x3, ch5x5`` and no
    reductions or pool projection, so its width grows block after block.
    """

    DEFAULT_BLOCKS = ((16, 24, 32, 4, 8, 8), (32, 32, 48, 8, 16, 16), (32, 32, 48, 8, 16, 16), (48, 32, 64, 8, 16, 16))

    def __init__(self, num_classes=10, block="reduced", stem_channels=64, blocks=DEFAULT_BLOCKS, batch_norm=True):
        super().__init__()
        if block not in ("reduced", "naive"):
            raise ValueError(f"block must be 'reduced' or 'naive', got {block!r}.")
        self.stem = nn.Sequential(BasicConv2d(3, stem_channels, 3, padding=1, batch_norm=batch_norm), nn.MaxPool2d(2))
        layers, channels = [], stem_channels
        for row in blocks:
            ch1, r3, ch3, r5, ch5, proj = row
            layer = (Inception(channels, ch1, r3, ch3, r5, ch5, proj, batch_norm=batch_norm) if block == "reduced"
                     else NaiveInception(channels, ch1, ch3, ch5, batch_norm=batch_norm))
            layers.append(layer)
            channels = layer.out_channels
        self.blocks = nn.Sequential(*layers)
        self.out_channels = channels
        self.fc = nn.Linear(channels, num_classes)

    def features(self, x):
        """The feature map after the last block."""
        return self.blocks(self.stem(x))

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def count_parameters(model, trainable_only=False):
    """Number of parameters (weights and biases) in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
