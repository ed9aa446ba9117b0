"""Interactive controls (ipywidgets) that also leave a useful static output.

A plain ``@interact`` shows nothing on GitHub or in a test run, because its output lives in
a widget. :func:`explore` first calls the function with the default values, so the cell's
saved output shows the default state, then adds the live widget below it.
"""
import ipywidgets as widgets
from IPython.display import display


def slider(value, low, high, step=1, description=None):
    """An integer slider (``IntSlider``) that updates only when released."""
    return widgets.IntSlider(value=value, min=low, max=high, step=step, description=description or "",
                             continuous_update=False, style={"description_width": "initial"})


def dropdown(options, value=None, description=None):
    """A dropdown (``Dropdown``) over ``options``."""
    options = list(options)
    return widgets.Dropdown(options=options, value=value if value is not None else options[0],
                            description=description or "", style={"description_width": "initial"})


def _default(control):
    return control.value if isinstance(control, widgets.ValueWidget) else control


def explore(function, **controls):
    """Show ``function`` at its default arguments, then an interactive version of it.

    ``controls`` maps argument names to widgets (see :func:`slider`, :func:`dropdown`) or fixed
    values. Returns the ``interactive`` widget.
    """
    print("Default state (static output):")
    function(**{name: _default(control) for name, control in controls.items()})
    fixed = {name: (control if isinstance(control, widgets.ValueWidget) else widgets.fixed(control))
             for name, control in controls.items()}
    live = widgets.interactive(function, **fixed)
    print("Interactive (move the controls; needs a running kernel):")
    display(live)
    return live
