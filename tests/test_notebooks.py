"""The notebook harness, proven on notebooks generated here, and the committed lessons' form."""
import json
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from utils import badges
from utils.config import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
KOREAN = sorted((REPO_ROOT / "notebooks" / "ko").glob("*.ipynb"))  # python -m utils.translate build


def _write_notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for number, (source, stored) in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(source, execution_count=number)
        if stored is not None:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
        nb.cells.append(cell)
    nbformat.write(nb, path)


def _run_pytest(folder):
    env = {k: v for k, v in os.environ.items() if k != "COURSE_SMOKE"}  # conftest.py must set it
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "pytest", "-q"], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=300)


def test_harness_executes_notebooks_in_smoke_mode(tmp_path):
    """Plain `pytest` with this repository's configuration runs notebooks/ with nbval, in smoke mode."""
    for name in ("pyproject.toml", "conftest.py"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    (tmp_path / "tests").mkdir()
    shutil.copy(REPO_ROOT / "tests" / "solutions.py", tmp_path / "tests")  # conftest.py runs the solutions with it
    (tmp_path / "notebooks").mkdir()
    check = "# NBVAL_CHECK_OUTPUT\nimport utils\nprint(utils.SMOKE, utils.pick(full=100, smoke=3))"
    _write_notebook(tmp_path / "notebooks" / "good.ipynb", [
        (check, "True 3\n"),
        ("import random\nprint(random.random())", "0.123\n"),  # unchecked cell: any output passes (lax)
    ])
    result = _run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b2 passed\b", result.stdout), result.stdout

    # A checked cell whose stored output no longer matches fails, and so does an error.
    _write_notebook(tmp_path / "notebooks" / "stale.ipynb", [(check, "False 100\n")])
    _write_notebook(tmp_path / "notebooks" / "broken.ipynb", [("1 / 0", None)])
    result = _run_pytest(tmp_path)
    assert result.returncode == 1
    assert re.search(r"\b2 failed, 2 passed\b", result.stdout), result.stdout


def test_repository_path_is_written_in_one_place():
    assert badges.main(["--check"]) == 0


def test_a_korean_lesson_gets_the_badge_of_its_own_path(tmp_path):
    """notebooks/ko/NN_name.ipynb (the Korean edition) opens itself on Colab; glossary link and setup cell as in
    every lesson."""
    colab = "https://colab.research.google.com/github/old/name/blob/main/notebooks/01_x.ipynb"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(f"# 01 · 제목\n\n[![Open In Colab](https://colab.research.google.com/assets/"
                                      f"colab-badge.svg)]({colab})\n\n"
                                      "[용어집](https://github.com/old/name/blob/main/README.md#glossary-용어집)"),
        nbformat.v4.new_code_cell("# an old setup cell")])
    path = tmp_path / "notebooks" / "ko" / "01_x.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    assert badges.notebook_name(path) == "ko/01_x.ipynb"
    assert badges.notebook_name(tmp_path / "notebooks" / "01_x.ipynb") == "01_x.ipynb"
    cells = json.loads(badges.rewrite(path, "new/place", "main"))["cells"]
    first = "".join(cells[0]["source"])
    assert "(https://colab.research.google.com/github/new/place/blob/main/notebooks/ko/01_x.ipynb)" in first
    assert badges.glossary_url("new/place", "main") in first and "old/name" not in first
    assert "".join(cells[1]["source"]) == badges.setup_cell("new/place")


@pytest.mark.parametrize("path", NOTEBOOKS + KOREAN, ids=[badges.notebook_name(p) for p in NOTEBOOKS + KOREAN])
def test_committed_notebook_form(path):
    """Committed executed in one top-to-bottom run, no errors, small, with badge, setup, exercises. A Korean lesson
    (its outputs the English lesson's) has the badge of its own path and says where its code and outputs come from."""
    assert path.stat().st_size < 5 * 1024 * 1024
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name)
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    counts = [c["execution_count"] for c in code]
    assert None not in counts and counts == list(range(1, len(code) + 1)), "execute the notebook top to bottom once"
    errors = [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors
    first = "".join(cells[0]["source"])
    assert first.startswith(f"# {path.name[:2]} · ") and badges.colab_url(badges.notebook_name(path)) in first
    if path in KOREAN:
        from utils.translate import FIRST_CELL_NOTE

        assert FIRST_CELL_NOTE.format(name=path.name) in first, "run `python -m utils.translate build`"
    assert "REPOSITORY = " in "".join(code[0]["source"]) and "utils.environment()" in "".join(code[0]["source"])
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert markdown.count("<details>") >= 3, "3-5 exercises with worked solutions"
    assert "arXiv" in markdown
    checked = [c for c in code if "".join(c["source"]).startswith("# NBVAL_CHECK_OUTPUT")]
    assert checked, "deterministic cells carry # NBVAL_CHECK_OUTPUT"
    setup_output = "".join("".join(o.get("text", "")) for o in code[0].get("outputs", []))
    assert "smoke mode: off" in setup_output, "commit the notebook executed in full mode (COURSE_SMOKE unset)"


HANGUL_TERM = re.compile(r"[\uac00-\ud7a3](?:[\uac00-\ud7a3 \-]*[\uac00-\ud7a3])?")


def korean_terms(markdown):
    """Korean names given in parentheses, e.g. "feature map (특징 맵)" or "(**weight sharing**, 가중치 공유: ...)"."""
    terms = set()
    for inside in re.findall(r"\(([^()]*)\)", markdown):
        for part in inside.split(","):
            terms.update(HANGUL_TERM.findall(part.split(":")[0]))
    return terms


def test_glossary_lists_every_korean_term():
    """COURSE_CONVENTIONS: a key term gets its Korean name, and the README's glossary lists them all."""
    glossary = (REPO_ROOT / "README.md").read_text().split("## Glossary", 1)[1].split("\n## ", 1)[0]
    used = set()
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        used |= korean_terms("\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"))
    assert len(used) > 20
    missing = sorted(term for term in used if term not in glossary)
    assert not missing, f"add these to the README's glossary: {missing}"


def test_repository_path_is_read_on_python_3_10_through_tomli(monkeypatch):
    """Python 3.10 has no tomllib; utils.config falls back to the tomli package, which it names if missing."""
    import sys
    import types

    try:
        import tomllib
    except ModuleNotFoundError:  # this test itself running on Python 3.10
        import tomli as tomllib

    from utils import config

    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(ImportError, match="needs the tomli package"):
        config.repository()
    monkeypatch.setitem(sys.modules, "tomli", types.SimpleNamespace(load=tomllib.load))  # tomli's API is tomllib's
    assert config.repository() == badges.repository() and "/" in config.repository()[0]


def test_a_notebooks_cells_stay_in_one_process_under_xdist(tmp_path):
    """`pytest` runs in two processes; a notebook's cells share one kernel, so they must not be split.

    Two notebooks of chained cells, run with the project's own options (pyproject.toml's ``-n 2`` and its
    ``--dist`` mode): a cell that ran in the other process than its notebook's first cell fails with NameError.
    Under pytest 9.2, ``--dist loadgroup`` split them (pytest-dev/pytest-xdist#1386); this test caught it.
    """
    for name in ("01_xdist_check", "02_xdist_check"):  # outside the repository: no other test sees them
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell("x0 = 0")]
        nb.cells += [nbformat.v4.new_code_cell(f"x{i} = x{i - 1} + 1") for i in range(1, 8)]
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    # -p conftest: the course's conftest.py (found on the path from the repository root) for files outside it
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-c", str(REPO_ROOT / "pyproject.toml"),
                             "--rootdir", str(REPO_ROOT), str(tmp_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTEST_ADDOPTS": ""})
    assert re.search(r"created: 2/2 workers", result.stdout), result.stdout[-3000:]  # it really ran in two processes
    assert result.returncode == 0 and re.search(r"\b16 passed\b", result.stdout), result.stdout[-3000:]


def test_a_lessons_two_editions_run_in_one_process_one_after_the_other(tmp_path):
    """A Korean lesson (notebooks/ko/) runs the English lesson's code and writes the same files (lesson 06's
    checkpoints/), so conftest.py's scheduler sends it to the process of its English lesson. Two lessons in two
    editions under the project's options: each lesson's eight cells ran in one process, and two processes ran."""
    for folder in ("notebooks", "notebooks/ko"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        for name in ("01_first", "02_second"):
            nb = nbformat.v4.new_notebook()
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            nb.cells = [nbformat.v4.new_code_cell(f"x{i} = {i}") for i in range(4)]
            nbformat.write(nb, tmp_path / folder / f"{name}.ipynb")
    result = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "conftest", "-c",
                             str(REPO_ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), str(tmp_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTEST_ADDOPTS": ""})
    assert result.returncode == 0 and re.search(r"\b16 passed\b", result.stdout), result.stdout[-3000:]
    ran = re.findall(r"\[(gw\d)\] .*PASSED \S*notebooks/(?:ko/)?(\d\d)_\w+\W+ipynb::", result.stdout)
    workers = {lesson: {worker for worker, number in ran if number == lesson} for lesson in ("01", "02")}
    assert len(ran) == 16 and all(len(found) == 1 for found in workers.values()), result.stdout[-3000:]
    assert re.search(r"created: 2/2 workers", result.stdout)



def test_readme_run_times_are_the_committed_runs_printed_times():
    """The README's run time of each lesson is the CPU time its committed run printed in its last line
    (utils.RunTimer), so that re-executing a lesson without updating the README fails here."""
    from utils.config import RunTimer

    readme = (REPO_ROOT / "README.md").read_text()
    found = re.search(r"the committed runs took ([\d.]+), ([\d.]+), ([\d.]+), ([\d.]+) and ([\d.]+) minutes of CPU "
                      r"time.*?in ([\d.]+) minutes of CPU time", readme, re.S)
    assert found, "README's lesson section must state the committed runs' CPU times (see this test's pattern)"
    stated = [float(value) for value in found.groups()]
    printed = []
    for path in NOTEBOOKS:
        outputs = "".join(output.get("text", "") for cell in nbformat.read(path, as_version=4).cells
                          if cell.cell_type == "code" for output in cell.get("outputs", []))
        printed.append(RunTimer.parse(outputs)[1])
    assert stated == printed, f"README says {stated} minutes of CPU time, the lessons printed {printed}: update README"
