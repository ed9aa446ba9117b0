"""The exercises' worked solutions: found in a notebook's Markdown, and checked against their text.

The solutions live in collapsed ``<details>`` blocks as Markdown. conftest.py appends each one's
code to its lesson's nbval run as an extra item (after the notebook's own cells, in the same
kernel, so the solutions see the notebook's variables as a learner's would). After a solution
runs, :func:`check` requires that each number it prints is one that its text states, and that
each True or False it prints is stated in its text too (a broken check printing False must not
pass). Solutions that train or evaluate a network print measurements the text cannot know in
advance; those only have to run.
"""
import re

DETAILS = re.compile(r"<details>(.*?)</details>", re.S)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
# A number after Hangul needs a space before it ("총 7,884개", STYLE.md rule 9); a Korean particle may follow
# True or False directly ("True입니다"), so the end of the word is an ASCII one.
BOOLEAN = re.compile(r"(?<!\w)(True|False)(?![A-Za-z0-9_])")
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


def check(where, text, code, printed):
    """Fail when a solution prints a number, True or False that its text (or its code's comments) does not state."""
    if any(call in code for call in MEASURES):
        return
    prose = PYTHON_BLOCK.sub("", text)
    comments = "\n".join(line.split("#", 1)[1] for line in code.splitlines() if "#" in line)
    text_numbers = numbers(prose) + numbers(comments)
    missing = [value for value, _ in numbers(printed) if not stated(value, text_numbers)]
    assert not missing, f"{where} prints {missing}, which its text does not state:\n{printed}"
    said = set(BOOLEAN.findall(prose + "\n" + comments))
    unstated = sorted(set(BOOLEAN.findall(printed)) - said)
    assert not unstated, f"{where} prints {unstated}, which its text does not state:\n{printed}"
