"""The Korean edition (한국어판): the lessons' Markdown cells in gettext catalogs, and the Korean notebooks built
from them.

    python -m utils.translate extract   # make or update locale/ko/LC_MESSAGES/NN_name.po from notebooks/NN_name.ipynb
    python -m utils.translate build     # write notebooks/ko/NN_name.ipynb from the English notebook and its catalog
    python -m utils.translate check     # exit 1 and list what is untranslated, fuzzy, out of step or not built

Each command takes lessons ("01" or "01_cnn_basics"; none: every lesson). A catalog holds one message per
distinct Markdown cell of its lesson: the msgid is the English cell's source, the msgstr its Korean; identical
cells share one message, empty cells are copied as they are. Its location (``#: notebooks/NN_name.ipynb:7``) is
the cell's number, counted from 1 over all cells, and a comment (``#.``) gives its slide type and section.

``extract`` keeps the translation of every unchanged cell; the message of a changed cell gets the translation
of the most similar old one, marked fuzzy, with the old English kept as ``#| msgid`` (Babel's msgmerge-style
matching). ``build`` copies the English notebook (code cells, outputs, metadata, slide types) and puts each
Markdown cell's translation in place; a cell without one (empty or fuzzy) keeps its English. It adds one
sentence to the first cell and points the Colab badge at the Korean notebook (utils.badges).
"""
import argparse
import io
import pathlib
import re
import sys
from collections import Counter

import nbformat
from babel.messages.catalog import Catalog
from babel.messages.pofile import denormalize, read_po, write_po
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from . import badges
from .config import REPO_ROOT, repository

LANGUAGE = "ko"
#: Added to the first Markdown cell of every Korean lesson, after its translation.
FIRST_CELL_NOTE = ("이 노트북의 코드 셀은 영어판(`notebooks/{name}`)과 한 글자도 다르지 않으며, "
                   "셀 아래의 출력은 영어판을 실행한 결과를 그대로 옮긴 것입니다.")
HEADER = """\
# Korean translation (한국어판) of notebooks/{name},
# one message per Markdown cell. msgid: the English cell (do not edit it;
# `python -m utils.translate extract` updates it). msgstr: its Korean.
# Translate the msgstr (Poedit works), then run `python -m utils.translate
# build` and `python -m utils.translate check`."""
#: A number as tests/solutions.py finds one (the worked solutions' check): STYLE.md rule 9.
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
URL = re.compile(r"https?://[^\s)<>\"'`]+")
MARKDOWN = MarkdownIt("commonmark").enable("table").use(dollarmath_plugin)  # math as the site reads it
COMMANDS = {"extract": "python -m utils.translate extract", "build": "python -m utils.translate build"}


def lessons(names=(), root=REPO_ROOT):
    """The English lessons (notebooks/NN_*.ipynb), all of them or those named ("01", "01_cnn_basics")."""
    found = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    chosen = [path for path in found if not names or {path.stem, path.stem[:2], path.name} & set(names)]
    unknown = [name for name in names if not any(name in {p.stem, p.stem[:2], p.name} for p in found)]
    if unknown:
        raise SystemExit(f"no lesson {', '.join(unknown)} in {root / 'notebooks'}: name one of "
                         + ", ".join(path.stem for path in found))
    return chosen


def catalog_path(lesson):
    """locale/ko/LC_MESSAGES/NN_name.po for notebooks/NN_name.ipynb."""
    return lesson.parent.parent / "locale" / LANGUAGE / "LC_MESSAGES" / f"{lesson.stem}.po"


def korean_path(lesson):
    """notebooks/ko/NN_name.ipynb for notebooks/NN_name.ipynb."""
    return lesson.parent / LANGUAGE / lesson.name


def text_cells(notebook):
    """(number, cell) of every Markdown cell with text, numbered from 1 over all cells."""
    return [(number, cell) for number, cell in enumerate(notebook.cells, start=1)
            if cell.cell_type == "markdown" and cell.source.strip()]


def new_catalog(lesson):
    """An empty Korean catalog for ``lesson``, its header filled in."""
    return Catalog(locale=LANGUAGE, domain=lesson.stem, header_comment=HEADER.format(name=lesson.name),
                   project="Going Deeper", version=lesson.stem, language_team="Korean (한국어판)",
                   msgid_bugs_address=f"https://github.com/{repository()[0]}/issues", fuzzy=False)


def template(lesson, notebook):
    """The lesson's messages as a catalog with empty msgstr: each Markdown cell, where it is, what it is."""
    catalog, section = Catalog(locale=LANGUAGE, domain=lesson.stem), ""
    for number, cell in text_cells(notebook):
        first_line = cell.source.lstrip().splitlines()[0]
        section = first_line if first_line.startswith("#") else section
        slide = cell.metadata.get("slideshow", {}).get("slide_type", "-")
        kind = " (speaker notes)" if slide == "notes" else ""
        catalog.add(cell.source, locations=[(f"notebooks/{lesson.name}", number)],
                    auto_comments=[f"cell {number}, slide type \"{slide}\"{kind}; section: {section or '(none)'}"])
    return catalog


def read_catalog(path):
    """The catalog at ``path`` (a .po file), read with Babel."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: make it with `{COMMANDS['extract']}`")
    with open(path, "rb") as f:
        catalog = read_po(f, locale=LANGUAGE, domain=path.stem)
    for message in [*catalog, *catalog.obsolete.values()]:
        restore_previous(message)
    return catalog


def restore_previous(message):
    """Babel reads a fuzzy message's old English (``#| msgid``) as translator comments (python-babel/babel#206,
    open): make it the message's ``previous_id`` again, so that writing the catalog keeps it."""
    previous = [comment[1:].strip() for comment in message.user_comments if comment.startswith("|")]
    if previous:
        message.user_comments = [comment for comment in message.user_comments if not comment.startswith("|")]
        message.previous_id = [denormalize("\n".join(line.removeprefix("msgid ") for line in previous))]


def write_catalog(catalog, path):
    """Write ``catalog`` to ``path`` in gettext's .po format, the old English of fuzzy messages included."""
    for message in [*catalog, *catalog.obsolete.values()]:
        message.flags.discard("python-format")  # Babel's guess from a '%' in the prose: these are no format strings
        message.previous_id = message.previous_id if message.fuzzy else []  # the old English helps a fuzzy one only
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=79, include_previous=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def unlinked(text):
    """``text`` without the repository's Colab and glossary addresses (they change when the repository moves)."""
    return badges.GLOSSARY.sub("GLOSSARY", badges.BADGE.sub("BADGE", text))


def carry_over(catalog, template):
    """Before Babel's update: a message whose English came back (an obsolete one) or changed only in the
    repository's addresses (`python -m utils.badges` after a move) keeps its translation, not marked fuzzy."""
    by_text = {unlinked(m.id): m for m in catalog if m.id and m.string and not m.fuzzy}
    for message in template:
        if message.id in catalog:
            continue
        if message.id in catalog.obsolete:
            catalog[message.id] = catalog.obsolete.pop(message.id)
        elif unlinked(message.id) in by_text:
            old = by_text[unlinked(message.id)]
            string = old.string
            for pattern in (badges.BADGE, badges.GLOSSARY):
                new_address = pattern.search(message.id)
                string = pattern.sub(new_address.group(0), string) if new_address else string
            catalog.add(message.id, string, user_comments=old.user_comments)
            del catalog[old.id]


def merge(catalog, template):
    """Babel's update (msgmerge's matching) of ``catalog`` to the English of ``template``, plus what it would drop:
    the translations :func:`carry_over` keeps, and the old English of a message that is still fuzzy."""
    carry_over(catalog, template)
    previous = {message.id: message.previous_id for message in catalog if message.previous_id}
    template.creation_date = catalog.creation_date  # which update copies: the header stays as it was
    catalog.update(template)
    for message in catalog:
        if message.fuzzy and not message.previous_id:
            message.previous_id = previous.get(message.id, [])


def extract(lesson):
    """Make or update the lesson's catalog from its English notebook; returns (cells, translated, fuzzy)."""
    notebook = nbformat.read(lesson, as_version=4)
    path = catalog_path(lesson)
    catalog = read_catalog(path) if path.exists() else new_catalog(lesson)
    merge(catalog, template(lesson, notebook))
    write_catalog(catalog, path)
    messages = list(catalog)[1:]  # after the header
    return len(messages), sum(bool(m.string) and not m.fuzzy for m in messages), sum(m.fuzzy for m in messages)


def translation(catalog, source):
    """The Korean of an English cell: its msgstr, or None when it has none or a fuzzy one."""
    message = catalog.get(source)
    return message.string if message is not None and message.string and not message.fuzzy else None


def build(lesson):
    """The Korean notebook of ``lesson``, and how many Markdown cells kept their English (no translation yet)."""
    notebook = nbformat.read(lesson, as_version=4)
    catalog = read_catalog(catalog_path(lesson))
    untranslated = 0
    for index, (_, cell) in enumerate(text_cells(notebook)):
        korean = translation(catalog, cell.source)
        untranslated += korean is None
        cell.source = korean or cell.source
        if index == 0:
            cell.source += "\n\n" + FIRST_CELL_NOTE.format(name=lesson.name)
    badges.rewrite_cells(notebook, f"{LANGUAGE}/{lesson.name}", *repository())
    return nbformat.reads(nbformat.writes(notebook), as_version=4), untranslated  # as read back from a file


def write_notebook(notebook, path):
    """Write a notebook as Jupyter does (nbformat), so that a built notebook and a saved one compare equal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)


def walk(tokens):
    """Every markdown-it token, inline children included."""
    for token in tokens:
        yield token
        yield from walk(token.children or [])


def markdown_parts(source):
    """What a translation must keep of a Markdown cell: heading levels, math, code, link targets, HTML tags
    (``<details>``, ``<summary>``) and numbers."""
    parts = {"headings": [], "math": [], "code": [], "links": [], "html": []}
    for token in walk(MARKDOWN.parse(source)):
        if token.type == "heading_open":
            parts["headings"].append(int(token.tag[1]))
        elif token.type.startswith("math"):
            fence = "$" if token.type == "math_inline" else "$$"
            parts["math"].append(fence + " ".join(token.content.split()) + fence)  # a line break in math is a space
        elif token.type in ("code_inline", "fence", "code_block"):
            parts["code"].append(token.content)
        elif token.type in ("link_open", "image"):
            parts["links"].append(token.attrs.get("href") or token.attrs.get("src"))
        elif token.type in ("html_block", "html_inline"):
            parts["html"] += re.findall(r"<(/?[A-Za-z][\w-]*)", token.content)
            parts["links"] += re.findall(r"""(?:href|src)=["']([^"']+)""", token.content)
        elif token.type == "text":
            parts["links"] += URL.findall(token.content)  # a bare address
    parts["numbers"] = [number.rstrip(",") for number in NUMBER.findall(source)]
    return parts


def differences(kind, english, korean):
    """'code spans differ: ... missing, ... added' when two lists hold different items (in any order)."""
    missing, added = Counter(english) - Counter(korean), Counter(korean) - Counter(english)
    if not missing and not added:
        return []
    said = [f"{', '.join(repr(x) for x in items)} {verb}" for items, verb in ((missing, "missing"), (added, "added"))
            if items]
    return [f"{kind} differ: {'; '.join(said)}"]


def structure_problems(english, korean):
    """How a translated Markdown cell breaks the English cell's structure (STYLE.md rules 4, 9, 14); [] if not."""
    en, ko = markdown_parts(english), markdown_parts(korean)
    problems = []
    if en["headings"] != ko["headings"] or english.startswith("#") != korean.startswith("#"):
        problems.append(f"headings differ: levels {en['headings']} in English, {ko['headings']} in Korean "
                        "(keep every heading, at its level, a cell's heading on its first line)")
    problems += differences("math ($...$, $$...$$)", en["math"], ko["math"])
    problems += differences("code spans and blocks (never translate code)", en["code"], ko["code"])
    problems += differences("links and images", en["links"], ko["links"])
    problems += differences("HTML tags (<details> blocks)", en["html"], ko["html"])
    for number in sorted(set(en["numbers"]) - set(ko["numbers"])):
        glued = re.search(rf"[\uac00-\ud7a3]{re.escape(number)}(?![\d.])", korean)
        hint = f"; it follows Hangul: write a space before it, as in '총 {number}개'" if glued else ""
        problems.append(f"number {number} is missing (keep every digit, decimal and separator{hint})")
    return problems


def excerpt(text, width=60):
    """The start of a cell's text, on one line."""
    line = " ".join(text.split())
    return repr(line if len(line) <= width else line[:width] + "...")


def catalog_problems(lesson):
    """What keeps the lesson's catalog from giving a complete Korean lesson: one line per problem, [] if none."""
    path = catalog_path(lesson)
    if not path.exists():
        return [f"{path.name}: no catalog; make it with `{COMMANDS['extract']} {lesson.stem[:2]}`"]
    catalog = read_catalog(path)
    problems = []
    for number, cell in text_cells(nbformat.read(lesson, as_version=4)):
        message = catalog.get(cell.source)
        where = f"{path.name}, cell {number}"
        if message is None:
            problems.append(f"{where}: its English changed (or it is new) since the catalog was extracted: "
                            f"{excerpt(cell.source)}; run `{COMMANDS['extract']}`, which marks it fuzzy and "
                            "keeps the old translation as a starting point")
        elif not message.string:
            problems.append(f"{where}: not translated yet: {excerpt(cell.source)}")
        elif message.fuzzy:
            problems.append(f"{where}: fuzzy (its English changed): revise the translation, then clear the "
                            "fuzzy flag (Poedit: 'Needs work' off)")
        else:
            problems += [f"{where}: {problem}" for problem in structure_problems(cell.source, message.string)]
    return problems


def code_cells(notebook):
    """(number, cell) of every cell that is not Markdown: what a translation never touches."""
    return [(number, cell) for number, cell in enumerate(notebook.cells, start=1) if cell.cell_type != "markdown"]


def notebook_problems(lesson):
    """How the committed Korean notebook differs from a fresh build, and its code from the English; [] if not."""
    path, name = korean_path(lesson), f"notebooks/{LANGUAGE}/{lesson.name}"
    fix = f"run `{COMMANDS['build']} {lesson.stem[:2]}`"
    if not path.exists() or not catalog_path(lesson).exists():
        return [f"{name} does not exist: {fix}" if not path.exists() else
                f"{name} cannot be built: {catalog_path(lesson).name} is missing"]
    committed, fresh = nbformat.read(path, as_version=4), build(lesson)[0]
    ours, english = code_cells(committed), code_cells(nbformat.read(lesson, as_version=4))
    problems = []
    changed = [number for (number, a), (_, b) in zip(ours, english) if a != b]
    if changed or len(ours) != len(english):
        problems.append(f"{name}: code cells {changed or '(their number)'} differ from the English ones "
                        f"(source, outputs or metadata): {fix}")
    differ = [number for number, (a, b) in enumerate(zip(committed.cells, fresh.cells), start=1) if a != b]
    more = [what for what, same in (("its number of cells", len(committed.cells) == len(fresh.cells)),
                                    ("its metadata", committed.metadata == fresh.metadata)) if not same]
    if differ or more:
        where = ", ".join([f"cells {differ}"] * bool(differ) + more)
        problems.append(f"{name} differs from a fresh build in {where}: {fix}")
    return problems


def main(argv=None):
    """The command line: extract, build or check, for every lesson or those named."""
    parser = argparse.ArgumentParser(prog="python -m utils.translate", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["extract", "build", "check"])
    parser.add_argument("lessons", nargs="*", help='lessons to work on, e.g. "01" (default: all)')
    parser.add_argument("--root", type=pathlib.Path, default=REPO_ROOT,
                        help="the repository to work on (default: this one)")
    args = parser.parse_args(argv)
    status = 0
    for lesson in lessons(args.lessons, args.root):
        if args.command == "extract":
            cells, translated, fuzzy = extract(lesson)
            print(f"{catalog_path(lesson).relative_to(args.root)}: {cells} messages, {translated} translated, "
                  f"{fuzzy} fuzzy")
        elif args.command == "build":
            notebook, untranslated = build(lesson)
            write_notebook(notebook, korean_path(lesson))
            kept = f" ({untranslated} Markdown cells still in English)" if untranslated else ""
            print(f"{korean_path(lesson).relative_to(args.root)} written{kept}")
        else:
            problems = catalog_problems(lesson) + notebook_problems(lesson)
            status |= bool(problems)
            print(f"{lesson.stem}: " + (f"{len(problems)} problem(s)" if problems else "complete"))
            print("".join(f"  {problem}\n" for problem in problems), end="")
    return status


if __name__ == "__main__":
    sys.exit(main())
