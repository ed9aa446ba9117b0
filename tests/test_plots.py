"""Display helpers shared by the lessons: the Markdown table, the class activation map grid."""
import matplotlib
import pytest
import torch
from IPython.display import Markdown

from utils import plots


def test_markdown_table_is_what_the_lessons_wrote_by_hand():
    text = plots.markdown_table(["block", "params", "ratio"], [["3a", "163,328", "3.5x"], ("**all**", 1, 2.0)])
    assert text == ("| block | params | ratio |\n"
                    "|---:|---:|---:|\n"
                    "| 3a | 163,328 | 3.5x |\n"
                    "| **all** | 1 | 2.0 |")
    assert plots.markdown_table(["a|b"], [["x|y"]]).splitlines()[::2] == ["| a\\|b |", "| x\\|y |"]


def test_show_table_displays_one_markdown_table(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects: shown.extend(objects))
    assert plots.show_table(["x", "y"], [[1, 2]]) is None  # nothing to echo as the cell's Out[]
    assert len(shown) == 1 and isinstance(shown[0], Markdown)
    assert shown[0].data == plots.markdown_table(["x", "y"], [[1, 2]])


def test_a_row_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match=r"row 1 has 3 cells but the header has 2"):
        plots.markdown_table(["x", "y"], [[1, 2], [1, 2, 3]])


@pytest.mark.parametrize("titles", [["airplane → bird"] * 10, ["grace_hopper\n→ military uniform"] * 10])
def test_cam_grid_titles_do_not_overprint_the_row_above(titles):
    """Each title of the second row sits below the image above it, one line or two (lessons 04 and 06)."""
    matplotlib.use("Agg")
    plots.use_course_style()
    generator = torch.Generator().manual_seed(0)
    fig = plots.show_cam(torch.randn(10, 3, 32, 32, generator=generator), torch.rand(10, 32, 32, generator=generator),
                         titles, ncols=5, title="a grid of maps")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = fig.axes
    for above, below in zip(axes[:5], axes[5:]):
        title_box, image_box = below.title.get_window_extent(renderer), above.get_window_extent(renderer)
        assert title_box.y1 < image_box.y0, f"title {below.get_title()!r} overprints the image above it"
    assert fig._suptitle.get_window_extent(renderer).y0 >= max(ax.title.get_window_extent(renderer).y1
                                                              for ax in axes[:5])
    matplotlib.pyplot.close(fig)
