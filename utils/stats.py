"""Honest comparisons of two classifiers on the same test images.

Two models evaluated on the same test set make *paired* predictions: for every image we know
whether A was right and whether B was right. :func:`compare_models` uses that pairing:

* the accuracy difference A - B with a 95% interval from a paired bootstrap over test images
  (``scipy.stats.bootstrap`` on each image's score difference: resampling images keeps each
  image's two answers together);
* McNemar's exact test on the images where the two disagree (``scipy.stats.binomtest``: if the
  models were equally good, each disagreement would be a coin flip);
* with several seeds per model, each seed's accuracy and the spread across seeds.

The verdict says "inconclusive" whenever the interval covers zero, or the seeds disagree on
which model is better.
"""
from dataclasses import dataclass

import numpy as np
from scipy import stats


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


@dataclass
class Comparison:
    """What :func:`compare_models` found. Accuracies and differences are fractions (0.01 = 1 point)."""

    names: tuple
    n_images: int
    accuracy_a: list          # one per seed
    accuracy_b: list
    difference: float         # mean accuracy A - B, over seeds
    interval: tuple           # 95% paired-bootstrap interval of the difference (over test images)
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

    @property
    def inconclusive(self):
        """True when the interval covers zero or the seeds disagree on the sign of the difference."""
        low, high = self.interval
        signs = {np.sign(d) for d in self.seed_differences}
        return low <= 0 <= high or len(signs) > 1

    @property
    def verdict(self):
        a, b = self.names
        if self.inconclusive:
            low, high = self.interval
            why = (f"the {self.confidence:.0%} interval [{100 * low:+.1f}, {100 * high:+.1f}] points covers zero"
                   if low <= 0 <= high else "the seeds disagree on the sign")
            return f"inconclusive: {why}; this test set cannot tell {a} and {b} apart"
        better, worse = (a, b) if self.difference > 0 else (b, a)
        return (f"{better} is more accurate than {worse} by {100 * abs(self.difference):.1f} points "
                f"({self.confidence:.0%} interval of A - B: [{100 * self.interval[0]:+.1f}, "
                f"{100 * self.interval[1]:+.1f}])")

    def report(self):
        """A few readable lines: accuracies, the difference with its interval, McNemar, the verdict."""
        a, b = self.names
        width = max(len(a), len(b))
        lines = [f"paired comparison on {self.n_images:,} test images"
                 + (f", {self.n_seeds} seeds per model" if self.n_seeds > 1 else ", one seed per model")]
        for name, accs in ((a, self.accuracy_a), (b, self.accuracy_b)):
            spread = (f"  (seeds: {', '.join(f'{100 * x:.1f}' for x in accs)}; sd {100 * np.std(accs, ddof=1):.1f})"
                      if len(accs) > 1 else "")
            lines.append(f"  {name:<{width}}  accuracy {100 * np.mean(accs):.1f}%{spread}")
        lines.append(f"  difference {a} - {b}: {100 * self.difference:+.1f} points, {self.confidence:.0%} interval "
                     f"[{100 * self.interval[0]:+.1f}, {100 * self.interval[1]:+.1f}] (paired bootstrap over images)")
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
    """Compare two classifiers' predictions on the same test images, paired.

    Args:
        predictions_a, predictions_b: predicted class per test image (length N), or a list of such
            arrays, one per seed (seed i of A is paired with seed i of B).
        labels: the true class per test image (length N), in the same order.
        names: what to call A and B in the report.
    Returns a :class:`Comparison`; ``print()`` it for the report, or read ``.verdict``.
    """
    labels = np.asarray(labels).ravel()
    n = len(labels)
    if n < 2:
        raise ValueError(f"need at least 2 test labels to compare models, got {n}.")
    a = _as_seed_matrix(predictions_a, n, "predictions_a") == labels
    b = _as_seed_matrix(predictions_b, n, "predictions_b") == labels
    if len(a) != len(b):
        raise ValueError(f"predictions_a has {len(a)} seeds but predictions_b has {len(b)}: pair them seed by seed.")
    per_image = a.mean(0) - b.mean(0)  # each image's score difference, averaged over seeds
    if np.all(per_image == per_image[0]):
        interval = (float(per_image[0]), float(per_image[0]))  # no variation to resample
    else:
        result = stats.bootstrap((per_image,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                                 method="percentile", rng=np.random.default_rng(seed))
        interval = (float(result.confidence_interval.low), float(result.confidence_interval.high))
    only_a = [int((sa & ~sb).sum()) for sa, sb in zip(a, b)]
    only_b = [int((~sa & sb).sum()) for sa, sb in zip(a, b)]
    return Comparison(
        names=tuple(names), n_images=n, accuracy_a=a.mean(1).tolist(), accuracy_b=b.mean(1).tolist(),
        difference=float(per_image.mean()), interval=interval, only_a_right=only_a, only_b_right=only_b,
        mcnemar_p=[mcnemar_exact(x, y) for x, y in zip(only_a, only_b)], confidence=confidence)
