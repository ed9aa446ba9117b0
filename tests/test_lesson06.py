"""Lesson 06 (the full GoogLeNet): what the notebook promises about where it runs, and its upload widget.

The notebook itself runs under nbval (smoke mode); these tests check what a run cannot show: the Colab
metadata that asks for a GPU, that CPU-preview outputs never claim to be a GPU run, and that an upload
replaces the example picture and its answer in place (the handler runs here with a tiny network).
"""
import datetime
import io
import json
import re
import types

import pytest
import torch

from utils.config import REPO_ROOT
from utils.data import CIFAR10_MEAN, CIFAR10_STD
from utils.models import GoogLeNet

NOTEBOOK = REPO_ROOT / "notebooks" / "06_googlenet_training.ipynb"


@pytest.fixture(scope="module")
def cells():
    return json.loads(NOTEBOOK.read_text())["cells"]


def source(cell):
    return "".join(cell["source"])


def text_of(cell):
    parts = []
    for output in cell.get("outputs", []):
        text = output.get("text") or output.get("data", {}).get("text/plain", "")
        parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


def test_colab_is_asked_for_a_gpu():
    metadata = json.loads(NOTEBOOK.read_text())["metadata"]
    assert metadata["accelerator"] == "GPU"
    assert metadata["colab"]["gpuType"] == "T4"


def test_the_gpu_branch_uses_the_recipe(cells):
    """The branch that runs on a GPU (never executed on a CPU machine) keeps the issue's recipe."""
    code = "\n".join(source(c) for c in cells if c["cell_type"] == "code")
    assert 'resolve_precision("auto", device)' in code  # bf16 where supported, else fp16 + GradScaler
    for setting in ("channels_last=True", "label_smoothing=0.1", "aux_weight=0.3", 'schedule="onecycle"',
                    "batch_size=pick(full=512", "compile=True"):
        assert setting in code, setting


def test_cpu_outputs_are_labelled_as_a_preview(cells):
    """Where the saved outputs come from a CPU, every result carries the CPU-preview label and none a GPU's."""
    setup = text_of(next(c for c in cells if c["cell_type"] == "code"))
    outputs = "\n".join(text_of(c) for c in cells if c["cell_type"] == "code")
    if "device: cpu" not in setup:
        pytest.skip("the saved outputs come from a GPU run")
    assert "FULL RUN" not in outputs
    for cell in cells:
        if cell["cell_type"] == "code" and re.search(r"test accuracy|img/s|paired comparison", text_of(cell)):
            assert "CPU PREVIEW" in text_of(cell) or "CPU preview" in source(cell), source(cell)[:80]


class FakeHandle:
    def __init__(self, shown):
        self.shown = [shown]

    def update(self, value):
        self.shown.append(value)


@pytest.fixture
def upload_cell(cells):
    """The Try-it cell run with a tiny untrained network, its outputs recorded instead of displayed."""
    import ipywidgets
    import matplotlib
    import numpy as np
    from IPython.display import Image as ImageOutput
    from IPython.display import Pretty
    from PIL import Image, ImageOps

    from utils import plots
    from utils.data import CIFAR10_CLASSES
    from utils.explain import cam

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    loader = types.SimpleNamespace(images=images, mean=torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1) * 255,
                                   std=torch.tensor(CIFAR10_STD).view(1, 3, 1, 1) * 255)
    handles = []

    def display(value, display_id=None):
        handle = FakeHandle(value)
        handles.append(handle)
        return handle

    namespace = dict(torch=torch, np=np, io=io, plt=plt, Image=Image, ImageOps=ImageOps, ImageOutput=ImageOutput,
                     Pretty=Pretty, ipywidgets=ipywidgets, display=display, plots=plots, cam=cam,
                     CIFAR10_CLASSES=CIFAR10_CLASSES, device=torch.device("cpu"), GPU=False, test_loader=loader,
                     labels=torch.arange(10),
                     model=GoogLeNet(num_classes=10, stem="cifar", width=0.0625, batch_norm=True, aux_logits=False))
    cell = next(c for c in cells if c["cell_type"] == "code" and "FileUpload(" in source(c))
    exec(compile(source(cell), "try_it_cell", "exec"), namespace)
    return namespace, handles


def png_bytes():
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (48, 40), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_example_is_shown_until_an_upload_replaces_it(upload_cell):
    namespace, handles = upload_cell
    upload_view, figure_view, answer_view = handles
    assert "cat" in answer_view.shown[0].data  # the default: a test image of a cat, with the prediction
    first_png = figure_view.shown[0].data
    assert first_png[:4] == b"\x89PNG"
    upload = upload_view.shown[0]
    upload.value = ({"name": "mine.png", "type": "image/png", "size": 1, "content": memoryview(png_bytes()),
                     "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    assert len(figure_view.shown) == 2 and len(answer_view.shown) == 2  # updated in place, nothing added
    assert figure_view.shown[1].data != first_png
    assert answer_view.shown[1].data.startswith("mine.png: ")


def test_a_file_that_is_not_a_picture_gets_a_message(upload_cell):
    namespace, handles = upload_cell
    upload_view, figure_view, answer_view = handles
    namespace["on_upload"]({"new": ({"name": "notes.txt", "content": memoryview(b"not a picture")},)})
    assert len(figure_view.shown) == 1
    assert "notes.txt could not be read as a picture" in answer_view.shown[-1].data
