"""Every lesson has worked solutions, and the check of their printed numbers works.

The solutions themselves run inside each lesson's nbval run (conftest.py appends them after the
notebook's cells, in the same kernel); tests/solutions.py checks what they print against their text.
"""
import nbformat
import pytest
from solutions import check, solutions

from utils.config import REPO_ROOT

NOTEBOOKS = (sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
             + sorted((REPO_ROOT / "notebooks" / "ko").glob("[0-9][0-9]_*.ipynb")))  # the Korean edition, where built
IDS = [f"ko/{p.stem}" if p.parent.name == "ko" else p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_lesson_has_worked_solutions_with_code(path):
    assert solutions(nbformat.read(path, as_version=4)), f"{path.name} has no worked solution with code"


def test_the_check_catches_a_number_or_a_boolean_the_text_does_not_state():
    text = "The layer has 1,234 parameters, about 9.7x fewer; the check prints True."
    check("ok", text, "print(1234, 9.68, True)", "1234 9.68 True\n")
    with pytest.raises(AssertionError, match=r"\[1235.0\]"):
        check("wrong number", text, "print(1235)", "1235\n")
    with pytest.raises(AssertionError, match=r"\['False'\]"):
        check("wrong boolean", text, "print(False)", "False\n")
    check("a measurement", text, "history = fit(model)\nprint(0.4321)", "0.4321\n")  # exempt: trains a network


def test_the_check_reads_korean_text():
    """The Korean lessons' solutions are checked against their Korean text: numbers after a space, and
    True or False followed by a particle, are read; a number glued to Hangul is not (STYLE.md rule 9)."""
    check("ko", "가중치는 총 7,884개이고, 검사 결과는 True입니다.", "print(7884, True)", "7884 True\n")
    check("ko", "답은 9.68배이며 False를 출력합니다.", "print(9.68, False)", "9.68 False\n")
    with pytest.raises(AssertionError, match=r"\[7884.0\]"):
        check("ko", "가중치는 총7,884개입니다.", "print(7884)", "7884\n")
    with pytest.raises(AssertionError, match=r"\['False'\]"):
        check("ko", "검사 결과는 True입니다.", "print(False)", "False\n")


def test_a_solution_runs_in_its_lessons_kernel_and_a_wrong_one_fails(tmp_path):
    """conftest.py appends the solutions to nbval's run of the lesson: a solution whose text is wrong fails."""
    import os
    import subprocess
    import sys

    paths = []
    for said in (3, 4):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell("x = 2"),  # a notebook variable the solution uses
                    nbformat.v4.new_markdown_cell(f"<details><summary>Solution</summary>\n\nIt prints {said}.\n\n"
                                                  "```python\nprint(x + 1)\n```\n</details>")]
        paths.append(tmp_path / f"99_check_{said}.ipynb")  # outside the repository: no other test sees them
        nbformat.write(nb, paths[-1])
    # -p conftest: the course's conftest.py (found on the path from the repository root) for files outside it
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "conftest", "-c",
                             str(REPO_ROOT / "pyproject.toml"), "--rootdir", str(REPO_ROOT), *map(str, paths)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTEST_ADDOPTS": ""})
    assert "1 failed, 3 passed" in result.stdout, result.stdout[-3000:]
    assert f"{paths[1].name}, Solution 1 prints [3.0]" in result.stdout
