"""A study's rows and their bootstrapped scores, read from the stored per-sample logs.

A **row** is what a table line and a claim talk about: one model in one setting
(vanilla zero-shot, a fine-tuned run, a merge, ...), with, per task, the result folders
of each training seed (a vanilla row has the one seed ``None``).

Scores come from lm-eval's per-sample logs, never from typed-in numbers. Intervals are
percentile bootstraps, two-level where a row has several training seeds: seeds are
redrawn with replacement, then documents within each (Efron & Tibshirani ch. 13; the
hierarchical bootstrap). Every row draws the same documents of a task and the same seed
indices, so a difference between two rows is paired on both levels.
"""
from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fin_tasks.common.metrics import aggregation_of
from harness.baselines import constant_scores, normalize, random_scores
from fin_tasks.index import finben_name
from harness.result_files import TIMESTAMP, load_results, results_file, samples_file
from harness.stats import read_samples, replicates, seed_draws, task_draws, two_level
from plumbing.folders import is_finished
from study.spec import Study

Sources = dict[str, dict[int | None, list[Path]]]  # task -> training seed -> result folders averaged


@dataclass
class Row:
    model: str  # the study model's label
    kind: str  # vanilla | single | multi | merged
    run: str  # the training run or merge ("" for vanilla and the FT-single composite)
    setting: str  # zero-shot | few-shot | <k>-shot
    name: str  # as the table shows it
    sources: Sources
    trained_on: list[str] = field(default_factory=list)
    fticl: int = 0

    def seeds(self) -> list[int | None]:
        return sorted({s for by_seed in self.sources.values() for s in by_seed}, key=lambda s: (s is None, s))

    def tasks(self) -> list[str]:
        return [t for t, by_seed in self.sources.items() if any(by_seed.values())]


class Bootstrap:
    """Per-(folder, task, metric) scores and replicates, one document draw per task and one seed
    draw per number of seeds, whatever order the rows ask in."""

    def __init__(self, resamples: int, seed: int):
        self.resamples, self.seed = resamples, seed
        self._docs: dict[str, list[int]] = {}
        self._draws: dict[str, np.ndarray] = {}
        self._seed_draws: dict[int, np.ndarray] = {}
        self._cache: dict[tuple, tuple[float, np.ndarray]] = {}
        self._results: dict[Path, dict] = {}

    # -- per folder -------------------------------------------------------------------
    def _values(self, folder: Path, task: str, metric: str) -> list:
        values = read_samples(samples_file(folder, scored_name(folder, task)), metric)
        docs = sorted(values)
        if task not in self._docs:
            self._docs[task] = docs
            self._draws[task] = task_draws(task, len(docs), self.resamples, self.seed)
        elif docs != self._docs[task]:
            raise ValueError(f"{folder}: {task} was scored on other documents than the study's other rows "
                             f"({len(docs)} vs {len(self._docs[task])}); re-run with the same limit and seed")
        return [values[d] for d in docs]

    def documents(self, task: str) -> int:
        return len(self._docs.get(task, []))

    def results(self, folder: Path) -> dict:
        if folder not in self._results:
            self._results[folder] = load_results(results_file(folder))
        return self._results[folder]

    def _task_baselines(self, folder: Path, task: str) -> dict:
        return ((self.results(folder).get("finharness") or {}).get("baselines") or {}).get(scored_name(folder, task)) or {}

    def baselines(self, folder: Path, task: str, metric: str) -> dict[str, float]:
        """Trivial answers' scores on the task's slice: those the evaluation wrote (majority,
        train prior, random), else majority and random recomputed from the logged (gold, pred)
        pairs. Empty for a task whose metric is not a classification score."""
        written = self._task_baselines(folder, task).get("baselines") or {}
        found = {name: scores[metric] for name, scores in written.items() if metric in scores}
        if found:
            return found
        try:
            pairs = list(read_samples(samples_file(folder, scored_name(folder, task)), metric).values())
        except ValueError:  # the task does not report this metric (a summary's ROUGE)
            return {}
        if not pairs or not isinstance(pairs[0], tuple):
            return {}
        golds = [int(g) for g, _ in pairs]
        labels = max(max(golds), max(int(p) for _, p in pairs)) + 1
        majority = max(set(golds), key=golds.count)
        return {"majority": constant_scores(golds, majority, [metric])[metric],
                "random": random_scores(golds, labels, [metric])[metric]}

    def collapsed(self, folder: Path, task: str) -> str | None:
        """The label a checkpoint answered for >= 90% of the task's documents, if any."""
        return self._task_baselines(folder, task).get("collapsed")

    def score(self, folder: Path, task: str, metric: str, normalized: bool = False) -> tuple[float, np.ndarray]:
        key = (folder, task, metric, normalized)
        if key not in self._cache:
            values = self._values(folder, task, metric)
            point, reps = replicates(values, aggregation_of(metric), self._draws[task])
            if normalized:
                found = self.baselines(folder, task, metric)
                if found:  # a task without trivial answers (ROUGE) keeps its raw score
                    b = max(found.values())
                    point = normalize(point, b)
                    reps = np.array([normalize(r, b) for r in reps])
            self._cache[key] = (point, reps)
        return self._cache[key]

    # -- per row ------------------------------------------------------------------------
    def seed_draws(self, count: int) -> np.ndarray | None:
        if count <= 1:
            return None
        if count not in self._seed_draws:
            self._seed_draws[count] = seed_draws(count, self.resamples, [self.seed, 7919, count])
        return self._seed_draws[count]

    def task_score(self, by_seed: dict[int | None, list[Path]], task: str, metric: str,
                   normalized: bool = False) -> tuple[float, np.ndarray]:
        """One task of a row: each seed's mean over its folders, then two-level over seeds."""
        seeds = sorted((s for s in by_seed if by_seed[s]), key=lambda s: (s is None, s))
        points, reps = [], []
        for s in seeds:
            scored = [self.score(f, task, metric, normalized) for f in by_seed[s]]
            points.append(float(np.mean([p for p, _ in scored])))
            reps.append(np.mean([r for _, r in scored], axis=0))
        return two_level(points, reps, self.seed_draws(len(seeds)))

    def mean_over(self, row: Row, tasks: Sequence[str], metric_of, normalized: bool = False
                  ) -> tuple[float, np.ndarray] | None:
        """Mean over ``tasks`` (those the row scored) of each task's score."""
        tasks = [t for t in tasks if row.sources.get(t) and any(row.sources[t].values())]
        if not tasks:
            return None
        scored = [self.task_score(row.sources[t], t, metric_of(t), normalized) for t in tasks]
        return float(np.mean([p for p, _ in scored])), np.mean([r for _, r in scored], axis=0)

    def collapsed_in(self, row: Row, task: str) -> list[str]:
        """The labels a row's checkpoints collapsed onto for a task (one per collapsed folder)."""
        folders = [f for by_seed in row.sources.get(task, {}).values() for f in by_seed]
        return [label for f in folders if (label := self.collapsed(f, task))]


@lru_cache(maxsize=4096)
def _logged_tasks(folder: Path) -> tuple[str, ...]:
    """Tasks with a per-sample log in a finished (never again written) results folder."""
    found = []
    for path in Path(folder).rglob("samples_*.jsonl"):
        match = re.fullmatch(rf"samples_(.+)_{TIMESTAMP}\.jsonl", path.name)
        if match:
            found.append(match.group(1))
    return tuple(found)


def scored_name(folder: Path, task: str) -> str:
    """The task a folder logged for a FinBen name: itself, or its one prompt-format or
    generated variant (a study in arXiv 2411.02476's formats scores ``label_fin_fpb`` for
    ``fin_fpb``), so rows in different formats line up on one task."""
    logged = _logged_tasks(folder)
    if task in logged:
        return task
    variants = sorted({t for t in logged if finben_name(t) == task})
    if len(variants) > 1:
        raise ValueError(f"{folder}: {task} was scored in several variants ({', '.join(variants)}); "
                         "a study row takes one")
    return variants[0] if variants else task


def scored_folders(study: Study) -> dict[tuple[str, str], dict[str, Path]]:
    """(checkpoint label, setting) -> task -> results folder of the finished evaluations; a
    group in an eval set stands for its member tasks (those with a per-sample log). Format and
    generated variants of a financial task are keyed by the FinBen task they belong to."""
    found: dict[tuple[str, str], dict[str, Path]] = {}
    for step in study.evals:
        folder = Path(step.folder)
        if not is_finished(folder, "evaluation"):
            continue
        tasks = found.setdefault((step.checkpoint.label, step.setting), {})
        for task in _logged_tasks(folder):
            tasks[finben_name(task)] = folder
    return found


def _group(points: Iterable, key) -> dict[Any, list]:
    out: dict[Any, list] = {}
    for p in points:
        out.setdefault(key(p), []).append(p)
    return out


def study_rows(study: Study, seen: set[str] | None = None) -> list[Row]:
    """Every row of a study, checkpoints of one run pooled over their training seeds.

    With ``seen`` (the seen_unseen layout), the single-task runs of a model form one
    "FT single" row: each seen task from the runs that specialise in it (``covers``), each
    other task the mean of all single-task runs, as arXiv 2411.02476 reports one
    fine-tuned score per task. Without it, every run is its own row."""
    from study.spec import setting_name, setting_shots

    scored = scored_folders(study)
    settings = sorted({step.setting for step in study.evals}, key=lambda s: setting_shots(s, study.eval.sets))

    def shown(setting: str) -> str:
        return setting_name(setting, study.eval.sets)

    rows: list[Row] = []
    for model in study.spec.models:
        points = [c for c in study.checkpoints if c.model == model.label]
        runs = _group(points, lambda c: (c.role, c.run))
        composite = seen is not None
        for (role, run), members in runs.items():
            if composite and role == "single":
                continue
            for setting in settings:
                sources: Sources = {}
                for c in members:
                    for task, folder in scored.get((c.label, setting), {}).items():
                        sources.setdefault(task, {}).setdefault(c.seed, []).append(folder)
                if not sources:
                    continue
                name = {"vanilla": shown(setting),
                        "multi": f"FT multi ({run})", "merged": f"merged: {run}"}.get(role, run)
                if role != "vanilla" and not composite:
                    name = run + (f" (FTICL k={members[0].fticl})" if members[0].fticl else "")
                if role != "vanilla" and composite and setting != "zero-shot":
                    name += f", {shown(setting)}"
                rows.append(Row(model.label, role, "" if role == "vanilla" else run, setting, name, sources,
                                members[0].trained_on, members[0].fticl))
        if composite:
            singles = [c for c in points if c.role == "single"]
            for setting in settings:
                have = [c for c in singles if (c.label, setting) in scored]
                if not have:
                    continue
                tasks = sorted({t for c in have for t in scored[(c.label, setting)]})
                sources = {}
                for task in tasks:
                    specialists = [c for c in have if task in c.covers]
                    chosen = specialists if task in seen and specialists else ([] if task in seen else have)
                    for c in chosen:
                        if task in scored[(c.label, setting)]:
                            sources.setdefault(task, {}).setdefault(c.seed, []).append(scored[(c.label, setting)][task])
                name = "FT single" + ("" if setting == "zero-shot" else f", {shown(setting)}")
                rows.append(Row(model.label, "single", "", setting, name, sources,
                                sorted({t for c in have for t in c.trained_on})))
    order = {"vanilla": 0, "single": 1, "multi": 2, "merged": 3}
    models = [m.label for m in study.spec.models]
    return sorted(rows, key=lambda r: (models.index(r.model), order[r.kind], r.run,
                                       setting_shots(r.setting, study.eval.sets)))
