"""Print pip constraints that pin every requirement of requirements.txt to its lower bound.

    python tests/environments/minimum.py > minimum-constraints.txt
    pip install -r requirements.txt -c minimum-constraints.txt

The "minimum" test environment (.ci/run) installs exactly this, on the oldest Python that
pyproject.toml admits, and runs the unit tests and one lesson: so every lower bound in
requirements.txt is one that was tried. Nothing is written by hand here: the pins are read
from requirements.txt, so they cannot drift from it.
"""
import pathlib
import re
import sys

REQUIREMENTS = pathlib.Path(__file__).resolve().parents[2] / "requirements.txt"
LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<spec>[^;#]*?)\s*(?P<marker>;[^#]*?)?\s*(#.*)?$")


def lowest(line):
    """``"torch>=2.11  # note"`` -> ``"torch==2.11"``; markers are kept; a line without a lower bound is an error."""
    match = LINE.match(line.strip())
    if match is None:
        raise ValueError(f"cannot read this requirements.txt line: {line!r}")
    bounds = re.findall(r">=\s*([0-9][^,\s]*)", match["spec"])
    if len(bounds) != 1:
        raise ValueError(f"{match['name']}: every requirement needs exactly one lower bound (>=), got {line.strip()!r}")
    return f"{match['name']}=={bounds[0]}" + (f"; {match['marker'][1:].strip()}" if match["marker"] else "")


def constraints(text):
    """One pin per requirement line of ``text`` (comments and blank lines skipped)."""
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [lowest(line) for line in lines if line]


if __name__ == "__main__":
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else REQUIREMENTS
    print("\n".join(constraints(path.read_text())))
