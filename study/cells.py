"""A study's rows and their scores, read from the stored per-sample logs.

A **row** is what a table line and a claim talk about: one model in one setting
(vanilla zero-shot, a fine-tuned run, a merge, ...), with, per task, the result folders
of each training seed (a vanilla row has the one seed ``None``).

Scores come from lm-eval's per-sample logs, never from typed-in numbers. Every row draws
the same documents of a task (one bootstrap draw per task), so a difference between two
rows is paired on documents. Uncertainty has two components (``evidence.stats.Estimate``):
the documents (those paired replicates) and the training seeds (each trained row's
between-seed variance over its seed count), combined into a t-type interval whose degrees of
freedom reflect how few seeds there are. Normalized scores are ``(s - b) / (1 - b)``, ``b``
the best trivial answer recomputed from the logged gold labels (``evidence.baselines``), and
never clipped here: tables clip them for display only.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evidence.baselines import PAIR_METRIC, TaskBaselines, normalize, task_baselines, trivial_scores
from evidence.discrimination import label_logliks, macro_auc
from evidence.generation_baselines import GENERATION_METRICS, lead_scores
from evidence.stats import Estimate, SeedScores, components, replicates, task_draws
from fin_tasks.common.metrics import aggregation_of
from fin_tasks.index import finben_name
from plumbing.folders import is_finished
from plumbing.vocabulary import GenerationBaseline, RowKind
from study.log_store import LogStore, logged_task_names
from study.spec import Study

Sources = dict[str, dict[int | None, list[Path]]]  # task -> training seed -> result folders averaged


@dataclass
class Row:
    model: str  # the study model's label
    kind: RowKind
    run: str  # the training run or merge ("" for vanilla and the FT-single composite)
    setting: str  # "zero-shot", "few-shot", or "<k>-shot" for any k of a grid (open: no Literal)
    name: str  # as the table shows it
    sources: Sources
    trained_on: list[str] = field(default_factory=list)
    fticl: int = 0

    def seeds(self) -> list[int | None]:
        return sorted({s for by_seed in self.sources.values() for s in by_seed}, key=lambda s: (s is None, s))

    def trained_seeds(self) -> list[int]:
        return [s for s in self.seeds() if s is not None]

    def tasks(self) -> list[str]:
        return [t for t, by_seed in self.sources.items() if any(by_seed.values())]


@dataclass
class RowScore:
    """A row's mean over some tasks: the point, each training seed's own mean, and the
    document replicates of the seed-averaged mean."""

    point: float
    per_seed: np.ndarray
    doc_reps: np.ndarray
    trained: bool  # has training noise (a vanilla row has none)
    interaction: float = 0.0  # the seed x document part of the per-seed scores' spread
    seeds: tuple = ()  # the training seed of each entry of per_seed (None: untrained)
    seed_reps: tuple = ()  # each seed's document replicates, in the order of ``seeds``


class Bootstrap:
    """Per-(folder, task, metric) scores and document replicates, one document draw per task,
    whatever order the rows ask in; baselines and collapse flags recomputed from the logs,
    which its :class:`~study.log_store.LogStore` reads."""

    def __init__(self, resamples: int, seed: int, include_paths: Sequence[str | Path] = (),
                 exclude: Mapping[str, set[int]] | None = None,
                 generation_baseline: GenerationBaseline = "none", logs: LogStore | None = None):
        self.resamples, self.seed = resamples, seed
        self.generation_baseline = generation_baseline  # lead: ROUGE and BLEU get trivial answers too
        self.logs = logs or LogStore(include_paths)  # what the result folders say (study/log_store.py)
        self.exclude = {t: set(ids) for t, ids in (exclude or {}).items()}  # task -> doc ids left out
        self._docs: dict[str, list[int]] = {}
        self._draws: dict[str, np.ndarray] = {}
        self._cache: dict[tuple, tuple[float, np.ndarray]] = {}
        self._trivial: dict[tuple, dict[str, dict[str, float]]] = {}
        self._checks: dict[tuple, TaskBaselines | None] = {}

    # -- what the logs hold: the store's ------------------------------------------------------
    def dataset_duplicates(self, folder: Path, task: str) -> list[int] | None:
        """The store's dataset duplicates among the documents this bootstrap reads."""
        return self.logs.dataset_duplicates(folder, task, self._docs.get(task))

    def auc(self, folder: Path, task: str) -> tuple[float, np.ndarray] | None:
        """Macro one-vs-rest AUC of the label log-likelihoods in this folder, and its replicates
        on the study's document draws (evidence/discrimination.py); None for a generation task."""
        key = ("auc", folder, task)
        if key not in self._cache:
            found = None
            try:
                rows = self.logs.rows(folder, task)
            except ValueError:
                rows = []
            if rows and PAIR_METRIC in rows[0]:
                self.values(folder, task, PAIR_METRIC)  # fixes the study's documents and draws for the task
            by_doc = {int(r["doc_id"]): r for r in rows}
            docs = self._docs.get(task, [])
            picked = [by_doc.get(d) for d in docs]
            logliks = [label_logliks(r) if r else None for r in picked]
            if docs and all(x is not None for x in logliks) and len({len(x) for x in logliks}) == 1:
                golds = [int(r[PAIR_METRIC][0]) for r in picked]
                array = np.array(logliks)
                found = (float(macro_auc(golds, array)[0]), macro_auc(golds, array, self._draws[task]))
            self._cache[key] = found
        return self._cache[key]

    def row_auc(self, row: "Row", tasks: Sequence[str]) -> tuple[float, np.ndarray] | None:
        """A row's AUC averaged over its folders (seeds) and ``tasks`` (those with log-likelihoods)."""
        per_task = []
        for task in tasks:
            found = [self.auc(f, task) for folders in row.sources.get(task, {}).values() for f in folders]
            found = [f for f in found if f is not None]
            if found:
                per_task.append((np.mean([p for p, _ in found]), np.nanmean([r for _, r in found], axis=0)))
        if not per_task:
            return None
        return float(np.mean([p for p, _ in per_task])), np.nanmean([r for _, r in per_task], axis=0)

    def restricted(self, exclude: Mapping[str, set[int]]) -> "Bootstrap":
        """The same study read on fewer documents (a claim's clean subset): its own draws and caches."""
        return Bootstrap(self.resamples, self.seed, exclude=exclude, generation_baseline=self.generation_baseline,
                         logs=self.logs)

    # -- per folder -------------------------------------------------------------------
    def values(self, folder: Path, task: str, metric: str) -> list:
        """The task's per-document values of ``metric`` in this folder, in document order."""
        left_out = self.exclude.get(task, ())
        values = self.logs.read(folder, task, metric, left_out)
        docs = sorted(d for d in values if d not in left_out)
        if task not in self._docs:
            self._docs[task] = docs
            self._draws[task] = task_draws(task, len(docs), self.resamples, self.seed)
        elif docs != self._docs[task]:
            raise ValueError(f"{folder}: {task} was scored on other documents than the study's other rows "
                             f"({len(docs)} vs {len(self._docs[task])}); re-run with the same limit and seed")
        return [values[d] for d in docs]

    def draws(self, task: str) -> np.ndarray:
        return self._draws[task]

    def documents(self, task: str) -> int:
        return len(self._docs.get(task, []))

    def scored_documents(self) -> dict[str, list[int]]:
        """Task -> the document ids every row read (after any exclusion), so far."""
        return {task: list(ids) for task, ids in self._docs.items()}

    def pairs(self, folder: Path, task: str) -> list[tuple[int, int]] | None:
        """The task's (gold, predicted) pairs, or None for a task that logs none (a summary)."""
        try:
            pairs = self.values(folder, task, PAIR_METRIC)
        except ValueError:
            return None
        return [tuple(int(v) for v in p) for p in pairs] if pairs and isinstance(pairs[0], tuple) else None

    def baselines(self, folder: Path, task: str, metric: str) -> dict[str, float]:
        """Trivial answers' scores on the task's documents (majority, train prior, uniform and
        prior-matched random), recomputed from the logged gold labels; for a generation task,
        with ``generation_baseline: lead``, the input's first sentence(s)
        (evidence/generation_baselines.py); otherwise empty."""
        key = (task, metric)
        if key not in self._trivial:
            pairs = self.pairs(folder, task)
            labels = self.logs.labels(folder, task) if pairs else None
            if not pairs or not labels:
                self._trivial[key] = self._leads(folder, task, metric) if self.generation_baseline == "lead" else {}
            else:
                found = trivial_scores([g for g, _ in pairs], len(labels), self.logs.train_golds(folder, task),
                                       [metric])
                self._trivial[key] = {name: scores[metric] for name, scores in found.items() if metric in scores}
        return self._trivial[key]

    def _leads(self, folder: Path, task: str, metric: str) -> dict[str, float]:
        """The lead answers' scores on the documents the study's rows read (empty for a metric
        that is not ROUGE or BLEU, or a task whose rows hold no input and reference)."""
        if metric not in GENERATION_METRICS:
            return {}
        self.values(folder, task, metric)  # fixes the study's documents of the task
        docs = set(self._docs[task])
        rows = [r for r in self.logs.rows(folder, task) if int(r["doc_id"]) in docs]
        return {name: scores[metric] for name, scores in lead_scores(rows, [metric]).items()}

    def check(self, folder: Path, task: str) -> TaskBaselines | None:
        """The task's label shares, distance from gold, MCC and collapse flag in this folder."""
        key = (folder, task)
        if key not in self._checks:
            pairs = self.pairs(folder, task)
            labels = self.logs.labels(folder, task) if pairs else None
            self._checks[key] = (task_baselines(task, labels, pairs, None, {}) if pairs and labels else None)
        return self._checks[key]

    def collapsed(self, folder: Path, task: str) -> str | None:
        """The most predicted label, when the folder's answers are far from gold with MCC ~ 0."""
        found = self.check(folder, task)
        return found.collapsed if found else None

    def score(self, folder: Path, task: str, metric: str, normalized: bool = False) -> tuple[float, np.ndarray]:
        """The folder's score on the task and its document replicates (normalized: unclipped)."""
        key = (folder, task, metric, normalized)
        if key not in self._cache:
            values = self.values(folder, task, metric)
            point, reps = replicates(values, aggregation_of(metric), self._draws[task])
            if normalized:
                found = self.baselines(folder, task, metric)
                if found:  # a task without trivial answers (ROUGE) keeps its raw score
                    b = max(found.values())
                    point = normalize(point, b)
                    reps = (reps - b) / (1 - b) if b < 1 else np.zeros_like(reps)
            self._cache[key] = (point, np.asarray(reps, dtype=float))
        return self._cache[key]

    # -- per row ------------------------------------------------------------------------
    def task_parts(self, by_seed: dict[int | None, list[Path]], task: str, metric: str,
                   normalized: bool = False) -> tuple[dict[int | None, float], dict[int | None, np.ndarray]]:
        """One task of a row: each seed's score (the mean over its folders) and its document replicates."""
        seeds = sorted((s for s in by_seed if by_seed[s]), key=lambda s: (s is None, s))
        points, reps = {}, {}
        for s in seeds:
            scored = [self.score(f, task, metric, normalized) for f in by_seed[s]]
            points[s] = float(np.mean([p for p, _ in scored]))
            reps[s] = np.mean([r for _, r in scored], axis=0)
        return points, reps

    def task_score(self, by_seed: dict[int | None, list[Path]], task: str, metric: str,
                   normalized: bool = False) -> tuple[float, np.ndarray]:
        """One task of a row: the mean over seeds and its document replicates."""
        points, reps = self.task_parts(by_seed, task, metric, normalized)
        return float(np.mean(list(points.values()))), np.mean(list(reps.values()), axis=0)

    def row_score(self, row: Row, tasks: Sequence[str], metric_of, normalized: bool = False) -> RowScore | None:
        """A row's mean over ``tasks`` (those it scored): point, per-seed means, document replicates.
        A seed missing a task counts that task at the row's mean over its other seeds."""
        tasks = [t for t in tasks if row.sources.get(t) and any(row.sources[t].values())]
        if not tasks:
            return None
        from evidence.stats import interaction

        parts = [self.task_parts(row.sources[t], t, metric_of(t), normalized) for t in tasks]
        seeds = sorted({s for points, _ in parts for s in points}, key=lambda s: (s is None, s))
        per_seed = np.array([np.mean([points.get(s, np.mean(list(points.values()))) for points, _ in parts])
                             for s in seeds])
        # Each seed's document replicates of its mean over tasks (a task it lacks: the seeds' mean).
        seed_reps = [np.mean([reps.get(s, np.mean(list(reps.values()), axis=0)) for _, reps in parts], axis=0)
                     for s in seeds]
        doc_reps = np.mean(seed_reps, axis=0)
        spread = interaction([float(r.var(ddof=1)) for r in seed_reps], float(doc_reps.var(ddof=1)))
        return RowScore(float(per_seed.mean()), per_seed, doc_reps, trained=any(s is not None for s in seeds),
                        interaction=spread, seeds=tuple(seeds), seed_reps=tuple(seed_reps))

    def mean_over(self, row: Row, tasks: Sequence[str], metric_of, normalized: bool = False
                  ) -> tuple[float, np.ndarray] | None:
        """Mean over ``tasks`` (those the row scored) and its document replicates."""
        found = self.row_score(row, tasks, metric_of, normalized)
        return None if found is None else (found.point, found.doc_reps)

    def estimate(self, signed: Sequence[tuple[Row, float]], tasks: Sequence[str], metric_of,
                 normalized: bool = False) -> Estimate | None:
        """A signed sum of rows' means over ``tasks`` (a row: +1; a contrast: +1 and -1) with both
        variance components: documents (paired, the same draws for every row) and training seeds."""
        scores = [(self.row_score(row, tasks, metric_of, normalized), sign) for row, sign in signed]
        if any(score is None for score, _ in scores):
            return None
        point = sum(sign * score.point for score, sign in scores)
        reps = sum(sign * score.doc_reps for score, sign in scores)
        trained = _paired_seeds(scores) or [SeedScores(score.per_seed, score.interaction)
                                            for score, _ in scores if score.trained]
        docs = (
            min(self.documents(t) for t in tasks if self.documents(t)) if any(self.documents(t) for t in tasks) else 1
        )
        return components(point, reps, trained, docs, tuple(len(p.points) for p in trained))

    def collapsed_in(self, row: Row, task: str) -> list[str]:
        """The labels a row's checkpoints collapsed onto for a task (one per collapsed folder)."""
        folders = [f for by_seed in row.sources.get(task, {}).values() for f in by_seed]
        return [label for f in folders if (label := self.collapsed(f, task))]


def _paired_seeds(scores: Sequence[tuple[RowScore, float]]) -> list[SeedScores] | None:
    """The seed component of a contrast whose trained rows share their training seeds (a merge
    of seed s and the runs of seed s; one checkpoint scored in two settings): the contrast per
    seed, one component with S - 1 df. Summing the rows' components as if independent misses
    that the seeds' effects are shared (paired, Study B's seed sd moved 0.005 -> 0.009 for B3 and
    0.030 -> 0.003 for B2). None where fewer than two trained rows, or their seeds differ."""
    trained = [(score, sign) for score, sign in scores if score.trained]
    if len(trained) < 2:
        return None
    seeds = trained[0][0].seeds
    if len(seeds) < 2 or any(score.seeds != seeds for score, _ in trained):
        return None
    from evidence.stats import interaction

    points = np.array([sum(sign * score.per_seed[i] for score, sign in trained) for i in range(len(seeds))])
    # Each seed's document replicates of the whole contrast (an untrained row's are the same for
    # every seed), for the seed x document interaction that the document component already holds.
    fixed = sum((sign * score.doc_reps for score, sign in scores if not score.trained), 0.0)
    per_seed_reps = [fixed + sum(sign * score.seed_reps[i] for score, sign in trained) for i in range(len(seeds))]
    mean_reps = np.mean(per_seed_reps, axis=0)
    part = interaction([float(r.var(ddof=1)) for r in per_seed_reps], float(mean_reps.var(ddof=1)))
    return [SeedScores(points, part)]


def scored_folders(study: Study, split: str = "test") -> dict[tuple[str, str], dict[str, Path]]:
    """(checkpoint label, setting) -> task -> results folder of the finished evaluations of
    ``split`` (test: the tables and claims; development: the claims' gates); a group in an eval
    set stands for its member tasks (those with a per-sample log). Format and generated variants
    of a financial task are keyed by the FinBen task they belong to."""
    found: dict[tuple[str, str], dict[str, Path]] = {}
    for step in study.evals:
        folder = Path(step.folder)
        if step.split != split or not is_finished(folder, "evaluation"):
            continue
        tasks = found.setdefault((step.checkpoint.label, step.setting), {})
        for task in logged_task_names(folder):
            tasks[finben_name(task)] = folder
    return found


def _group(points: Iterable, key) -> dict[Any, list]:
    out: dict[Any, list] = {}
    for p in points:
        out.setdefault(key(p), []).append(p)
    return out


def study_rows(study: Study, seen: set[str] | None = None, split: str = "test") -> list[Row]:
    """Every row of a study (of its ``split``'s evaluations), checkpoints of one run pooled over
    their training seeds.

    With ``seen`` (the seen_unseen layout), the single-task runs of a model form one
    "FT single" row: each seen task from the runs that specialise in it (``covers``), each
    other task the mean of all single-task runs, as arXiv 2411.02476 reports one
    fine-tuned score per task. Without it, every run is its own row."""
    from study.spec import setting_name, setting_shots

    scored = scored_folders(study, split)
    settings = sorted({step.setting for step in study.evals if step.split == split},
                      key=lambda s: setting_shots(s, study.eval.sets))

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
