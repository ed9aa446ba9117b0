"""Rewrite every notebook's "Open in Colab" badge, glossary link and setup cell from pyproject.toml,
and give every cell that has none a lecture-mode slide type.

    python -m utils.badges          # rewrite notebooks/*.ipynb and notebooks/ko/*.ipynb in place
    python -m utils.badges --check  # exit 1 and list the notebooks that are out of date

A Korean lesson (notebooks/ko/NN_name.ipynb, built by ``python -m utils.translate build``) gets a badge
that opens its own path, notebooks/ko/NN_name.ipynb, and the same glossary link and setup cell.

The repository path lives in one place, ``[tool.course] repository`` in pyproject.toml. Every
notebook's first code cell is :data:`SETUP_CELL` with that path filled in, so all lessons
start the same way, locally and on Colab.
"""
import json
import re
import sys

from .config import REPO_ROOT, repository

BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s\"]+")
GLOSSARY = re.compile(r"https://github\.com/[^)\s\"]+/blob/[^)\s\"/]+/README\.md#glossary[^)\s\"]*")

#: The first code cell of every lesson. On Colab it fetches the course's code (nothing else:
#: Colab has torch and the rest) and turns on widget support, on every start of the runtime.
SETUP_CELL = '''# Setup: this cell works unchanged locally and on Colab.
import pathlib
import subprocess
import sys

REPOSITORY = "{repository}"  # set in pyproject.toml; `python -m utils.badges` rewrites it
if "google.colab" in sys.modules:
    if not pathlib.Path("/content/going-deeper/utils").exists():  # fetch only the course's code
        clone = subprocess.run(["git", "clone", "--depth", "1", f"https://github.com/{{REPOSITORY}}",
                                "/content/going-deeper"], capture_output=True, text=True)
        if clone.returncode != 0:
            raise RuntimeError(f"git clone of github.com/{{REPOSITORY}} failed:\\n{{clone.stderr.strip()}}\\n"
                               "Check the runtime's internet connection, then run this cell again.")
    from google.colab import output
    output.enable_custom_widget_manager()  # needed after every runtime start, not only the first
ROOT = next(p for p in (pathlib.Path.cwd(), *pathlib.Path.cwd().parents, pathlib.Path("/content/going-deeper"))
            if (p / "utils" / "__init__.py").exists())
sys.path.insert(0, str(ROOT))
import utils

device = utils.environment()'''


def colab_url(notebook_name, repo=None, branch=None):
    """The Colab address that opens ``notebooks/<notebook_name>`` from GitHub."""
    if repo is None:
        repo, branch = repository()
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{notebook_name}"


def glossary_url(repo=None, branch=None):
    """The address of the README's bilingual glossary on GitHub."""
    if repo is None:
        repo, branch = repository()
    return f"https://github.com/{repo}/blob/{branch}/README.md#glossary-용어집"


def setup_cell(repo=None):
    """The setup cell's source for ``repo`` (default: pyproject.toml's)."""
    return SETUP_CELL.format(repository=repo or repository()[0])


def default_slide_type(cell, previous, first_code):
    """The lecture-mode slide type a cell gets when its author chose none (see README, "How to present").

    The title and every section (``## ``) open a slide; sub-headings, "Predict" prompts and solutions
    open a sub-slide, and the code that answers a prompt appears on a click; the setup cell and
    empty cells are skipped; text right after code opens a sub-slide so that long pages scroll less.
    """
    source = "".join(cell["source"]).strip()
    if previous is None or (cell["cell_type"] == "markdown" and source.startswith("## ")):
        return "slide"
    if not source or first_code or (cell["cell_type"] == "code" and source.startswith("%")):
        return "skip"
    if cell["cell_type"] == "code":
        return "fragment" if "Predict before you run" in "".join(previous["source"]) else "-"
    if source.startswith("### ") or "Predict before you run" in source or "<details>" in source:
        return "subslide"
    return "subslide" if previous["cell_type"] == "code" else "-"


def add_slide_types(cells):
    """Give every cell without ``metadata.slideshow.slide_type`` its default; authors' choices stay."""
    previous, seen_code = None, False
    for cell in cells:
        first_code = cell["cell_type"] == "code" and not seen_code
        seen_code |= cell["cell_type"] == "code"
        slideshow = cell.setdefault("metadata", {}).setdefault("slideshow", {})
        slideshow.setdefault("slide_type", default_slide_type(cell, previous, first_code))
        if slideshow["slide_type"] != "notes":
            previous = cell


def notebook_name(path):
    """A notebook's path below notebooks/, as its badge names it: "01_cnn_basics.ipynb", "ko/01_cnn_basics.ipynb"."""
    return f"{path.parent.name}/{path.name}" if path.parent.parent.name == "notebooks" else path.name


def rewrite(path, repo, branch):
    """Return the notebook text at ``path`` with its badge, glossary link and setup cell for ``repo``."""
    nb = json.loads(path.read_text())
    rewrite_cells(nb, notebook_name(path), repo, branch)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def rewrite_cells(nb, name, repo, branch):
    """Point the badge of notebook ``nb`` (a dict) at notebooks/``name``, rewrite its glossary link and setup
    cell for ``repo``, and give its cells their default slide types; in place."""
    first_code = True
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and first_code:
            first_code = False
            new = setup_cell(repo)
        else:
            new = BADGE.sub(colab_url(name, repo, branch), source)
            new = GLOSSARY.sub(glossary_url(repo, branch), new)
        if new != source:
            cell["source"] = new.splitlines(keepends=True)
    add_slide_types(nb["cells"])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    repo, branch = repository()
    stale = []
    notebooks = REPO_ROOT / "notebooks"
    for path in sorted(notebooks.glob("*.ipynb")) + sorted(notebooks.glob("ko/*.ipynb")):
        new = rewrite(path, repo, branch)
        if json.loads(new) != json.loads(path.read_text()):
            stale.append(notebook_name(path))
            if "--check" not in argv:
                path.write_text(new)
    verb = "out of date" if "--check" in argv else "rewritten"
    print(f"{len(stale)} notebook(s) {verb}" + (": " + ", ".join(stale) if stale else ""))
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main())
