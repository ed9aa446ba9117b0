"""The paired comparison helper, checked against hand computations."""
import math

import numpy as np
import pytest

from utils.stats import compare_models, mcnemar_exact


def _predictions(labels, right):
    """Predictions that are correct exactly where ``right`` is True (wrong class = label + 1)."""
    return np.where(right, labels, (labels + 1) % 10)


def test_mcnemar_exact_matches_the_binomial_by_hand():
    # 8 disagreements favour A, 2 favour B: p = 2 * P(X <= 2), X ~ Binomial(10, 1/2)
    assert mcnemar_exact(8, 2) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert mcnemar_exact(2, 8) == pytest.approx(mcnemar_exact(8, 2))
    assert mcnemar_exact(0, 0) == 1.0


def test_identical_models_are_inconclusive():
    labels = np.arange(200) % 10
    same = _predictions(labels, np.arange(200) % 3 == 0)
    result = compare_models(same, same.copy(), labels, names=("first", "second"))
    assert result.difference == 0 and result.interval == (0.0, 0.0)
    assert result.inconclusive and result.verdict.startswith("inconclusive")
    assert result.mcnemar_p == [1.0] and result.only_a_right == [0] and result.only_b_right == [0]


def test_small_margin_is_inconclusive():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 1000)
    base = rng.random(1000) < 0.6
    better = base.copy()
    flip = np.flatnonzero(~base)[:6]  # A gets 6 more images right, B gets 4 other ones right
    better[flip] = True
    worse = base.copy()
    worse[np.flatnonzero(~base)[6:10]] = True
    result = compare_models(_predictions(labels, better), _predictions(labels, worse), labels, names=("A", "B"))
    assert result.difference == pytest.approx(0.002)
    assert result.interval[0] < 0 < result.interval[1]
    assert "inconclusive" in result.verdict and "covers zero" in result.verdict
    assert result.only_a_right == [6] and result.only_b_right == [4]
    assert result.mcnemar_p[0] == pytest.approx(mcnemar_exact(6, 4))


def test_clear_difference_has_an_interval_like_the_normal_approximation():
    rng = np.random.default_rng(1)
    n = 2000
    labels = rng.integers(0, 10, n)
    a_right = rng.random(n) < 0.8
    b_right = a_right & (rng.random(n) < 0.85)  # B loses about 12 points, never wins an image
    result = compare_models(_predictions(labels, a_right), _predictions(labels, b_right), labels,
                            names=("wide", "narrow"))
    d = a_right.astype(float) - b_right
    assert result.difference == pytest.approx(d.mean())
    half_width = 1.96 * d.std(ddof=1) / math.sqrt(n)  # the textbook interval of a mean
    low, high = result.interval
    assert low < d.mean() < high
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.1)
    assert not result.inconclusive and result.verdict.startswith("wide is more accurate than narrow by")
    assert result.mcnemar_p[0] < 1e-30
    assert "McNemar" in result.report() and "verdict: wide" in result.report()


def test_seeds_that_disagree_make_the_verdict_inconclusive():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, 3000)
    common = rng.random(3000) < 0.5
    a_seed0, b_seed0 = common | (rng.random(3000) < 0.3), common.copy()      # A far ahead with seed 0
    a_seed1, b_seed1 = common.copy(), common | (rng.random(3000) < 0.05)     # B slightly ahead with seed 1
    result = compare_models([_predictions(labels, a_seed0), _predictions(labels, a_seed1)],
                            [_predictions(labels, b_seed0), _predictions(labels, b_seed1)], labels)
    assert result.n_seeds == 2 and result.seed_differences[0] > 0 > result.seed_differences[1]
    assert result.interval[0] > 0  # averaged over seeds A looks better ...
    assert result.inconclusive and "seeds disagree" in result.verdict  # ... but the seeds do not agree
    assert len(result.mcnemar_p) == 2 and "seed 1:" in result.report()


def test_bad_shapes_are_refused_clearly():
    labels = np.zeros(10, dtype=int)
    with pytest.raises(ValueError, match=r"one prediction per test label \(10\)"):
        compare_models(np.zeros(9), np.zeros(10), labels)
    with pytest.raises(ValueError, match="seeds"):
        compare_models([np.zeros(10), np.zeros(10)], np.zeros(10), labels)
