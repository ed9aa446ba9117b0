"""Every lesson in a real browser: JupyterLab and headless Chromium, as a learner meets the course.

For each notebooks/NN_*.ipynb (smoke mode): Run All finishes with every code cell executed and no
error output, every widget renders, moving each slider and dropdown changes what its cell shows, the
lessons that plot show figures, lesson 06's file upload draws a new figure, and Korean text renders
with real glyphs rather than missing-glyph boxes. Once the Korean edition exists (notebooks/ko/, built by
`python -m utils.translate build`), its first lesson is run the same way. Screenshots are kept in
test-artifacts/browser/ (the Korean lesson's in test-artifacts/browser/ko/).

Needs Debian's chromium package (/usr/bin/chromium) and the Python playwright package; it never
downloads a browser (no `playwright install`). It is slow, so it carries the `browser` marker that
the default `pytest` run leaves out:

    pytest -m browser tests/test_browser.py

Without Chromium it skips with one line; with COURSE_REQUIRE_BROWSER=1 (CI sets it) it fails instead.
"""
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from functools import partial
from pathlib import Path

import pytest

from utils.config import REPO_ROOT

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
# Under pytest-xdist (`pytest -n 2`, as CI runs this file) each process has its own JupyterLab and Chromium.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
LAB_LOG = f"jupyterlab-{WORKER}.log" if WORKER else "jupyterlab.log"
LESSONS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LESSONS += sorted((REPO_ROOT / "notebooks" / "ko").glob("[0-9][0-9]_*.ipynb"))[:1]  # the Korean edition's first
RUN_ALL_SECONDS = 900  # one lesson's Run All in smoke mode, JupyterLab and a busy 2-core machine included
REDRAW_SECONDS = 120  # one widget redraw (lesson 06 classifies an upload with a GoogLeNet on the CPU)
KOREAN = "용어집"  # "glossary": the link in every lesson's first Markdown cell
MISSING_GLYPH = "\u0378"  # an unassigned code point: always drawn as the missing-glyph box

# JupyterLab settings for the test only (a temporary settings folder): never save the lessons
# (Run All in smoke mode must not overwrite the committed full-mode outputs), render every cell
# (no virtual scrolling, so the DOM holds the whole notebook), no news pop-ups.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                          "checkForUpdates": False},
}
# ... and a server that refuses to save any file, should a save be triggered anyway.
SERVER_CONFIG = '''
def refuse_to_save(model, path, contents_manager, **kwargs):
    raise RuntimeError("the browser test never saves files: " + path)

c.ContentsManager.pre_save_hook = refuse_to_save
'''


def require_browser():
    """Skip (or, under COURSE_REQUIRE_BROWSER=1, fail) where Chromium or playwright is missing."""
    problem = None
    if not CHROMIUM.exists():
        problem = "no /usr/bin/chromium: install Debian's chromium package to run the browser test"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "no playwright Python package: pip install -r requirements.txt (never `playwright install`)"
    if problem:
        if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"COURSE_REQUIRE_BROWSER=1 but {problem}", pytrace=False)
        pytest.skip(problem)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_chromium(playwright, profile, env=None):
    """Debian's Chromium, headless, with a fresh profile folder."""
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, env=env,
        viewport={"width": 1400, "height": 1600}, device_scale_factor=1)


@pytest.fixture(scope="module")
def artifacts():
    if not WORKER:  # with several processes, each test clears only its own folder (below)
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def lab(tmp_path_factory, artifacts):
    """JupyterLab on 127.0.0.1 with the repository as its root; yields (url, token)."""
    require_browser()
    home = tmp_path_factory.mktemp("jupyter")
    for name, settings in LAB_SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    (home / "config").mkdir()
    (home / "config" / "jupyter_server_config.py").write_text(SERVER_CONFIG)
    env = dict(os.environ, COURSE_SMOKE="1", JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"))
    env.pop("MPLBACKEND", None)  # kernels must draw inline; COURSE_DATA_DIR is inherited as it is
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={REPO_ROOT}",
               f"--IdentityProvider.token={token}", f"--LabApp.user_settings_dir={home / 'settings'}",
               f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = artifacts / LAB_LOG
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, never through a proxy
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                request = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
                with direct.open(request, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def playwright():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory):
    context = launch_chromium(playwright, tmp_path_factory.mktemp("chromium-profile"))
    context.set_default_timeout(60_000)
    yield context
    context.close()


# JavaScript run in the JupyterLab page; window.jupyterapp is there because of expose_app_in_browser.
NOTEBOOK_READY = """(path) => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(w && w.context && w.context.path === path && w.context.isReady && w.sessionContext
            && w.sessionContext.session && w.sessionContext.session.kernel
            && w.sessionContext.session.kernel.status === 'idle' && w.content.widgets.length > 0);
}"""
RUN_ALL = """() => {
  const app = window.jupyterapp;
  window.__courseRun = undefined;
  app.commands.execute('notebook:clear-all-cell-outputs')
    .then(() => app.commands.execute('notebook:run-all-cells'))
    .then(ok => { window.__courseRun = {ok: ok}; }, error => { window.__courseRun = {error: String(error)}; });
}"""
COUNT_IDLES = """() => {
  window.__courseIdles = 0;
  window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.statusChanged.connect(
    (kernel, status) => { if (status === 'idle') { window.__courseIdles += 1; } });
}"""
KERNEL_IDLE = """() => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  return kernel.status === 'idle' && !document.querySelector('.jp-Notebook').innerText.includes('[*]:');
}"""
# One record per cell, from the notebook model (what ran, what came out) and from the DOM (what shows).
CELLS = """() => {
  const widths = (el) => el.getBoundingClientRect().width;
  return window.jupyterapp.shell.currentWidget.content.widgets.map((cell, index) => {
    const node = cell.node;
    const outputs = cell.model.type === 'code' ? cell.model.outputs.toJSON() : [];
    const prompt = node.querySelector('.jp-InputPrompt');
    const stderr = [...node.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')];
    return {
      index: index,
      type: cell.model.type,
      source: cell.model.sharedModel.getSource(),
      executionCount: cell.model.type === 'code' ? cell.model.executionCount : null,
      errorOutputs: outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
      prompt: prompt ? prompt.innerText.trim() : '',
      stderr: stderr.map(e => e.innerText),
      pngs: [...node.querySelectorAll('.jp-OutputArea-output img')]
              .filter(img => img.src.startsWith('data:image/png') && img.naturalWidth > 0 && widths(img) > 0).length,
      widgets: node.querySelectorAll('.jupyter-widgets').length,
      sliders: node.querySelectorAll('.widget-slider .noUi-handle').length,
      dropdowns: node.querySelectorAll('.widget-dropdown select').length,
      uploads: node.querySelectorAll('.widget-upload').length,
      text: node.querySelector('.jp-Cell-outputWrapper') ? node.querySelector('.jp-Cell-outputWrapper').innerText : '',
    };
  });
}"""
# What a widget cell shows, minus the controls themselves: its text, and a fingerprint of each image.
SHOWN = r"""(index) => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[index].node;
  const area = cell.querySelector('.jp-Cell-outputWrapper');
  const clone = area.cloneNode(true);
  clone.querySelectorAll('.widget-slider, .widget-dropdown, .widget-upload').forEach(e => e.remove());
  const fingerprint = (s) => { let h = 2166136261; for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i);
                                h = Math.imul(h, 16777619) >>> 0; } return s.length + ':' + h.toString(16); };
  return {text: clone.textContent.replace(/\s+/g, ' ').trim(),
          images: [...area.querySelectorAll('img')].map(img => fingerprint(img.src))};
}"""
# Markdown cells whose text still shows $...$ (math that MathJax did not typeset), and the typeset formulas.
MATH = r"""() => {
  const rendered = [...document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown')];
  return {typeset: document.querySelectorAll('.jp-RenderedMarkdown mjx-container').length,
          raw: rendered.filter(e => /\$[^$\n]+\$/.test(e.innerText)).length};
}"""
# The first run of Korean (Hangul) text in the rendered Markdown cells (the glossary link "용어집" of the
# first cell, in every lesson), its width, and the width of as many missing-glyph boxes in the same font.
GLYPH_WIDTHS = r"""(missing) => {
  const cells = window.jupyterapp.shell.currentWidget.content.widgets;
  for (let index = 0; index < cells.length; index++) {
    const markdown = cells[index].node.querySelector('.jp-RenderedMarkdown');
    if (!markdown) continue;
    const walker = document.createTreeWalker(markdown, NodeFilter.SHOW_TEXT);
    let node;
    while ((node = walker.nextNode())) {
      const found = /[\uac00-\ud7a3]+/.exec(node.data);
      if (!found) continue;
      const range = document.createRange();
      range.setStart(node, found.index);
      range.setEnd(node, found.index + found[0].length);
      const probe = document.createElement('span');
      probe.textContent = missing.repeat(found[0].length);
      probe.style.whiteSpace = 'pre';
      node.parentElement.appendChild(probe);
      const result = {cell: index, text: found[0], korean: range.getBoundingClientRect().width,
                      missing: probe.getBoundingClientRect().width,
                      font: getComputedStyle(node.parentElement).fontFamily};
      probe.remove();
      return result;
    }
  }
  return null;
}"""


def path_id(path):
    """A lesson's name below notebooks/, without .ipynb: "01_cnn_basics", "ko/01_cnn_basics"."""
    return path.relative_to(REPO_ROOT / "notebooks").with_suffix("").as_posix()


def glyphs_are_real(widths):
    """The Korean text is drawn with real glyphs when its width differs from that of missing-glyph boxes."""
    return abs(widths["korean"] - widths["missing"]) > 2


def lesson_plots(path):
    """A lesson plots when its code uses matplotlib or its committed outputs hold a figure."""
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    stored = any("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
    return stored or bool(re.search(r"\bplt\.|\.plot\(|show_images|show_diagram|explore\(", code))


def widget_cells(path):
    """The code cells whose code makes widgets (explore(...) or ipywidgets.X(...)), by index, with the
    controls each must show: "controls" (sliders or dropdowns), "upload", or None. (Widget views stored
    in a notebook are no guide: a progress bar shows one while it runs and leaves text behind.)"""
    cells = json.loads(path.read_text())["cells"]
    found = {}
    for index, cell in enumerate(cells):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and re.search(r"\bexplore\(|ipywidgets\.\w+\(", source):
            found[index] = "upload" if "FileUpload(" in source else "controls" if "explore(" in source else None
    return found


def shows(cell, kind):
    """Whether a cell's record (see CELLS) shows the controls ``widget_cells`` expects of it."""
    return {"upload": cell["uploads"], "controls": cell["sliders"] + cell["dropdowns"], None: 1}[kind] > 0


def write_png(path, size=48):
    """A small picture for the upload: a red square on blue (no other file is needed)."""
    from PIL import Image

    picture = Image.new("RGB", (size, size), (30, 60, 200))
    picture.paste((220, 30, 30), (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    picture.save(path)
    return path


def after_kernel_round(page, action, seconds=REDRAW_SECONDS):
    """Do ``action`` (which makes the kernel run once: a widget's new value reaches its observer), wait
    until the kernel has gone idle after it, and let the browser paint what came back."""
    idles = page.evaluate("() => window.__courseIdles")
    action()
    page.wait_for_function(f"() => window.__courseIdles > {idles}", timeout=seconds * 1000, polling=200)
    page.wait_for_function(KERNEL_IDLE, timeout=seconds * 1000, polling=200)
    page.wait_for_timeout(800)


@contextlib.contextmanager
def notebook_page(browser, lab, relative, shots):
    """The notebook at ``relative`` (a path in the repository) open in JupyterLab with its kernel idle.
    On failure a screenshot; always the browser console in shots/console.log and the kernel shut down."""
    url, token = lab
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page()
    messages = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    try:
        page.goto(f"{url}/lab/tree/{relative}?reset&token={token}")
        page.wait_for_function(NOTEBOOK_READY, arg=relative, timeout=180_000, polling=500)
        page.evaluate(COUNT_IDLES)
        yield page
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=shots / "failure.png")
        raise
    finally:
        (shots / "console.log").write_text("\n".join(messages))
        with contextlib.suppress(Exception):
            page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        page.close()


def korean_widths(page, shots):
    """Measure the first Korean text against missing-glyph boxes (see GLYPH_WIDTHS); screenshot its cell."""
    widths = page.evaluate(GLYPH_WIDTHS, MISSING_GLYPH)
    if widths:
        cell = page.locator(".jp-Notebook .jp-Cell").nth(widths["cell"])
        cell.scroll_into_view_if_needed()
        cell.screenshot(path=shots / "korean_text.png")
    return widths


def run_all(page, shots):
    """Clear every output, Run All and wait for the kernel; returns (Run All's result, seconds, cell records)."""
    started = time.monotonic()
    page.evaluate(RUN_ALL)
    page.wait_for_function("() => window.__courseRun !== undefined", timeout=RUN_ALL_SECONDS * 1000, polling=1000)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000, polling=500)
    page.wait_for_timeout(2000)  # widget views render after their outputs arrive
    seconds = time.monotonic() - started
    page.screenshot(path=shots / "after_run_all.png")
    return page.evaluate("() => window.__courseRun"), seconds, page.evaluate(CELLS)


def error_outputs(cells):
    """Error outputs, tracebacks on stderr and widgets that failed to render, one line each."""
    errors = [f"cell {c['index']}: {e}" for c in cells for e in c["errorOutputs"]]
    errors += [f"cell {c['index']}: {t[:1500]}" for c in cells for t in c["stderr"] if "Traceback" in t]
    errors += [f"cell {c['index']}: a widget or output failed to render" for c in cells
               if re.search(r"Error displaying widget|Error rendering output", c["text"])]
    return errors


def execution_problems(cells):
    """Non-empty code cells that did not run once, in order: the prompts must read [1]:, [2]:, [3]:, ..."""
    code = [c for c in cells if c["type"] == "code" and c["source"].strip()]
    return [f"cell {c['index']}: execution count {c['executionCount']}, prompt {c['prompt']!r}, expected [{n}]:"
            for n, c in enumerate(code, start=1) if c["executionCount"] != n or c["prompt"] != f"[{n}]:"]


def test_the_checks_catch_an_error_and_a_control_that_changes_nothing(lab, browser, artifacts, tmp_path):
    """The checks used on the lessons, on a notebook made here whose flaws are known: an error stops Run All
    (the cell after it never runs), a live explorer redraws, one that ignores its slider is reported, and so is
    one whose redraw raises."""
    import nbformat

    shots = artifacts / "selfcheck"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir()
    sources = [f"import sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\nimport matplotlib.pyplot as plt\n"
               "from utils import widgets",
               "def draw(n=2):\n    plt.plot(range(n))\n    plt.title(f'n = {n}')\n\n"
               "live = widgets.explore(draw, n=widgets.slider(2, 1, 5, description='n'))",
               "def same(n=2):\n    print('always the same')\n\n"
               "dead = widgets.explore(same, n=widgets.slider(2, 1, 5, description='n'))",
               "def broken(n=2):\n    plt.plot(range(n))\n    if n > 2:\n        raise ValueError(f'broken at {n}')\n\n"
               "bad = widgets.explore(broken, n=widgets.slider(2, 1, 5, description='n'))",
               "1 / 0",
               "print('never runs')"]
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    notebook.cells = [nbformat.v4.new_markdown_cell(f"# Self-check\n\n[Glossary ({KOREAN})](#)")]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, shots / "selfcheck.ipynb")
    with notebook_page(browser, lab, (shots / "selfcheck.ipynb").relative_to(REPO_ROOT).as_posix(), shots) as page:
        assert glyphs_are_real(korean_widths(page, shots))
        result, _, cells = run_all(page, shots)
        assert result == {"ok": False}
        errors = error_outputs(cells)
        assert errors and all(e.startswith("cell 5: ") for e in errors) and "ZeroDivisionError" in errors[0]
        problems = execution_problems(cells)
        assert len(problems) == 1 and problems[0].startswith("cell 6: execution count None"), problems
        assert [c["sliders"] for c in cells] == [0, 0, 1, 1, 1, 0, 0] and cells[2]["pngs"] == 1
        assert exercise_controls(page, cells[2], shots, tmp_path) == (1, [], [])
        moved, unchanged, failed = exercise_controls(page, cells[3], shots, tmp_path)
        assert moved == 1 and len(unchanged) == 1 and unchanged[0].startswith("slider 0") and not failed, unchanged
        moved, unchanged, failed = exercise_controls(page, cells[4], shots, tmp_path)
        assert moved == 1 and not unchanged and len(failed) == 1, failed
        assert failed[0].startswith("slider 0 at 3") and "ValueError" in failed[0], failed


@pytest.mark.parametrize("path", LESSONS, ids=[path_id(p) for p in LESSONS])
def test_lesson_in_jupyterlab(path, lab, browser, artifacts, tmp_path):
    relative = path.relative_to(REPO_ROOT).as_posix()
    shots = artifacts / path_id(path)
    shutil.rmtree(shots, ignore_errors=True)
    with notebook_page(browser, lab, relative, shots) as page:
        assert page.evaluate("() => window.jupyterapp.commands.hasCommand('RISE:slideshow')"), \
            "jupyterlab-rise is not loaded: live slides (RISE) are missing from JupyterLab"

        # Korean renders: the first Korean text (the glossary link, 용어집) is drawn with real glyphs.
        widths = korean_widths(page, shots)
        assert widths, f"no Korean text in the Markdown of {path.name}"  # every lesson names its terms in Korean
        assert glyphs_are_real(widths), f"Korean renders as missing-glyph boxes (install fonts-noto-cjk): {widths}"

        # Run All from a clean slate, in smoke mode: no error, every code cell run once, in order, figures.
        result, seconds, cells = run_all(page, shots)
        errors = error_outputs(cells)
        assert not errors, f"{path.name}: errors after Run All ({seconds:.0f} s):\n" + "\n".join(errors)
        assert result == {"ok": True}, f"{path.name}: Run All did not complete: {result}"
        problems = execution_problems(cells)
        assert not problems, f"{path.name}: not every code cell ran once, in order:\n" + "\n".join(problems[:10])
        if lesson_plots(path):
            assert sum(c["pngs"] for c in cells) > 0, f"{path.name}: no figure (PNG image) after Run All"
        if re.search(r"\$[^$\n]+\$", "".join(c["source"] for c in cells if c["type"] == "markdown")):
            math = page.evaluate(MATH)
            assert math["typeset"] and not math["raw"], f"{path.name}: LaTeX not typeset by MathJax: {math}"

        # Every widget renders, and moving each control changes what its cell shows.
        expected = widget_cells(path)
        missing = [i for i, kind in expected.items() if not cells[i]["widgets"] or not shows(cells[i], kind)]
        assert not missing, f"{path.name}: cells {missing} should show widgets (or controls, or an upload) but do not"
        for cell in cells:
            if cell["sliders"] + cell["dropdowns"] + cell["uploads"]:
                moved, unchanged, failed = exercise_controls(page, cell, shots, tmp_path)
                assert moved, f"{path.name} cell {cell['index']}: no control could be moved"
                assert not failed, f"{path.name} cell {cell['index']}: a control's redraw failed: {failed}"
                assert not unchanged, f"{path.name} cell {cell['index']}: these controls changed nothing: {unchanged}"
    assert "the browser test never saves" not in (artifacts / LAB_LOG).read_text(), \
        f"JupyterLab tried to save a file while testing {path.name} (refused): see {artifacts / LAB_LOG}"


def upload_file(page, button, path):
    """Click an ipywidgets FileUpload button and pick ``path`` in the file chooser it opens (its
    <input type=file> is never attached to the page, so the chooser is the way in)."""
    with page.expect_file_chooser() as chooser:
        button.click()
    chooser.value.set_files(path)


def exercise_controls(page, cell, shots, tmp_path):
    """Move every slider and dropdown of one cell and upload a picture to every upload button; returns
    (how many controls moved, the controls whose move changed nothing the cell shows, the controls after
    whose move the cell showed an error: a traceback drawn by the redraw counts as a change, not a pass)."""
    index = cell["index"]
    failed = []

    def check(control):
        errors = error_outputs([page.evaluate(CELLS)[index]])
        if errors:
            failed.append(f"{control}: " + "; ".join(errors)[:1500])
    node = page.locator(".jp-Notebook .jp-Cell").nth(index)
    outputs = node.locator(".jp-Cell-outputWrapper")
    outputs.scroll_into_view_if_needed()
    outputs.screenshot(path=shots / f"cell{index:02d}_before.png")
    unchanged = []
    moved = 0
    for k in range(cell["sliders"]):
        handle = node.locator(".widget-slider .noUi-handle").nth(k)
        low, high, start = (float(handle.get_attribute(a)) for a in ("aria-valuemin", "aria-valuemax", "aria-valuenow"))
        if low == high:
            continue  # a slider over a single value cannot move
        before = page.evaluate(SHOWN, index)
        # One step up (down at the top); if that shows nothing new (a value clamped by the others, say),
        # one step the other way from where it started.
        keys = [["ArrowRight"], ["ArrowLeft", "ArrowLeft"]] if start < high else [["ArrowLeft"], ["ArrowRight"] * 2]
        changed = False
        for presses in keys:
            for key in presses:
                if float(handle.get_attribute("aria-valuenow")) == (high if key == "ArrowRight" else low):
                    break
                handle.focus()
                after_kernel_round(page, partial(page.keyboard.press, key))
            check(f"slider {k} at {handle.get_attribute('aria-valuenow')}")
            if page.evaluate(SHOWN, index) != before:
                changed = True
                break
        moved += 1
        if not changed:
            unchanged.append(f"slider {k} ({node.locator('.widget-slider').nth(k).inner_text().strip()!r})")
    for k in range(cell["dropdowns"]):
        select = node.locator(".widget-dropdown select").nth(k)
        options = select.locator("option").all_inner_texts()
        if len(options) < 2:
            continue
        start = select.evaluate("s => s.selectedIndex")
        before = page.evaluate(SHOWN, index)
        changed = False
        for step in range(1, min(len(options), 4)):  # the next option; if it shows nothing new, the ones after
            after_kernel_round(page, partial(select.select_option, index=(start + step) % len(options)))
            check(f"dropdown {k} at {options[(start + step) % len(options)]!r}")
            if page.evaluate(SHOWN, index) != before:
                changed = True
                break
        moved += 1
        if not changed:
            unchanged.append(f"dropdown {k} ({options!r})")
    for k in range(cell["uploads"]):
        before = page.evaluate(SHOWN, index)
        after_kernel_round(page, partial(upload_file, page, node.locator(".widget-upload").nth(k),
                                         write_png(tmp_path / "upload.png")))
        check(f"upload {k}")
        moved += 1
        if not set(page.evaluate(SHOWN, index)["images"]) - set(before["images"]):
            unchanged.append(f"upload {k} (no new figure)")
    outputs.scroll_into_view_if_needed()
    outputs.screenshot(path=shots / f"cell{index:02d}_after.png")
    return moved, unchanged, failed


FONTCONFIG_WITHOUT_KOREAN = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <selectfont><rejectfont><pattern><patelt name="lang"><string>ko</string></patelt></pattern></rejectfont></selectfont>
</fontconfig>
"""


def test_the_korean_check_tells_glyphs_from_boxes(playwright, tmp_path, artifacts):
    """The width test used above on the lessons: Korean differs from missing-glyph boxes with the system's
    fonts, and equals them in a Chromium whose fontconfig hides every Korean font (the tofu it guards against)."""
    page_html = (f"<html><body style='font: 16px sans-serif'><div class='jp-Cell'><div class='jp-RenderedMarkdown'>"
                 f"<p><a href='#'>Glossary ({KOREAN})</a></p></div></div></body></html>")
    script = GLYPH_WIDTHS.replace("window.jupyterapp.shell.currentWidget.content.widgets",
                                  "[...document.querySelectorAll('.jp-Cell')].map(node => ({node}))")
    (tmp_path / "fonts.conf").write_text(FONTCONFIG_WITHOUT_KOREAN)
    results = {}
    without_korean = {"FONTCONFIG_FILE": str(tmp_path / "fonts.conf")}
    for label, extra in (("system_fonts", {}), ("without_korean_fonts", without_korean)):
        context = launch_chromium(playwright, tmp_path / label, env=dict(os.environ, **extra))
        try:
            page = context.new_page()
            page.set_content(page_html)
            results[label] = page.evaluate(script, MISSING_GLYPH)
            page.locator("p").screenshot(path=artifacts / f"korean_{label}.png")
        finally:
            context.close()
    assert glyphs_are_real(results["system_fonts"]), f"Korean shows as boxes: install fonts-noto-cjk. {results}"
    assert not glyphs_are_real(results["without_korean_fonts"]), f"the check cannot see missing glyphs: {results}"
