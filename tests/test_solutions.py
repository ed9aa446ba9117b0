"""Every worked solution runs, and prints the numbers its text states.

The exercises' solutions live in collapsed ``<details>`` blocks as Markdown, so nbval does not
execute them. This test does: it runs each notebook in smoke mode with every solution's code
appended as extra cells (so the solutions see the notebook's variables, as a learner's would),
then checks that each number a solution prints is one that its text states, and that each
True or False it prints is stated in its text too (a broken check printing False must not pass).
Solutions that train or evaluate a network print measurements the text cannot know in advance;
those only have to run.
"""
import re

import nbformat
import pytest
from nbclient import NotebookClient

from utils.config import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
DETAILS = re.compile(r"<details>(.*?)</details>", re.S)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
BOOLEAN = re.compile(r"\b(True|False)\b")
MEASURES = ("fit(", "evaluate(", "accuracy_without(")  # solutions whose printed numbers are measurements


def solutions(notebook):
    """[(text, code)] for every <details> block of the notebook that contains Python code."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for text in DETAILS.findall(cell.source):
                blocks = PYTHON_BLOCK.findall(text)
                if blocks:
                    found.append((text, "\n".join(blocks)))
    return found


def numbers(text):
    """Numbers written in a text: 1,234 and 1{,}234 (LaTeX) and 9.68 as (value, decimals) pairs."""
    result = []
    for token in NUMBER.findall(text.replace("{,}", ",")):
        token = token.rstrip(",")
        decimals = len(token.split(".")[1]) if "." in token else 0
        result.append((float(token.replace(",", "")), decimals))
    return result


def stated(value, text_numbers):
    """True when the text states `value`, exactly or rounded to the decimals the text shows."""
    return any(round(value, decimals) == number for number, decimals in text_numbers)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_worked_solutions_run_and_agree_with_their_text(path):
    notebook = nbformat.read(path, as_version=4)
    found = solutions(notebook)
    assert found, f"{path.name} has no worked solution with code"
    first_added = len(notebook.cells)
    notebook.cells += [nbformat.v4.new_code_cell(code) for _, code in found]
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()  # COURSE_SMOKE=1: conftest.py

    for number, ((text, code), cell) in enumerate(zip(found, notebook.cells[first_added:]), start=1):
        printed = "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")
        if any(call in code for call in MEASURES):
            continue
        prose = PYTHON_BLOCK.sub("", text)
        comments = "\n".join(line.split("#", 1)[1] for line in code.splitlines() if "#" in line)
        text_numbers = numbers(prose) + numbers(comments)
        missing = [value for value, _ in numbers(printed) if not stated(value, text_numbers)]
        where = f"{path.name}, solution {number}"
        assert not missing, f"{where} prints {missing}, which its text does not state:\n{printed}"
        said = set(BOOLEAN.findall(prose + "\n" + comments))
        unstated = sorted(set(BOOLEAN.findall(printed)) - said)
        assert not unstated, f"{where} prints {unstated}, which its text does not state:\n{printed}"
