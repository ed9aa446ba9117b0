"""Course-wide settings, read in one place, and the run-time footer every lesson prints.

`SMOKE` is True when the environment variable ``COURSE_SMOKE=1`` is set (the tests set it).
Smoke mode shrinks data and epochs so that a notebook runs in seconds; it changes sizes,
never code paths. Use :func:`pick` to choose between the full and the smoke value.
:class:`RunTimer` measures how long a notebook ran.
"""
import os
import pathlib
import re
import time

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


class RunTimer:
    """Wall-clock and CPU time since it was made, printed as a notebook's last line.

    ::

        timer = utils.RunTimer()   # in the imports cell
        ...
        timer.report()             # in the last cell

    prints exactly one line (wrapped here), minutes with one decimal, "thread" for one thread::

        This run of the notebook took 4.1 minutes of wall-clock time and 3.9 minutes of CPU time
        on 2 threads (from the imports cell on; kernel start not included).

    CPU time is this process's, all its threads together (``time.process_time``), so on several
    threads it can exceed the wall-clock time; the thread count is ``torch.get_num_threads()``.
    :meth:`parse` reads the two numbers back from a notebook's output.
    """

    LINE = re.compile(r"This run of the notebook took (?P<wall>\d+\.\d) minutes of wall-clock time and "
                      r"(?P<cpu>\d+\.\d) minutes of CPU time on (?P<threads>\d+) threads? ")

    def __init__(self):
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def minutes(self):
        """(wall-clock minutes, CPU minutes) since the timer was made."""
        return (time.perf_counter() - self.started) / 60, (time.process_time() - self.cpu_started) / 60

    def line(self):
        import torch

        wall, cpu = self.minutes()
        threads = torch.get_num_threads()
        return (f"This run of the notebook took {wall:.1f} minutes of wall-clock time and {cpu:.1f} minutes of CPU "
                f"time on {threads} thread{'s' if threads != 1 else ''} (from the imports cell on; kernel start not "
                "included).")

    def report(self):
        """Print :meth:`line`."""
        print(self.line())

    @classmethod
    def parse(cls, text):
        """(wall-clock minutes, CPU minutes) from the line :meth:`report` printed, found anywhere in ``text``."""
        found = cls.LINE.search(text)
        if found is None:
            raise ValueError("no run-time line in this text; it is the line RunTimer.report() prints: "
                             "'This run of the notebook took X minutes of wall-clock time and Y minutes of CPU time "
                             "on N threads (...)'. Run the notebook to its last cell.")
        return float(found["wall"]), float(found["cpu"])
