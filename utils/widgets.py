"""Interactive controls (ipywidgets) that also leave a useful static output.

A plain ``@interact`` shows nothing on GitHub or in a test run, because its output lives in
a widget. :func:`explore` shows the controls, then the function's output at the default
values as ordinary cell output (so a saved notebook shows it), and redraws into a live area
when a control moves, replacing the default picture: one figure on screen at a time.
"""
import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display
from IPython.utils.capture import capture_output


def slider(value, low, high, step=1, description=None):
    """An integer slider (``IntSlider``) that updates only when released."""
    return widgets.IntSlider(value=value, min=low, max=high, step=step, description=description or "",
                             continuous_update=False, style={"description_width": "initial"})


def dropdown(options, value=None, description=None):
    """A dropdown (``Dropdown``) over ``options``."""
    options = list(options)
    return widgets.Dropdown(options=options, value=value if value is not None else options[0],
                            description=description or "", style={"description_width": "initial"})


def _value(control):
    return control.value if isinstance(control, widgets.ValueWidget) else control


def _show_static(function, kwargs):
    """Run ``function`` and show what it printed and drew as ordinary outputs; return their handles."""
    with capture_output() as captured:
        function(**kwargs)
        plt.show()
    handles = []
    if captured.stdout:
        handles.append(display({"text/plain": captured.stdout.rstrip("\n")}, raw=True, display_id=True))
    for output in captured.outputs:
        handles.append(display(output.data, metadata=output.metadata, raw=True, display_id=True))
    return handles


def explore(function, **controls):
    """Controls for ``function``'s arguments, its output at the defaults, and a live redraw.

    ``controls`` maps argument names to widgets (see :func:`slider`, :func:`dropdown`) or fixed
    values. The default output is ordinary cell output, so a saved notebook shows it; the first
    time a control moves it is cleared and the function redraws below the controls.
    Returns the box of controls.
    """
    live = {name: control for name, control in controls.items() if isinstance(control, widgets.ValueWidget)}
    box = widgets.HBox(list(live.values()), layout=widgets.Layout(flex_flow="row wrap"))
    area = widgets.Output()
    display(box)
    static = _show_static(function, {name: _value(c) for name, c in controls.items()})
    display(area)

    def redraw(change=None):
        while static:
            static.pop().update({"text/plain": ""}, raw=True)
        with area:
            area.clear_output(wait=True)
            function(**{name: _value(c) for name, c in controls.items()})
            plt.show()

    for control in live.values():
        control.observe(redraw, names="value")
    return box
