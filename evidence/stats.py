"""Paired comparisons of two entries scored on the same documents.

A leaderboard gap of one point on 500 documents is often noise. Both entries' per-sample
logs (lm-eval's ``samples_<task>_*.jsonl``) hold a value per document for every metric:
a float (``acc``, ``rouge1``) or a ``(gold, pred)`` pair that a corpus-level aggregation
turns into a score (``f1_macro``, ``mcc``). Comparisons resample *documents*, keeping
each document's two values together:

- :func:`paired_bootstrap`: a percentile confidence interval of the score difference
  (Koehn 2004; Efron & Tibshirani ch. 13), seeded;
- :func:`paired_permutation_test`: a two-sided p-value by swapping the two entries'
  values per document (exact for up to 16 documents, Monte Carlo above).
"""
from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evidence.result_files import sample_rows, samples_file
from fin_tasks.common.metrics import (CORPUS_AGGREGATIONS, aggregation_of, confusion_matrices, document_mean,
                                      from_confusion)

Aggregate = Callable[[Sequence[Any]], float]
EXACT_UP_TO = 16


def mean(values: Sequence[Any]) -> float:
    return document_mean(values)


@dataclass(frozen=True)
class Interval:
    estimate: float  # score(a) - score(b) on all documents
    low: float
    high: float
    level: float
    resamples: int


def _check_paired(a: Sequence[Any], b: Sequence[Any]) -> None:
    if len(a) != len(b):
        raise ValueError(f"paired comparison needs the same documents: {len(a)} vs {len(b)} values")
    if not a:
        raise ValueError("paired comparison needs at least one document")


def draw_indices(n: int, resamples: int, seed: Any) -> np.ndarray:
    """``resamples`` draws of ``n`` document indices with replacement, one row per draw."""
    return np.random.default_rng(seed).integers(0, n, (resamples, n))


def task_draws(task: str, n: int, resamples: int, seed: int = 0) -> np.ndarray:
    """The document draws of one task, seeded by its name: every table row, claim, board
    interval and drill-down that resamples this task's documents redraws the same ones."""
    return draw_indices(n, resamples, [seed, zlib.crc32(task.encode())])


def replicates(values: Sequence[Any], aggregate: Aggregate, draws: np.ndarray) -> tuple[float, np.ndarray]:
    """The one bootstrap engine: the score on all documents, and on each row of ``draws``.

    Entries scored on the same documents and given the same ``draws`` are resampled
    together, so their differences are paired (a study table's rows share one draw per
    task; :func:`paired_bootstrap` is the two-entry case)."""
    if aggregate is mean or aggregate is document_mean:
        array = np.asarray(values, dtype=float)
        return float(array.mean()), array[draws].mean(axis=1)
    metric = next((name for name, fn in CORPUS_AGGREGATIONS.items() if fn is aggregate), None)
    if metric is not None and len(values) and all(isinstance(v, (tuple, list)) and len(v) == 2 for v in values):
        # (gold, pred) pairs: every resample's confusion matrix at once, not one sklearn call each.
        pairs = np.asarray(values, dtype=np.int64)
        golds, preds = pairs[:, 0], pairs[:, 1]
        resampled = from_confusion(metric, confusion_matrices(golds[draws], preds[draws]))
        return aggregate(values), resampled
    return aggregate(values), np.array([aggregate([values[j] for j in row]) for row in draws])


def percentile_interval(reps: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    tail = (1 - level) / 2
    low, high = np.quantile(reps, [tail, 1 - tail])
    return float(low), float(high)


def paired_bootstrap(
    a: Sequence[Any], b: Sequence[Any], aggregate: Aggregate = mean,
    resamples: int = 2000, level: float = 0.95, seed: int = 0,
) -> Interval:
    """Percentile interval of ``aggregate(a) - aggregate(b)``, resampling documents jointly."""
    _check_paired(a, b)
    draws = draw_indices(len(a), resamples, seed)
    point_a, reps_a = replicates(a, aggregate, draws)
    point_b, reps_b = replicates(b, aggregate, draws)
    low, high = percentile_interval(reps_a - reps_b, level)
    return Interval(point_a - point_b, low, high, level, resamples)


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "the paired difference is 0": twice the smaller share of
    resamples on either side of 0 (each share counted with the observed sample, so never 0)."""
    finite = differences[np.isfinite(differences)]
    if not len(finite):
        return 1.0
    below = (1 + np.sum(finite <= 0)) / (len(finite) + 1)
    above = (1 + np.sum(finite >= 0)) / (len(finite) + 1)
    return float(min(1.0, 2 * min(below, above)))


def paired_permutation_test(
    a: Sequence[Any], b: Sequence[Any], aggregate: Aggregate = mean,
    resamples: int = 5000, seed: int = 0,
) -> float:
    """Two-sided p-value of ``aggregate(a) - aggregate(b)`` under "the labels a/b are exchangeable".

    Each document's two values are swapped or not; the p-value is the share of swap
    patterns whose difference is at least as large in size as the observed one (the
    observed pattern included, so it is never 0).
    """
    _check_paired(a, b)
    observed = abs(aggregate(a) - aggregate(b))
    n = len(a)

    def diff(swaps: Sequence[bool]) -> float:
        x = [bj if s else aj for aj, bj, s in zip(a, b, swaps)]
        y = [aj if s else bj for aj, bj, s in zip(a, b, swaps)]
        return abs(aggregate(x) - aggregate(y))

    tolerance = 1e-12 * max(1.0, observed)
    if n <= EXACT_UP_TO:
        patterns = list(itertools.product((False, True), repeat=n))
        return sum(diff(p) >= observed - tolerance for p in patterns) / len(patterns)
    rng = np.random.default_rng(seed)
    hits = sum(diff(rng.random(n) < 0.5) >= observed - tolerance for _ in range(resamples))
    return (hits + 1) / (resamples + 1)


def read_samples(path: Path, metric: str) -> dict[int, Any]:
    """``doc_id -> value`` of one metric from an lm-eval per-sample log (JSONL)."""
    values: dict[int, Any] = {}
    for lineno, row in sample_rows(path):
        try:
            value = row[metric]
            doc_id = int(row["doc_id"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}:{lineno}: not an lm-eval sample with {metric!r} ({err})") from None
        if doc_id in values:
            raise ValueError(f"{path}:{lineno}: doc_id {doc_id} appears twice")
        values[doc_id] = tuple(value) if isinstance(value, list) else value
    return values


def align(a: dict[int, Any], b: dict[int, Any], names: tuple[str, str] = ("a", "b")) -> tuple[list, list]:
    """The two entries' values on the same documents, in doc order; refuse different doc sets."""
    if a.keys() != b.keys():
        only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
        raise ValueError(
            f"{names[0]} and {names[1]} were not scored on the same documents "
            f"(only in {names[0]}: {only_a[:5]}{'...' if len(only_a) > 5 else ''}; "
            f"only in {names[1]}: {only_b[:5]}{'...' if len(only_b) > 5 else ''})")
    docs = sorted(a)
    return [a[d] for d in docs], [b[d] for d in docs]


def compare(
    dir_a: Path, dir_b: Path, task: str, metric: str,
    resamples: int = 2000, level: float = 0.95, seed: int = 0,
) -> dict[str, Any]:
    """Score difference of two result folders on one task, with interval and p-value."""
    a, b = align(read_samples(samples_file(dir_a, task), metric),
                 read_samples(samples_file(dir_b, task), metric), (str(dir_a), str(dir_b)))
    aggregate = aggregation_of(metric)
    interval = paired_bootstrap(a, b, aggregate, resamples, level, seed)
    return {
        "task": task, "metric": metric, "docs": len(a),
        "a": aggregate(a), "b": aggregate(b), "a - b": interval.estimate,
        f"{level:.0%} CI low": interval.low, f"{level:.0%} CI high": interval.high,
        "p (paired permutation)": paired_permutation_test(a, b, aggregate, seed=seed),
    }


# --- Verdicts: variance components, null-centred tests, power ---------------------------
#
# A study's contrast (treatment row minus control row, each the mean over its training seeds
# of a score on the same documents) has two sources of noise: the documents (shared by every
# seed and row, so resampled jointly) and the training seeds (independent runs). Its variance
# is estimated as the sum of both components (Miller 2024, "Adding Error Bars to Evals"; the
# random-effects decomposition of a seeds x documents design):
#
#   Var = V_doc + sum over rows of max(0, s_r^2 - i_r) / S_r
#
# V_doc from the paired document bootstrap of the seed-averaged contrast (times n/(n-1), the
# bootstrap's small-sample bias); s_r^2 the between-seed variance of row r's score, S_r its
# seed count (a vanilla row has no training noise); i_r the part of s_r^2 that is seed x
# document interaction, which V_doc already holds: from the bootstrap, (mean over seeds of
# each seed's own document variance - the seed average's) x S_r / (S_r - 1). Without that
# correction the interaction is counted twice and the test is conservative. The test is a t-test on
# estimate / sqrt(Var) with Welch-Satterthwaite degrees of freedom, so three seeds (2 degrees of
# freedom on that component) widen the interval as they should, and under the null the
# p-value is uniform (tests/test_inference.py checks both by simulation). Nothing is clipped:
# a percentile interval of clipped replicates is biased upward near the floor.


SEED_SHARE_CONSERVATIVE = 0.25  # above this share of the variance, the seeds' own df is used


@dataclass(frozen=True)
class Estimate:
    """A score or a contrast with its two variance components."""

    point: float
    doc_var: float  # variance over documents (paired bootstrap, small-sample corrected)
    seed_var: float  # variance over training seeds (sum over rows of s_r^2 / S_r)
    df: float  # Welch-Satterthwaite degrees of freedom
    seeds: tuple[int, ...] = ()  # training seeds of each row that has training noise
    unestimated: int = 0  # rows trained with one seed: their training noise is not in seed_var
    seed_df: float | None = None  # the fewest seeds of a trained row, less one (None: no seed component)
    seed_spread: float = 0.0  # sum over trained rows of s_r^2 / S_r before the interaction is taken out

    @property
    def se(self) -> float:
        return float(np.sqrt(self.doc_var + self.seed_var))

    @property
    def conservative_df(self) -> float:
        """Welch-Satterthwaite's df, unless the seed component is more than
        :data:`SEED_SHARE_CONSERVATIVE` of the variance: then the seed component's own df
        (seeds - 1). With three seeds carrying most of the variance, Satterthwaite's df rejected
        a true null 12% of the time at .05 (tests/test_inference.py measures both)."""
        # The share is read on the seeds' raw spread: the interaction-corrected component is
        # often estimated at 0 from three seeds when the truth is large, and a design that then
        # takes the documents' df rejects a true null far too often.
        total = self.doc_var + self.seed_spread
        if self.seed_df and total > 0 and self.seed_spread / total > SEED_SHARE_CONSERVATIVE:
            return min(self.df, self.seed_df)
        return self.df

    def quantile(self, level: float, df: float | None = None) -> float:
        from scipy.stats import t

        return float(t.ppf(1 - (1 - level) / 2, self.df if df is None else df))

    def interval(self, level: float = 0.95, df: float | None = None) -> tuple[float, float]:
        half = self.quantile(level, df) * self.se
        return self.point - half, self.point + half

    def p_value(self, df: float | None = None) -> float:
        """Two-sided p-value of "the true value is 0", from the t distribution of point / se
        (``df``: Welch-Satterthwaite's unless given, e.g. :attr:`conservative_df`)."""
        from scipy.stats import t

        if self.se == 0:
            return 1.0 if self.point == 0 else 0.0
        return float(2 * t.sf(abs(self.point) / self.se, self.df if df is None else df))


@dataclass(frozen=True)
class SeedScores:
    """One trained row's score per training seed, and the seed x document interaction part of
    their spread (0 when not known), for :func:`seed_component`."""

    points: np.ndarray
    interaction: float = 0.0


def interaction(seed_doc_vars: Sequence[float], mean_doc_var: float) -> float:
    """The seed x document interaction variance of a row's seed scores: each seed's own document
    variance exceeds the seed average's by (S - 1) / S of it."""
    seeds = len(seed_doc_vars)
    if seeds < 2:
        return 0.0
    return max(0.0, (float(np.mean(seed_doc_vars)) - mean_doc_var) * seeds / (seeds - 1))


def seed_component(per_seed: Sequence[SeedScores]) -> tuple[float, list[tuple[float, int]]]:
    """Sum over rows of max(0, s_r^2 - i_r) / S_r, and each such row's (part, S_r - 1) for the
    degrees of freedom. A row with one seed contributes nothing (none can be estimated from it)."""
    total, parts = 0.0, []
    for row in per_seed:
        points = np.asarray(row.points, dtype=float)
        if len(points) > 1:
            part = max(0.0, float(points.var(ddof=1)) - row.interaction) / len(points)
            total += part
            parts.append((part, len(points) - 1))
    return total, parts


def components(point: float, doc_reps: np.ndarray, per_seed: Sequence[SeedScores], docs: int,
               seeds: Sequence[int] = ()) -> Estimate:
    """An :class:`Estimate` from the document replicates of the seed-averaged score (or
    contrast) and the per-seed scores of each row that was trained (a vanilla row has no
    training noise and is left out; a trained row with one seed counts as ``unestimated``).
    ``docs``: documents per task (the fewest), for the bootstrap's n/(n-1) correction and the
    document component's degrees of freedom."""
    reps = np.asarray(doc_reps, dtype=float)
    doc_var = float(reps.var(ddof=1)) * docs / max(docs - 1, 1) if len(reps) > 1 else 0.0
    seed_var, parts = seed_component(per_seed)
    doc_df = max(docs - 1, 1)
    denominator = (doc_var ** 2 / doc_df if doc_var else 0.0) + sum(v ** 2 / d for v, d in parts)
    total = doc_var + seed_var
    df = total ** 2 / denominator if denominator > 0 else float(doc_df)
    unestimated = sum(1 for row in per_seed if len(row.points) == 1)
    seed_df = float(min(d for _, d in parts)) if parts else None
    spread = sum(float(np.var(row.points, ddof=1)) / len(row.points) for row in per_seed if len(row.points) > 1)
    return Estimate(float(point), doc_var, seed_var, float(df), tuple(seeds), unestimated, seed_df, spread)


def power_multiplier(alpha: float, power: float, df: float) -> float:
    """t(1 - alpha/2, df) + t(power, df): the minimum detectable effect is this times the
    standard error the test faces under the alternative."""
    from scipy.stats import t

    return float(t.ppf(1 - alpha / 2, df) + t.ppf(power, df))


def holm(p_values: Sequence[float], alpha: float = 0.05) -> list[float]:
    """Holm's step-down adjusted p-values (statsmodels' ``multipletests``): a claim is decided
    at family-wise level ``alpha`` when its adjusted p-value is at most ``alpha``."""
    if not p_values:
        return []
    import gc

    from statsmodels.stats.multitest import multipletests

    # statsmodels' Holm branch calls gc.collect(): 0.2-0.35 s each time in a process holding
    # torch and transformers. Objects frozen beforehand are not traversed, so it is cheap.
    gc.freeze()
    try:
        return [float(p) for p in multipletests(list(p_values), alpha=alpha, method="holm")[1]]
    finally:
        gc.unfreeze()


def documents_needed(documents: int, k: float, doc_var: float, seed_var: float, effect: float) -> int | None:
    """Documents per task at which ``k * SE`` reaches ``effect`` with the seeds kept: the document
    component shrinks as 1/n, the seed component does not. None when no number of documents is
    enough (seed noise alone is too large) or there is no effect to reach."""
    room = (effect / k) ** 2 - seed_var if effect and k > 0 else 0.0
    if room <= 0 or not np.isfinite(doc_var):
        return None
    return max(1, int(np.ceil(documents * doc_var / room)))


def seeds_needed(seeds: int, k: float, doc_var: float, seed_var: float, effect: float) -> int | None:
    """Training seeds at which ``k * SE`` reaches ``effect`` with the documents kept: the seed
    component shrinks as 1/S, the document component (shared by every seed) does not. None when
    no number of seeds is enough, or the seed component was not estimated."""
    room = (effect / k) ** 2 - doc_var if effect and k > 0 else 0.0
    if room <= 0 or seed_var <= 0:
        return None
    return max(2, int(np.ceil(seeds * seed_var / room)))
