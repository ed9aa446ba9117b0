"""Rewrite every notebook's "Open in Colab" badge and setup cell from pyproject.toml.

    python -m utils.badges          # rewrite notebooks/*.ipynb in place
    python -m utils.badges --check  # exit 1 and list the notebooks that are out of date

The repository path lives in one place, ``[tool.course] repository`` in pyproject.toml.
"""
import json
import re
import sys

from .config import REPO_ROOT, repository

BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s\"]+")
SETUP = re.compile(r'^REPOSITORY = "[^"]*"', re.MULTILINE)


def colab_url(notebook_name, repo=None, branch=None):
    """The Colab address that opens ``notebooks/<notebook_name>`` from GitHub."""
    if repo is None:
        repo, branch = repository()
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{notebook_name}"


def rewrite(path, repo, branch):
    """Return the notebook text at ``path`` with its badge and setup cell pointing at ``repo``."""
    text = path.read_text()
    nb = json.loads(text)
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        new = BADGE.sub(colab_url(path.name, repo, branch), source)
        new = SETUP.sub(f'REPOSITORY = "{repo}"', new)
        if new != source:
            cell["source"] = new.splitlines(keepends=True)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    repo, branch = repository()
    stale = []
    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        new = rewrite(path, repo, branch)
        if json.loads(new) != json.loads(path.read_text()):
            stale.append(path.name)
            if "--check" not in argv:
                path.write_text(new)
    verb = "out of date" if "--check" in argv else "rewritten"
    print(f"{len(stale)} notebook(s) {verb}" + (": " + ", ".join(stale) if stale else ""))
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main())
