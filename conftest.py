"""Root pytest configuration.

Notebooks executed by nbval run in smoke mode: the variable is set before any kernel starts, so
every notebook kernel inherits it. Set COURSE_SMOKE=0 yourself to execute the notebooks in full
mode under pytest.

Each lesson's worked solutions (Markdown ``<details>`` blocks) run as extra nbval items after the
lesson's own cells, in the same kernel, and what they print is checked against their text
(tests/solutions.py). So every notebook is executed once, not once for nbval and once more for
its solutions.

`pytest` runs in two processes (pytest-xdist, ``-n 2 --dist loadfile`` in pyproject.toml). The
cells of one notebook share one kernel and must run in order in one process: ``loadfile`` sends
every item of a file (a notebook's cells and its solutions; a test module's tests) to the same
process, and rewrites no node id. (``--dist loadgroup`` with ``xdist_group`` marks did the same by
rewriting node ids, which pytest 9.2 no longer accepts: pytest-dev/pytest-xdist#1386.)
tests/test_notebooks.py checks that a notebook's cells are never split. Run ``pytest -n 0`` for a
single process.

The Korean edition (notebooks/ko/NN_name.ipynb, built by ``python -m utils.translate build``) is collected and
run the same way, its worked solutions checked against its Korean text. A Korean lesson runs the same code as
its English one and writes the same files (lesson 06's checkpoints/), so the two run in one process, one after
the other (:func:`pytest_xdist_make_scheduler`).
"""
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import IPyNbCell, IPyNbFile

os.environ.setdefault("COURSE_SMOKE", "1")
sys.path.insert(0, str(Path(__file__).parent / "tests"))
import solutions  # noqa: E402  (tests/solutions.py, found through the line above)

LESSON = re.compile(r"[0-9][0-9]_.*\.ipynb")


class SolutionItem(IPyNbCell):
    """A worked solution, run in its lesson's kernel like a cell; then its printed output is checked."""

    def __init__(self, *args, text, code, **kwargs):
        super().__init__(*args, **kwargs)
        self.text, self.code = text, code

    def runtest(self):
        super().runtest()
        printed = "".join(out.get("text", "") for out in self.test_outputs or [] if out.get("output_type") == "stream")
        path, root = self.parent.path, self.config.rootpath
        where = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name  # the edition too
        solutions.check(f"{where}, {self.name}", self.text, self.code, printed)


class LessonNotebook(IPyNbFile):
    """nbval's notebook, followed by the lesson's worked solutions."""

    def collect(self):
        yield from super().collect()
        first = sum(cell.cell_type == "code" for cell in self.nb.cells)
        for number, (text, code) in enumerate(solutions.solutions(self.nb), start=1):
            yield SolutionItem.from_parent(self, name=f"Solution {number}", cell_num=first + number - 1,
                                           cell=nbformat.v4.new_code_cell(code), options=defaultdict(bool, check=False),
                                           text=text, code=code)


@pytest.hookimpl(hookwrapper=True)
def pytest_collect_file(file_path, parent):
    outcome = yield
    if LESSON.fullmatch(file_path.name):
        outcome.force_result([LessonNotebook.from_parent(parent, path=file_path) if type(item) is IPyNbFile else item
                              for item in outcome.get_result()])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, except that a Korean lesson goes to the process of its English lesson."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LessonScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid):
            return nodeid.split("::", 1)[0].replace("notebooks/ko/", "notebooks/")

    return LessonScheduling(config, log)
