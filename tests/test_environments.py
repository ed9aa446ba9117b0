"""The tools behind the test environments (tests/environments/), and the README's account of them."""
import re
import sys

import pytest

from utils.config import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "environments"))
import colab_packages  # noqa: E402
import minimum  # noqa: E402

README = (REPO_ROOT / "README.md").read_text()
CONSTRAINTS = (REPO_ROOT / "tests" / "environments" / "colab-constraints.txt").read_text()


def _normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_minimum_pins_every_requirement_at_its_lower_bound():
    assert minimum.constraints("torch>=2.11   # a comment\n# only a comment\n\nscipy>=1.15\n") == [
        "torch==2.11", "scipy==1.15"]
    assert minimum.lowest('tomli>=2.0; python_version < "3.11"') == 'tomli==2.0; python_version < "3.11"'
    assert minimum.lowest("jupyter-book>=1.0,<2") == "jupyter-book==1.0"
    with pytest.raises(ValueError, match="exactly one lower bound"):
        minimum.lowest("numpy")


def test_colab_constraints_keep_what_pip_can_take():
    freeze = "\n".join(["torch==2.11.0+cu128", "numpy==2.1.3", "google-colab @ file:///colabtools/dist/x.tar.gz",
                        "nvidia-cudnn-cu12==9.19.0.56", "cuda-toolkit==12.8.1", "ipywidgets==7.7.1"])
    assert colab_packages.constraints(freeze) == ["torch==2.11.0", "numpy==2.1.3", "ipywidgets==7.7.1"]
    assert colab_packages.python_version("Ubuntu 22.04.5 LTS\nPython 3.13.15\nR version 4.6.1") == "3.13"


def test_readme_states_the_minimum_versions_that_requirements_txt_sets():
    sentence = README.split("**Minimum versions supported**", 1)[1].split("\n\n", 1)[0]
    stated = dict(re.findall(r"\b([a-z][a-z-]*) (\d+(?:\.\d+)+)", sentence.replace("\n", " ")))
    bounds = dict(pin.split(";")[0].split("==") for pin in minimum.constraints(minimum.REQUIREMENTS.read_text()))
    python = re.search(r'requires-python = ">=([0-9.]+)"', (REPO_ROOT / "pyproject.toml").read_text())[1]
    assert f"on Python {python}" in sentence.replace("\n", " ")
    assert stated and all(bounds.get(name) == version for name, version in stated.items()), (stated, bounds)


def test_readme_states_the_colab_versions_that_the_environment_mirrors():
    pins = {_normal(name): version for name, version in re.findall(r"^(\S+)==(\S+)$", CONSTRAINTS, re.M)}
    table = README.split("**Colab's packages.**", 1)[1].split("\n\n```", 1)[0]
    rows = dict(re.findall(r"^\| (\S+) \| ([0-9.]+) \|$", table, re.M))
    assert rows.pop("Python") == re.search(r"^# python (\S+)$", CONSTRAINTS, re.M)[1]
    assert len(rows) >= 10 and {name: pins.get(_normal(name)) for name in rows} == rows
    commit = re.search(r"pip-freeze\.gpu\.txt at ([0-9a-f]{40})", CONSTRAINTS)[1]
    assert f"at commit `{commit[:7]}`" in table
