"""Root pytest configuration: notebooks executed by nbval run in smoke mode.

The variable is set before any kernel starts, so every notebook kernel inherits it.
Set COURSE_SMOKE=0 yourself to execute the notebooks in full mode under pytest.
"""
import os

os.environ.setdefault("COURSE_SMOKE", "1")
