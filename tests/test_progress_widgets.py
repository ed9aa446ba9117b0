"""Progress bars and widget explorers leave a readable static output in a saved notebook."""
import nbformat
from nbclient import NotebookClient

from utils.config import REPO_ROOT


def _run(code):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r})\n{code}")]
    NotebookClient(notebook, kernel_name="python3", timeout=120).execute()
    return notebook.cells[0].outputs


def test_a_finished_progress_bar_is_saved_as_its_final_line_and_explore_draws_once():
    outputs = _run(
        "from utils.progress import progress_bar\n"
        "bar = progress_bar(total=3, desc='demo')\n"
        "for _ in range(3):\n"
        "    bar.update(1); bar.set_postfix(loss='0.5', refresh=False)\n"
        "bar.close()\n"
        "import matplotlib.pyplot as plt\n"
        "from utils import widgets\n"
        "def draw(n=2):\n"
        "    print('n =', n)\n"
        "    plt.plot(range(n))\n"
        "box = widgets.explore(draw, n=widgets.slider(2, 1, 5))\n")
    texts = [o["data"].get("text/plain", "") for o in outputs if o["output_type"] == "display_data"]
    assert texts[0].startswith("demo: 100%|") and "3/3" in texts[0] and "loss=0.5" in texts[0]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1, "the default state is drawn once"
    assert "n = 2" in texts and sum("widget-view" in str(o.get("data", {})) for o in outputs) == 2  # controls, area
