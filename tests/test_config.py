"""Course-wide settings and the run-time footer."""
import time

import pytest
import torch

import utils
from utils.config import RunTimer, pick


def test_pick_follows_smoke_mode():
    assert pick(full=10, smoke=1) == (1 if utils.SMOKE else 10)


def test_run_timer_prints_one_line_it_can_read_back(monkeypatch, capsys):
    clock = {"wall": 100.0, "cpu": 20.0}
    monkeypatch.setattr(time, "perf_counter", lambda: clock["wall"])
    monkeypatch.setattr(time, "process_time", lambda: clock["cpu"])
    timer = utils.RunTimer()
    clock.update(wall=100.0 + 4.1 * 60, cpu=20.0 + 7.86 * 60)  # 4.1 minutes later, 7.86 minutes of CPU time
    assert timer.minutes() == pytest.approx((4.1, 7.86))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert timer.report() is None  # printed, not echoed again as the cell's Out[]
    printed = capsys.readouterr().out
    assert printed == ("This run of the notebook took 4.1 minutes of wall-clock time and 7.9 minutes of CPU time on "
                       "2 threads (from the imports cell on; kernel start not included).\n")
    assert RunTimer.parse("setup\n" + printed + "done") == (4.1, 7.9)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert " on 1 thread (from" in timer.line() and RunTimer.parse(timer.line()) == (4.1, 7.9)


def test_parse_says_what_it_looked_for():
    with pytest.raises(ValueError, match="no run-time line.*RunTimer.report"):
        RunTimer.parse("This run took a while.")
