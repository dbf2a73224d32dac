"""arXiv 2403.09162's layout: each fine-tuned model against the vanilla model in the same
setting (zero- or few-shot), averaged over in-domain, out-of-domain and cross-task tasks (each
task on its type's own metric: accuracy or ROUGE-L). Claims name the task sets ``in_domain``,
``out_of_domain`` and ``cross_task``.

:func:`views_tables` computes the five tables; :func:`render` writes them as markdown.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

from evidence.baselines import for_display
from evidence.views import VIEWS, view_of
from plumbing.recipes import RecipeError
from study.cells import Bootstrap, Row, study_rows
from study.spec import Study
from study.table_parts import (COLLAPSE_NOTE, MetricOf, TableKind, TaskSets, baseline_rows, collapse_footnotes,
                               collapse_mark, fmt, mean_or_blank, seeds_caption, study_bootstrap, views_places)


@dataclass
class ViewsTables:
    """The views layout's tables, as rows of cells (markdown comes in :func:`render`)."""

    tasks: list[str]
    metric_of: Callable[[str], str]
    summary: list[list] = field(default_factory=list)  # trained row: per view, score (Δ [CI]) metric
    per_task: list[list] = field(default_factory=list)  # every row and the trivial answers, per task
    classification: list[list] = field(default_factory=list)  # acc beside macro-F1, MCC, normalized acc
    generation: list[list] = field(default_factory=list)  # ROUGE-L beside BLEU
    records: list[dict[str, Any]] = field(default_factory=list)  # tables.json


def views_tables(study: Study, boot: Bootstrap, rows: list[Row]) -> ViewsTables:
    views, places = views_places()

    def metric_of(task: str) -> str:
        return views.task_types[places[task].task_type].metric

    tasks = sorted({t for r in rows for t in r.tasks() if t in places}, key=lambda t: (places[t].task_type, t))
    out = ViewsTables(tasks, metric_of)
    for baseline in baseline_rows(boot, rows, tasks, "acc"):
        out.per_task.append(["(no model)", baseline["row"], "", *[fmt(baseline.get(t)) for t in tasks]])
    for row in rows:
        out.per_task.append([row.model if row.kind == "vanilla" else f"{row.model}/{row.name}", row.setting,
                             len(row.trained_seeds()) or "-",
                             *[fmt(boot.task_score(row.sources[t], t, metric_of(t))[0]) + collapse_mark(boot, row, t)
                               if t in row.tasks() else "" for t in tasks]])
        record: dict[str, Any] = {
            "checkpoint": row.model if row.kind == "vanilla" else f"{row.model}/{row.run}",
            "fticl": row.fticl,
            "setting": row.setting,
            "seeds": row.trained_seeds(),
            **{t: boot.task_score(row.sources[t], t, metric_of(t))[0] for t in tasks if t in row.tasks()},
        }
        generated = [t for t in tasks if t in row.tasks() and metric_of(t) == "rougeL"]
        if generated:  # arXiv 2403.09162 reports BLEU beside ROUGE-L
            out.generation.append([record["checkpoint"], row.setting,
                                   *[mean_or_blank(boot, row, generated, m) for m in ("rougeL", "bleu")]])
        pairs = [t for t in tasks if t in row.tasks() and metric_of(t) == "acc"]
        if pairs:
            out.classification.append([record["checkpoint"], row.setting, *[
                fmt(boot.mean_over(row, pairs, lambda t, m=m: m, normalized=norm)[0])
                for m, norm in (("acc", False), ("f1_macro", False), ("mcc", False))],
                fmt(for_display(boot.mean_over(row, pairs, lambda t: "acc", normalized=True)[0]))])
        reference = next(
            (r for r in rows if r.model == row.model and r.kind == "vanilla" and r.setting == row.setting), None
        )
        if row.kind != "vanilla" and reference:
            out.summary.append([f"{row.model}/{row.name}", row.setting, ", ".join(row.trained_on),
                                *_view_cells(boot, row, reference, tasks, places, metric_of, record)])
        out.records.append(record)
    return out


def _view_cells(boot: Bootstrap, row: Row, reference: Row, tasks: list[str], places, metric_of,
                record: dict[str, Any]) -> list[str]:
    """Per view, the row's mean and its change against the vanilla row (recorded in ``record``)."""
    cells = []
    for view in VIEWS:
        members = [t for t in tasks if t in row.tasks() and t in reference.tasks()
                   and view_of(t, row.trained_on, places) == view]
        ours, ref = boot.mean_over(row, members, metric_of), boot.mean_over(reference, members, metric_of)
        if ours is None or ref is None:
            cells.append("")
            continue
        metrics = "/".join(sorted({metric_of(t) for t in members}))
        ci = boot.estimate([(row, 1.0), (reference, -1.0)], members, metric_of).interval()
        record[view] = {"score": ours[0], "vanilla": ref[0], "change": ours[0] - ref[0],
                        "ci": ci, "metric": metrics, "tasks": members}
        cells.append(f"{fmt(ours[0])} ({fmt(ours[0] - ref[0], ci, signed=True)}) {metrics}")
    return cells


def render(tables: ViewsTables, boot: Bootstrap, rows: list[Row], resamples: int) -> str:
    text = (
        f"Change against the vanilla model in the same setting (score (Δ [95% CI])); each task on its "
        f"type's metric. {seeds_caption(rows)} ({resamples} resamples, paired).\n\n"
        + tabulate(
            tables.summary, headers=["model", "setting", "trained on", *VIEWS], tablefmt="github",
            disable_numparse=True
        )
        + "\n\nPer task (the '(no model)' rows: trivial answers' accuracy on the same documents):\n\n"
        + tabulate(
            tables.per_task,
            headers=["model", "setting", "seeds", *[f"{t} ({tables.metric_of(t)})" for t in tables.tasks]],
            tablefmt="github",
            disable_numparse=True,
        )
        + "\n\n"
        + COLLAPSE_NOTE
        + ("\n\n" + footnotes if (footnotes := collapse_footnotes(boot, rows, tables.tasks)) else "")
        + "\n\nClassification tasks, mean over each row's scored ones: accuracy beside macro-F1, MCC and "
        "accuracy normalized to the best trivial baseline (shown clipped at 0; the claims use it unclipped):\n\n"
        + tabulate(
            tables.classification,
            headers=["model", "setting", "acc", "f1_macro", "mcc", "acc normalized"],
            tablefmt="github",
            disable_numparse=True,
        )
    )
    if tables.generation:
        text += ("\n\nGeneration tasks, mean over each row's scored ones: ROUGE-L beside BLEU (sentence BLEU per "
                 "document, 0-1; a row with any results made before BLEU was added, task version 1.0, has none):\n\n"
                 + tabulate(tables.generation, headers=["model", "setting", "rougeL", "bleu"], tablefmt="github",
                            disable_numparse=True))
    return text


class Views(TableKind):
    def table(self, study: Study, boot: Bootstrap) -> tuple[str, list[dict], list[Row]]:
        rows = study_rows(study)
        tables = views_tables(study, boot, rows)
        return render(tables, boot, rows, study.spec.table.resamples), tables.records, rows

    def metric_of(self, study: Study) -> MetricOf:
        views, places = views_places()

        def metric_of(task, metric=None):
            if metric or task not in places:
                return metric or study.spec.table.metric
            return views.task_types[places[task].task_type].metric

        return metric_of

    def task_sets(self, study: Study, claims_file: Path) -> TaskSets:
        _, places = views_places()

        def task_sets(name, involved):
            if name in ("seen", "unseen"):
                raise RecipeError(f"{claims_file}: tasks: {name} belongs to the seen/unseen "
                                  f"table; this study's sets are in_domain, out_of_domain, cross_task")
            trained = next((r.trained_on for r in involved if r.kind != "vanilla"), [])
            return sorted(
                {t for r in involved for t in r.tasks() if t in places and view_of(t, trained, places) == name}
            )

        return task_sets
