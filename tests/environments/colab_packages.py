"""Turn Colab's published package list into pip constraints, so that a test environment mirrors it.

Colab publishes what its runtime has installed at github.com/googlecolab/backend-info
(pip-freeze.gpu.txt, the GPU runtime; the CPU one differs only in CUDA packages). To refresh:

    git clone --depth 1 https://github.com/googlecolab/backend-info /tmp/backend-info
    python tests/environments/colab_packages.py /tmp/backend-info > tests/environments/colab-constraints.txt

then rebuild the environment (.ci/run does it) and update the README's "Where it is tested" table. The
whole list is mirrored, not only the packages the course imports: a newer nbclient or pyzmq beside
Colab's jupyter_client can hang, and such pairs are what this environment is for.

Three kinds of lines cannot be constraints and are left out or changed: packages installed from a URL
or a local file (``name @ https://...``: Colab's own google-colab, a spaCy model); the local version
labels of CUDA builds (``torch==2.11.0+cu128`` becomes ``torch==2.11.0``: the same release from PyPI);
and the CUDA libraries under that build (``nvidia-*``, ``cuda-*``). PyPI's build of the same torch
release links another CUDA version and needs its own libraries, which those pins would forbid; no
course code calls them, and the test environment runs on a CPU.
"""
import pathlib
import re
import subprocess
import sys

FREEZE = "pip-freeze.gpu.txt"
OS_INFO = "os-info-gpu.txt"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^+\s]+)(\+\S+)?$")
CUDA_LIBRARY = re.compile(r"^(nvidia|cuda)[-_]", re.IGNORECASE)


def constraints(freeze_text):
    """The pins of a ``pip freeze`` listing that pip can take as constraints (see the module docstring)."""
    pins = []
    for line in freeze_text.splitlines():
        match = PIN.match(line.strip())
        if match and not CUDA_LIBRARY.match(match["name"]):
            pins.append(f"{match['name']}=={match['version']}")
    return pins


def python_version(os_info_text):
    """Colab's Python as major.minor ("3.13"), from os-info-gpu.txt's "Python 3.13.x" line."""
    match = re.search(r"^Python (\d+\.\d+)", os_info_text, re.M)
    if match is None:
        raise ValueError(f"no 'Python X.Y' line in {OS_INFO}")
    return match[1]


def header(checkout):
    """Where the list came from (the commit of backend-info, its date and subject), and Colab's Python."""
    log = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%H %cs %s"], capture_output=True,
                         text=True)
    source = log.stdout.strip() or "(not a git checkout)"
    return [f"# Colab's packages, from github.com/googlecolab/backend-info {FREEZE} at {source}",
            f"# python {python_version((checkout / OS_INFO).read_text())}",
            "# Made by tests/environments/colab_packages.py (its docstring says how to refresh); do not edit."]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/environments/colab_packages.py PATH-TO-BACKEND-INFO-CHECKOUT")
    checkout = pathlib.Path(sys.argv[1])
    if not (checkout / FREEZE).exists():
        sys.exit(f"{checkout / FREEZE} not found: clone github.com/googlecolab/backend-info and pass its folder")
    print("\n".join(header(checkout) + constraints((checkout / FREEZE).read_text())))
