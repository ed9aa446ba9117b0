"""Lint: `ruff check` over utils/, tests/ and the notebooks, with the rules in pyproject.toml's [tool.ruff]."""
import subprocess
import sys

import pytest

from utils.config import REPO_ROOT

PATHS = ["utils", "tests", "tools", "notebooks", "conftest.py"]


def ruff(*arguments):
    try:
        import ruff  # noqa: F401
    except ImportError:
        pytest.fail("ruff is missing: pip install -r requirements.txt", pytrace=False)
    return subprocess.run([sys.executable, "-m", "ruff", *arguments], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


def test_ruff_finds_nothing():
    """Fix a finding (`ruff check --fix` does the import order and other safe ones), or, where a rule is
    wrong for one line, say why on that line with `# noqa: CODE`."""
    result = ruff("check", "--output-format", "concise", "--no-cache", *PATHS)
    findings = [line for line in result.stdout.splitlines() if ": " in line and not line.startswith("Found ")]
    if result.returncode != 0:
        report = "\n".join(findings) + result.stderr
        pytest.fail(f"ruff check found {len(findings)} problems:\n{report}", pytrace=False)


def test_ruff_reads_this_configuration_and_the_notebooks():
    """The lint covers the notebooks (ruff reads .ipynb itself) with pyproject.toml's line length."""
    files = ruff("check", "--show-files", *PATHS).stdout
    assert "01_cnn_basics.ipynb" in files and "test_lint.py" in files
    settings = ruff("check", "--show-settings", "tests/test_lint.py").stdout
    assert "line_length = 120" in settings and "unsorted-imports (I001)" in settings
