"""Figures that more than one lesson draws: training curves, image grids, feature maps,
filters, confusion matrices and cost bars. Each function returns the matplotlib Figure."""
import matplotlib.pyplot as plt
import torch

from .data import CIFAR10_MEAN, CIFAR10_STD


def _to_display(images):
    """(N, 3, H, W) uint8, or normalised float, as float (N, H, W, 3) in 0..1 for imshow."""
    images = images.detach().cpu()
    if images.dtype == torch.uint8:
        x = images.float() / 255
    else:
        mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
        x = images.float() * std + mean if images.shape[1] == 3 else images.float()
    return x.clamp(0, 1).permute(0, 2, 3, 1)


def plot_history(history, title=None):
    """Loss and accuracy per epoch, train and test, side by side."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.2))
    ax_loss.plot(history.epoch, history.train_loss, "o-", label="train")
    ax_acc.plot(history.epoch, [a * 100 for a in history.train_acc], "o-", label="train")
    if any(v is not None for v in history.test_loss):
        ax_loss.plot(history.epoch, history.test_loss, "s-", label="test")
        ax_acc.plot(history.epoch, [a * 100 for a in history.test_acc], "s-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_images(images, labels=None, classes=None, ncols=8, title=None, predictions=None):
    """A grid of images with their class names (and predictions, wrong ones in red)."""
    x = _to_display(images)
    n = len(x)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.4 * ncols, 1.55 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(x[i], interpolation="nearest")
        if labels is not None:
            name = classes[int(labels[i])] if classes else str(int(labels[i]))
            color = "black"
            if predictions is not None:
                guess = classes[int(predictions[i])] if classes else str(int(predictions[i]))
                color = "black" if int(predictions[i]) == int(labels[i]) else "crimson"
                name = f"{name}\n→ {guess}"
            ax.set_title(name, fontsize=8, color=color)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_feature_maps(maps, ncols=8, title=None, cmap="viridis", max_maps=32):
    """Channels of one feature map (C, H, W) as a grid of small images."""
    maps = maps.detach().cpu()[:max_maps]
    n = len(maps)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.3 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(maps[i], cmap=cmap, interpolation="nearest")
            ax.set_title(f"ch {i}", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_filters(weight, ncols=16, title=None):
    """First-layer RGB filters (C_out, 3, k, k), each rescaled to 0..1 to show its pattern."""
    w = weight.detach().cpu().float()
    low = w.amin(dim=(1, 2, 3), keepdim=True)
    high = w.amax(dim=(1, 2, 3), keepdim=True)
    w = (w - low) / (high - low + 1e-8)
    n = len(w)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.8 * ncols, 0.8 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(w[i].permute(1, 2, 0), interpolation="nearest")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(confusion, classes, title="confusion matrix (rows: true, columns: predicted)"):
    """A confusion matrix with counts in the cells."""
    confusion = torch.as_tensor(confusion)
    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    limit = confusion.max().item() / 2
    for i in range(len(classes)):
        for j in range(len(classes)):
            value = confusion[i, j].item()
            ax.text(j, i, value, ha="center", va="center", fontsize=7, color="white" if value > limit else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def bar_compare(labels, series, ylabel, title=None, log=False, fmt="{:,.0f}"):
    """Grouped bars: ``series`` is {name: [value per label]}; values are written on the bars."""
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(labels) * len(series)), 3.5))
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(labels))]
        bars = ax.bar(xs, values, width, label=name)
        ax.bar_label(bars, [fmt.format(v) for v in values], fontsize=7, rotation=90 if len(labels) > 4 else 0,
                     padding=2)
    ax.set_xticks(range(len(labels)), labels)
    ax.set(ylabel=ylabel, title=title)
    if log:
        ax.set_yscale("log")
    ax.margins(y=0.25)
    ax.legend()
    fig.tight_layout()
    return fig
