"""The paired comparison helper, checked against hand computations and textbook formulas."""
import math

import numpy as np
import pytest
from scipy import stats

from utils.stats import (
    MIN_SEEDS,
    Comparison,
    ScoreComparison,
    compare_models,
    compare_scores,
    mcnemar_exact,
    two_level_bootstrap,
)


def _predictions(labels, right):
    """Predictions that are correct exactly where ``right`` is True (wrong class = label + 1)."""
    return np.where(right, labels, (labels + 1) % 10)


def _runs(labels, accuracies, rng):
    """One prediction row per accuracy: that fraction of the images right, chosen at random."""
    n = len(labels)
    rows = []
    for accuracy in accuracies:
        right = np.zeros(n, bool)
        right[rng.choice(n, round(accuracy * n), replace=False)] = True
        rows.append(_predictions(labels, right))
    return rows


def _old_interval(a_rows, b_rows, labels, seed=0):
    """What the helper did before: bootstrap test images only, on each image's seed-averaged difference."""
    per_image = (np.array(a_rows) == labels).mean(0) - (np.array(b_rows) == labels).mean(0)
    result = stats.bootstrap((per_image,), np.mean, method="percentile", rng=np.random.default_rng(seed))
    return result.confidence_interval.low, result.confidence_interval.high


def test_mcnemar_exact_matches_the_binomial_by_hand():
    # 8 disagreements favour A, 2 favour B: p = 2 * P(X <= 2), X ~ Binomial(10, 1/2)
    assert mcnemar_exact(8, 2) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert mcnemar_exact(2, 8) == pytest.approx(mcnemar_exact(8, 2))
    assert mcnemar_exact(0, 0) == 1.0


def test_identical_models_are_inconclusive():
    labels = np.arange(200) % 10
    same = _predictions(labels, np.arange(200) % 3 == 0)
    result = compare_models([same] * 3, [same.copy()] * 3, labels, names=("first", "second"))
    assert result.difference == 0 and result.interval == result.interval_images_only == (0.0, 0.0)
    assert result.inconclusive and result.verdict.startswith("inconclusive") and "covers zero" in result.verdict
    assert result.mcnemar_p == [1.0] * 3 and result.only_a_right == [0] * 3 and result.only_b_right == [0] * 3


def test_one_seed_interval_is_the_textbook_interval_of_a_mean_but_gives_no_verdict():
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
    assert result.interval == result.interval_images_only  # one seed: nothing to resample but images
    assert low < d.mean() < high and (high - low) / 2 == pytest.approx(half_width, rel=0.1)
    assert result.mcnemar_p[0] < 1e-30
    # twelve points apart, but one seed cannot show training noise: numbers yes, verdict no
    assert result.inconclusive and f"at least {MIN_SEEDS} seeds per model, this comparison has 1" in result.verdict
    assert "covers zero" not in result.verdict
    report = result.report()
    assert "one seed per model" in report and "McNemar 2" in report and "verdict: inconclusive" in report


def test_small_margin_is_inconclusive():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 1000)
    base = rng.random(1000) < 0.6
    better = base.copy()
    better[np.flatnonzero(~base)[:6]] = True  # A gets 6 more images right, B gets 4 other ones right
    worse = base.copy()
    worse[np.flatnonzero(~base)[6:10]] = True
    result = compare_models(_predictions(labels, better), _predictions(labels, worse), labels, names=("A", "B"))
    assert result.difference == pytest.approx(0.002)
    assert result.interval[0] < 0 < result.interval[1]
    assert "inconclusive" in result.verdict and "covers zero" in result.verdict
    assert result.only_a_right == [6] and result.only_b_right == [4]
    assert result.mcnemar_p[0] == pytest.approx(mcnemar_exact(6, 4))


def test_training_noise_makes_a_test_set_verdict_inconclusive():
    """One lucky training run: A's four seeds reach 54.0, 50.3, 50.2 and 50.5%, B's all 50.0%.

    Every seed puts A ahead, and over 10,000 test images the old helper (test images resampled,
    seeds averaged) sees a difference far outside its interval. Resampling the seeds as well shows
    that three of the four runs are within half a point: the interval covers zero.
    """
    rng = np.random.default_rng(3)
    labels = np.arange(10_000) % 10
    a_rows, b_rows = _runs(labels, [0.540, 0.503, 0.502, 0.505], rng), _runs(labels, [0.50] * 4, rng)
    result = compare_models(a_rows, b_rows, labels)
    assert all(d > 0 for d in result.seed_differences)  # the seeds agree on the sign ...
    old_low, _ = _old_interval(a_rows, b_rows, labels)
    assert old_low > 0 and result.interval_images_only[0] == pytest.approx(old_low, abs=0.002)  # ... the old: "A"
    assert result.interval[0] < 0 < result.interval[1]
    assert result.inconclusive and "covers zero" in result.verdict and "seeds" not in result.verdict


def test_two_seeds_of_lesson_02_are_inconclusive():
    """Lesson 02's r=8 against no reduction, rebuilt from its printed counts (2,000 test images):
    seed 0: 36.1% and 38.9%, 146 images only r=8 got right, 200 only the other; seed 1: 33.9% and 36.0%,
    146 and 189 (which images the seeds share is not printed: here they share as many as they can). The old
    helper named a winner (-2.4 points, interval [-3.8, -1.1]); the unreduced network's own two seeds differ by
    2.9 points, and two seeds cannot say how much runs vary."""
    labels = np.arange(2000) % 10
    a_rows, b_rows = [], []
    for a_correct, only_a, only_b in ((723, 146, 200), (677, 146, 189)):
        both = a_correct - only_a
        a_right, b_right = np.zeros(2000, bool), np.zeros(2000, bool)
        a_right[:both] = b_right[:both] = True
        a_right[both:both + only_a] = True
        b_right[both + only_a:both + only_a + only_b] = True
        a_rows.append(_predictions(labels, a_right))
        b_rows.append(_predictions(labels, b_right))
    result = compare_models(a_rows, b_rows, labels, names=("r=8", "no reduction"))
    assert [f"{100 * x:.1f}" for x in result.accuracy_a + result.accuracy_b] == ["36.1", "33.9", "38.9", "36.0"]
    assert round(100 * result.difference, 1) == -2.4 and result.only_b_right == [200, 189]
    assert [f"{p:.3g}" for p in result.mcnemar_p] == ["0.00431", "0.0216"]  # as the lesson printed them
    assert result.interval_images_only[1] < 0 and _old_interval(a_rows, b_rows, labels)[1] < 0
    assert result.inconclusive and "at least 3 seeds per model, this comparison has 2" in result.verdict
    assert "no reduction is more accurate" not in str(result)


def test_a_clear_winner_over_three_seeds():
    rng = np.random.default_rng(4)
    labels = np.arange(2000) % 10
    a_rows, b_rows = _runs(labels, [0.62, 0.60, 0.63], rng), _runs(labels, [0.52, 0.54, 0.53], rng)
    result = compare_models(a_rows, b_rows, labels, names=("widened", "naive"))
    by_hand = np.mean([0.62 - 0.52, 0.60 - 0.54, 0.63 - 0.53])
    assert result.difference == pytest.approx(by_hand) and result.n_seeds == 3
    assert 0 < result.interval[0] < by_hand < result.interval[1]
    assert not result.inconclusive
    assert result.verdict.startswith(f"widened is more accurate than naive by {100 * by_hand:.1f} points")
    # the same runs, two seeds only: the numbers are reported, the verdict waits for a third seed
    two = compare_models(a_rows[:2], b_rows[:2], labels, names=("widened", "naive"))
    assert two.interval[0] > 0 and two.inconclusive and "at least 3 seeds" in two.verdict
    assert "seed 1: " in str(two) and "widened  accuracy 61.0%" in str(two)


def test_every_seed_counts_not_seed_0_alone():
    """Seed 0 puts A ten points ahead; seeds 1 and 2 put B one point ahead. Seed 0 alone would name A."""
    rng = np.random.default_rng(5)
    labels = np.arange(3000) % 10
    a_rows, b_rows = _runs(labels, [0.60, 0.49, 0.51], rng), _runs(labels, [0.50, 0.50, 0.52], rng)
    result = compare_models(a_rows, b_rows, labels)
    seed_0_alone = compare_models(a_rows[0], b_rows[0], labels)
    assert seed_0_alone.interval[0] > 0.05  # the first seed on its own: a clear lead
    assert result.accuracy_a == pytest.approx([0.60, 0.49, 0.51])
    assert result.accuracy_b == pytest.approx([0.50, 0.50, 0.52])
    assert result.difference == pytest.approx((0.10 - 0.01 - 0.01) / 3)
    assert result.interval[0] < 0 < result.interval[1] and result.interval[1] > 0.09  # reaches seed 0's +10
    assert result.inconclusive and "seeds disagree" in result.verdict
    assert len(result.mcnemar_p) == 3 and result.mcnemar_p[2] == mcnemar_exact(result.only_a_right[2],
                                                                                result.only_b_right[2])
    reordered = compare_models(a_rows[::-1], b_rows[::-1], labels)  # which seed comes first does not matter
    assert reordered.difference == pytest.approx(result.difference)
    assert reordered.interval == pytest.approx(result.interval, abs=0.01)


def test_interval_width_matches_the_variance_of_a_two_way_bootstrap():
    """For the mean over resampled seeds s and images i of D[s, i] = r_s + c_i + e_si (row effect, column
    effect, interaction), the bootstrap variance is var(r)/S + var(c)/N + mean(e^2)/(S N) (population
    variances): the two draws are independent and each centred term averages over its own draw."""
    rng = np.random.default_rng(1)
    n_seeds, n = 8, 3000
    labels = np.arange(n) % 10
    a_rows = _runs(labels, 0.60 + 0.03 * rng.standard_normal(n_seeds), rng)
    b_rows = _runs(labels, 0.55 + 0.03 * rng.standard_normal(n_seeds), rng)
    d = (np.array(a_rows) == labels).astype(float) - (np.array(b_rows) == labels)
    rows, columns = d.mean(1), d.mean(0)
    interaction = d - rows[:, None] - columns[None, :] + d.mean()
    variance = rows.var() / n_seeds + columns.var() / n + (interaction ** 2).mean() / (n_seeds * n)
    result = compare_models(a_rows, b_rows, labels)
    for (low, high), sd in ((result.interval, math.sqrt(variance)),
                            (result.interval_images_only, math.sqrt(columns.var() / n))):
        assert (high - low) / 2 == pytest.approx(1.96 * sd, rel=0.08)


def test_the_same_seed_gives_the_same_interval():
    rng = np.random.default_rng(6)
    labels = np.arange(1000) % 10
    a_rows, b_rows = _runs(labels, [0.5, 0.55, 0.52], rng), _runs(labels, [0.48, 0.5, 0.5], rng)
    first, again = compare_models(a_rows, b_rows, labels, seed=7), compare_models(a_rows, b_rows, labels, seed=7)
    other = compare_models(a_rows, b_rows, labels, seed=8)
    assert first.interval == again.interval and first.interval_images_only == again.interval_images_only
    assert first.interval != other.interval and first.interval == pytest.approx(other.interval, abs=0.01)
    assert str(first) == str(again)


def test_bad_input_is_refused_clearly():
    labels = np.zeros(10, dtype=int)
    with pytest.raises(ValueError, match=r"one prediction per test label \(10\)"):
        compare_models(np.zeros(9), np.zeros(10), labels)
    two_seeds_and_one = (r"^predictions_a has 2 seeds but predictions_b has 1: pass one row per seed for each model, "
                         r"seed i of A trained with the same seed as seed i of B\.$")
    with pytest.raises(ValueError, match=two_seeds_and_one):
        compare_models([np.zeros(10), np.zeros(10)], np.zeros(10), labels)
    with pytest.raises(ValueError, match="at least 2 test labels"):
        compare_models(np.zeros(1), np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError, match=r"one such row per seed; got shape \(2, 5, 2\)"):
        compare_models(np.zeros((2, 5, 2)), np.zeros((2, 10)), labels)


def test_compare_scores_on_correctness_is_compare_models():
    """Per-image correctness (1 right, 0 wrong) as scores: the same difference, intervals and verdict."""
    rng = np.random.default_rng(4)
    labels = np.arange(2000) % 10
    a_rows, b_rows = _runs(labels, [0.62, 0.60, 0.63], rng), _runs(labels, [0.52, 0.54, 0.53], rng)
    models = compare_models(a_rows, b_rows, labels, names=("widened", "naive"))
    scores = compare_scores((np.array(a_rows) == labels).astype(int), (np.array(b_rows) == labels).astype(int),
                            names=("widened", "naive"), what="accuracy")
    assert scores.difference == pytest.approx(models.difference)
    assert scores.interval == models.interval and scores.interval_images_only == models.interval_images_only
    assert scores.mean_a == pytest.approx(models.accuracy_a) and not scores.inconclusive
    assert scores.verdict.startswith(f"accuracy is larger for widened than for naive by {100 * models.difference:.1f}")


def test_compare_scores_on_a_change_per_image():
    """A loses 3 of every 20 images under some change and gains none; B loses 1 and gains 1 of every 20."""
    n = 2000
    index = np.arange(n) % 20
    lost_a = np.where(index < 3, 1, 0)
    lost_b = np.where(index == 0, 1, np.where(index == 10, -1, 0))
    result = compare_scores([lost_a] * 3, [lost_b] * 3, names=("flat", "pooled"), what="accuracy lost")
    assert result.mean_a == pytest.approx([0.15] * 3) and result.mean_b == pytest.approx([0.0] * 3)
    assert result.difference == pytest.approx(0.15) and result.interval[0] > 0.1
    assert result.verdict.startswith("accuracy lost is larger for flat than for pooled by 15.0 points")
    two = compare_scores([lost_a] * 2, [lost_b] * 2)
    assert two.inconclusive and "at least 3 seeds" in two.verdict
    same = compare_scores([lost_a] * 3, [lost_a] * 3)
    assert same.interval == (0.0, 0.0) and "covers zero" in same.verdict
    assert "difference A - B: +0.0 points" in str(same)


def test_compare_scores_refuses_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        compare_scores(np.zeros((3, 10)), np.zeros((2, 10)))
    with pytest.raises(ValueError, match="whole numbers"):
        compare_scores(np.full((3, 10), 0.5), np.zeros((3, 10)))


def test_report_of_two_seeds_shows_every_number_as_computed_by_hand():
    """The report of a comparison built by hand (the numbers need not come from one experiment: this checks
    the report's arithmetic and layout). By hand: mean accuracies (75 + 52) / 2 = 63.5% and (55 + 58) / 2 =
    56.5%; sample standard deviations |75 - 52| / sqrt(2) = 16.3 and |55 - 58| / sqrt(2) = 2.1 points; seed
    differences +20 and -6, mean +7.0 points. Every number is at least 5 points, so that a factor off by 1%
    (101 instead of 100) shows in the first decimal."""
    comparison = Comparison(
        names=("wide", "narrow"), n_images=2000, accuracy_a=[0.75, 0.52], accuracy_b=[0.55, 0.58],
        difference=0.07, interval=(-0.0612, 0.1734), interval_images_only=(0.0523, 0.0871),
        only_a_right=[412, 130], only_b_right=[12, 250], mcnemar_p=[2.5e-07, 0.0123])
    assert comparison.report() == str(comparison) == "\n".join([
        "paired comparison on 2,000 test images, 2 seeds per model (seed i of wide paired with seed i of narrow)",
        "  wide    accuracy 63.5%  (seeds: 75.0, 52.0; sd 16.3)",
        "  narrow  accuracy 56.5%  (seeds: 55.0, 58.0; sd 2.1)",
        "  difference wide - narrow: +7.0 points (per seed: +20.0, -6.0)",
        "    95% interval [-6.1, +17.3] resampling seeds and test images (training and test-set noise)",
        "    95% interval [+5.2, +8.7] resampling test images only (test-set noise alone, for comparison)",
        "  McNemar seed 0: 412 images only wide got right, 12 only narrow; exact p = 2.5e-07",
        "  McNemar seed 1: 130 images only wide got right, 250 only narrow; exact p = 0.0123",
        "  verdict: inconclusive: a verdict needs at least 3 seeds per model, this comparison has 2 (train more "
        "seeds of both); the 95% interval [-6.1, +17.3] points covers zero; the seeds disagree on which model is "
        "better. These runs cannot tell wide and narrow apart.",
    ])


def test_report_of_one_seed_says_it_cannot_show_training_noise():
    comparison = Comparison(
        names=("A", "B"), n_images=500, accuracy_a=[0.80], accuracy_b=[0.68], difference=0.12,
        interval=(0.0832, 0.1561), interval_images_only=(0.0832, 0.1561), only_a_right=[70], only_b_right=[10],
        mcnemar_p=[1.2e-12], confidence=0.9)
    assert comparison.report() == "\n".join([
        "paired comparison on 500 test images, one seed per model",
        "  A  accuracy 80.0%",
        "  B  accuracy 68.0%",
        "  difference A - B: +12.0 points",
        "    90% interval [+8.3, +15.6] resampling test images; one seed cannot show training noise",
        "  McNemar 70 images only A got right, 10 only B; exact p = 1.2e-12",
        "  verdict: inconclusive: a verdict needs at least 3 seeds per model, this comparison has 1 (train more "
        "seeds of both). These runs cannot tell A and B apart.",
    ])


def test_compare_models_keeps_the_confidence_it_was_asked_for():
    rng = np.random.default_rng(7)
    labels = np.arange(1000) % 10
    a_rows, b_rows = _runs(labels, [0.62, 0.60, 0.63], rng), _runs(labels, [0.52, 0.54, 0.53], rng)
    result = compare_models(a_rows, b_rows, labels, confidence=0.9)
    assert result.confidence == 0.9 and "90% interval" in result.report() and "95%" not in result.report()
    assert not result.inconclusive and "(90% interval of A - B over seeds and images" in result.verdict


def test_bootstrap_of_two_images_is_their_exact_resampling_distribution():
    """One seed, two images, A right on the first only: a resample draws each image with probability 1/2, so its
    mean difference is 0, 1/2 or 1 with probabilities 1/4, 1/2, 1/4 (cumulative 25% and 75%). A percentile
    interval at confidence c cuts (1 - c) / 2 from each tail: 95% keeps all three values, (0, 1); 49% cuts
    25.5% from each side, past both atoms' edges, (1/2, 1/2); 50.25% cuts 24.875%, just short of them, (0, 1).
    Four million resamples put the empirical edges within 0.1 point of 25% and 75%."""
    one_seed = np.array([[1, 0]])
    assert two_level_bootstrap(one_seed) == two_level_bootstrap(one_seed, 0.95, 10_000, 0)  # the defaults
    assert two_level_bootstrap(one_seed) == ((0.0, 1.0), (0.0, 1.0))
    assert two_level_bootstrap(one_seed, 0.49, 4_000_000) == ((0.5, 0.5), (0.5, 0.5))
    assert two_level_bootstrap(one_seed, 0.5025, 4_000_000) == ((0.0, 1.0), (0.0, 1.0))


def test_bootstrap_of_a_constant_difference_is_that_constant_in_every_resample():
    """B right and A wrong on every image, for every seed: each resample's mean is exactly -1, so even the
    100% interval (the smallest and the largest resampled mean) is [-1, -1]."""
    every_image_to_b = -np.ones((3, 40), dtype=int)
    assert two_level_bootstrap(every_image_to_b, confidence=1.0, n_resamples=777) == ((-1.0, -1.0), (-1.0, -1.0))


def test_compare_models_defaults_and_smallest_input():
    labels = np.array([3, 7])
    a, b = np.array([3, 7]), np.array([3, 0])  # A right twice, B once
    result = compare_models(a, b, labels)
    assert result.difference == 0.5 and result.only_a_right == [1] and result.only_b_right == [0]
    again = compare_models(a, b, labels, names=("A", "B"), confidence=0.95, n_resamples=10_000, seed=0)
    assert result == again  # the documented defaults


def test_predictions_may_come_as_columns_one_per_seed():
    """A list of (N, 1) columns, one per seed (an argmax with keepdim=True), is read as N predictions per seed."""
    labels = np.arange(6) % 3
    a = [labels.reshape(-1, 1), labels.reshape(-1, 1)]
    b = [np.array([0, 1, 2, 1, 1, 2]).reshape(-1, 1)] * 2
    result = compare_models(a, b, labels)
    assert result.accuracy_a == [1.0, 1.0] and result.accuracy_b == [5 / 6, 5 / 6] and result.only_a_right == [1, 1]


def test_the_refusal_names_the_argument_at_fault():
    labels = np.zeros(10, dtype=int)
    with pytest.raises(ValueError, match=r"^predictions_a must hold one prediction per test label \(10\)"):
        compare_models(np.zeros(9), np.zeros(10), labels)
    with pytest.raises(ValueError, match=r"^predictions_b must hold one prediction per test label \(10\)"):
        compare_models(np.zeros(10), np.zeros(11), labels)


def test_score_report_shows_every_number_as_computed_by_hand():
    """compare_scores' report of a comparison built by hand. By hand: means (15 + 12 + 9) / 3 = +12.0 and
    (2 - 1 + 5) / 3 = +2.0 points; seed differences +13, +13, +4, mean +10.0 points."""
    comparison = ScoreComparison(
        names=("flat", "pooled"), what="accuracy lost", n_images=1500, mean_a=[0.15, 0.12, 0.09],
        mean_b=[0.02, -0.01, 0.05], difference=0.10, interval=(0.031, 0.162), interval_images_only=(0.072, 0.128))
    assert comparison.report() == str(comparison) == "\n".join([
        "paired comparison of accuracy lost on 1,500 test images, 3 seeds per model",
        "  flat    +12.0 points  (seeds: +15.0, +12.0, +9.0)",
        "  pooled  +2.0 points  (seeds: +2.0, -1.0, +5.0)",
        "  difference flat - pooled: +10.0 points (per seed: +13.0, +13.0, +4.0)",
        "    95% interval [+3.1, +16.2] resampling seeds and test images; [+7.2, +12.8] resampling test images only",
        "  verdict: accuracy lost is larger for flat than for pooled by 10.0 points (95% interval of A - B over "
        "seeds and images: [+3.1, +16.2])",
    ])


def test_score_verdicts_name_the_larger_model_or_say_why_not():
    one_seed = ScoreComparison(names=("A", "B"), what="the score", n_images=40, mean_a=[0.3], mean_b=[0.5],
                               difference=-0.2, interval=(-0.25, -0.15), interval_images_only=(-0.25, -0.15),
                               confidence=0.9)
    assert one_seed.n_seeds == 1 and one_seed.seed_differences == pytest.approx([-0.2])
    assert one_seed.report().splitlines()[0] == "paired comparison of the score on 40 test images, 1 seed per model"
    assert one_seed.report().splitlines()[4].startswith("    90% interval [-25.0, -15.0] resampling seeds")
    assert one_seed.verdict == ("inconclusive: a verdict needs at least 3 seeds per model, this comparison has 1 "
                                "(train more seeds of both). These runs cannot tell A and B apart.")
    b_larger = ScoreComparison(names=("A", "B"), what="the score", n_images=40, mean_a=[0.3] * 3, mean_b=[0.5] * 3,
                               difference=-0.2, interval=(-0.25, -0.15), interval_images_only=(-0.25, -0.15))
    assert not b_larger.inconclusive
    assert b_larger.verdict.startswith("the score is larger for B than for A by 20.0 points (95% interval")


def test_compare_scores_defaults_and_what_it_refuses():
    a, b = np.array([1, 1, 0, 1]), np.array([0, 1, 0, 0])
    result = compare_scores(a, b)
    assert (result.names, result.what, result.n_images, result.confidence) == (("A", "B"), "the score", 4, 0.95)
    assert result.mean_a == [0.75] and result.mean_b == [0.25] and result.difference == 0.5
    assert result == compare_scores(a, b, ("A", "B"), "the score", 0.95, 10_000, 0)
    assert result.interval == two_level_bootstrap([a - b])[0]
    spread_a, spread_b = np.random.default_rng(8).integers(0, 2, size=(2, 3, 100))
    chosen = compare_scores(spread_a, spread_b, confidence=0.9, n_resamples=500, seed=3)
    assert chosen.confidence == 0.9 and chosen.report().count("90% interval") == 2
    assert (chosen.interval, chosen.interval_images_only) == two_level_bootstrap(spread_a - spread_b, 0.9, 500, 3)
    assert chosen.interval != compare_scores(spread_a, spread_b, confidence=0.9, n_resamples=500).interval
    assert compare_scores(np.array([1, 0]), np.array([0, 0])).n_images == 2  # two images are enough
    assert compare_scores(np.full((3, 5), 127), np.zeros((3, 5))).difference == 127  # the largest difference
    for bad_a, bad_b in [(np.ones(1), np.ones(1)), (np.ones((2, 2, 2)), np.ones((2, 2, 2)))]:
        with pytest.raises(ValueError, match=r"same shape \(seeds, images\), with at least 2 images; got"):
            compare_scores(bad_a, bad_b)
    whole = (r"^the scores must be whole numbers whose differences lie in -127\.\.127 \(such as 1 = right, 0 = wrong, "
             r"or a change in correctness\); the bootstrap counts them as small integers\.$")
    with pytest.raises(ValueError, match=whole):
        compare_scores(np.full((3, 5), 128), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="whole numbers"):
        compare_scores(np.zeros((3, 5)), np.full((3, 5), 128))


def test_bootstrap_defaults_are_10000_resamples_from_seed_0():
    """On differences with a spread (unlike two images), another seed or one resample more moves the interval."""
    differences = np.random.default_rng(3).integers(-1, 2, size=(3, 200))
    default = two_level_bootstrap(differences)
    assert default == two_level_bootstrap(differences, 0.95, 10_000, 0)
    assert default != two_level_bootstrap(differences, seed=1)
    assert default != two_level_bootstrap(differences, n_resamples=10_001)
