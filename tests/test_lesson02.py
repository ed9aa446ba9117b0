"""Lesson 02 (the 1x1 convolution): the claims its prose makes, checked on the code it describes, and its
committed full run read back: the times it states, the seeds behind every verdict, the numbers of section 6.

The worked example's counts (120,422,400 against 12,443,648 multiply-adds) are pinned in tests/test_cost.py.
"""
import ast
import json
import re

import pytest
import torch
from helpers import printed, source
from torch import nn

from utils.config import REPO_ROOT, RunTimer
from utils.stats import MIN_SEEDS
from utils.train import make_optimizer, make_schedule

LESSON = REPO_ROOT / "notebooks" / "02_one_by_one_convolution.ipynb"


@pytest.fixture(scope="module")
def cells():
    return json.loads(LESSON.read_text())["cells"]


@pytest.fixture(scope="module")
def markdown(cells):
    return "\n".join(source(c) for c in cells if c["cell_type"] == "markdown")


def cell_by_id(cells, cell_id):
    return next(c for c in cells if c.get("id") == cell_id)


def section(cells, number):
    """The cells of '## N. ...', up to the next '## ' heading."""
    start = next(i for i, c in enumerate(cells) if source(c).startswith(f"## {number}. "))
    end = next((i for i in range(start + 1, len(cells)) if source(cells[i]).startswith("## ")), len(cells))
    return cells[start:end]


# ---------------------------------------------------------------- batch norm, as the lesson now says it
def test_batch_norm_normalises_each_channel_over_the_batch_and_all_positions():
    """One mean and one variance per channel, over (N, H, W): not per position (the old sentence's reading)."""
    torch.manual_seed(0)
    x = torch.randn(16, 3, 5, 5) * torch.tensor([1.0, 4.0, 0.5]).view(1, 3, 1, 1) + torch.arange(5.0)
    y = nn.BatchNorm2d(3, affine=False)(x)
    over_batch_and_positions = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / torch.sqrt(
        x.var(dim=(0, 2, 3), correction=0, keepdim=True) + 1e-5)
    over_batch_only = (x - x.mean(0)) / torch.sqrt(x.var(0, correction=0) + 1e-5)
    assert torch.allclose(y, over_batch_and_positions, atol=1e-5)
    assert not torch.allclose(y, over_batch_only, atol=1e-2)


def test_the_lesson_says_so_and_quotes_the_paper(cells, markdown):
    assert "normalises each channel over the mini-batch *and* over all positions" in markdown
    assert ("so that\ndifferent elements of the same feature map, at different locations, are normalized in the same "
            "way" in markdown)
    assert "(2015, section 3.2)" in markdown
    assert "normalises each\nchannel's outputs over the mini-batch and then" not in markdown   # the second edition's
    out = printed(cell_by_id(cells, "d3f2e59f"))
    assert "mean ['0.00', '0.00']  std ['1.00', '1.00']" in out
    assert "-1.4 -1.0 -0.6 -0.2 +0.2 +0.6 +1.0 +1.4" in out        # the ramp survives: positions not normalised alone


# ---------------------------------------------------------------- what the training code does to the momentum
def test_the_one_cycle_schedule_moves_the_momentum(cells):
    """fit's 'onecycle' (PyTorch's OneCycleLR defaults) cycles SGD's momentum 0.95 -> 0.85 -> 0.95, not a fixed 0.9."""
    optimizer = make_optimizer(nn.Linear(1, 1), "sgd", lr=0.05, weight_decay=5e-4)
    steps = 3 * (2_000 // 64)
    schedule, momenta = make_schedule(optimizer, "onecycle", steps), []
    for _ in range(steps):
        momenta.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        schedule.step()
    assert momenta[0] == pytest.approx(0.95)
    assert min(momenta) == pytest.approx(0.85, abs=1e-3)
    assert momenta[-1] == pytest.approx(0.95, abs=1e-3)
    assert "Nesterov momentum from 0.95 down to 0.85 and back to 0.95" in printed(cell_by_id(cells, "84c40cd2"))


# ---------------------------------------------------------------- every time stated comes from an output
def test_the_run_time_is_printed_by_the_last_code_cell(cells, markdown):
    code = [c for c in cells if c["cell_type"] == "code" and source(c).strip()]
    assert "timer = utils.RunTimer()" in source(code[1])                       # the imports cell
    assert source(code[-1]).strip() == "timer.report()"
    wall, cpu = RunTimer.parse(printed(code[-1]))
    assert 0 < cpu < 5.0 and wall > 0                                          # the course's 5-minute budget
    assert not re.search(r"\d+\s*min\w*\s+\d+\s*s\b", markdown), "a time stated in prose, not printed by a cell"


# ---------------------------------------------------------------- section 6: seeds, verdicts and the prose
@pytest.fixture(scope="module")
def reports(cells):
    text = printed(cell_by_id(cells, "2fc85ecc"))
    found = {}
    for report in text.split("paired comparison on ")[1:]:
        name = re.search(r"difference (r=\d+) - no reduction", report).group(1)
        found[name] = report
    return found


def test_every_comparison_has_enough_seeds_for_a_verdict(reports):
    assert set(reports) == {"r=32", "r=8", "r=2"}
    for report in reports.values():
        seeds = int(re.search(r"(\d+) seeds per model", report).group(1))
        assert seeds >= MIN_SEEDS == 3
        assert "a verdict needs at least" not in report


def test_the_verdicts_the_prose_states(reports, cells):
    """r=8 and r=2 measurably worse; r=32 inconclusive, though test-set noise alone would have called it better."""
    assert "verdict: no reduction is more accurate than r=8" in reports["r=8"]
    assert "verdict: no reduction is more accurate than r=2" in reports["r=2"]
    assert "verdict: inconclusive" in reports["r=32"]
    low, high = map(float, re.search(r"interval \[([+-][\d.]+), ([+-][\d.]+)\] resampling test images only",
                                     reports["r=32"]).groups())
    assert low > 0 and high > 0
    table = printed(cell_by_id(cells, "f1c0efb3"))
    assert "-> every run is above chance (10%): True" in table
    assert "-> measurably less accurate than no reduction: r=8, r=2" in table
    assert "-> r=32: inconclusive: no loss larger than about" in table


def test_the_timing_prose_agrees_with_this_run(cells):
    """Section 4's prose says the time saved falls short of the count and the narrow reductions lie above the
    proportional line; the cells check both on the run's own timings (a re-run that disagrees must change the prose)."""
    timing = printed(cell_by_id(cells, "fa9a6d3d"))
    assert "-> cpu: the time saved falls short of the count at every batch size: True" in timing
    assert "than the reduced path at every batch size: True" in timing
    above = re.search(r"above the dashed line \(slower per multiply-add than the direct 5x5\): (.*?);",
                      printed(cell_by_id(cells, "93f01532"))).group(1)
    assert "r=2" in above.split(", ")                                # the narrowest reduction lies above the line


def _decimals_outside_quotes(text):
    text = re.sub(r'"[^"]*"', " ", text)                      # quotations from papers
    text = re.sub(r"arXiv:\S+|section \d+\.\d+", " ", text)   # identifiers, not measurements
    return set(re.findall(r"(?<![\w.])\d+\.\d+", text))


def test_section_6_prose_states_only_printed_numbers(cells):
    """Every decimal number in section 6's Markdown after the training (and in the summary) is one a cell printed."""
    cells_6 = section(cells, 6)
    first_run = next(i for i, c in enumerate(cells_6) if c.get("id") == "84c40cd2")
    outputs = "\n".join(printed(c) for c in cells if c["cell_type"] == "code").replace("−", "-")
    summary = next(i for i, c in enumerate(cells) if source(c).startswith("## Summary"))
    prose = [source(c) for c in cells_6[first_run:] + cells[summary:summary + 4] if c["cell_type"] == "markdown"]
    missing = sorted(n for n in _decimals_outside_quotes("\n".join(prose)) if n not in outputs)
    assert not missing, f"numbers in section 6's prose that no cell printed: {missing}"


def test_section_6_names_what_it_reads_from_section_4(cells):
    """No hidden state: section 6 times its training steps with settings of its own, not section 4's."""
    code = "\n".join(source(c) for c in section(cells, 6) if c["cell_type"] == "code")
    read = {node.id for node in ast.walk(ast.parse(code))
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    assert not read & {"rounds", "min_run_time", "timing_threads", "best_latencies", "timings", "jobs"}


def test_no_pareto_line(cells):
    assert "pareto" not in json.dumps(cells).lower()
