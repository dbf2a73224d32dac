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
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fin_tasks.common.metrics import (CORPUS_AGGREGATIONS, aggregation_of, confusion_matrices, document_mean,
                                      from_confusion)
from harness.result_files import samples_file

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
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                value = row[metric]
                doc_id = int(row["doc_id"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
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


# --- Verdicts: two-level replicates, p-values, Holm, power -------------------------------


def seed_draws(seeds: int, resamples: int, seed: Any) -> np.ndarray:
    """``resamples`` draws of ``seeds`` training-seed indices with replacement (the outer level
    of a two-level bootstrap: training runs first, then documents within each)."""
    return np.random.default_rng(seed).integers(0, seeds, (resamples, seeds))


def two_level(points: Sequence[float], reps: Sequence[np.ndarray], draws: np.ndarray | None) -> tuple[float, np.ndarray]:
    """One score per training seed (``points``) with its document replicates (``reps``) into
    the mean over seeds and its two-level replicates: replicate ``b`` averages, over the seeds
    drawn in ``draws[b]``, each seed's ``b``-th document replicate. With one seed (or no
    ``draws``) it is that seed's replicates, and the interval covers documents only."""
    stacked = np.stack([np.asarray(r, dtype=float) for r in reps])
    point = float(np.mean(points))
    if len(stacked) == 1 or draws is None:
        return point, stacked.mean(axis=0)
    if draws.shape[1] != len(stacked):
        raise ValueError(f"seed draws are over {draws.shape[1]} seeds, but {len(stacked)} were given")
    columns = np.arange(stacked.shape[1])[:, None]
    return point, stacked[draws, columns].mean(axis=1)


def bootstrap_p_value(reps: np.ndarray) -> float:
    """Two-sided p-value of "the difference is 0" from its bootstrap replicates: twice the
    smaller share of replicates on either side of 0 (with the +1 of a Monte Carlo p-value,
    so it is never 0)."""
    reps = np.asarray(reps, dtype=float)
    below, above = int((reps <= 0).sum()), int((reps >= 0).sum())
    return float(min(1.0, 2 * (min(below, above) + 1) / (len(reps) + 1)))


def holm(p_values: Sequence[float], alpha: float = 0.05) -> list[float]:
    """Holm's step-down adjusted p-values (statsmodels' ``multipletests``): a claim is decided
    at family-wise level ``alpha`` when its adjusted p-value is at most ``alpha``."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(p_values), alpha=alpha, method="holm")[1]]


def minimum_detectable_effect(standard_error: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference a two-sided test at level ``alpha`` detects with
    probability ``power``: ``(z(1 - alpha/2) + z(power)) * SE`` (normal approximation; SE is
    the bootstrap standard deviation of the paired difference)."""
    from scipy.stats import norm

    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * standard_error)


def documents_needed(documents: int, mde: float, effect: float) -> int | None:
    """Documents per task for the MDE to reach ``effect``: the standard error shrinks as
    1/sqrt(n), so n grows by (MDE / effect)^2. None when the effect is 0 or unknown."""
    if not effect or not np.isfinite(mde):
        return None
    return int(np.ceil(documents * (mde / abs(effect)) ** 2))
