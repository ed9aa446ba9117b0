"""Lesson 06 (the full GoogLeNet): what the notebook promises about where it runs, the decisions its GPU branch
makes, its upload widget, and the committed run's numbers as its prose states them.

The notebook itself runs under nbval (smoke mode, on a CPU); these tests check what such a run cannot show: the
Colab metadata that asks for a GPU; the GPU branch's decisions (precision, batch size and learning rate, the
checkpoint named after the run's settings), run here with a faked GPU; the helpers of section 5 (test-time views,
weight averaging); that CPU-preview outputs never claim to be a GPU run and that the preview learns; that no
section reads a name computed several sections back without naming it; and that an upload replaces the example
picture and its answer in place (the handler runs here with a tiny network).
"""
import ast
import builtins
import datetime
import io
import json
import re
import types
from unittest import mock

import pytest
import torch
from helpers import printed, source

from utils.config import REPO_ROOT, RunTimer
from utils.data import CIFAR10_MEAN, CIFAR10_STD
from utils.models import GoogLeNet

NOTEBOOK = REPO_ROOT / "notebooks" / "06_googlenet_training.ipynb"


@pytest.fixture(scope="module")
def cells():
    return json.loads(NOTEBOOK.read_text())["cells"]


def test_colab_is_asked_for_a_gpu():
    metadata = json.loads(NOTEBOOK.read_text())["metadata"]
    assert metadata["accelerator"] == "GPU"
    assert metadata["colab"]["gpuType"] == "T4"


def test_the_gpu_branch_uses_the_recipe(cells):
    """The branch that runs on a GPU (never executed on a CPU machine) keeps the issue's recipe."""
    code = "\n".join(source(c) for c in cells if c["cell_type"] == "code")
    assert 'resolve_precision("auto", device)' in code  # bf16 from compute capability 8.0, else fp16 + GradScaler
    for setting in ("channels_last=True", "label_smoothing=0.1", "aux_weight=0.3", 'schedule="onecycle"',
                    "batch_size=pick(full=fitted_batch", "compile=True", 'run["lr"] = 0.4 * run["batch_size"] / 512',
                    "torch.cuda.mem_get_info()", "largest_batch_that_fits("):
        assert setting in code, setting
    assert "checkpoint.unlink" not in code  # a rerun resumes; it never deletes the run's checkpoint


def cell_with(cells, text):
    (found,) = [c for c in cells if c["cell_type"] == "code" and text in source(c)]
    return found


def run_cell(cell, namespace):
    exec(compile(source(cell), "lesson_06_cell", "exec"), namespace)
    return namespace


def notebook_namespace(**names):
    """What the lesson's imports cell defines, plus ``names``."""
    import utils.cost
    import utils.train

    namespace = dict(torch=torch, GoogLeNet=GoogLeNet, pick=lambda full, smoke: full, mock=mock,
                     count_parameters=__import__("utils.models", fromlist=["x"]).count_parameters,
                     largest_batch_that_fits=utils.cost.largest_batch_that_fits,
                     training_step_memory=utils.cost.training_step_memory,
                     resolve_precision=utils.train.resolve_precision)
    namespace.update(names)
    return namespace


@pytest.mark.parametrize("gpu, capability, free_gb, precision, batch, lr", [
    ("Tesla T4", (7, 5), 15.0, "fp16", 256, 0.2),
    ("NVIDIA H200", (9, 0), 139.0, "bf16", 512, 0.4),
    ("NVIDIA A100-SXM4-40GB", (8, 0), 39.0, "bf16", 512, 0.4),
])
def test_on_a_gpu_the_batch_and_learning_rate_follow_the_memory_estimate(cells, capsys, gpu, capability, free_gb,
                                                                          precision, batch, lr):
    """The memory and run cells, run with a faked GPU: precision from the compute capability, the largest batch
    whose estimated step fits in 80% of the free memory, the learning rate by the linear scaling rule."""
    fake = dict(get_device_capability=mock.DEFAULT, mem_get_info=mock.DEFAULT, get_device_name=mock.DEFAULT,
                empty_cache=mock.DEFAULT)
    with mock.patch.multiple("torch.cuda", **fake) as cuda:
        cuda["get_device_capability"].return_value = capability
        cuda["mem_get_info"].return_value = (int(free_gb * 1e9), int(free_gb * 1e9))
        cuda["get_device_name"].return_value = gpu
        namespace = notebook_namespace(device=torch.device("cuda"))
        run_cell(cell_with(cells, "def memory_table("), namespace)
        run_cell(cell_with(cells, 'run["lr"] = 0.4'), namespace)
    run = namespace["run"]
    assert namespace["GPU"] and namespace["t4_batch"] == 256  # the T4 table is shown on every machine
    assert (run["precision"], run["batch_size"], run["lr"]) == (precision, batch, lr)
    assert (run["width"], run["epochs"], run["compile"], run["per_class"]) == (1.0, 30, True, None)
    assert run["label"] == f"FULL RUN on {gpu}"
    assert f"this GPU ({gpu})" in capsys.readouterr().out


def checkpoint_name_function(cells):
    """``checkpoint_name`` as the training cell defines it."""
    tree = ast.parse(source(cell_with(cells, "def checkpoint_name(")))
    (function,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "checkpoint_name"]
    namespace = {"hashlib": __import__("hashlib"), "json": json}
    exec(compile(ast.Module([function], type_ignores=[]), "checkpoint_name", "exec"), namespace)
    return namespace["checkpoint_name"]


def test_each_setting_of_a_run_gets_its_own_checkpoint(cells):
    """The checkpoint is named after every setting of the run, so another setting never resumes the wrong run."""
    name = checkpoint_name_function(cells)
    settings = dict(epochs=30, lr=0.4, optimizer="sgd", weight_decay=5e-4, schedule="onecycle", label_smoothing=0.1,
                    aux_weight=0.3, precision="bf16", channels_last=True, seed=0, width=1.0, per_class=None,
                    test_per_class=None, batch_size=512)
    first = name(settings)
    assert first == name(dict(reversed(list(settings.items()))))  # the same run, the same file
    assert first.startswith("06_googlenet_w1_30ep_b512_") and first.endswith(".pt")
    changed = {"epochs": 10, "lr": 0.2, "precision": "fp16", "seed": 1, "width": 0.5, "per_class": 100,
               "batch_size": 256, "label_smoothing": 0.0, "weight_decay": 1e-4, "test_per_class": 50}
    names = {name({**settings, key: value}) for key, value in changed.items()}
    assert first not in names and len(names) == len(changed)


def test_the_training_cell_resumes_and_offers_google_drive(cells):
    """Resume by default; on Colab, one commented line puts the checkpoints on Google Drive, and the prose says
    what that costs."""
    training = source(cell_with(cells, "def checkpoint_name("))
    assert "resume=True" in training and "overwrite=True" not in training
    (drive,) = [line for line in training.splitlines() if "drive.mount" in line]
    assert drive.startswith("# from google.colab import drive; drive.mount(\"/content/drive\")")
    assert 'CHECKPOINT_DIR = pathlib.Path("/content/drive/MyDrive/going-deeper")' in drive
    assert "compile" in training and 'if key != "compile"' in training  # compiling changes speed, not the run
    prose = "\n".join(source(c) for c in cells if c["cell_type"] == "markdown")
    for cost in ("authorise", "network file system", "space on your Drive"):
        assert cost in prose, cost


def function_from(cells, text, name, **names):
    """The function ``name`` defined in the cell containing ``text``, executed in ``names``."""
    tree = ast.parse(source(cell_with(cells, text)))
    nodes = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.Assign))
             and (getattr(node, "name", None) == name or any(getattr(t, "id", None) == "SHIFTS"
                                                             for t in getattr(node, "targets", [])))]
    namespace = dict(names)
    exec(compile(ast.Module(nodes, type_ignores=[]), name, "exec"), namespace)
    return namespace[name]


def test_the_test_time_views_are_the_image_its_mirror_and_shifted_windows(cells):
    """Section 5's ten views: view 0 is the plain image, view 1 its mirror, the others 4-pixel shifts of the image
    padded with black, as the training crops are; each row holds softmax probabilities."""
    import torch.nn.functional as F

    from utils.cost import PRECISION_DTYPES
    from utils.data import DeviceLoader

    view_probabilities = function_from(cells, "def view_probabilities(", "view_probabilities", torch=torch, F=F,
                                       DeviceLoader=DeviceLoader, PRECISION_DTYPES=PRECISION_DTYPES,
                                       run={"precision": "fp32"})
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    loader = DeviceLoader(images, torch.arange(6) % 10, batch_size=4)
    torch.manual_seed(0)
    net = GoogLeNet(num_classes=10, stem="cifar", width=0.0625, batch_norm=True).train()
    views = view_probabilities(net, loader)
    assert views.shape == (10, 6, 10) and not net.training
    assert torch.allclose(views.sum(-1), torch.ones(10, 6))

    def probabilities(uint8_images):
        with torch.no_grad():
            return net((uint8_images.float() - loader.mean) / loader.std).softmax(1)

    assert torch.allclose(views[0], probabilities(images), atol=1e-5)
    assert torch.allclose(views[1], probabilities(images.flip(-1)), atol=1e-5)
    corner = torch.nn.functional.pad(images, (4, 4, 4, 4))[:, :, 0:32, 8:40]  # up 4 pixels, right 4 pixels
    assert torch.allclose(views[4], probabilities(corner), atol=1e-5)  # SHIFTS[2] = (0, 8), unmirrored


def test_weight_averaging_averages_the_second_half_and_leaves_no_hook(cells):
    """train_member's averaged copy holds the mean of the weights after each step of the second half of training,
    its batch-norm statistics recomputed; the optimizer hook is removed afterwards."""
    from torch.optim.optimizer import _global_optimizer_post_hooks, register_optimizer_step_post_hook
    from torch.optim.swa_utils import AveragedModel, update_bn

    from utils.data import DeviceLoader
    from utils.train import fit

    images = torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    study_train = DeviceLoader(images, torch.arange(24) % 10, batch_size=8, shuffle=True, augment=True,
                               drop_last=True)
    seen = []

    def make_model():
        return GoogLeNet(num_classes=10, stem="cifar", width=0.0625, batch_norm=True)

    def recording_fit(model, loader, **kwargs):  # records the weights after every step, then trains as fit does
        handle = register_optimizer_step_post_hook(
            lambda *args: seen.append([p.detach().clone() for p in model.parameters()]))
        try:
            return fit(model, loader, **kwargs)
        finally:
            handle.remove()

    hooks_before = len(_global_optimizer_post_hooks)
    train_member = function_from(
        cells, "def train_member(", "train_member", torch=torch, make_model=make_model, AveragedModel=AveragedModel,
        update_bn=update_bn, register_optimizer_step_post_hook=register_optimizer_step_post_hook, fit=recording_fit,
        device=torch.device("cpu"), study_train=study_train, SEEDS=range(6), average_after=3,
        member_recipe=dict(epochs=2, lr=0.01, label_smoothing=0.1, precision="fp32", channels_last=True))
    member, averaged, history = train_member(0)
    assert len(_global_optimizer_post_hooks) == hooks_before
    assert sum(history.steps) == len(seen) == 6
    for index, parameter in enumerate(averaged.parameters()):  # the mean of steps 4, 5 and 6
        expected = torch.stack([weights[index] for weights in seen[3:]]).mean(0)
        assert torch.allclose(parameter, expected, atol=1e-6)
    statistics = dict(averaged.named_buffers())["conv1.bn.running_mean"]  # zeros in the copy made before training
    assert statistics.abs().sum() > 0, "update_bn recomputed the averaged network's batch-norm statistics"


def test_cpu_outputs_are_labelled_as_a_preview(cells):
    """Where the saved outputs come from a CPU, every result carries the CPU-preview label and none a GPU's."""
    setup = printed(next(c for c in cells if c["cell_type"] == "code"))
    outputs = "\n".join(printed(c) for c in cells if c["cell_type"] == "code")
    if "device: cpu" not in setup:
        pytest.skip("the saved outputs come from a GPU run")
    assert "FULL RUN" not in outputs
    for cell in cells:
        text = printed(cell)
        if text.startswith("course checkpoint"):
            continue  # the course's own network (weights/), trained elsewhere: not this run's result
        if cell["cell_type"] == "code" and re.search(r"test accuracy|img/s|images per second|paired comparison", text):
            assert "CPU PREVIEW" in text or "CPU preview" in source(cell), source(cell)[:80]


def preview_outputs(cells):
    if "device: cpu" not in printed(next(c for c in cells if c["cell_type"] == "code")):
        pytest.skip("the saved outputs come from a GPU run")
    return {source(c): printed(c) for c in cells if c["cell_type"] == "code"}


def test_the_cpu_preview_learns_visibly(cells):
    """Its learning rate follows the linear scaling rule; it ends clearly above chance, and no class takes more
    than a third of its predictions (the second edition's preview answered 'airplane' 158 times out of 300)."""
    preview_outputs(cells)
    run = printed(cell_with(cells, 'run["lr"] = 0.4'))
    batch = int(re.search(r"batch_size\s+(\d+)", run)[1])
    assert float(re.search(r"\blr\s+([\d.]+)", run)[1]) == pytest.approx(0.4 * batch / 512)
    evaluated = printed(cell_with(cells, "largest share"))
    accuracy = float(re.search(r"test accuracy ([\d.]+)% on", evaluated)[1])
    share = float(re.search(r"largest share: \w+, ([\d.]+)% of the predictions", evaluated)[1])
    assert accuracy >= 25.0, "clearly above the 10% of chance"
    assert share <= 100 / 3


def test_the_ablation_names_a_winner_only_when_both_rounds_agree(cells):
    """At least 10 timed steps per row, two rounds; the largest step is named only if it is the same in both."""
    preview_outputs(cells)
    table = printed(cell_with(cells, "benchmark.ablation("))
    steps = int(re.search(r"(\d+) timed steps per row and round", table)[1])
    assert steps >= 10
    rows = re.findall(r"^(\S.*?)\s{2,}([\d,.]+)\s+([\d,.]+)\s+[\d.]+x$", table, re.M)
    assert len(rows) == 3

    def largest(column):
        speeds = [float(row[column].replace(",", "")) for row in rows]
        return max(range(1, len(rows)), key=lambda i: speeds[i] / speeds[i - 1])

    verdict = printed(cell_with(cells, "def largest_step("))
    if largest(1) == largest(2):
        assert f"largest single step, in both rounds: '{rows[largest(1)][0]}'" in verdict
    else:
        assert "no single largest step" in verdict


def test_the_memory_table_shows_a_t4s_decision(cells):
    """On a CPU the memory cell shows what a T4 decides: 512 does not fit in 80% of 15 GB, 256 does."""
    preview_outputs(cells)
    table = printed(cell_with(cells, "def memory_table("))
    assert "in fp16, on a T4" in table and "fits in 80% (12.0 GB)?" in table
    assert re.search(r"^\s+512 .* no$", table, re.M) and re.search(r"^\s+256 .* yes$", table, re.M)
    assert "largest batch that fits: 256; its learning rate by the linear scaling rule: 0.4 x 256 / 512 = 0.2" in table


def test_the_precision_table(cells):
    """What precision="auto" picks for a T4 (fp16 with a scaler), an A100 (bf16) and a CPU (fp32)."""
    table = printed(cell_with(cells, "get_device_capability"))
    if not table:
        pytest.skip("not executed")
    assert re.search(r"T4 .*7\.5: fp16", table) and re.search(r"A100 .*8\.0: bf16", table)
    assert re.search(r"a CPU\s+fp32", table)


def test_section_5_compares_with_enough_seeds_and_bounds_what_it_cannot_tell(cells):
    """Weight averaging and ten views over six seeds, the ensemble over three disjoint pairs; each inconclusive
    verdict comes with what the runs rule out; every network is checked against chance first."""
    preview_outputs(cells)
    averaging = printed(cell_with(cells, 'names=("averaged weights", "last weights")'))
    views = printed(cell_with(cells, 'names=("10 views", "1 view")'))
    ensemble = printed(cell_with(cells, 'names=("ensemble of 2", "one network")'))
    assert "6 seeds per model" in averaging and "6 seeds per model" in views and "3 seeds per model" in ensemble
    for text in (averaging, views, ensemble):
        assert ("inconclusive" in text) == ("what these runs rule out" in text)
    chance = printed(cell_with(cells, "binomtest("))
    assert re.search(r"above chance: 6 of 6 networks", chance)


def test_the_paper_is_quoted_with_its_numbers(cells):
    """Sections 6-7 of the paper, quoted as the literature's numbers (checked against arXiv:1409.4842)."""
    prose = "\n".join(source(c) for c in cells if c["cell_type"] == "markdown")
    for quote in ("decreasing the learning rate by 4% every 8 epochs",
                  "Polyak averaging [13] was used to create the final model used at inference time",
                  "Although we used CPU based implementation only",
                  "distributed evenly between 8% and 100% of the image area",
                  "aspect ratio is chosen randomly between 3/4 and 4/3",
                  "This results in 4×3×6×2 = 144 crops per image",
                  "independently trained 7 versions of the same GoogLeNet model"):
        assert quote in prose, quote
    for row in ("| 1 | 1 | 1 | 10.07% | base |", "| 1 | 10 | 10 | 9.15% | -0.92% |",
                "| 1 | 144 | 144 | 7.89% | -2.18% |", "| 7 | 1 | 7 | 8.09% | -1.98% |",
                "| 7 | 10 | 70 | 7.62% | -2.45% |", "| 7 | 144 | 1008 | 6.67% | -3.45% |"):
        assert row in prose, row
    assert "VGG second (7.32%), MSRA third (7.35%)" in prose
    assert "ported from TensorFlow" in prose and "issue #906" in prose
    assert "torchvision can download the weights it trained" not in prose


def test_the_aux_share_prose_states_the_printed_shares(cells):
    """The gradient split is measured on a probe of at most 64 images, and the prose reads the shares it prints."""
    cell = cell_with(cells, "aux_gradient_split(")
    assert "max_images=64" in source(cell)
    shares = re.search(r"aux heads' share of the summed norms: (.*)", printed(cell))
    if shares is None:
        pytest.skip("not executed")
    index = cells.index(cell)
    reading = source(next(c for c in cells[index + 1:] if c["cell_type"] == "markdown"))
    stated = set(re.findall(r"(\d+)%", reading))
    assert stated and stated <= set(re.findall(r"(\d+)%", shares[1])), (stated, shares[1])


def sections(cells):
    """{number: cells of '## N. ...'} for the numbered sections, and the cells before section 1."""
    found, current, before = {}, None, []
    for cell in cells:
        heading = re.match(r"## (\d+)\. ", source(cell)) if cell["cell_type"] == "markdown" else None
        if heading:
            current = int(heading[1])
            found[current] = []
        elif source(cell).startswith("## "):
            current = None
        elif current is not None:
            found[current].append(cell)
        elif not found:
            before.append(cell)
    return found, before


def names_used_and_defined(code):
    tree = ast.parse("\n".join(line for line in code.splitlines() if not line.startswith(("%", "!"))))
    used, defined = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) or (isinstance(node, ast.ExceptHandler) and node.name):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
    return used, defined


def test_sections_4_on_name_what_they_read_from_earlier_sections(cells):
    """Item 10 of issue 17: a section from 4 on reads a name computed in an earlier section only if its opening
    Markdown names it (in backticks); the setup and imports cells are shared by all."""
    found, before = sections(cells)
    shared = set(dir(builtins))
    for cell in before:
        if cell["cell_type"] == "code":
            shared |= names_used_and_defined(source(cell))[1]
    for number, section in found.items():
        if number < 4:
            continue
        code = "\n".join(source(c) for c in section if c["cell_type"] == "code")
        used, defined = names_used_and_defined(code)
        opening = next(source(c) for c in section if c["cell_type"] == "markdown"
                       and c["metadata"]["slideshow"]["slide_type"] != "notes")
        named = set(re.findall(r"`(\w+)`", opening))
        unnamed = used - defined - shared - named
        assert not unnamed, f"section {number} reads {sorted(unnamed)} from earlier sections without naming them"


def test_the_run_time_is_printed_by_the_last_cell(cells):
    """No run time in the prose; the last code cell prints the run's own, within the 5-minute budget."""
    last = [c for c in cells if c["cell_type"] == "code" and source(c).strip()][-1]
    assert source(last).strip() == "timer.report()"
    assert "timer = utils.RunTimer()" in source(cell_with(cells, "from utils.cost import"))
    if printed(last):
        wall, cpu = RunTimer.parse(printed(last))
        if "device: cpu" in printed(next(c for c in cells if c["cell_type"] == "code")):
            assert cpu <= 5.0


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
    loader = types.SimpleNamespace(images=images, labels=torch.arange(10),
                                   mean=torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1) * 255,
                                   std=torch.tensor(CIFAR10_STD).view(1, 3, 1, 1) * 255)
    handles = []

    def display(value, display_id=None):
        handle = FakeHandle(value)
        handles.append(handle)
        return handle

    namespace = dict(torch=torch, np=np, io=io, plt=plt, Image=Image, ImageOps=ImageOps, ImageOutput=ImageOutput,
                     Pretty=Pretty, ipywidgets=ipywidgets, display=display, plots=plots, cam=cam,
                     CIFAR10_CLASSES=CIFAR10_CLASSES, device=torch.device("cpu"), GPU=False, test_loader=loader,
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
