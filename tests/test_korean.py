"""The Korean edition (한국어판): gettext catalogs of the lessons' Markdown cells and the Korean notebooks built from
them (utils/translate.py; README, "The Korean edition").

The machinery is proven on a synthetic lesson made here, in a temporary folder, whose cells are the course's fixed
labels (STYLE.md rule 12); their Korean, in LABELS, is the worked example of a translation. The tests of the
committed Korean lessons (every cell translated, none fuzzy or out of step, notebooks equal to a fresh build, the
README linking them) are dormant until notebooks/ko/ exists: from then on they fail loudly on an incomplete catalog.
"""
import shutil
import subprocess
import sys

import nbformat
import pytest
import solutions

from utils import badges, translate
from utils.config import REPO_ROOT

LESSONS = translate.lessons()
KOREAN_DIR = REPO_ROOT / "notebooks" / translate.LANGUAGE
dormant = pytest.mark.skipif(not KOREAN_DIR.exists(), reason="dormant until notebooks/ko/ exists "
                             "(`python -m utils.translate build` makes it)")

BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
TITLE = ("# 01 · Fixed labels\n\nA synthetic lesson made of the course's fixed labels.\n\n"
         f"[![Open In Colab]({BADGE})]({badges.colab_url('01_fixed_labels.ipynb')})\n\n"
         f"[Glossary (용어집)]({badges.glossary_url()})")
PROMPT = "**Predict before you run:** what does `print(2 + 2)` print?"
#: The worked example: each English cell of the synthetic lesson and its Korean (STYLE.md rules 9, 12, 14, 15).
LABELS = {
    TITLE: TITLE.replace("Fixed labels", "고정 레이블").replace(
        "A synthetic lesson made of the course's fixed labels.", "강좌의 고정 레이블로 만든 합성 강의입니다.").replace(
        "[Glossary (용어집)]", "[용어집(Glossary)]"),
    "**What you will learn**\n\n- `nn.Conv2d`\n\n**What you need:** lesson 03, section 4.\n\n**Time to run:** 1.5 s.":
        "**학습 목표**\n\n- `nn.Conv2d`\n\n**사전 지식:** 03강, 4절.\n\n**실행 시간:** 1.5초.",
    "## 1. Summary\n\n- $2 + 2 = 4$, 100% of the time.": "## 1. 요약\n\n- $2 + 2 = 4$, 항상(100%) 그렇습니다.",
    "Speaker notes: lesson 03, section 4.": "발표자 노트: 03강 4절.",
    PROMPT: "**실행 전에 예측해 보기:** `print(2 + 2)`는 무엇을 출력합니까?",
    "## Exercises\n\n**1.** What is $2 + 2$?\n\n<details><summary>Solution</summary>\n\n4, so the check prints True."
    "\n\n```python\nprint(2 + 2, 2 + 2 == 4)\n```\n</details>":
        "## 연습 문제\n\n**1.** $2 + 2$는 얼마입니까?\n\n<details><summary>풀이</summary>\n\n답은 4이므로 검사 결과는 "
        "True입니다.\n\n```python\nprint(2 + 2, 2 + 2 == 4)\n```\n</details>",
    "## Further reading\n\n- Szegedy et al., *Going Deeper with Convolutions*, 2014, "
    "[arXiv:1409.4842](https://arxiv.org/abs/1409.4842).":
        "## 더 읽을거리\n\n- Szegedy 외, *Going Deeper with Convolutions*, 2014, "
        "[arXiv:1409.4842](https://arxiv.org/abs/1409.4842).",
}


def synthetic_lesson(root):
    """root/notebooks/01_fixed_labels.ipynb: the labels of LABELS as Markdown cells (the prompt twice, an empty
    cell), the setup cell and a code cell with an output, slide types and speaker notes as a lesson has them."""
    english = list(LABELS)
    cells = [("markdown", english[0], "slide"), ("code", badges.setup_cell(), "skip"),
             ("markdown", english[1], "-"), ("markdown", english[2], "slide"), ("markdown", english[3], "notes"),
             ("markdown", PROMPT, "subslide"), ("code", "print(2 + 2)", "fragment"), ("markdown", "", "-"),
             ("markdown", PROMPT, "subslide"), ("code", "print(2 + 2)", "fragment"),
             ("markdown", english[5], "slide"), ("markdown", english[6], "slide")]
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    for count, (kind, source, slide) in enumerate(cells, start=1):
        metadata = {"slideshow": {"slide_type": slide}}
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(source, metadata=metadata))
        else:
            output = nbformat.v4.new_output("stream", name="stdout", text="smoke mode: off (full run)\n4\n")
            nb.cells.append(nbformat.v4.new_code_cell(source, metadata=metadata, execution_count=count,
                                                      outputs=[output]))
    path = root / "notebooks" / "01_fixed_labels.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def translate_messages(lesson, korean):
    """Put translations in the lesson's catalog and clear their fuzzy flag, as a translator does in Poedit."""
    catalog = translate.read_catalog(translate.catalog_path(lesson))
    for english, text in korean.items():
        catalog[english].string = text
        catalog[english].flags.discard("fuzzy")
        catalog[english].previous_id = []
    translate.write_catalog(catalog, translate.catalog_path(lesson))


def check(root, capsys):
    """`python -m utils.translate check` on the repository at ``root``: (exit status, what it printed)."""
    status = translate.main(["check", "--root", str(root)])
    return status, capsys.readouterr().out


def test_extract_translate_build_check(tmp_path, capsys):
    """The whole workflow on the synthetic lesson: extract, translate (LABELS), build, check."""
    lesson = synthetic_lesson(tmp_path)
    assert translate.main(["extract", "--root", str(tmp_path)]) == 0
    assert "01_fixed_labels.po: 7 messages, 0 translated, 0 fuzzy" in capsys.readouterr().out
    status, printed = check(tmp_path, capsys)
    assert status == 1 and printed.count("not translated yet") == 8  # 8 cells: the prompt is there twice
    assert "notebooks/ko/01_fixed_labels.ipynb does not exist: run `python -m utils.translate build 01`" in printed

    translate_messages(lesson, LABELS)
    assert translate.main(["build", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "notebooks/ko/01_fixed_labels.ipynb written\n"
    assert check(tmp_path, capsys) == (0, "01_fixed_labels: complete\n")
    result = subprocess.run([sys.executable, "-m", "utils.translate", "check", "01", "--root", str(tmp_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "01_fixed_labels: complete\n", result.stderr

    english = nbformat.read(lesson, as_version=4)
    korean = nbformat.read(translate.korean_path(lesson), as_version=4)
    assert [c.cell_type for c in korean.cells] == [c.cell_type for c in english.cells]
    assert [c.metadata for c in korean.cells] == [c.metadata for c in english.cells]  # slide types, notes
    assert korean.metadata == english.metadata
    for en, ko in zip(english.cells, korean.cells):
        if en.cell_type == "code":
            assert ko == en  # source, outputs, execution count, id: byte for byte
        elif en.source.strip() and en.source != TITLE:
            assert ko.source == LABELS[en.source]
        else:
            assert ko.source == en.source or en.source == TITLE
    first = korean.cells[0].source
    assert first.startswith("# 01 · 고정 레이블\n") and "(용어집)" not in first and "[용어집(Glossary)]" in first
    assert badges.colab_url("ko/01_fixed_labels.ipynb") in first
    assert badges.colab_url("01_fixed_labels.ipynb") not in first
    assert badges.glossary_url() in first
    assert first.endswith("\n\n" + translate.FIRST_CELL_NOTE.format(name="01_fixed_labels.ipynb"))
    assert "`notebooks/01_fixed_labels.ipynb`" in translate.FIRST_CELL_NOTE.format(name="01_fixed_labels.ipynb")


def test_catalog_format(tmp_path):
    """One .po per lesson, read and written by Babel: msgid the English cell, one message for identical cells,
    none for an empty cell; the cell numbers as locations, slide type and section as comments; no format flags.
    Extracting twice changes nothing."""
    lesson = synthetic_lesson(tmp_path)
    translate.extract(lesson)
    path = translate.catalog_path(lesson)
    assert path == tmp_path / "locale" / "ko" / "LC_MESSAGES" / "01_fixed_labels.po"
    first = path.read_bytes()
    assert translate.extract(lesson) == (7, 0, 0) and path.read_bytes() == first
    translate_messages(lesson, {"Speaker notes: lesson 03, section 4.": "발표자 노트: 03강 4절."})
    text = path.read_text()
    assert ('#. cell 5, slide type "notes" (speaker notes); section: ## 1. Summary\n'
            "#: notebooks/01_fixed_labels.ipynb:5\n"
            'msgid "Speaker notes: lesson 03, section 4."\n'
            'msgstr "발표자 노트: 03강 4절."\n') in text
    assert "#: notebooks/01_fixed_labels.ipynb:6 notebooks/01_fixed_labels.ipynb:9\n" in text  # the prompt, twice
    assert "python-format" not in text and "100% of the time" in text  # a '%' in prose is no format string
    assert '"Language: ko\\n"' in text and '"Plural-Forms: nplurals=1; plural=0;\\n"' in text
    catalog = translate.read_catalog(path)
    assert [m.id for m in catalog][1:] == list(LABELS)  # in the order of the cells, after the header


def test_a_changed_english_cell_fails_the_check_until_its_translation_is_revised(tmp_path, capsys):
    """The moment an English cell changes, the check names it and the command that marks it; `extract` marks it
    fuzzy with the old translation and the old English kept; the check fails until a translator revises it."""
    lesson = synthetic_lesson(tmp_path)
    translate.extract(lesson)
    translate_messages(lesson, LABELS)
    translate.write_notebook(translate.build(lesson)[0], translate.korean_path(lesson))
    old = "Speaker notes: lesson 03, section 4."
    new = "Speaker notes: lesson 03, section 5."
    nb = nbformat.read(lesson, as_version=4)
    nb.cells[4].source = new
    nbformat.write(nb, lesson)

    status, printed = check(tmp_path, capsys)
    assert status == 1
    assert ("01_fixed_labels.po, cell 5: its English changed (or it is new) since the catalog was extracted: "
            "'Speaker notes: lesson 03, section 5.'; run `python -m utils.translate extract`, which marks it fuzzy "
            "and keeps the old translation as a starting point") in printed
    assert "notebooks/ko/01_fixed_labels.ipynb differs from a fresh build in cells [5]" in printed
    assert printed.count("01_fixed_labels.po, cell") == 1  # only the changed cell

    assert translate.extract(lesson) == (7, 6, 1)
    message = translate.read_catalog(translate.catalog_path(lesson))[new]
    assert message.fuzzy and message.string == LABELS[old] and message.previous_id == [old]
    text = translate.catalog_path(lesson).read_text()
    assert f'#| msgid "{old}"' in text
    assert translate.extract(lesson) == (7, 6, 1) and translate.catalog_path(lesson).read_text() == text  # kept
    assert translate.build(lesson)[0].cells[4].source == new  # a fuzzy translation is not used
    status, printed = check(tmp_path, capsys)
    assert status == 1 and "cell 5: fuzzy (its English changed): revise the translation" in printed

    translate_messages(lesson, {new: "발표자 노트: 03강 5절."})
    translate.write_notebook(translate.build(lesson)[0], translate.korean_path(lesson))
    assert check(tmp_path, capsys) == (0, "01_fixed_labels: complete\n")


def test_a_changed_cell_of_a_real_lesson_is_named(tmp_path, capsys):
    """The same on a temporary copy of lesson 01 and its catalog, brought up to date first: one changed cell."""
    (tmp_path / "notebooks").mkdir()
    lesson = tmp_path / "notebooks" / LESSONS[0].name
    shutil.copy(LESSONS[0], lesson)
    translate.extract(lesson)
    nb = nbformat.read(lesson, as_version=4)
    number, cell = translate.text_cells(nb)[3]
    cell.source += "\n\nOne more sentence."
    nbformat.write(nb, lesson)
    problems = [p for p in translate.catalog_problems(lesson) if "not translated yet" not in p]
    assert len(problems) == 1 and problems[0].startswith(f"{LESSONS[0].stem}.po, cell {number}: its English changed")
    assert "run `python -m utils.translate extract`" in problems[0]


def test_moved_repository_and_restored_cells_keep_their_translations(tmp_path):
    """Two changes that are no change of the text: a new repository path in the badge and glossary link
    (`python -m utils.badges` after a fork) and a cell deleted, then restored. Neither leaves a fuzzy message."""
    lesson = synthetic_lesson(tmp_path)
    translate.extract(lesson)
    translate_messages(lesson, LABELS)
    nb = nbformat.read(lesson, as_version=4)
    badges.rewrite_cells(nb, lesson.name, "a-fork/going-deeper", "main")
    restored = nb.cells.pop(4)
    nbformat.write(nbformat.from_dict(nb), lesson)
    assert translate.extract(lesson) == (6, 6, 0)
    catalog = translate.read_catalog(translate.catalog_path(lesson))
    moved = catalog["".join(nb["cells"][0]["source"])].string
    assert "a-fork/going-deeper/blob/main/notebooks/01_fixed_labels.ipynb" in moved and "고정 레이블" in moved
    assert "going-deeper-course" not in moved and list(catalog.obsolete) == [restored.source]

    nb = nbformat.read(lesson, as_version=4)
    nb.cells.insert(4, restored)
    nbformat.write(nb, lesson)
    assert translate.extract(lesson) == (7, 7, 0)
    assert not translate.read_catalog(translate.catalog_path(lesson)).obsolete


STRUCTURE = [  # (English, Korean, the problem named)
    ("The layer has 7,884 weights.", "이 층에는 가중치가 7884개 있습니다.", "number 7,884 is missing"),
    ("The layer has 7,884 weights.", "이 층의 가중치는 총7,884개입니다.",
     "write a space before it, as in '총 7,884개'"),
    ("It took 2.5 s.", "2.50초 걸렸습니다.", "number 2.5 is missing"),
    ("Call `conv_params(3, 8, 3)`.", "`conv_params(3, 8, 5)`를 호출합니다.", "'conv_params(3, 8, 3)' missing"),
    ("## 2. Output sizes\n\nText.", "**2. 출력 크기**\n\n본문.", "headings differ: levels [2] in English, []"),
    ("## 2. Output sizes", "### 2. 출력 크기", "headings differ: levels [2] in English, [3] in Korean"),
    ("Text.\n\n## 2. Output sizes", "## 2. 출력 크기\n\n본문.", "a cell's heading on its first line"),
    ("See [the paper](https://arxiv.org/abs/1409.4842).", "[논문](https://arxiv.org/abs/1409.4843)을 보십시오.",
     "links and images differ"),
    ("![diagram](images/a.svg)", "![도식](images/b.svg)", "links and images differ"),
    ("Here $y = Wx$ holds.", "여기서는 $y = W x$가 성립합니다.", "math ($...$, $$...$$) differ"),
    ("$$y = Wx$$", "$y = Wx$", "math ($...$, $$...$$) differ"),
    ("<details><summary>Solution</summary>\n\n4\n</details>", "**풀이**\n\n4", "HTML tags (<details> blocks) differ"),
    ("Code:\n\n```python\nprint(1)\n```", "코드:\n\n```python\nprint(2)\n```", "never translate code"),
]


@pytest.mark.parametrize("english, korean, problem", STRUCTURE, ids=[s[2][:40] for s in STRUCTURE])
def test_structure_check_catches(english, korean, problem):
    found = translate.structure_problems(english, korean)
    assert any(problem in line for line in found), found


@pytest.mark.parametrize("english, korean", [
    ("A `1x1` conv on a 1x1 patch is 9.7x cheaper: `a` then `b`.",
     "1×1 패치의 `1x1` 합성곱은 9.7배 쌉니다: `b` 전에 `a`."),
    ("## 3. Lesson 03, section 4\n\n2 seeds, 2 models.", "## 3. 03강 4절\n\n시드 2개로 모델 2개를 비교합니다."),
    ("$a$ and $b$, about 9,216 weights", "약 9,216개의 가중치, $b$와 $a$"),
    ("[Glossary (용어집)](https://x.org/README.md#glossary-용어집)", "[용어집(Glossary)](https://x.org/README.md#glossary-용어집)"),
])
def test_structure_check_allows_korean_word_order(english, korean):
    """Code spans and math may move within a cell; 1x1 becomes 1×1 in prose, 9.7x 9.7배 (STYLE.md rules 9, 10)."""
    assert translate.structure_problems(english, korean) == []


def test_code_cells_and_outputs_stay_those_of_the_english_lesson(tmp_path):
    """A Korean notebook whose code (or an output) differs from the English is reported, with the cell."""
    lesson = synthetic_lesson(tmp_path)
    translate.extract(lesson)
    translate_messages(lesson, LABELS)
    translate.write_notebook(translate.build(lesson)[0], translate.korean_path(lesson))
    assert translate.notebook_problems(lesson) == []
    for change in ("source", "outputs"):
        korean = nbformat.read(translate.korean_path(lesson), as_version=4)
        if change == "source":
            korean.cells[6].source = "print(2 + 3)"
        else:
            korean.cells[9].outputs[0].text = "5\n"
        nbformat.write(korean, translate.korean_path(lesson))
        problems = translate.notebook_problems(lesson)
        cell = 7 if change == "source" else 10
        assert f"notebooks/ko/01_fixed_labels.ipynb: code cells [{cell}] differ from the English ones" in problems[0]
        assert "run `python -m utils.translate build 01`" in problems[0]
        translate.write_notebook(translate.build(lesson)[0], translate.korean_path(lesson))


def test_bad_input_is_named_with_its_fix(tmp_path, capsys):
    lesson = synthetic_lesson(tmp_path)
    with pytest.raises(SystemExit, match="no lesson 07 in .*: name one of 01_fixed_labels"):
        translate.lessons(["07"], tmp_path)
    with pytest.raises(FileNotFoundError, match=r"01_fixed_labels.po does not exist: make it with "
                                                r"`python -m utils.translate extract`"):
        translate.build(lesson)
    assert check(tmp_path, capsys) == (1, "01_fixed_labels: 2 problem(s)\n"
                                          "  01_fixed_labels.po: no catalog; make it with "
                                          "`python -m utils.translate extract 01`\n"
                                          "  notebooks/ko/01_fixed_labels.ipynb does not exist: "
                                          "run `python -m utils.translate build 01`\n")


def test_numbers_are_found_as_the_worked_solutions_check_finds_them():
    """STYLE.md rule 9 exists for tests/solutions.py: the structure check uses its pattern."""
    assert translate.NUMBER.pattern == solutions.NUMBER.pattern


def test_the_worked_example_keeps_the_structure_and_the_fixed_labels():
    """LABELS, the example for translators, passes the structure check and uses STYLE.md rule 12's labels."""
    for english, korean in LABELS.items():
        assert translate.structure_problems(english, korean) == [], english
    said = "\n".join(LABELS.values())
    for label in ("학습 목표", "사전 지식", "실행 시간", "실행 전에 예측해 보기", "연습 문제", "풀이", "요약",
                  "더 읽을거리", "발표자 노트", "03강", "4절"):
        assert label in said


# The committed catalogs: always checked.

def test_every_lesson_has_its_catalog():
    """locale/ko/LC_MESSAGES/NN_name.po for each lesson and no other, each a Korean gettext catalog."""
    folder = REPO_ROOT / "locale" / "ko" / "LC_MESSAGES"
    assert sorted(p.name for p in folder.glob("*.po")) == sorted(f"{p.stem}.po" for p in LESSONS), \
        "run `python -m utils.translate extract`"
    for lesson in LESSONS:
        catalog = translate.read_catalog(translate.catalog_path(lesson))
        assert str(catalog.locale) == "ko" and len(catalog) > 20 and not catalog.fuzzy


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_translated_cells_keep_the_english_structure(lesson):
    """Every translation in a catalog (not fuzzy) keeps its English cell's headings, math, code, links, <details>
    blocks and numbers. Untranslated cells pass; the completeness tests below catch them."""
    catalog = translate.read_catalog(translate.catalog_path(lesson))
    problems = [f"{translate.excerpt(m.id)}: {problem}" for m in list(catalog)[1:] if m.string and not m.fuzzy
                for problem in translate.structure_problems(m.id, m.string)]
    assert not problems, "\n".join(problems)


def test_readme_names_the_commands():
    """The maintainer section "The Korean edition" gives the three commands, and the worked example's entry."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### The Korean edition", 1)[1].split("\n## ", 1)[0]
    for command in ("extract", "build", "check"):
        assert f"python -m utils.translate {command}" in section
    assert 'msgid "Speaker notes: lesson 03, section 4."\nmsgstr "발표자 노트: 03강 4절."' in section
    assert LABELS["Speaker notes: lesson 03, section 4."] == "발표자 노트: 03강 4절."


# The committed Korean lessons: dormant until notebooks/ko/ exists.

@dormant
@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_markdown_cell_is_translated(lesson):
    """Every Markdown cell of the English lesson has a translation in the catalog: none missing, empty, fuzzy or
    out of step with the English, each keeping its cell's structure."""
    problems = translate.catalog_problems(lesson)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


@dormant
@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_committed_korean_notebook_equals_a_fresh_build(lesson):
    """notebooks/ko/NN_name.ipynb is what `python -m utils.translate build` makes: the English code cells and
    outputs, byte for byte, and the catalog's Korean."""
    problems = translate.notebook_problems(lesson)
    assert not problems, "\n".join(problems)


@dormant
def test_readme_links_every_korean_lesson():
    """The README's Korean guide (한국어 안내) links every Korean lesson."""
    guide = (REPO_ROOT / "README.md").read_text().split("## 한국어 안내", 1)[1].split("\n## ", 1)[0]
    missing = [f"notebooks/ko/{p.name}" for p in LESSONS if f"](notebooks/ko/{p.name})" not in guide]
    assert not missing, f"link these in the README's 한국어 안내: {missing}"
    korean = sorted(p.name for p in KOREAN_DIR.glob("*.ipynb"))
    assert korean == [p.name for p in LESSONS], "notebooks/ko/ holds the Korean lessons and nothing else"


def test_no_notebook_is_built_from_an_absent_lesson():
    """A Korean notebook whose English lesson was renamed or removed would never be checked: none may exist."""
    orphans = [p.name for p in KOREAN_DIR.glob("*.ipynb") if not (REPO_ROOT / "notebooks" / p.name).exists()]
    assert not orphans, f"delete these Korean notebooks or restore their English lessons: {orphans}"
