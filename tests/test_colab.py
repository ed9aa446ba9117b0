"""Every lesson's setup cell on a simulated Colab: a google.colab stub, no utils on the path, a fake git."""
import json
import os
import subprocess
import sys
import textwrap

import nbformat
import pytest

from utils import badges
from utils.config import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

FAKE_GIT = """#!{python}
import pathlib, shutil, sys
log = pathlib.Path({log!r})
log.write_text(log.read_text() + " ".join(sys.argv[1:]) + "\\n" if log.exists() else " ".join(sys.argv[1:]) + "\\n")
if {fail}:
    sys.stderr.write("fatal: unable to access 'https://github.com/x/': Could not resolve host: github.com\\n")
    sys.exit(128)
for part in ("utils", "images", "weights"):  # what the lessons read from the clone
    shutil.copytree({repo!r} + "/" + part, sys.argv[-1] + "/" + part, ignore=shutil.ignore_patterns("__pycache__"))
shutil.copy({repo!r} + "/pyproject.toml", sys.argv[-1])
"""


def _colab(tmp_path, fail=False):
    """A folder that plays Colab: google.colab stub on the path, a fake git first on PATH.

    The fake ``git clone`` copies what the lessons read from a real clone (utils/, images/, weights/,
    pyproject.toml) and logs each call to git.log; enabling the widget manager logs to widgets.log."""
    stub = tmp_path / "stub" / "google" / "colab"
    stub.mkdir(parents=True)
    (stub.parent / "__init__.py").write_text("")
    (stub / "__init__.py").write_text("")
    (stub / "output.py").write_text(textwrap.dedent(f"""
        def enable_custom_widget_manager():
            with open({str(tmp_path / "widgets.log")!r}, "a") as f:
                f.write("enabled\\n")
        """))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = bin_dir / "git"
    git.write_text(FAKE_GIT.format(python=sys.executable, log=str(tmp_path / "git.log"), fail=fail,
                                   repo=str(REPO_ROOT)))
    git.chmod(0o755)
    return stub.parent.parent, bin_dir


def _start(tmp_path, stub_path, bin_dir, clone_dir):
    """Run the setup cell as Colab would, in a fresh process whose cwd has no utils/."""
    cell = badges.setup_cell().replace("/content/going-deeper", str(clone_dir))
    program = (f"import sys; sys.path.insert(0, {str(stub_path)!r}); import google.colab\n{cell}\n"
               "print('utils from', utils.__file__)")
    workdir = tmp_path / "content"
    workdir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return subprocess.run([sys.executable, "-c", program], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=120)


def test_setup_cell_on_colab_clones_once_and_enables_widgets_on_every_start(tmp_path):
    stub_path, bin_dir = _colab(tmp_path)
    clone_dir = tmp_path / "going-deeper"
    first = _start(tmp_path, stub_path, bin_dir, clone_dir)
    assert first.returncode == 0, first.stderr
    assert f"utils from {clone_dir}" in first.stdout and "smoke mode:" in first.stdout
    again = _start(tmp_path, stub_path, bin_dir, clone_dir)  # a runtime restart: the clone is already there
    assert again.returncode == 0, again.stderr
    assert len((tmp_path / "git.log").read_text().splitlines()) == 1  # git ran once: the first start
    assert (tmp_path / "widgets.log").read_text().splitlines() == ["enabled", "enabled"]


def test_a_failed_clone_shows_gits_reason(tmp_path):
    stub_path, bin_dir = _colab(tmp_path, fail=True)
    run = _start(tmp_path, stub_path, bin_dir, tmp_path / "going-deeper")
    assert run.returncode != 0
    assert "git clone of github.com/" in run.stderr and "Could not resolve host: github.com" in run.stderr
    assert "CalledProcessError" not in run.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_lessons_show_images_in_a_way_colab_renders(path):
    """Colab does not resolve a relative Markdown image path; diagrams are shown by utils.plots.show_diagram."""
    cells = json.loads(path.read_text())["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "](../" not in markdown and 'src="../' not in markdown and "](images/" not in markdown
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "".join(code[0]["source"]) == badges.setup_cell(), "run `python -m utils.badges`"


def test_the_widget_exerciser_reports_every_kind_of_broken_control(tmp_path):
    """tests/widget_exerciser.py (used on Colab's packages) fails a callback that raises, in a setter or inside an
    Output widget, and a control after which nothing new is shown; a working upload and slider pass."""
    from nbclient import NotebookClient

    cells = [
        "import sys\nsys.path.insert(0, '.')\nimport ipywidgets\nfrom IPython.display import display\n"
        "from utils import widgets",
        "def draw(n=1):\n    print(1 / (3 - n))\n"
        "widgets.explore(draw, n=widgets.slider(1, 0, 3, description='breaks at 3'));",
        "choice = widgets.dropdown(['a', 'b'], description='raises')\n"
        "choice.observe(lambda change: {}['missing'], names='value')\ndisplay(choice)",
        "quiet = widgets.slider(1, 0, 2, description='silent')\ndisplay(quiet)",
        "upload = ipywidgets.FileUpload(description='picture')\n"
        "upload.observe(lambda change: print('got', len(change['new'])), names='value')\ndisplay(upload)",
        f"sys.path.insert(0, {str(REPO_ROOT / 'tests')!r})\nimport widget_exerciser\n"
        "report = widget_exerciser.exercise()\nprint('REPORT', __import__('json').dumps(report))",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(REPO_ROOT)}}).execute()
    report = json.loads("".join(o.get("text", "") for o in nb.cells[-1].outputs).split("REPORT ", 1)[1])
    failures = "\n".join(report["failures"])
    assert "'breaks at 3', value=3" in failures and "ZeroDivisionError" in failures
    assert "'raises', value='b'" in failures and "KeyError" in failures
    assert "'silent', value=0: the lesson showed nothing new" in failures
    # 1 for the slider (at 3), 2 for the dropdown (to 'b' and back to 'a'), 3 for the silent slider (0, 2, back to 1)
    assert len(report["failures"]) == 6, failures
    assert "FileUpload 'picture': upload picture.png" in report["moved"]
    assert "IntSlider 'breaks at 3': value=0" in report["moved"]
