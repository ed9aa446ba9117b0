"""Honest comparisons of two classifiers on the same test images, over several training seeds.

Two things make a measured accuracy difference noisy:

* **test-set noise**: another 2,000 test images would give other accuracies;
* **training noise**: the same network trained with another seed (other initial weights, another
  order of batches) lands a few points higher or lower.

:func:`compare_models` sees both. Its 95% interval of the accuracy difference A - B comes from a
two-level bootstrap: each resample draws seeds with replacement (training noise), then test images
with replacement (test-set noise), and averages the drawn seeds' score differences on the drawn
images. It also reports McNemar's exact test per seed (``scipy.stats.binomtest`` on the images
where the two disagree) and the spread of the accuracies across seeds.

The verdict names a winner only with at least :data:`MIN_SEEDS` seeds per model, an interval that
excludes zero, and seeds that agree on the sign; otherwise it says "inconclusive" and why.
"""
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Fewest seeds per model from which :func:`compare_models` draws a verdict: with two, the spread of
#: training runs rests on one difference, and a bootstrap over two seeds cannot see it.
MIN_SEEDS = 3


def _as_seed_matrix(predictions, n, name):
    array = np.asarray([np.asarray(p).ravel() for p in predictions] if isinstance(predictions, (list, tuple))
                       else np.asarray(predictions))
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != n:
        raise ValueError(
            f"{name} must hold one prediction per test label ({n}), or one such row per seed; got shape "
            f"{array.shape}. Pass evaluate(...)['predictions'] (or a list of them, one per seed).")
    return array


def two_level_bootstrap(differences, confidence=0.95, n_resamples=10_000, seed=0):
    """Percentile intervals of the mean of ``differences`` (seeds x images), from one set of resamples.

    Returns ``(interval, images_only)``. ``interval`` resamples seeds with replacement, then test
    images: training and test-set noise. Every seed answered the same images, so one draw of images
    serves all the drawn seeds (seeds and images are crossed, not nested: the "pigeonhole
    bootstrap", Owen 2007, Ann. Appl. Stat. 1(2), which errs on the wide side). ``images_only``
    keeps every seed once and resamples images alone: test-set noise only.
    """
    differences = np.asarray(differences, dtype=np.int8)
    n_seeds, n_images = differences.shape
    rng = np.random.default_rng(seed)
    both, images_only = np.empty(n_resamples), np.empty(n_resamples)
    chunk = max(1, 5_000_000 // n_images)  # resamples drawn at once: about 40 MB of image indices
    for start in range(0, n_resamples, chunk):
        k = min(chunk, n_resamples - start)
        images = rng.integers(0, n_images, size=(k, n_images))
        per_seed = np.stack([row.take(images).sum(axis=1, dtype=np.int64) for row in differences], axis=1) / n_images
        seeds = rng.integers(0, n_seeds, size=(k, n_seeds))
        both[start:start + k] = np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)
        images_only[start:start + k] = per_seed.mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    return tuple(tuple(float(x) for x in np.percentile(means, [tail, 100 - tail])) for means in (both, images_only))


@dataclass
class Comparison:
    """What :func:`compare_models` found. Accuracies and differences are fractions (0.01 = 1 point)."""

    names: tuple
    n_images: int
    accuracy_a: list          # one per seed
    accuracy_b: list
    difference: float         # mean accuracy A - B, over seeds
    interval: tuple           # 95% interval of the difference: seeds and test images resampled
    interval_images_only: tuple  # the same with the seeds held fixed: test-set noise alone
    only_a_right: list        # per seed: images A got right and B wrong
    only_b_right: list
    mcnemar_p: list           # per seed: McNemar's exact two-sided p-value
    confidence: float = 0.95

    @property
    def n_seeds(self):
        return len(self.accuracy_a)

    @property
    def seed_differences(self):
        return [a - b for a, b in zip(self.accuracy_a, self.accuracy_b)]

    def reasons(self):
        """Why no winner can be named (an empty list when one can)."""
        low, high = self.interval
        why = []
        if self.n_seeds < MIN_SEEDS:
            why.append(f"a verdict needs at least {MIN_SEEDS} seeds per model, this comparison has {self.n_seeds} "
                       "(train more seeds of both)")
        if low <= 0 <= high:
            why.append(f"the {self.confidence:.0%} interval [{100 * low:+.1f}, {100 * high:+.1f}] points covers zero")
        if len({np.sign(d) for d in self.seed_differences}) > 1:
            why.append("the seeds disagree on which model is better")
        return why

    @property
    def inconclusive(self):
        """True unless there are >= MIN_SEEDS seeds, the interval excludes zero and every seed agrees on the sign."""
        return bool(self.reasons())

    @property
    def verdict(self):
        a, b = self.names
        if self.inconclusive:
            return f"inconclusive: {'; '.join(self.reasons())}. These runs cannot tell {a} and {b} apart."
        better, worse = (a, b) if self.difference > 0 else (b, a)
        return (f"{better} is more accurate than {worse} by {100 * abs(self.difference):.1f} points "
                f"({self.confidence:.0%} interval of A - B over seeds and images: [{100 * self.interval[0]:+.1f}, "
                f"{100 * self.interval[1]:+.1f}])")

    def report(self):
        """A few readable lines: accuracies per seed, the difference with both intervals, McNemar, the verdict."""
        a, b = self.names
        width = max(len(a), len(b))
        seeds = (f"{self.n_seeds} seeds per model (seed i of {a} paired with seed i of {b})" if self.n_seeds > 1
                 else "one seed per model")
        lines = [f"paired comparison on {self.n_images:,} test images, {seeds}"]
        for name, accs in ((a, self.accuracy_a), (b, self.accuracy_b)):
            spread = (f"  (seeds: {', '.join(f'{100 * x:.1f}' for x in accs)}; sd {100 * np.std(accs, ddof=1):.1f})"
                      if len(accs) > 1 else "")
            lines.append(f"  {name:<{width}}  accuracy {100 * np.mean(accs):.1f}%{spread}")
        per_seed = (f" (per seed: {', '.join(f'{100 * d:+.1f}' for d in self.seed_differences)})"
                    if self.n_seeds > 1 else "")
        lines.append(f"  difference {a} - {b}: {100 * self.difference:+.1f} points{per_seed}")
        level = f"{self.confidence:.0%}"
        (low, high), (img_low, img_high) = self.interval, self.interval_images_only
        lines.append(f"    {level} interval [{100 * low:+.1f}, {100 * high:+.1f}] resampling seeds and test images "
                     "(training and test-set noise)" if self.n_seeds > 1 else
                     f"    {level} interval [{100 * low:+.1f}, {100 * high:+.1f}] resampling test images; one seed "
                     "cannot show training noise")
        if self.n_seeds > 1:
            lines.append(f"    {level} interval [{100 * img_low:+.1f}, {100 * img_high:+.1f}] resampling test images "
                         "only (test-set noise alone, for comparison)")
        for seed, (n_a, n_b, p) in enumerate(zip(self.only_a_right, self.only_b_right, self.mcnemar_p)):
            label = f"seed {seed}: " if self.n_seeds > 1 else ""
            lines.append(f"  McNemar {label}{n_a} images only {a} got right, {n_b} only {b}; exact p = {p:.3g}")
        lines.append(f"  verdict: {self.verdict}")
        return "\n".join(lines)

    def __str__(self):
        return self.report()


def mcnemar_exact(only_a_right, only_b_right):
    """Two-sided exact McNemar p-value: is a disagreement as likely to favour A as B?"""
    n = only_a_right + only_b_right
    return 1.0 if n == 0 else stats.binomtest(only_a_right, n, 0.5).pvalue


def compare_models(predictions_a, predictions_b, labels, names=("A", "B"), confidence=0.95, n_resamples=10_000,
                   seed=0):
    """Compare two classifiers on the same test images, paired, over one or more training seeds.

    Args:
        predictions_a, predictions_b: predicted class per test image (length N), or a list of such
            arrays, one per training seed. Seed i of A is paired with seed i of B: train both with the
            same seed, so that they share what a seed decides (data order, the initial weights of
            shared parts). Resampling those pairs is right whether or not the pairing made the two
            runs alike: pairs of independent runs are still independent pairs, and when the shared seed
            does make them alike, the interval is narrower because of it, as it should be.
        labels: the true class per test image (length N), in the same order.
        names: what to call A and B in the report.
        seed: seeds the bootstrap; the same seed gives the same interval.
    Returns a :class:`Comparison`; ``print()`` it for the report, or read ``.verdict``, ``.interval``,
    ``.inconclusive``. With fewer than :data:`MIN_SEEDS` seeds it reports the numbers and says
    "inconclusive".
    """
    labels = np.asarray(labels).ravel()
    n = len(labels)
    if n < 2:
        raise ValueError(f"need at least 2 test labels to compare models, got {n}.")
    a = _as_seed_matrix(predictions_a, n, "predictions_a") == labels
    b = _as_seed_matrix(predictions_b, n, "predictions_b") == labels
    if len(a) != len(b):
        raise ValueError(f"predictions_a has {len(a)} seeds but predictions_b has {len(b)}: pass one row per seed "
                         "for each model, seed i of A trained with the same seed as seed i of B.")
    differences = a.astype(np.int8) - b   # (seeds, images): +1 only A right, -1 only B right, 0 both or neither
    interval, images_only = two_level_bootstrap(differences, confidence, n_resamples, seed)
    only_a = [int((sa & ~sb).sum()) for sa, sb in zip(a, b)]
    only_b = [int((~sa & sb).sum()) for sa, sb in zip(a, b)]
    return Comparison(
        names=tuple(names), n_images=n, accuracy_a=a.mean(1).tolist(), accuracy_b=b.mean(1).tolist(),
        difference=float(differences.mean()), interval=interval, interval_images_only=images_only,
        only_a_right=only_a, only_b_right=only_b, mcnemar_p=[mcnemar_exact(x, y) for x, y in zip(only_a, only_b)],
        confidence=confidence)


@dataclass
class ScoreComparison:
    """What :func:`compare_scores` found. Means and differences are fractions (0.01 = 1 point)."""

    names: tuple
    what: str                 # what the score measures, for the report
    n_images: int
    mean_a: list              # one per seed: the mean score over the images
    mean_b: list
    difference: float         # mean score A - B, over seeds and images
    interval: tuple           # seeds and test images resampled
    interval_images_only: tuple
    confidence: float = 0.95

    @property
    def n_seeds(self):
        return len(self.mean_a)

    @property
    def seed_differences(self):
        return [a - b for a, b in zip(self.mean_a, self.mean_b)]

    reasons = Comparison.reasons          # the same rules as compare_models' verdicts
    inconclusive = Comparison.inconclusive

    @property
    def verdict(self):
        a, b = self.names
        if self.inconclusive:
            return f"inconclusive: {'; '.join(self.reasons())}. These runs cannot tell {a} and {b} apart."
        larger, smaller = (a, b) if self.difference > 0 else (b, a)
        return (f"{self.what} is larger for {larger} than for {smaller} by {100 * abs(self.difference):.1f} points "
                f"({self.confidence:.0%} interval of A - B over seeds and images: [{100 * self.interval[0]:+.1f}, "
                f"{100 * self.interval[1]:+.1f}])")

    def report(self):
        a, b = self.names
        width = max(len(a), len(b))
        seeds = f"{self.n_seeds} seed{'s' if self.n_seeds != 1 else ''} per model"
        lines = [f"paired comparison of {self.what} on {self.n_images:,} test images, {seeds}"]
        for name, means in ((a, self.mean_a), (b, self.mean_b)):
            lines.append(f"  {name:<{width}}  {100 * np.mean(means):+.1f} points  "
                         f"(seeds: {', '.join(f'{100 * x:+.1f}' for x in means)})")
        lines.append(f"  difference {a} - {b}: {100 * self.difference:+.1f} points "
                     f"(per seed: {', '.join(f'{100 * d:+.1f}' for d in self.seed_differences)})")
        (low, high), (img_low, img_high) = self.interval, self.interval_images_only
        lines.append(f"    {self.confidence:.0%} interval [{100 * low:+.1f}, {100 * high:+.1f}] resampling seeds and "
                     f"test images; [{100 * img_low:+.1f}, {100 * img_high:+.1f}] resampling test images only")
        lines.append(f"  verdict: {self.verdict}")
        return "\n".join(lines)

    def __str__(self):
        return self.report()


def compare_scores(scores_a, scores_b, names=("A", "B"), what="the score", confidence=0.95, n_resamples=10_000,
                   seed=0):
    """Compare two models' per-image scores, paired by seed and image, with :func:`compare_models`' bootstrap.

    For a question about each test image that accuracy does not ask: ``scores_a[s, i]`` is a whole
    number for seed s and image i, such as the change in correctness under a shift (1 if the image
    was right before and wrong after, -1 the other way round, 0 if unchanged). The difference of the
    means, A - B, gets the same two-level bootstrap interval (seeds, then images) and the same
    verdict rules as :func:`compare_models`; means are reported in points (100 x the mean).
    ``what`` names the score in the report ("accuracy lost at 4 px").
    """
    a, b = (np.asarray(s) for s in (scores_a, scores_b))
    a, b = (s[None, :] if s.ndim == 1 else s for s in (a, b))
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] < 2:
        raise ValueError(f"scores_a and scores_b must have the same shape (seeds, images), with at least 2 images; "
                         f"got {a.shape} and {b.shape}.")
    differences = a - b
    if not np.array_equal(differences, np.round(differences)) or np.abs(differences).max(initial=0) > 127:
        raise ValueError("the scores must be whole numbers whose differences lie in -127..127 (such as 1 = right, "
                         "0 = wrong, or a change in correctness); the bootstrap counts them as small integers.")
    interval, images_only = two_level_bootstrap(differences, confidence, n_resamples, seed)
    return ScoreComparison(
        names=tuple(names), what=what, n_images=a.shape[1], mean_a=a.mean(1).tolist(), mean_b=b.mean(1).tolist(),
        difference=float(differences.mean()), interval=interval, interval_images_only=images_only,
        confidence=confidence)
