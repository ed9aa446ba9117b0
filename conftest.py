"""Root pytest configuration.

Notebooks executed by nbval run in smoke mode: the variable is set before any kernel starts, so
every notebook kernel inherits it. Set COURSE_SMOKE=0 yourself to execute the notebooks in full
mode under pytest.

`pytest` runs in two processes (pytest-xdist, ``-n 2`` in pyproject.toml). The cells of one
notebook share one kernel and must run in order in one process, so each notebook's cells form
one xdist group (``--dist loadgroup``); every other test goes wherever a process is free.
Run ``pytest -n 0`` for a single process.
"""
import os

import pytest

os.environ.setdefault("COURSE_SMOKE", "1")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups from the markers
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
