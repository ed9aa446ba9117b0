"""Figures that more than one lesson draws: training curves, image grids, feature maps,
filters, confusion matrices, cost bars and class activation maps. Each function returns the
matplotlib Figure. :func:`show_table` displays a Markdown table, :func:`show_diagram` an SVG.

:func:`use_course_style` sets the one figure style of the course (resolution and font sizes
readable on a projector); ``utils.environment()`` calls it in every notebook's setup cell.
"""
import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator

from .data import CIFAR10_MEAN, CIFAR10_STD

#: The course's figure style, set in one place.
STYLE = {
    "figure.dpi": 100, "savefig.dpi": 100, "font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12,
    "xtick.labelsize": 11, "ytick.labelsize": 11, "legend.fontsize": 11, "figure.titlesize": 14,
    "lines.linewidth": 2, "lines.markersize": 6, "axes.grid": True, "grid.alpha": 0.3,
}
#: Colours of things that appear in many figures; every lesson uses the same one for the same thing.
COLORS = {"train": "tab:blue", "test": "tab:orange", "chance": "0.45"}


def show_diagram(name):
    """Display ``images/<name>`` (an SVG drawn for the course) as a cell output.

    A cell output renders the same locally, on GitHub and on Colab (which does not resolve a
    Markdown image's relative path), and in the course website.
    """
    from IPython.display import SVG, display

    from .config import REPO_ROOT

    path = REPO_ROOT / "images" / name
    if not path.exists():
        names = sorted(p.name for p in path.parent.glob("*.svg"))
        raise FileNotFoundError(f"no diagram {path}; the diagrams are: {names}")
    display(SVG(filename=str(path)))


def markdown_table(header, rows):
    """A Markdown table (columns right-aligned, for numbers) as text; a ``|`` inside a cell is escaped."""
    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    rows = [list(row) for row in rows]
    for number, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"row {number} has {len(row)} cells but the header has {len(header)}: {row!r}. "
                             "Give every row one cell per column (an empty string for an empty cell).")
    return "\n".join([line(header), "|" + "---:|" * len(header)] + [line(row) for row in rows])


def show_table(header, rows):
    """Display ``rows`` (lists of cells, one per column of ``header``) as a Markdown table in the notebook.

    No pandas needed; the table renders locally, on GitHub, on Colab and in the course website.
    """
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(header, rows)))


def use_course_style():
    """Apply :data:`STYLE` to matplotlib (figures stay readable when projected in a lecture hall)."""
    plt.rcParams.update(STYLE)


def chance_line(ax, num_classes=10, percent=True):
    """A dashed line at the accuracy of guessing (1 / num_classes), labelled."""
    level = 100 / num_classes if percent else 1 / num_classes
    ax.axhline(level, color=COLORS["chance"], linestyle="--", linewidth=1.2, label=f"chance ({num_classes} classes)")


def integer_ticks(ax, axis="x"):
    """Only whole numbers on an axis (epochs, seeds, layers)."""
    getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True))


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


def plot_history(history, title=None, num_classes=10):
    """Loss and accuracy per epoch, train and test, side by side (with the chance level)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax_loss.plot(history.epoch, history.train_loss, "o-", color=COLORS["train"], label="train")
    ax_acc.plot(history.epoch, [a * 100 for a in history.train_acc], "o-", color=COLORS["train"], label="train")
    if any(v is not None for v in history.test_loss):
        ax_loss.plot(history.epoch, history.test_loss, "s-", color=COLORS["test"], label="test")
        ax_acc.plot(history.epoch, [a * 100 for a in history.test_acc], "s-", color=COLORS["test"], label="test")
    chance_line(ax_acc, num_classes)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        integer_ticks(ax)
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.8 * nrows), squeeze=False)
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
            ax.set_title(name, fontsize=10, color=color)
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
            ax.set_title(f"ch {i}", fontsize=9)
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
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    image = ax.imshow(confusion, cmap="Blues")
    ax.grid(False)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=10)
    ax.set_yticks(range(len(classes)), classes, fontsize=10)
    limit = confusion.max().item() / 2
    for i in range(len(classes)):
        for j in range(len(classes)):
            value = confusion[i, j].item()
            ax.text(j, i, value, ha="center", va="center", fontsize=9, color="white" if value > limit else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def bar_compare(labels, series, ylabel, title=None, log=False, fmt="{:,.0f}"):
    """Grouped bars: ``series`` is {name: [value per label]}; values are written on the bars."""
    fig, ax = plt.subplots(figsize=(max(7, 1.0 * len(labels) * len(series)), 4))
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(labels))]
        bars = ax.bar(xs, values, width, label=name)
        ax.bar_label(bars, [fmt.format(v) for v in values], fontsize=9, rotation=90 if len(labels) > 4 else 0,
                     padding=2)
    ax.set_xticks(range(len(labels)), labels)
    ax.set(ylabel=ylabel, title=title)
    if log:
        ax.set_yscale("log")
    ax.margins(y=0.25)
    ax.legend()
    fig.tight_layout()
    return fig


def overlay_heatmap(ax, image, heatmap, alpha=0.5, cmap="jet"):
    """Draw one image (3, H, W) with ``heatmap`` (H, W) on top, rescaled to its own min..max."""
    ax.imshow(_to_display(image[None])[0], interpolation="bilinear")
    heat = heatmap.detach().cpu().float()
    heat = (heat - heat.min()) / (heat.max() - heat.min()).clamp(min=1e-8)
    ax.imshow(heat, cmap=cmap, alpha=alpha, interpolation="bilinear")
    ax.axis("off")


def show_cam(images, heatmaps, titles=None, ncols=4, alpha=0.5, title=None):
    """A grid of images, each with its heatmap (a class activation map) overlaid.

    ``images``: (N, 3, H, W), uint8 or normalised; ``heatmaps``: (N, H, W) at the image size
    (``utils.explain.cam`` upsamples); ``titles``: one string per panel. Red = high, blue = low,
    each map scaled to its own range.
    """
    n = len(images)
    nrows = (n + ncols - 1) // ncols
    # constrained layout leaves room for each panel's title (one line or two) above its image;
    # tight_layout let a second row's titles overprint the first row's images
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 3.2 * nrows), squeeze=False, layout="constrained")
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            overlay_heatmap(ax, images[i], heatmaps[i], alpha=alpha)
            if titles is not None:
                ax.set_title(titles[i], fontsize=11)
    if title:
        fig.suptitle(title)
    return fig
