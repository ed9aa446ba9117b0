"""Move every control a lesson made, from the kernel side, as a learner's clicks would; report what broke.

The Colab-package test (tests/test_colab_packages.py) runs this inside a lesson's kernel after the
lesson's last cell. It finds every live widget, and:

* moves each slider to its minimum, its maximum and back to its first value;
* picks every option of each dropdown (and any other selection widget), then the first value again;
* gives each file upload a small PNG, shaped the way the installed ipywidgets shapes an upload
  (ipywidgets 7, Colab's: ``metadata`` and ``data`` lists, then the counter the browser bumps, which
  fills ``value`` as a dict by file name; ipywidgets 8: ``value`` as a tuple of dicts).

A callback that raises is a failure, wherever it raises: in the setter (a ``observe`` callback) or
inside an ``Output`` widget's ``with`` block, which shows the traceback and swallows the exception.
So is a move after which the lesson showed nothing new (no figure, no text, no display update).
"""
import io
import sys
import traceback

import ipywidgets
from IPython import get_ipython


def _all_widgets():
    registry = getattr(ipywidgets.widgets.widget, "_instances", None)  # ipywidgets 8
    if registry is None:
        registry = ipywidgets.Widget.widgets  # ipywidgets 7
    return list(registry.values())


def _png():
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def _upload(widget, name, content):
    """Give ``widget`` one file, as the browser would with the installed ipywidgets."""
    if int(ipywidgets.__version__.split(".")[0]) >= 8:
        import datetime

        widget.value = ({"name": name, "type": "image/png", "size": len(content), "content": memoryview(content),
                         "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    else:
        widget.metadata = [{"name": name, "type": "image/png", "size": len(content), "lastModified": 0}]
        widget.data = [content]
        widget._counter += 1


def _moves(widget):
    """(description, action) pairs for one widget; none for widgets a learner does not operate.

    Each action returns False when it would change nothing (the control already shows that value)."""
    if isinstance(widget, ipywidgets.FileUpload):
        return [("upload picture.png", lambda: _upload(widget, "picture.png", _png()))]
    if isinstance(widget, (ipywidgets.IntSlider, ipywidgets.FloatSlider)):
        values = [widget.min, widget.max, widget.value]
    elif isinstance(widget, ipywidgets.widgets.widget_selection._Selection):
        values = [value for _, value in widget._options_full] + [widget.value]
    else:
        return []

    def move(value):
        if widget.value == value:
            return False
        widget.value = value
        return True

    return [(f"value={value!r}", lambda value=value: move(value)) for value in values]


def exercise():
    """Operate every control; return a report dict: ``moved`` (descriptions), ``failures`` (messages)."""
    shell = get_ipython()
    shown, failures, moved = [0], [], []
    original_showtraceback = shell.showtraceback
    original_publish = shell.display_pub.publish
    original_write = sys.stdout.write

    def showtraceback(*args, **kwargs):
        exc = args[0] if args and args[0] else sys.exc_info()
        failures.append("".join(traceback.format_exception(*exc)))
        return original_showtraceback(*args, **kwargs)

    def publish(*args, **kwargs):
        shown[0] += 1
        return original_publish(*args, **kwargs)

    def write(text):
        shown[0] += bool(text.strip())
        return original_write(text)

    shell.showtraceback, shell.display_pub.publish, sys.stdout.write = showtraceback, publish, write
    try:
        for widget in _all_widgets():
            if getattr(widget, "disabled", False):
                continue
            name = f"{type(widget).__name__} {getattr(widget, 'description', '')!r}"
            for description, action in _moves(widget):
                before, errors = shown[0], len(failures)
                try:
                    if action() is False:
                        continue
                except Exception:
                    failures.append(f"{name}, {description}:\n{traceback.format_exc()}")
                    continue
                if len(failures) > errors:
                    failures[-1] = f"{name}, {description}:\n{failures[-1]}"
                elif shown[0] == before:
                    failures.append(f"{name}, {description}: the lesson showed nothing new")
                moved.append(f"{name}: {description}")
    finally:
        shell.showtraceback, shell.display_pub.publish, sys.stdout.write = (original_showtraceback, original_publish,
                                                                            original_write)
    return {"moved": moved, "failures": failures}
