"""show_elapsed: a wait with no steps to count (torch.compile) shows its seconds and leaves one final line."""
import io
import re
import time

import nbformat
from helpers import FakeClock
from nbclient import NotebookClient

from utils.config import REPO_ROOT
from utils.progress import show_elapsed


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _wait_for(condition):
    """Wait until ``condition()`` holds (a background thread's work), failing after a minute, not timing anything."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "the background thread did not run"
        time.sleep(0.01)


def test_in_a_log_only_the_final_line_is_written(capsys):
    with show_elapsed("compiling the model (torch.compile)", every=3600, clock=FakeClock()):
        pass  # the clock reads 1 at the start and 2 at the end
    assert capsys.readouterr().err == "compiling the model (torch.compile): 1.0 s\n"


def test_in_a_terminal_the_line_counts_the_seconds_in_place(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with show_elapsed("compiling", every=0.01, clock=FakeClock()) as status:
        _wait_for(lambda: status.ticks >= 2)
    # each update reads the clock once: 2, 3, ..., then the final line
    updates = [part.rstrip() for part in terminal.getvalue().split("\r")[1:]]
    assert updates[:2] == ["compiling: 1 s", "compiling: 2 s"] and len(updates) == status.ticks + 1
    assert updates[-1] == f"compiling: {status.ticks + 1:.1f} s" and terminal.getvalue().endswith("\n")


def test_in_a_notebook_one_display_is_rewritten_and_keeps_the_total():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        f"import sys, time; sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from utils.progress import show_elapsed\n"
        "with show_elapsed('compiling demo', every=0.05) as status:\n"
        "    while status.ticks < 3:\n"
        "        time.sleep(0.01)\n")]
    NotebookClient(notebook, kernel_name="python3", timeout=120).execute()
    outputs = notebook.cells[0].outputs
    assert len(outputs) == 1 and outputs[0]["output_type"] == "display_data"
    assert re.fullmatch(r"compiling demo: \d+\.\d s", outputs[0]["data"]["text/plain"])
