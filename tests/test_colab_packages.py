"""Every lesson on Colab's own packages, the way Colab runs it, with every control operated.

On Colab the setup cell installs nothing, so a lesson runs on the packages Colab ships (ipywidgets 7,
IPython 7, an older jupyter_client), not on requirements.txt. This suite runs only inside an
environment built from Colab's published package list (tests/environments/colab-constraints.txt;
`.ci/run` builds it, README "Where it is tested" says how):

    python3.13 -m venv .venvs/colab
    .venvs/colab/bin/pip install -r tests/environments/colab.txt -c tests/environments/colab-constraints.txt
    .venvs/colab/bin/python -m pytest -m "" tests/test_colab.py tests/test_colab_packages.py

Each lesson is executed in smoke mode by nbclient, in a folder without the course on its path, with
``google.colab`` stubbed and ``git clone`` faked (tests/test_colab.py's simulation), so that the setup
cell's Colab branch runs. Then its worked solutions run in the same kernel and are checked against
their text, and tests/widget_exerciser.py operates every slider, dropdown and upload. Plain `pytest`
leaves this suite out (its marker); elsewhere than in that environment it fails, naming what differs.
"""
import json
import os
import re
import sys
from importlib import metadata

import nbformat
import pytest
import solutions
from test_colab import _colab

from utils import badges
from utils.config import REPO_ROOT

pytestmark = pytest.mark.colab_packages

CONSTRAINTS = REPO_ROOT / "tests" / "environments" / "colab-constraints.txt"
LESSONS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
#: The packages a lesson's kernel stack is made of: each must be exactly Colab's version here.
KERNEL_STACK = ("torch", "torchvision", "numpy", "matplotlib", "scipy", "tqdm", "pillow", "ipywidgets",
                "widgetsnbextension", "ipykernel", "ipython", "jupyter_client", "jupyter_core", "nbclient",
                "nbformat", "pyzmq", "tornado", "traitlets", "matplotlib-inline")


def colab_pins():
    """{normalised name: version} and Colab's Python ("3.13") from the constraints file."""
    text = CONSTRAINTS.read_text()
    pins = {re.sub(r"[-_.]+", "-", name).lower(): version
            for name, version in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$", text, re.M)}
    return pins, re.search(r"^# python (\S+)$", text, re.M)[1]


def test_this_environment_is_colabs():
    pins, python = colab_pins()
    here = {name: metadata.version(name) for name in KERNEL_STACK}
    differ = {name: f"{version} here, {pins[re.sub(r'[-_.]+', '-', name).lower()]} on Colab"
              for name, version in here.items() if version != pins[re.sub(r"[-_.]+", "-", name).lower()]}
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" == python, f"Colab runs Python {python}"
    assert not differ, f"not Colab's packages (build the environment as this module's docstring says): {differ}"


EXERCISE = """import sys
sys.path.insert(0, {tests!r})
import ipywidgets
import widget_exerciser
report = widget_exerciser.exercise()
print("EXERCISED", __import__("json").dumps({{**report, "ipywidgets": ipywidgets.__version__,
                                             "python": sys.executable}}))"""


def _colab_notebook(path, stub_path, clone_dir):
    """The lesson as Colab would run it: google.colab imported first, the clone in ``clone_dir``;
    then its worked solutions, then the exerciser. Returns the notebook and the solutions' cell indices."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source == badges.setup_cell(), "run `python -m utils.badges`"
    code[0].source = code[0].source.replace("/content/going-deeper", str(clone_dir))
    nb.cells.insert(0, nbformat.v4.new_code_cell(f"import sys\nsys.path.insert(0, {str(stub_path)!r})\n"
                                                 "import google.colab  # Colab imports it at start"))
    worked = solutions.solutions(nb)
    first = len(nb.cells)
    nb.cells += [nbformat.v4.new_code_cell(solution_code) for _, solution_code in worked]
    nb.cells.append(nbformat.v4.new_code_cell(EXERCISE.format(tests=str(REPO_ROOT / "tests"))))
    return nb, [(first + i, text, solution_code) for i, (text, solution_code) in enumerate(worked)]


def _printed(cell):
    return "".join(out.get("text", "") for out in cell.outputs if out.get("output_type") == "stream")


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_on_colab_packages(path, tmp_path):
    from nbclient import NotebookClient

    stub_path, bin_dir = _colab(tmp_path)
    clone_dir, workdir = tmp_path / "going-deeper", tmp_path / "content"
    workdir.mkdir()
    nb, worked = _colab_notebook(path, stub_path, clone_dir)
    setup = next(c for c in nb.cells[1:] if c.cell_type == "code")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COURSE_SMOKE")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", COURSE_SMOKE="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    client.execute(env=env)

    assert (tmp_path / "git.log").read_text().startswith("clone --depth 1 https://github.com/")
    assert (tmp_path / "widgets.log").read_text() == "enabled\n"
    assert "smoke mode: ON" in _printed(setup)
    for index, text, solution_code in worked:
        solutions.check(f"{path.name}, solution cell {index}", text, solution_code, _printed(nb.cells[index]))
    report = json.loads(_printed(nb.cells[-1]).split("EXERCISED ", 1)[1])
    assert report["python"] == sys.executable, "the kernel ran another Python than this environment's"
    assert report["ipywidgets"] == metadata.version("ipywidgets")
    assert not report["failures"], "\n\n".join(report["failures"])
    controls = sum(c.cell_type == "code" and re.search(r"slider\(|dropdown\(|FileUpload\(", c.source) is not None
                   for c in nb.cells)
    assert not controls or report["moved"], "the lesson makes controls, but none was operated"
