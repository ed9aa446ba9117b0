"""The course website: Jupyter Book 1.x (Sphinx) turns the committed notebooks into a static site.

The lessons are shown as committed, outputs included: the book never executes them
(book/_config.yml: execute_notebooks "off"), so the build is quick and needs no network.

    jupyter-book build book/                      # writes book/_build/html
    python -m http.server -d book/_build/html     # preview at http://localhost:8000

The build takes a minute or so, so this test carries the `site` marker that plain `pytest`
leaves out: `pytest -m site tests/test_site.py` (.ci/run runs it).
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from utils import badges
from utils.config import REPO_ROOT

pytestmark = pytest.mark.site

BOOK = REPO_ROOT / "book"
LESSONS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# The Korean edition (notebooks/ko/, built by `python -m utils.translate build`): a part of the site of its own.
KOREAN = sorted((REPO_ROOT / "notebooks" / "ko").glob("[0-9][0-9]_*.ipynb"))
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")


def jupyter_book():
    found = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    if not found:
        pytest.fail("jupyter-book is missing: pip install -r requirements.txt", pytrace=False)
    return found


ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Build the book into a temporary folder; return (the HTML folder, Sphinx's warnings)."""
    output = tmp_path_factory.mktemp("site")
    result = subprocess.run([jupyter_book(), "build", str(BOOK), "--path-output", str(output)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    log = ANSI.sub("", result.stdout + result.stderr)
    if result.returncode != 0:
        pytest.fail(f"jupyter-book build failed:\n{log[-6000:]}", pytrace=False)
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    return output / "_build" / "html", warnings


@pytest.fixture(scope="module")
def site(build):
    return build[0]


def test_site_builds_without_warnings(build):
    """A Sphinx warning is a broken page part: an image path that does not resolve, a bad include, a bad link."""
    _, warnings = build
    assert not warnings, "\n".join(warnings)


def text_of(html):
    """The visible text of a page's article, tags removed and spaces collapsed."""
    article = html.split("<article", 1)[-1]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", article))


def image_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    return sum(1 for c in cells for o in c.get("outputs", []) if any(t in o.get("data", {}) for t in IMAGE_TYPES))


def test_book_reads_the_lessons_in_place():
    """book/notebooks is a link to ../notebooks: the site shows the lessons themselves, not copies."""
    assert (BOOK / "notebooks").is_symlink() and (BOOK / "notebooks").resolve() == REPO_ROOT / "notebooks"


@pytest.mark.parametrize("path", LESSONS + KOREAN, ids=[badges.notebook_name(p) for p in LESSONS + KOREAN])
def test_lesson_page_holds_its_figures(site, path):
    page = site / path.relative_to(REPO_ROOT).with_suffix(".html")  # notebooks/NN_name.html, notebooks/ko/...
    assert page.exists(), f"no page for {path.name}: is it in book/_toc.yml?"
    html = page.read_text()
    sources = re.findall(r'<img[^>]*\ssrc="([^"]+)"', html)
    figures = [s for s in sources if re.match(r"(\.\./)+_images/|data:image/", s)]
    missing = [s for s in figures if s.startswith("../") and not (page.parent / s).resolve().exists()]
    assert not missing, f"{page.name} shows images that are not in the site: {missing}"
    expected = image_outputs(path)
    assert len(figures) >= expected, f"{page.name} shows {len(figures)} figures; the notebook has {expected}"
    # the committed outputs, not a fresh run: the setup cell's printout is the one in the notebook
    if "smoke mode: off" in path.read_text():
        assert "smoke mode: off" in html
    # the Colab badge, as in the notebook (the badge image itself comes from Colab when online)
    assert badges.colab_url(badges.notebook_name(path)) in html and "colab-badge.svg" in html


def test_korean_part_has_its_own_table_of_contents(site):
    """The Korean edition is a part of the site: its page (book/ko.md: the README's 한국어 안내) lists every
    Korean lesson, and the sidebar leads to it. Until notebooks/ko/ exists the page stands alone."""
    intro, korean = (site / "intro.html").read_text(), (site / "ko.html").read_text()
    assert 'href="ko.html"' in intro and "한국어판 (Korean edition)" in intro
    guide = (REPO_ROOT / "README.md").read_text().split("## 한국어 안내", 1)[1].split("\n## ", 1)[0]
    longest = max(re.findall(r"[\uac00-\ud7a3][\uac00-\ud7a3 ]*[\uac00-\ud7a3]", guide), key=len)
    assert longest in text_of(korean), "book/ko.md no longer includes the README's 한국어 안내"
    for path in KOREAN:
        assert f'href="notebooks/ko/{path.stem}.html"' in korean, f"ko/{path.stem} is missing from the Korean part"


def test_front_page_is_the_readme_with_every_lesson_in_the_table_of_contents(site):
    readme = (REPO_ROOT / "README.md").read_text()
    title = readme.splitlines()[0].removeprefix("# ").strip()
    intro = (site / "intro.html").read_text()
    assert title in text_of(intro)
    assert (site / "index.html").exists()
    for path in LESSONS:
        assert f'href="notebooks/{path.stem}.html"' in intro, f"{path.stem} is missing from the table of contents"
    for linked in re.findall(r"\]\((notebooks/[^)\s]+)\.ipynb\)", readme):  # the README's links to lessons
        assert (site / f"{linked}.html").exists(), f"the README links to {linked}.ipynb, which has no page"


def test_glossary_page_lists_every_term(site):
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Glossary", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| ")]
    terms = [(english, korean) for english, korean, *_ in rows[1:]]  # after the header row
    assert len(terms) > 20
    glossary = text_of((site / "glossary.html").read_text())
    assert "Glossary (용어집)" in glossary
    missing = [term for term in terms if term[0] not in glossary or term[1] not in glossary]
    assert not missing, f"not on the glossary page: {missing}"
