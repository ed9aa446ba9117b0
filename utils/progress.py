"""Progress bars for anything that runs longer than a few seconds.

:func:`progress_bar` is ``tqdm.auto`` with two changes that matter in a notebook:

* it redraws at most once a second, so a long cell does not flood the notebook with widget
  messages (Jupyter drops messages past a limit, and a test runner then waits for output that
  never comes);
* when it closes, the live widget is replaced by one line of text with its final state, so a
  saved notebook (on GitHub, in Colab's preview) shows "100% 184/184 ..." instead of a bar
  frozen at 0%.

Outside a notebook (a script, ``torchrun``) it is an ordinary console tqdm.
"""
import functools

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
