"""arXiv 2411.02476's layout (Table 3): per model, the rows zero-shot, few-shot, fine-tuned
single-task, fine-tuned multi-task and each merge; the columns each seen and unseen task, the
seen and unseen means with intervals, and the change of each mean against the same model
zero-shot. Claims name the task sets ``seen`` and ``unseen``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from evidence.baselines import NORMALIZED, for_display
from evidence.measures import seen_and_unseen
from plumbing.recipes import RecipeError
from study.cells import Bootstrap, Row, study_rows
from study.plots import forgetting_arrows
from study.spec import Study
from study.table_parts import (COLLAPSE_NOTE, MetricOf, TableKind, TaskSets, baseline_rows, collapse_footnotes,
                               collapse_mark, fmt, seeds_caption, study_bootstrap)


class SeenUnseen(TableKind):
    def table(self, study: Study, boot: Bootstrap) -> tuple[str, list[dict], list[Row]]:
        return seen_unseen_table(study, boot)

    def metric_of(self, study: Study) -> MetricOf:
        def metric_of(task, metric=None):
            return metric or study.spec.table.metric

        return metric_of

    def task_sets(self, study: Study, claims_file: Path) -> TaskSets:
        seen, unseen = seen_and_unseen(study.eval.include_paths)

        def task_sets(name, involved):
            if name not in ("seen", "unseen"):
                raise RecipeError(f"{claims_file}: tasks: {name} is a view of the views table; "
                                  f"this study's sets are seen and unseen")
            return sorted(seen if name == "seen" else unseen)

        return task_sets

    def development_seen(self, study: Study) -> set[str] | None:
        return seen_and_unseen(study.eval.include_paths)[0]

    def pictures(self, records: list[dict], root: Path) -> list[str]:
        if forgetting_arrows(records, root / "forgetting"):
            return ["![zero-shot to fine-tuned and merged, seen vs unseen, normalized macro-F1](forgetting.svg)"]
        return []


def seen_unseen_table(study: Study, boot: Bootstrap | None = None) -> tuple[str, list[dict], list[Row]]:
    """arXiv 2411.02476's Table 3 shape: per-task scores, seen and unseen means with intervals and
    their change against the zero-shot vanilla row, trivial baselines first; then the same rows on
    macro-F1, MCC and the normalized score. Returns the text, one record per row, and the rows."""
    spec = study.spec.table
    seen_all, unseen_all = seen_and_unseen(study.eval.include_paths)
    rows = study_rows(study, seen=seen_all)
    boot = boot or study_bootstrap(study)
    tasks = sorted({t for r in rows for t in r.tasks()}, key=lambda t: (t not in seen_all, t not in unseen_all, t))
    seen = [t for t in tasks if t in seen_all]
    unseen = [t for t in tasks if t in unseen_all]
    records = [_seen_unseen_record(boot, rows, row, seen, unseen, spec.metric) for row in rows]
    trained = {t for c in study.checkpoints for t in c.trained_on}
    text = "\n\n".join(part for part in (
        _seen_unseen_caption(rows, seen, unseen, [t for t in seen if t not in trained], spec),
        _scores_table(boot, rows, records, seen, unseen, spec.metric),
        COLLAPSE_NOTE,
        collapse_footnotes(boot, rows, seen + unseen),
        "FT single: each seen task is scored by the single-task model trained on it; each unseen task by "
        "the mean of all single-task models. A blank cell was not scored in that setting: the row's mean "
        "covers the tasks it has, and its Δ compares only the tasks both rows scored.",
        f"Beside {spec.metric}: macro-F1 and MCC (a constant answer scores MCC 0), and macro-F1 normalized to "
        f"the best trivial baseline ((s - b) / (1 - b)), shown clipped at 0 (no better than a trivial answer) "
        f"with the interval of the unclipped score, which the claims use; means over each row's scored tasks.",
        _beside_table(records, spec.metric),
    ) if part)
    return text, records, rows


def _seen_unseen_record(boot: Bootstrap, rows: list[Row], row: Row, seen: list[str], unseen: list[str],
                        metric: str) -> dict[str, Any]:
    """One row's per-task scores, and per part (seen, unseen) its mean, other metrics, normalized
    score and change against the zero-shot vanilla row of its model, each with an interval."""
    reference = next((r for r in rows if r.model == row.model and r.kind == "vanilla"
                      and r.setting == "zero-shot"), None)
    record: dict[str, Any] = {"model": row.model, "row": row.name, "kind": row.kind, "run": row.run,
                              "setting": row.setting, "seeds": row.trained_seeds()}
    for task in seen + unseen:
        if task in row.tasks():
            record[task] = boot.task_score(row.sources[task], task, metric)[0]
            if labels := boot.collapsed_in(row, task):
                record.setdefault("collapsed", {})[task] = labels
    for part, members in (("seen", seen), ("unseen", unseen)):
        scored = [t for t in members if t in row.tasks()]
        if not scored:
            continue
        mean = boot.estimate([(row, 1.0)], scored, lambda t: metric)
        record[f"{part} mean"], record[f"{part} CI"] = mean.point, mean.interval()
        for other in dict.fromkeys(("f1_macro", "mcc", metric)):
            record[f"{part} {other}"] = boot.mean_over(row, members, lambda t, o=other: o)[0]
        normalized = boot.estimate([(row, 1.0)], scored, lambda t: NORMALIZED, normalized=True)
        record[f"{part} {NORMALIZED} normalized"] = normalized.point
        record[f"{part} {NORMALIZED} normalized CI"] = normalized.interval()
        if reference is not None and reference is not row:
            common = [t for t in members if t in row.tasks() and t in reference.tasks()]
            if common:
                change = boot.estimate([(row, 1.0), (reference, -1.0)], common, lambda t: metric)
                record[f"Δ {part}"], record[f"Δ {part} CI"] = change.point, change.interval()
    return record


def _seen_unseen_caption(rows: list[Row], seen: list[str], unseen: list[str], untrained: list[str], spec) -> str:
    untrained_note = (f"In the seen group but trained on by no run of this study: {', '.join(untrained)} "
                      f"(the seen means include them; the claims list their tasks). " if untrained else "")
    return (f"Metric: {spec.metric}; seen = {', '.join(seen)}; unseen = {', '.join(unseen)}. {untrained_note}"
            f"{seeds_caption(rows)} ({spec.resamples} resamples, paired for Δ). The '(no model)' rows are "
            f"trivial answers on the same documents: the slice's majority label, the training split's most "
            f"frequent label, uniform random guessing, guessing with the training split's label shares.")


def _scores_table(boot: Bootstrap, rows: list[Row], records: list[dict], seen: list[str], unseen: list[str],
                  metric: str) -> str:
    """Per-task scores and part means; the trivial baselines' rows first."""
    def part_mean(baseline: dict, members: list[str]) -> str:
        values = [baseline[t] for t in members if t in baseline]
        return fmt(float(np.mean(values)) if values else None)

    short = {t: t.removeprefix("fin_") for t in seen + unseen}
    headers = ["model", "row", "seeds", *[short[t] for t in seen], "seen mean [95% CI]", "Δ seen vs zero-shot",
               *[short[t] for t in unseen], "unseen mean [95% CI]", "Δ unseen vs zero-shot"]
    table = [["(no model)", b["row"], "", *[fmt(b.get(t)) for t in seen], part_mean(b, seen), "",
              *[fmt(b.get(t)) for t in unseen], part_mean(b, unseen), ""]
             for b in baseline_rows(boot, rows, seen + unseen, metric)]
    for row, r in zip(rows, records):
        table.append([
            r["model"], r["row"], len(r["seeds"]) or "-",
            *[fmt(r.get(t)) + collapse_mark(boot, row, t) for t in seen],
            fmt(r.get("seen mean"), r.get("seen CI")), fmt(r.get("Δ seen"), r.get("Δ seen CI"), signed=True),
            *[fmt(r.get(t)) + collapse_mark(boot, row, t) for t in unseen],
            fmt(r.get("unseen mean"), r.get("unseen CI")), fmt(r.get("Δ unseen"), r.get("Δ unseen CI"), signed=True),
        ])
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def _beside_table(records: list[dict], metric: str) -> str:
    """Each row's part means on the other metrics, and the normalized score (clipped for display only)."""
    def shown(value, ci):
        return "" if value is None else f"{for_display(value):.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"

    metrics = list(dict.fromkeys((metric, "f1_macro", "mcc")))
    parts = ("seen", "unseen")
    table = [[r["model"], r["row"], *[fmt(r.get(f"{part} {m}")) for part in parts for m in metrics],
              *[shown(r.get(f"{part} {NORMALIZED} normalized"), r.get(f"{part} {NORMALIZED} normalized CI"))
                for part in parts],
              len(r.get("collapsed", {}))] for r in records]
    headers = ["model", "row", *[f"{part} {m}" for part in parts for m in metrics],
               *[f"{part} {NORMALIZED} normalized" for part in parts], "collapsed cells"]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)
