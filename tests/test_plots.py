"""Display helpers shared by the lessons: the Markdown table."""
import pytest
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
