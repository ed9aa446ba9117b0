"""Course-wide settings, read in one place.

`SMOKE` is True when the environment variable ``COURSE_SMOKE=1`` is set (the tests set it).
Smoke mode shrinks data and epochs so that a notebook runs in seconds; it changes sizes,
never code paths. Use :func:`pick` to choose between the full and the smoke value.
"""
import os
import pathlib

SMOKE = os.environ.get("COURSE_SMOKE", "0").strip().lower() in {"1", "true", "yes", "on"}

#: The repository root (the folder that holds ``utils/``).
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

#: Where datasets are downloaded when no offline copy is configured (git-ignored).
DATA_ROOT = REPO_ROOT / "data"


def pick(full, smoke):
    """Return ``smoke`` in smoke mode (``COURSE_SMOKE=1``), ``full`` otherwise.

    >>> epochs = pick(full=10, smoke=1)
    """
    return smoke if SMOKE else full


def repository():
    """The course's GitHub path ("owner/name"), read from pyproject.toml's [tool.course].

    It is the one place the repository path is written; `python -m utils.badges`
    rewrites every notebook's Colab badge and setup cell from it.
    """
    try:
        import tomllib  # Python 3.11 and newer
    except ImportError:  # Python 3.10: the same parser, as the tomli package (requirements.txt installs it)
        try:
            import tomli as tomllib
        except ImportError:
            raise ImportError("Reading pyproject.toml on Python 3.10 needs the tomli package: "
                              "pip install -r requirements.txt (or pip install tomli).") from None

    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        course = tomllib.load(f)["tool"]["course"]
    return course["repository"], course.get("branch", "main")
