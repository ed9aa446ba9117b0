"""Progress bars for anything that runs longer than a few seconds.

:func:`progress_bar` is ``tqdm.auto`` with two changes that matter in a notebook:

* it redraws at most once a second, so a long cell does not flood the notebook with widget
  messages (Jupyter drops messages past a limit, and a test runner then waits for output that
  never comes);
* when it closes, the live widget is replaced by one line of text with its final state, so a
  saved notebook (on GitHub, in Colab's preview) shows "100% 184/184 ..." instead of a bar
  frozen at 0%.

Outside a notebook (a script, ``torchrun``) it is an ordinary console tqdm.

:func:`show_elapsed` is for a wait that has no steps to count, such as ``torch.compile``'s first
compilation: it shows the seconds going by, and leaves one line with the total.
"""
import contextlib
import functools
import shutil
import sys
import threading
import time
import types

import tqdm


def in_notebook():
    """True inside a Jupyter kernel that can show widgets."""
    try:
        import ipywidgets  # noqa: F401  (the widget bar needs it)
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


@functools.cache
def _notebook_bar_class():
    from IPython.display import display
    from tqdm.notebook import tqdm as notebook_tqdm

    class NotebookBar(notebook_tqdm):
        """tqdm's notebook widget, shown through a display handle that ``close`` rewrites as text."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, display=False, **kwargs)
            self._handle = None if self.disable else display(self.container, display_id=True)

        def close(self):
            handle, self._handle = getattr(self, "_handle", None), None
            super().close()
            if handle is not None:
                handle.update({"text/plain": self.format_meter(**self.format_dict) if self.leave else ""}, raw=True)

    return NotebookBar


def progress_bar(total=None, desc=None, leave=True, disable=False, mininterval=1.0, **kwargs):
    """A tqdm progress bar that leaves a readable trace in a saved notebook (see the module docstring).

    Use it like tqdm: ``bar = progress_bar(total=n, desc="training")``, ``bar.update(k)``,
    ``bar.set_postfix(loss=..., refresh=False)``, ``bar.close()``; or as a context manager.
    """
    bar_class = _notebook_bar_class() if in_notebook() else tqdm.tqdm
    return bar_class(total=total, desc=desc, leave=leave, disable=disable, mininterval=mininterval,
                     dynamic_ncols=True, **kwargs)


def say(text):
    """Print one line without breaking a progress bar being drawn (``tqdm.write``), to stdout."""
    tqdm.tqdm.write(text)


@contextlib.contextmanager
def show_elapsed(label, every=1.0, clock=time.perf_counter):
    """Show ``label: 47 s`` while the block runs, updated every ``every`` seconds from a background thread,
    then leave one line with the total, ``label: 63.2 s``. In a notebook the line is a display that is
    rewritten in place; in a terminal it is rewritten with a carriage return; in a log file (not a
    terminal) only the final line is written. Yields an object whose ``ticks`` counts the updates.

        with show_elapsed("compiling the model (torch.compile)"):
            first_step()
    """
    line, start, stop, status = _Line(), clock(), threading.Event(), types.SimpleNamespace(ticks=0)

    def tick():
        while not stop.wait(every):
            line.show(f"{label}: {clock() - start:.0f} s")
            status.ticks += 1

    thread = threading.Thread(target=tick, name="show_elapsed", daemon=True)
    thread.start()
    try:
        yield status
    finally:
        stop.set()
        thread.join()
        line.show(f"{label}: {clock() - start:.1f} s", final=True)


class _Line:
    """One line of text, rewritten in place: a display in a notebook, a carriage return on stderr."""

    def __init__(self):
        self.handle, self.notebook = None, in_notebook()
        self.terminal = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()

    def show(self, text, final=False):
        if self.notebook:
            from IPython.display import display

            if self.handle is None:
                self.handle = display({"text/plain": text}, raw=True, display_id=True)
            else:
                self.handle.update({"text/plain": text}, raw=True)
        elif self.terminal:  # pad to the terminal's width: it also covers a progress bar drawn on this line
            sys.stderr.write("\r" + text.ljust(shutil.get_terminal_size().columns - 1) + ("\n" if final else ""))
            sys.stderr.flush()
        elif final:
            sys.stderr.write(text + "\n")
