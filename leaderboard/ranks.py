"""Rank bands: the range of ranks an entry takes when its documents are redrawn.

A board that ranks on a score whose 95% interval is [0.000, 0.449] ranks noise. Like
Chatbot Arena's rank intervals, each entry's normalized mean (macro-F1 normalized to the
best trivial answer, unclipped, over the role's tasks) is recomputed on bootstrap resamples
of its documents (from the board's own copy of its per-sample logs, seeded by task name, so
two entries scored on the same documents are redrawn together); on every resample the
entries are ranked, and an entry's band is the 2.5th to 97.5th percentile of its ranks.
Entries whose bands overlap are tied as far as the board can tell. Entries are ranked only
among entries scored on the same tasks and documents (:func:`comparable`).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.baselines import NORMALIZED, PAIR_METRIC, normalized_replicates
from leaderboard.store import Entry

RESAMPLES = 1000


def _best(entry: Entry, task: str) -> float | None:
    found = ((entry.metadata.get("baselines") or {}).get(task) or {}).get("baselines") or {}
    values = [scores[NORMALIZED] for scores in found.values() if NORMALIZED in scores]
    return max(values) if values else None


@lru_cache(maxsize=1024)
def _pairs(results_path: str, task: str, stamp: float) -> tuple[tuple[int, int], ...] | None:
    from harness.result_files import samples_file
    from harness.stats import read_samples

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
    points = np.array([scored[i][0] for i in ids])
    reps = np.stack([scored[i][1] for i in ids])  # entries x resamples
    from scipy.stats import rankdata

    # Rank 1 + the number of entries strictly above ("min" ranks), on the points and on every resample.
    point_ranks = rankdata(-points, method="min")
    ranks = rankdata(-reps, method="min", axis=0)
    tail = (1 - level) / 2
    low = np.floor(np.quantile(ranks, tail, axis=1)).astype(int)
    high = np.ceil(np.quantile(ranks, 1 - tail, axis=1)).astype(int)
    return {i: (int(point_ranks[k]), int(low[k]), int(high[k]), len(ids)) for k, i in enumerate(ids)}


def band_text(band: tuple[int, int, int, int] | None) -> str | None:
    """``3 (1-7) of 9``: the rank, its band, and how many comparable entries were ranked;
    ``1 of 2`` when the band is one rank."""
    if band is None:
        return None
    rank, low, high, among = band
    return (f"{rank}" if low == high else f"{rank} ({low}-{high})") + f" of {among}"
