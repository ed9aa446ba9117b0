"""Every lesson's setup cell on a simulated Colab: a google.colab stub, no utils on the path, a fake git."""
import json
import os
import subprocess
import sys
import textwrap

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
shutil.copytree({repo!r} + "/utils", sys.argv[-1] + "/utils")
"""


def _colab(tmp_path, fail=False):
    """A folder that plays Colab: google.colab stub on the path, a fake git first on PATH."""
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
