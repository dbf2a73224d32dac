"""A study's tables, computed from its stored per-sample logs (never from typed-in numbers).

Intervals are percentile bootstraps over documents (lm-eval's per-sample logs), stratified
by task: each resample redraws every task's documents once, and that same draw is used
for every row, so a change against the reference row is a paired difference.

- ``seen_unseen`` (arXiv 2411.02476, Table 3 layout): per model, the rows zero-shot,
  few-shot, fine-tuned single-task, fine-tuned multi-task and each merge; the columns each
  seen and unseen task, the seen and unseen means with intervals, and the change of each
  mean against the same model zero-shot. The single-task row takes each seen task from the
  run that specialises in it (``covers``) and each other task as the mean of all single-task
  runs, as the paper reports one fine-tuned score per task.
- ``views`` (arXiv 2403.09162): each fine-tuned model against the vanilla model in the
  same setting (zero- or few-shot), averaged over in-domain, out-of-domain and cross-task
  tasks (each task on its type's own metric: accuracy or ROUGE-L).
"""
from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from harness.result_files import TIMESTAMP, samples_file
from fin_tasks.common.metrics import aggregation_of
from harness.stats import draw_indices, percentile_interval, read_samples, replicates
from study.spec import Checkpoint, Study
from plumbing.atomic import write_atomic
from plumbing.folders import is_finished, read_manifest
from plumbing.logs import log


@dataclass
class Row:
    model: str
    name: str  # zero-shot, few-shot (2), FT single, ...
    sources: dict[str, list[Path]]  # task -> result folders averaged for that task
    checkpoint: Checkpoint | None = None
    setting: str = "zero-shot"
    cells: dict[str, Any] = field(default_factory=dict)


class Bootstrap:
    """Per-(folder, task) scores and their replicates from harness.stats's engine, one draw per task."""

    def __init__(self, metric_of, resamples: int, seed: int):
        self.metric_of, self.resamples, self.seed = metric_of, resamples, seed
        self._docs: dict[str, list[int]] = {}
        self._draws: dict[str, np.ndarray] = {}
        self._cache: dict[tuple[Path, str], tuple[float, np.ndarray]] = {}

    def _values(self, folder: Path, task: str) -> list:
        values = read_samples(samples_file(folder, task), self.metric_of(task))
        docs = sorted(values)
        if task not in self._docs:
            self._docs[task] = docs
            # One draw per task, whatever order the rows ask in: every row resamples the same documents.
            self._draws[task] = draw_indices(len(docs), self.resamples, [self.seed, zlib.crc32(task.encode())])
        elif docs != self._docs[task]:
            raise ValueError(f"{folder}: {task} was scored on other documents than the study's other rows "
                             f"({len(docs)} vs {len(self._docs[task])}); re-run with the same limit")
        return [values[d] for d in docs]

    def score(self, folder: Path, task: str) -> tuple[float, np.ndarray]:
        key = (folder, task)
        if key not in self._cache:
            values = self._values(folder, task)
            self._cache[key] = replicates(values, aggregation_of(self.metric_of(task)), self._draws[task])
        return self._cache[key]

    def mean_over(self, sources: dict[str, list[Path]], tasks: Sequence[str]) -> tuple[float, np.ndarray] | None:
        """Mean over ``tasks`` of each task's mean over its folders."""
        tasks = [t for t in tasks if sources.get(t)]
        if not tasks:
            return None
        points, reps = [], []
        for task in tasks:
            scored = [self.score(f, task) for f in sources[task]]
            points.append(np.mean([s[0] for s in scored]))
            reps.append(np.mean([s[1] for s in scored], axis=0))
        return float(np.mean(points)), np.mean(reps, axis=0)


def interval(reps: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    return percentile_interval(reps, level)


def fmt(value: float | None, ci: tuple[float, float] | None = None, signed: bool = False) -> str:
    if value is None:
        return ""
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    return text + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if signed else f" [{ci[0]:.3f}, {ci[1]:.3f}]") if ci else text


def _folders(study: Study) -> dict[tuple[str, str], dict[str, Path]]:
    """(checkpoint label, setting) -> task -> results folder, for the finished evaluations."""
    found: dict[tuple[str, str], dict[str, Path]] = {}
    for step in study.evals:
        folder = Path(step.folder)
        if not is_finished(folder, "evaluation"):
            continue
        for task in step.tasks:
            found.setdefault((step.checkpoint.label, step.setting), {})[task] = folder
    return found


def _expand_tasks(folders: dict[tuple[str, str], dict[str, Path]]) -> dict[tuple[str, str], dict[str, Path]]:
    """Groups in an eval set stand for their member tasks (those with a per-sample log)."""
    out = {}
    for key, by_task in folders.items():
        tasks: dict[str, Path] = {}
        for folder in set(by_task.values()):
            for path in folder.rglob("samples_*.jsonl"):
                match = re.fullmatch(rf"samples_(.+)_{TIMESTAMP}\.jsonl", path.name)
                if match:
                    tasks[match.group(1)] = folder
        out[key] = tasks
    return out


def seen_unseen_rows(study: Study) -> tuple[list[Row], list[str], list[str]]:
    from harness.measures import seen_and_unseen

    seen_all, unseen_all = seen_and_unseen(study.eval.include_paths)
    scored = _expand_tasks(_folders(study))
    # Seen tasks first, then unseen, each by name.
    tasks = sorted({t for by_task in scored.values() for t in by_task},
                   key=lambda t: (t not in seen_all, t not in unseen_all, t))
    seen = [t for t in tasks if t in seen_all]
    unseen = [t for t in tasks if t in unseen_all]
    rows: list[Row] = []
    shots = max((s.few_shot for s in study.eval.sets), default=0)
    for model in study.spec.models:
        points = [c for c in study.checkpoints if c.model == model.label]
        vanilla = next(c for c in points if c.role == "vanilla")
        for setting in ("zero-shot", "few-shot"):
            if (vanilla.label, setting) in scored:
                name = "zero-shot" if setting == "zero-shot" else f"few-shot ({shots})"
                rows.append(Row(model.label, name, {t: [f] for t, f in scored[(vanilla.label, setting)].items()},
                                vanilla, setting))
        singles = [c for c in points if c.role == "single" and (c.label, "zero-shot") in scored]
        if singles:
            sources: dict[str, list[Path]] = {}
            for task in tasks:
                specialists = [c for c in singles if task in c.covers]
                chosen = specialists if task in seen and specialists else ([] if task in seen else singles)
                sources[task] = [scored[(c.label, "zero-shot")][task] for c in chosen if task in scored[(c.label, "zero-shot")]]
            rows.append(Row(model.label, "FT single", sources))
        for c in points:
            if c.role in ("multi", "merged") and (c.label, "zero-shot") in scored:
                name = f"FT multi ({c.run})" if c.role == "multi" else f"merged: {c.run}"
                rows.append(Row(model.label, name, {t: [f] for t, f in scored[(c.label, "zero-shot")].items()}, c))
    return rows, seen, unseen


def seen_unseen_table(study: Study) -> tuple[str, list[dict]]:
    spec = study.spec.table
    rows, seen, unseen = seen_unseen_rows(study)
    boot = Bootstrap(lambda task: spec.metric, spec.resamples, spec.seed)
    records = []
    for row in rows:
        reference = next((r for r in rows if r.model == row.model and r.name == "zero-shot"), None)
        record: dict[str, Any] = {"model": row.model, "row": row.name}
        for task in seen + unseen:
            if row.sources.get(task):
                record[task] = float(np.mean([boot.score(f, task)[0] for f in row.sources[task]]))
        for part, members in (("seen", seen), ("unseen", unseen)):
            mean = boot.mean_over(row.sources, members)
            if mean is None:
                continue
            record[f"{part} mean"] = mean[0]
            record[f"{part} CI"] = interval(mean[1])
            if reference is not None and reference is not row:
                common = [t for t in members if row.sources.get(t) and reference.sources.get(t)]
                ours, ref = boot.mean_over(row.sources, common), boot.mean_over(reference.sources, common)
                if ours and ref:
                    record[f"Δ {part}"] = ours[0] - ref[0]
                    record[f"Δ {part} CI"] = interval(ours[1] - ref[1])
        records.append(record)

    short = {t: t.removeprefix("fin_") for t in seen + unseen}
    headers = ["model", "row", *[short[t] for t in seen], "seen mean [95% CI]", "Δ seen vs zero-shot",
               *[short[t] for t in unseen], "unseen mean [95% CI]", "Δ unseen vs zero-shot"]
    table = []
    for r in records:
        table.append([
            r["model"], r["row"], *[fmt(r.get(t)) for t in seen],
            fmt(r.get("seen mean"), r.get("seen CI")), fmt(r.get("Δ seen"), r.get("Δ seen CI"), signed=True),
            *[fmt(r.get(t)) for t in unseen],
            fmt(r.get("unseen mean"), r.get("unseen CI")), fmt(r.get("Δ unseen"), r.get("Δ unseen CI"), signed=True),
        ])
    text = (f"Metric: {spec.metric}; seen = {', '.join(seen)}; unseen = {', '.join(unseen)}. "
            f"Intervals: 95% percentile bootstrap over documents ({spec.resamples} resamples, paired for Δ).\n\n"
            + tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)
            + "\n\nFT single: each seen task is scored by the single-task model trained on it; each unseen task by "
              "the mean of all single-task models. A blank cell was not scored in that setting: the row's mean "
              "covers the tasks it has, and its Δ compares only the tasks both rows scored.")
    return text, records


def views_table(study: Study) -> tuple[str, list[dict]]:
    from fin_tasks import task_manager
    from harness.views import VIEWS, load_views, place_tasks, view_of

    spec = study.spec.table
    views = load_views()
    places = place_tasks(views, task_manager().task_index)
    scored = _expand_tasks(_folders(study))

    def metric_of(task: str) -> str:
        return views.task_types[places[task].task_type].metric

    boot = Bootstrap(metric_of, spec.resamples, spec.seed)
    tasks = sorted({t for by_task in scored.values() for t in by_task if t in places},
                   key=lambda t: (places[t].task_type, t))
    per_task, summary, records = [], [], []
    for c in study.checkpoints:
        for setting in ("zero-shot", "few-shot"):
            by_task = scored.get((c.label, setting))
            if not by_task:
                continue
            shots = max((s.few_shot for s in study.eval.sets), default=0) if setting == "few-shot" else 0
            name = c.label + (f" (FTICL k={c.fticl})" if c.fticl else "")
            per_task.append([name, setting, *[fmt(boot.score(by_task[t], t)[0]) if t in by_task else "" for t in tasks]])
            record: dict[str, Any] = {"checkpoint": c.label, "fticl": c.fticl, "setting": setting,
                                      **{t: boot.score(by_task[t], t)[0] for t in tasks if t in by_task}}
            vanilla = next(v for v in study.checkpoints if v.model == c.model and v.role == "vanilla")
            reference = scored.get((vanilla.label, setting))
            if c.role != "vanilla" and reference:
                cells = []
                for view in VIEWS:
                    members = [t for t in tasks if t in by_task and t in reference
                               and view_of(t, c.trained_on, places) == view]
                    ours = boot.mean_over({t: [by_task[t]] for t in members}, members)
                    ref = boot.mean_over({t: [reference[t]] for t in members}, members)
                    if ours is None or ref is None:
                        cells.append("")
                        continue
                    metrics = "/".join(sorted({metric_of(t) for t in members}))
                    ci = interval(ours[1] - ref[1])
                    record[view] = {"score": ours[0], "vanilla": ref[0], "change": ours[0] - ref[0],
                                    "ci": ci, "metric": metrics, "tasks": members}
                    cells.append(f"{fmt(ours[0])} ({fmt(ours[0] - ref[0], ci, signed=True)}) {metrics}")
                summary.append([name, setting, ", ".join(c.trained_on), *cells])
            records.append(record)
    text = (f"Change against the vanilla model in the same setting (score (Δ [95% CI])); each task on its "
            f"type's metric; bootstrap over documents ({spec.resamples} resamples, paired).\n\n"
            + tabulate(summary, headers=["model", "setting", "trained on", *VIEWS], tablefmt="github", disable_numparse=True)
            + "\n\nPer task:\n\n"
            + tabulate(per_task, headers=["model", "setting", *[f"{t} ({metric_of(t)})" for t in tasks]],
                       tablefmt="github", disable_numparse=True))
    return text, records


TABLES_KEY = "tables.key"


def tables_key(study: Study) -> str:
    """What the tables are made from: the table spec, the finished evaluations (their done
    markers' contents) and this module's code. Unchanged key: the tables are current."""
    import hashlib

    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(json.dumps([study.spec.name, study.spec.paper, study.full,
                              study.spec.table.model_dump(mode="json")], sort_keys=True).encode())
    for step in study.evals:
        manifest = read_manifest(step.folder, "evaluation")
        if manifest is not None:
            digest.update(f"{step.folder}\0".encode() + manifest.model_dump_json().encode())
    return digest.hexdigest()


def tables_current(study: Study) -> bool:
    root = Path(study.root)
    key = root / TABLES_KEY
    return (root / "tables.md").is_file() and key.is_file() and key.read_text().strip() == tables_key(study)


def write_tables(study: Study) -> Path:
    text, records = (seen_unseen_table if study.spec.table.kind == "seen_unseen" else views_table)(study)
    root = Path(study.root)
    header = f"# {study.spec.name}{' (--full)' if study.full else ''}: {study.spec.paper}\n\n"
    write_atomic(root / "tables.md", header + text + "\n")
    write_atomic(root / "tables.json", json.dumps(records, indent=2, default=list))
    write_atomic(root / TABLES_KEY, tables_key(study) + "\n")  # last: a killed render is redone
    log.info(header + text)
    return root / "tables.md"
