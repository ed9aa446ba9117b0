"""Lecture mode: a reveal.js deck per lesson (`jupyter nbconvert --to slides`) and live slides in JupyterLab.

Every cell carries ``metadata.slideshow.slide_type``; a deck holds one slide per "slide" cell (a
<section> in the HTML) with one nested <section> per "slide" and "subslide" cell, a fragment per
"fragment" cell, speaker notes per "notes" cell, and nothing of a "skip" cell. Build the decks with

    jupyter nbconvert --to slides --SlidesExporter.reveal_scroll=True --output-dir slides notebooks/*.ipynb

(reveal.js itself is loaded from its CDN when a deck is opened; building needs no network.)
"""
import json
import subprocess
import sys
from html.parser import HTMLParser

import nbformat
import pytest

from utils.config import REPO_ROOT

# The Korean edition (notebooks/ko/, where built) has the English lessons' slide types and speaker notes.
LESSONS = (sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
           + sorted((REPO_ROOT / "notebooks" / "ko").glob("[0-9][0-9]_*.ipynb")))
IDS = [f"ko/{p.stem}" if p.parent.name == "ko" else p.stem for p in LESSONS]
SLIDE_TYPES = {"slide", "subslide", "fragment", "-", "skip", "notes"}
DECK_SETTINGS = {"reveal_scroll": True}  # a tall cell scrolls instead of spilling off its slide
DECK_OPTIONS = [f"--SlidesExporter.{name}={value}" for name, value in DECK_SETTINGS.items()]


class DeckStructure(HTMLParser):
    """Counts a reveal.js deck's slides (outer <section>s), subslides (inner ones), fragments and notes."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.slides = self.subslides = self.fragments = self.notes = 0
        self.too_deep = False

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if tag == "section":
            self.slides += self.depth == 0
            self.subslides += self.depth == 1
            self.depth += 1
            self.too_deep |= self.depth > 2
        elif tag == "div" and "fragment" in classes:
            self.fragments += 1
        elif tag == "aside" and "notes" in classes:
            self.notes += 1

    def handle_endtag(self, tag):
        if tag == "section":
            self.depth -= 1


def deck_structure(html):
    parser = DeckStructure()
    parser.feed(html)
    parser.close()
    assert parser.depth == 0 and not parser.too_deep, "unbalanced or over-nested <section> elements"
    return {"slides": parser.slides, "subslides": parser.subslides, "fragments": parser.fragments,
            "notes": parser.notes}


def slide_type(cell):
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-")


def expected_structure(cells):
    """What nbconvert builds from the cells' slide types: the first shown cell always opens a slide."""
    types = [slide_type(cell) for cell in cells]
    first = next(i for i, t in enumerate(types) if t not in {"skip", "notes"})
    after = types[first + 1:]
    return {"slides": 1 + after.count("slide"),
            "subslides": 1 + after.count("slide") + after.count("subslide"),
            "fragments": after.count("fragment"),
            "notes": types.count("notes")}


def build_deck(notebook, output_dir):
    """`jupyter nbconvert --to slides`, as a lecturer runs it; returns the deck's HTML."""
    result = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "slides", *DECK_OPTIONS,
                             "--output-dir", str(output_dir), str(notebook)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return (output_dir / (notebook.stem + ".slides.html")).read_text()


def test_deck_structure_follows_the_slideshow_metadata(tmp_path):
    """A notebook made here, with every slide type: the deck has exactly the slides its metadata asks for."""
    cells = [
        ("markdown", "Hidden before the first slide", "skip"),
        ("markdown", "# Title slide", "slide"),
        ("markdown", "Said aloud, not shown", "notes"),
        ("code", "print('continues the title slide')", "-"),
        ("markdown", "## Section one", "slide"),
        ("code", "print('appears on a click')", "fragment"),
        ("code", "print('and another')", "fragment"),
        ("markdown", "### A subslide below section one", "subslide"),
        ("code", "print('setup nobody needs to see')", "skip"),
        ("markdown", "## Section two", "slide"),
        ("markdown", "### Its subslide", "subslide"),
        ("markdown", "Continues the subslide", "-"),
    ]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source, slide in cells:
        new = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(new(source, metadata={"slideshow": {"slide_type": slide}}))
    path = tmp_path / "synthetic.ipynb"
    nbformat.write(nb, path)
    html = build_deck(path, tmp_path / "deck")
    assert "var scroll = true" in html
    structure = deck_structure(html)
    assert structure == {"slides": 3, "subslides": 5, "fragments": 2, "notes": 1}
    assert structure == expected_structure(json.loads(path.read_text())["cells"])
    assert "Hidden before the first slide" not in html and "setup nobody needs to see" not in html
    assert "Said aloud, not shown" in html  # in the speaker notes


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_every_cell_has_a_slide_type(path):
    """Lecture mode needs a decision for every cell: slide, subslide, fragment, -, skip or notes."""
    cells = json.loads(path.read_text())["cells"]
    missing = [i for i, cell in enumerate(cells) if "slide_type" not in cell.get("metadata", {}).get("slideshow", {})]
    assert not missing, f"{len(missing)} of {len(cells)} cells have no metadata.slideshow.slide_type: {missing[:20]}"
    unknown = {i: slide_type(cell) for i, cell in enumerate(cells) if slide_type(cell) not in SLIDE_TYPES}
    assert not unknown, f"slide types must be one of {sorted(SLIDE_TYPES)}: {unknown}"
    assert slide_type(cells[0]) == "slide", "the title cell opens the deck"
    sections = [i for i, cell in enumerate(cells)
                if cell["cell_type"] == "markdown" and "".join(cell["source"]).startswith("## ")]
    not_slides = [i for i in sections if slide_type(cells[i]) != "slide"]
    assert not not_slides, f"every section heading (## ...) starts a slide; these do not: {not_slides}"


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_lesson_deck_matches_its_metadata(path):
    """Each lesson's deck, built in this process (the command line is tested above) with the same settings."""
    from nbconvert import SlidesExporter

    html, _ = SlidesExporter(**DECK_SETTINGS).from_filename(str(path))
    assert "var scroll = true" in html
    assert deck_structure(html) == expected_structure(json.loads(path.read_text())["cells"])


def test_jupyterlab_lists_the_live_slides_extension():
    """jupyterlab-rise (requirements.txt) gives JupyterLab a live slideshow of the running notebook."""
    result = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True,
                            text=True, timeout=120)
    listing = result.stdout + result.stderr
    line = next((line for line in listing.splitlines() if "jupyterlab-rise" in line), "")
    assert "enabled" in line and "OK" in line, f"jupyterlab-rise is not installed and enabled:\n{listing}"


def test_default_slide_types_keep_the_authors_choices():
    """`python -m utils.badges` fills in a slide type only where a cell has none."""
    from utils.badges import add_slide_types

    def cell(kind, source, slide=None):
        metadata = {"slideshow": {"slide_type": slide}} if slide else {}
        return {"cell_type": kind, "source": [source], "metadata": metadata}

    cells = [cell("markdown", "# 01 · Title"), cell("code", "# Setup"), cell("markdown", "## 1. Section"),
             cell("markdown", "**Predict before you run:** how many?"), cell("code", "print(3)"),
             cell("markdown", "Three, because ..."), cell("markdown", "Say this aloud", "notes"),
             cell("markdown", "### Detail", "-"), cell("code", "")]
    add_slide_types(cells)
    assert [slide_type(c) for c in cells] == ["slide", "skip", "slide", "subslide", "fragment", "subslide",
                                              "notes", "-", "skip"]


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_every_numbered_section_has_speaker_notes(path):
    """A lecturer's 2-3 key points for each numbered section (## 1. ...), in cells of slide type "notes"."""
    cells = json.loads(path.read_text())["cells"]
    sections, current = {}, None
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.startswith("## "):
            current = source.splitlines()[0]
            sections[current] = 0 if current[3:4].isdigit() else None
        elif current and sections[current] is not None and slide_type(cell) == "notes" and source.strip():
            sections[current] += 1
    missing = [heading for heading, notes in sections.items() if notes == 0]
    assert not missing, f"{path.name}: these sections have no speaker notes (a cell of slide type 'notes'): {missing}"
