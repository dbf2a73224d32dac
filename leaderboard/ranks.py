"""Ranks with what the board can tell apart: 1 + the entries significantly better.

A board that ranks on a score whose 95% interval is [0.000, 0.449] ranks noise. Each entry's
normalized mean (macro-F1 normalized to the best trivial answer, unclipped, over the role's
tasks) is recomputed on bootstrap resamples of its documents (from the board's own copy of its
per-sample logs, seeded by task name, so two entries scored on the same documents are redrawn
together and their differences are paired). For every pair of entries, the paired difference's
two-sided bootstrap p-value; per entry, Holm over its comparisons at 0.05. An entry's rank band
runs from 1 + the number of entries significantly better to N - the number significantly worse
(as Chatbot Arena's upper-bound rank counts the models significantly better); its rank is the
rank of its point estimate. Entries are ranked only among entries scored on the same tasks and
documents (:func:`comparable`). Board entries are single checkpoints: no seed component.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from evidence.baselines import NORMALIZED, PAIR_METRIC, normalized_replicates
from leaderboard.store import Entry

RESAMPLES = 1000


def _best(entry: Entry, task: str) -> float | None:
    found = ((entry.metadata.get("baselines") or {}).get(task) or {}).get("baselines") or {}
    values = [scores[NORMALIZED] for scores in found.values() if NORMALIZED in scores]
    return max(values) if values else None


@lru_cache(maxsize=1024)
def _pairs(results_path: str, task: str, stamp: float) -> tuple[tuple[int, int], ...] | None:
    from evidence.result_files import samples_file
    from evidence.stats import read_samples

    try:
        values = read_samples(samples_file(Path(results_path), task), PAIR_METRIC)
    except (ValueError, OSError):
        return None
    return tuple(tuple(int(x) for x in values[d]) for d in sorted(values))


def entry_replicates(entry: Entry, tasks: set[str], resamples: int = RESAMPLES) -> tuple[float, np.ndarray] | None:
    """The entry's normalized mean over ``tasks`` and its document replicates (None without logs)."""
    found = {}
    for task in sorted(tasks & set(entry.scores)):
        best = _best(entry, task)
        folder = Path(entry.results_path)
        stamp = folder.stat().st_mtime if folder.exists() else 0.0
        pairs = _pairs(str(folder), task, stamp) if best is not None else None
        if pairs:
            found[task] = (list(pairs), best)
    return normalized_replicates(found, resamples) if found else None


def comparable(entry: Entry, tasks: set[str]) -> str:
    """What an entry's rank is comparable on: the role's tasks it scored and the documents it
    scored them on (shots, limit, slice and its seed). Entries rank only among entries alike:
    a 5-task mean against 6-task means, or 100 documents against 50, ranks nothing."""
    import json

    settings = {k: v for k, v in (entry.settings or {}).items() if k not in ("tasks", "task_files")}
    return json.dumps({"tasks": sorted(tasks & set(entry.scores)), **settings}, sort_keys=True, default=str)


def rank_bands(entries: Sequence[Entry], tasks: set[str], resamples: int = RESAMPLES,
               level: float = 0.95) -> dict[int, tuple[int, int, int, int]]:
    """Entry id -> (rank on the point estimates, low, high of its rank band, entries ranked
    together), each entry ranked among the entries :func:`comparable` with it; entries without
    logs for the role's tasks are left out."""
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(comparable(e, tasks), []).append(e)
    bands: dict[int, tuple[int, int, int, int]] = {}
    for members in groups.values():
        bands.update(_bands(members, tasks, resamples, level))
    return bands


def _bands(entries: Sequence[Entry], tasks: set[str], resamples: int,
           level: float) -> dict[int, tuple[int, int, int, int]]:
    scored = {e.id: found for e in entries if (found := entry_replicates(e, tasks, resamples)) is not None}
    if not scored:
        return {}
    ids = list(scored)
    found = ranks_from(np.array([scored[i][0] for i in ids]), np.stack([scored[i][1] for i in ids]), level)
    return dict(zip(ids, found))


def ranks_from(points: np.ndarray, reps: np.ndarray, level: float = 0.95) -> list[tuple[int, int, int, int]]:
    """Per entry (points: one per entry; reps: entries x resamples, paired draws): its rank on the
    points, 1 + the entries significantly better, N - those significantly worse, and N."""
    from scipy.stats import rankdata

    from evidence.stats import bootstrap_p_value, holm

    point_ranks = rankdata(-points, method="min")  # 1 + the entries strictly above
    alpha, n = 1 - level, len(points)
    out = []
    for k in range(n):
        others = [j for j in range(n) if j != k]
        adjusted = holm([bootstrap_p_value(reps[j] - reps[k]) for j in others], alpha)
        better = sum(1 for j, p in zip(others, adjusted) if p <= alpha and points[j] > points[k])
        worse = sum(1 for j, p in zip(others, adjusted) if p <= alpha and points[j] < points[k])
        out.append((int(point_ranks[k]), 1 + better, n - worse, n))
    return out


def band_text(band: tuple[int, int, int, int] | None) -> str | None:
    """``3 (1-7) of 9``: the rank, its band, and how many comparable entries were ranked;
    ``1 of 2`` when the band is one rank."""
    if band is None:
        return None
    rank, low, high, among = band
    return (f"{rank}" if low == high else f"{rank} ({low}-{high})") + f" of {among}"
