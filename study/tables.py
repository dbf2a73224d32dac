"""A study's tables and claim verdicts, computed from its stored per-sample logs (never from
typed-in numbers). Rows and their bootstrap live in ``study.cells``; the claims in
``study.claims``. Every table shows the trivial answers' scores on the same documents as
'(no model)' rows, marks collapsed cells, and gives macro-F1, MCC and the normalized score
beside the paper's metric.

- ``seen_unseen`` (arXiv 2411.02476, Table 3 layout): per model, the rows zero-shot,
  few-shot, fine-tuned single-task, fine-tuned multi-task and each merge; the columns each
  seen and unseen task, the seen and unseen means with intervals, and the change of each
  mean against the same model zero-shot.
- ``views`` (arXiv 2403.09162): each fine-tuned model against the vanilla model in the
  same setting (zero- or few-shot), averaged over in-domain, out-of-domain and cross-task
  tasks (each task on its type's own metric: accuracy or ROUGE-L).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from plumbing.atomic import write_atomic
from plumbing.folders import is_finished, read_manifest
from plumbing.logs import log
from plumbing.recipes import RecipeError
from study.cells import Bootstrap, Row, study_rows
from study.spec import Study


def fmt(value: float | None, ci: tuple[float, float] | None = None, signed: bool = False) -> str:
    if value is None:
        return ""
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    return text + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if signed else f" [{ci[0]:.3f}, {ci[1]:.3f}]") if ci else text


def seeds_caption(rows: Sequence[Row]) -> str:
    counts = sorted({len(r.trained_seeds()) for r in rows if r.kind != "vanilla"})
    text = ("Intervals: 95%, t-type, from two variance components: documents (paired bootstrap, the same draws for "
            "every row) and training seeds (each trained row's between-seed variance over its seed count), with "
            "Welch-Satterthwaite degrees of freedom")
    if not counts or counts == [1]:
        return text + ". One training seed per trained row: the intervals do not cover training noise"
    return text + f" ({'/'.join(map(str, counts))} seeds per trained row; the 'seeds' column gives each row's)"


def _baseline_rows(boot: Bootstrap, rows: Sequence[Row], tasks: Sequence[str], metric: str) -> list[dict]:
    """The trivial answers' scores per task (from the logged gold labels), one record per baseline."""
    found: dict[str, dict[str, float]] = {}
    for task in tasks:
        folder = next((f for r in rows for fs in r.sources.get(task, {}).values() for f in fs), None)
        if folder is None:
            continue
        for name, value in boot.baselines(folder, task, metric).items():
            found.setdefault(name, {})[task] = value
    return [{"row": name, **scores} for name, scores in found.items()]


def _collapse_mark(boot: Bootstrap, row: Row, task: str) -> str:
    return " †" if boot.collapsed_in(row, task) else ""


COLLAPSE_NOTE = ("† collapsed: the answers' label shares are far from the gold ones (total-variation distance >= "
                 "0.3) with no positive MCC (below 0.1), for at least one of the cell's checkpoints; the score then "
                 "says how common the answered labels are, not what the model learned. A classifier that predicts "
                 "the gold shares is never marked, however imbalanced the slice.")


def collapse_footnotes(boot: Bootstrap, rows: Sequence[Row], tasks: Sequence[str]) -> str:
    """Per collapsed cell: the predicted and the gold label shares side by side."""
    from evidence.report import shares

    lines = []
    for row in rows:
        for task in tasks:
            for seed, folders in sorted(row.sources.get(task, {}).items(), key=lambda kv: (kv[0] is None, kv[0])):
                for folder in folders:
                    found = boot.check(folder, task)
                    if found is None or not found.collapsed:
                        continue
                    which = f"{row.model}/{row.name}" + (f" seed {seed}" if seed is not None else "")
                    lines.append(
                        f"- {which}, {task}: answers {shares(found.predicted, found.docs)}; gold "
                        f"{shares(found.gold, found.docs)} (distance {found.distance:.2f}, MCC {found.mcc:+.2f})"
                    )
    return "\n".join(lines)


def study_bootstrap(study: Study) -> Bootstrap:
    """The study's one reader of scores: its table's resamples, seed and trivial answers."""
    spec = study.spec.table
    return Bootstrap(spec.resamples, spec.seed, study.eval.include_paths,
                     generation_baseline=spec.generation_baseline)


def seen_unseen_table(study: Study, boot: Bootstrap | None = None) -> tuple[str, list[dict], list[Row]]:
    """arXiv 2411.02476's Table 3 shape: per-task scores, seen and unseen means with intervals and
    their change against the zero-shot vanilla row, trivial baselines first; then the same rows on
    macro-F1, MCC and the normalized score. Returns the text, one record per row, and the rows."""
    from evidence.measures import seen_and_unseen

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
    from evidence.baselines import NORMALIZED

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
             for b in _baseline_rows(boot, rows, seen + unseen, metric)]
    for row, r in zip(rows, records):
        table.append([
            r["model"], r["row"], len(r["seeds"]) or "-",
            *[fmt(r.get(t)) + _collapse_mark(boot, row, t) for t in seen],
            fmt(r.get("seen mean"), r.get("seen CI")), fmt(r.get("Δ seen"), r.get("Δ seen CI"), signed=True),
            *[fmt(r.get(t)) + _collapse_mark(boot, row, t) for t in unseen],
            fmt(r.get("unseen mean"), r.get("unseen CI")), fmt(r.get("Δ unseen"), r.get("Δ unseen CI"), signed=True),
        ])
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def _beside_table(records: list[dict], metric: str) -> str:
    """Each row's part means on the other metrics, and the normalized score (clipped for display only)."""
    from evidence.baselines import NORMALIZED, for_display

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


def _views_places():
    from evidence.views import load_views, place_tasks
    from fin_tasks.index import task_manager

    views = load_views()
    return views, place_tasks(views, task_manager().task_index)


def _mean_or_blank(boot: Bootstrap, row: Row, tasks: Sequence[str], metric: str) -> str:
    try:
        found = boot.mean_over(row, tasks, lambda t: metric)
    except ValueError:  # a per-sample log from before the metric existed
        return ""
    return fmt(found[0]) if found else ""


def views_table(study: Study, boot: Bootstrap | None = None) -> tuple[str, list[dict], list[Row]]:
    from evidence.baselines import for_display
    from evidence.views import VIEWS, view_of

    spec = study.spec.table
    views, places = _views_places()
    rows = study_rows(study)
    boot = boot or study_bootstrap(study)

    def metric_of(task: str) -> str:
        return views.task_types[places[task].task_type].metric

    tasks = sorted({t for r in rows for t in r.tasks() if t in places}, key=lambda t: (places[t].task_type, t))
    per_task, summary, records, classification, generation = [], [], [], [], []
    for baseline in _baseline_rows(boot, rows, tasks, "acc"):
        per_task.append(["(no model)", baseline["row"], "", *[fmt(baseline.get(t)) for t in tasks]])
    for row in rows:
        per_task.append([row.model if row.kind == "vanilla" else f"{row.model}/{row.name}", row.setting,
                         len(row.trained_seeds()) or "-",
                         *[fmt(boot.task_score(row.sources[t], t, metric_of(t))[0]) + _collapse_mark(boot, row, t)
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
            generation.append([record["checkpoint"], row.setting,
                               *[_mean_or_blank(boot, row, generated, m) for m in ("rougeL", "bleu")]])
        pairs = [t for t in tasks if t in row.tasks() and metric_of(t) == "acc"]
        if pairs:
            classification.append([record["checkpoint"], row.setting, *[
                fmt(boot.mean_over(row, pairs, lambda t, m=m: m, normalized=norm)[0])
                for m, norm in (("acc", False), ("f1_macro", False), ("mcc", False))],
                fmt(for_display(boot.mean_over(row, pairs, lambda t: "acc", normalized=True)[0]))])
        reference = next(
            (r for r in rows if r.model == row.model and r.kind == "vanilla" and r.setting == row.setting), None
        )
        if row.kind != "vanilla" and reference:
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
            summary.append([f"{row.model}/{row.name}", row.setting, ", ".join(row.trained_on), *cells])
        records.append(record)
    text = (
        f"Change against the vanilla model in the same setting (score (Δ [95% CI])); each task on its "
        f"type's metric. {seeds_caption(rows)} ({spec.resamples} resamples, paired).\n\n"
        + tabulate(
            summary, headers=["model", "setting", "trained on", *VIEWS], tablefmt="github", disable_numparse=True
        )
        + "\n\nPer task (the '(no model)' rows: trivial answers' accuracy on the same documents):\n\n"
        + tabulate(
            per_task,
            headers=["model", "setting", "seeds", *[f"{t} ({metric_of(t)})" for t in tasks]],
            tablefmt="github",
            disable_numparse=True,
        )
        + "\n\n"
        + COLLAPSE_NOTE
        + ("\n\n" + footnotes if (footnotes := collapse_footnotes(boot, rows, tasks)) else "")
        + "\n\nClassification tasks, mean over each row's scored ones: accuracy beside macro-F1, MCC and "
        "accuracy normalized to the best trivial baseline (shown clipped at 0; the claims use it unclipped):\n\n"
        + tabulate(
            classification,
            headers=["model", "setting", "acc", "f1_macro", "mcc", "acc normalized"],
            tablefmt="github",
            disable_numparse=True,
        )
    )
    if generation:
        text += ("\n\nGeneration tasks, mean over each row's scored ones: ROUGE-L beside BLEU (sentence BLEU per "
                 "document, 0-1; a row with any results made before BLEU was added, task version 1.0, has none):\n\n"
                 + tabulate(generation, headers=["model", "setting", "rougeL", "bleu"], tablefmt="github",
                            disable_numparse=True))
    return text, records, rows


def deviation_section(study: Study) -> str:
    """Each fine-tuned or merged checkpoint's distance from its vanilla model (the study's
    ``deviation:`` spec); empty when the study measures none."""
    from harness.deviation import read
    from study.spec import deviation_file

    spec = study.spec.deviation
    if spec is None:
        return ""
    rows = []
    for point in study.checkpoints:
        found = read(deviation_file(study.root, point)) if point.role != "vanilla" else None
        if found is None:
            continue
        layers = [v for g, v in found.layers.items() if g.startswith("layer")]

        def num(value, fmt):
            return format(value, fmt) if value is not None else ""

        rows.append([point.label, point.fticl, ", ".join(point.trained_on), f"{found.relative_weight_change:.5f}",
                     f"{max(layers):.5f}" if layers else "", num(found.kl, ".4f"), num(found.kl_with_eos, ".4f"),
                     num(found.eos_shift, "+.4f"),
                     f"{found.eos_end_base:.3f} -> {found.eos_end_tuned:.3f}" if found.eos_end_base is not None else "",
                     found.kl_tokens, ", ".join(found.kl_tasks), found.kl_scope])
    if not rows:
        return ""
    where = f"{', '.join(spec.tasks)}" if spec.tasks else "the tasks each checkpoint was trained on (in-domain)"
    return ("\n\n### Deviation from the vanilla model\n\n"
            f"Relative weight change ||W - W_vanilla|| / ||W_vanilla|| (whole model; the most-changed decoder layer), "
            f"and KL(vanilla || model) in nats per token at the positions that predict a reference-answer token of "
            f"{spec.per_task} seeded test documents each of {where}, teacher forced: over the vocabulary without "
            f"the end-of-sequence token (both renormalized; 'answer KL'), and over the whole vocabulary. A model "
            f"tuned to stop after a one-word label moves its mass to EOS wherever a longer answer goes on; that "
            f"shift is shown apart: the mean change of p(EOS) inside the answer, and p(EOS) right after it "
            f"(vanilla -> model). arXiv 2403.09162's 'FTICL deviates less' reads as: FTICL rows lower than the "
            f"plain fine-tune of the same task in answer KL. One number per run and training seed; not a tested "
            f"claim (no claim was declared for it before the runs). Rows whose scope is 'every token of prompt and "
            f"answer' were measured before answer-token deviation existed.\n\n"
            + tabulate(rows, headers=["checkpoint", "FTICL k", "trained on", "weight change", "max layer",
                                      "answer KL", "KL with EOS", "p(EOS) shift in answer", "p(EOS) after answer",
                                      "answer tokens", "documents of", "scope"],
                       tablefmt="github", disable_numparse=True))


def _cell_section(rows: Sequence[Row], cell, title: str, caption: str) -> str:
    """A rows x tasks section: ``cell(row, task)`` gives each cell's text (None: no value); the
    section is left out when no cell has a value."""
    tasks = sorted({t for r in rows for t in r.sources})
    body, shown = [], False
    for row in rows:
        cells = []
        for task in tasks:
            text = cell(row, task) if row.sources.get(task) else None
            shown |= text is not None
            cells.append(text or "")
        body.append([row.model, row.name, row.setting, *cells])
    if not shown:
        return ""
    return (f"\n\n## {title}\n\n{caption}\n\n"
            + tabulate(body, headers=["model", "row", "setting", *tasks], tablefmt="github", disable_numparse=True))


def contamination_section(boot: Bootstrap, rows: Sequence[Row]) -> str:
    """Per cell, two shares of the scored documents: those in the checkpoint's training lineage
    (as its evaluation recorded it; '?' where the lineage is unknown), and those duplicated in
    the dataset's own few-shot pool or other splits (from the task's data: the same for every
    row, vanilla included)."""
    recorded = []

    def cell(row: Row, task: str) -> str:
        folders = [f for folders in row.sources[task].values() for f in folders]
        docs = boot.documents(task) or None
        lineage = [boot.flagged(f, task, "lineage") for f in folders]
        lineage_shares = [len(ids) / docs for ids in lineage if ids is not None and docs]
        duplicates = boot.dataset_duplicates(folders[0], task) if folders else None
        recorded.append(bool(lineage_shares) or duplicates is not None)
        seen = f"{np.mean(lineage_shares):.0%}" if lineage_shares else "?"
        dup = f"{len(duplicates) / docs:.0%}" if duplicates is not None and docs else "?"
        return f"{seen} / {dup}"

    section = _cell_section(rows, cell, "What the checkpoints may have seen", (
        "Two shares of each cell's scored documents: **in the checkpoint's training lineage** (its text, or a word "
        "8-gram of it, was among the texts finharness fine-tuned it on; mean over seeds; '?': lineage unknown, "
        "as for a vanilla model, whose pretraining is not known) / **duplicated in the dataset itself** (in the "
        "task's few-shot pool or its other splits: a property of the data, the same for every row). `finharness "
        "contamination` lists the documents; a claim with `subset: clean` leaves out both kinds."))
    return section if any(recorded) else ""


def discrimination_section(boot: Bootstrap, rows: Sequence[Row]) -> str:
    """Per cell, the macro one-vs-rest AUC of the label log-likelihoods with its 95% interval
    (evidence/discrimination.py): 0.5 ranks documents no better than chance, whatever the score."""
    from evidence.stats import percentile_interval

    def cell(row: Row, task: str) -> str | None:
        found = boot.row_auc(row, [task])
        if found is None:
            return None
        finite = found[1][np.isfinite(found[1])]
        low, high = percentile_interval(finite) if len(finite) else (float("nan"), float("nan"))
        return f"{found[0]:.3f}{'*' if task in row.trained_on else ''} [{low:.3f}, {high:.3f}]"

    return _cell_section(rows, cell, "Discrimination", (
        "Macro one-vs-rest AUC of the label log-likelihoods per cell, with its 95% bootstrap interval over "
        "documents (mean over seeds): 0.5 ranks documents no better than chance, so a cell can score above a "
        "trivial answer by matching the label prior while learning nothing. * marks the tasks the row was "
        "trained on; a claim whose treatment does not clear 0.5 on them is 'not testable: the treatment learned "
        "no discrimination'."))


def table_metric(study: Study):
    """``(task, claim_metric) -> metric``: a claim's own metric, else the table's (the study's
    metric, or in a views study each task type's)."""
    if study.spec.table.kind == "seen_unseen":
        def metric_of(task, metric=None):
            return metric or study.spec.table.metric

        return metric_of
    views, places = _views_places()

    def metric_of(task, metric=None):
        if metric or task not in places:
            return metric or study.spec.table.metric
        return views.task_types[places[task].task_type].metric

    return metric_of


def calibrated_section(boot: Bootstrap, rows: Sequence[Row], metric_of) -> str:
    """Per cell, the normalized score under the argmax rule and under batch calibration
    (evidence/calibration.py), side by side: a gain in the first that the second does not keep
    is a moved decision threshold, not learning."""
    from fin_tasks.common.metrics import BATCH_CALIBRATED, base_metric
    from study.claims import RULE_METRICS

    def cell(row: Row, task: str) -> str | None:
        metric = base_metric(metric_of(task))
        if metric not in RULE_METRICS:
            return None
        folders = [f for by_seed in row.sources[task].values() for f in by_seed]
        try:
            plain = np.mean([boot.score(f, task, metric, normalized=True)[0] for f in folders])
            calibrated = np.mean([boot.score(f, task, metric + BATCH_CALIBRATED, normalized=True)[0] for f in folders])
        except ValueError:  # no per-label log-likelihoods (a generated answer)
            return None
        return f"{plain:+.3f} / {calibrated:+.3f}"

    return _cell_section(rows, cell, "Argmax and calibrated", (
        "Per cell, the normalized score (0 = the best trivial answer; unclipped) under the argmax rule the tables "
        "use / under batch calibration (each checkpoint's label posteriors divided by their mean over the task's "
        "documents, then argmax; no gold label used), mean over seeds. A gain the calibrated column does not keep "
        "came from moving the decision threshold. The Discrimination section above gives the threshold-free AUC."))


def claim_verdicts(study: Study, rows: list[Row], boot: Bootstrap):
    """The study folder's claims.yaml decided on its rows (None when the folder has none)."""
    from study.claims import CLAIMS_FILE, decide, load_claims, locked_under_current_rules

    claims = load_claims(study.folder)
    if claims is None:
        return None, []
    metric_of = table_metric(study)
    if study.spec.table.kind == "seen_unseen":
        from evidence.measures import seen_and_unseen

        seen, unseen = seen_and_unseen(study.eval.include_paths)

        def task_sets(name, involved):
            if name not in ("seen", "unseen"):
                raise RecipeError(f"{Path(study.folder) / CLAIMS_FILE}: tasks: {name} is a view of the views table; "
                                  f"this study's sets are seen and unseen")
            return sorted(seen if name == "seen" else unseen)
    else:
        from evidence.views import view_of

        views, places = _views_places()

        def task_sets(name, involved):
            if name in ("seen", "unseen"):
                raise RecipeError(f"{Path(study.folder) / CLAIMS_FILE}: tasks: {name} belongs to the seen/unseen "
                                  f"table; this study's sets are in_domain, out_of_domain, cross_task")
            trained = next((r.trained_on for r in involved if r.kind != "vanilla"), [])
            return sorted(
                {t for r in involved for t in r.tasks() if t in places and view_of(t, trained, places) == name}
            )

    return claims, decide(claims, rows, boot, metric_of, task_sets, str(Path(study.folder) / CLAIMS_FILE),
                          current=locked_under_current_rules(study.root), development=development_rows(study))


def development_rows(study: Study):
    """The study's development rows (eval sets with ``split: development``) with their own
    bootstrap, or None when it has none finished: its gates then fall back to the test documents."""
    from study.claims import Development

    if not any(step.split == "development" for step in study.evals):
        return None
    seen = None
    if study.spec.table.kind == "seen_unseen":
        from evidence.measures import seen_and_unseen

        seen = seen_and_unseen(study.eval.include_paths)[0]
    rows = study_rows(study, seen=seen, split="development")
    return Development(rows, study_bootstrap(study)) if rows else None


def run_record(study: Study, boot: Bootstrap, verdicts):
    """This run for the record: its lock, the documents its claims read, its evaluations, its verdicts."""
    from plumbing.folders import MANIFEST
    from study.claims import read_lock
    from study.record import RunRecord, documents_digest, evidence_digest

    lock = read_lock(study.root) or {}
    root = Path(study.root)
    manifests = {str(Path(step.folder).relative_to(root)): (Path(step.folder) / MANIFEST).read_bytes()
                 for step in study.evals if is_finished(step.folder, "evaluation")}
    finished = [json.loads(data).get("finished_at") for data in manifests.values()]
    rules = verdicts[0].rules if verdicts else str(lock.get("rules") or "")
    return RunRecord(study=study.spec.name, full=study.full, recorded=lock.get("recorded"), rules=rules,
                     documents=documents_digest(boot.scored_documents()), evidence=evidence_digest(manifests),
                     verdicts={v.id: v.verdict for v in verdicts},
                     readings={v.id: v.reading for v in verdicts if v.reading}, run=lock.get("run"),
                     finished=max((f for f in finished if isinstance(f, str)), default=None))


TABLES_KEY = "tables.key"


def tables_key(study: Study) -> str:
    """What the tables are made from: the table spec, the finished evaluations (their done
    markers' contents) and this module's code. Unchanged key: the tables are current."""
    import hashlib

    digest = hashlib.sha256()
    here = Path(__file__).parent
    for code in ("tables.py", "cells.py", "claims.py", "record.py"):
        digest.update((here / code).read_bytes())
    claims = Path(study.folder) / "claims.yaml"
    digest.update(claims.read_bytes() if claims.is_file() else b"no claims")
    lock = Path(study.root) / "claims.lock.json"
    digest.update(lock.read_bytes() if lock.is_file() else b"no lock")
    deviations = Path(study.root) / "deviation"
    for measured in sorted(deviations.glob("*.json")) if deviations.is_dir() else ():
        digest.update(measured.name.encode() + measured.read_bytes())
    from study.record import record_files

    for name, data in record_files().items():  # a run newly put on the record is listed
        digest.update(name.encode() + b"\0" + data)
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
    spec = study.spec.table
    boot = study_bootstrap(study)
    text, records, rows = (seen_unseen_table if spec.kind == "seen_unseen" else views_table)(study, boot)
    text += deviation_section(study)
    text += discrimination_section(boot, rows)
    text += calibrated_section(boot, rows, table_metric(study))
    text += contamination_section(boot, rows)
    claims, verdicts = claim_verdicts(study, rows, boot)
    root = Path(study.root)
    if claims is not None:
        from study.claims import claims_table, preregistration_note
        from study.record import others, record_section, write_run

        this = run_record(study, boot, verdicts)
        text = ("## Claims\n\n" + claims_table(verdicts, claims, preregistration_note(study.folder, study.root))
                + "\n\n### Every run on record\n\n" + record_section(this, others(this))
                + "\n\n## Tables\n\n" + text)
        write_run(root, this)
    from study.plots import forest_plot, forgetting_arrows, loss_curves
    from training.run_folder import read_log

    pictures = []
    if verdicts:
        forest_plot(verdicts, root / "claims")
        pictures.append("![each claim's effect with its 95% interval](claims.svg)")
    if spec.kind == "seen_unseen" and forgetting_arrows(records, root / "forgetting"):
        pictures.append("![zero-shot to fine-tuned and merged, seen vs unseen, normalized macro-F1](forgetting.svg)")
    if loss_curves({r.name: read_log(r.run_dir()) for r in study.train_recipes}, root / "loss"):
        pictures.append("![training loss per run](loss.svg)")
    if pictures:
        text = "\n\n".join(pictures) + "\n\n" + text
    from study.spec import family_note, model_families

    note = family_note(model_families(study))
    if note:
        text = f"**{note}**\n\n" + text
    header = f"# {study.spec.name}{' (--full)' if study.full else ''}: {study.spec.paper}\n\n"
    write_atomic(root / "tables.md", header + text + "\n")
    write_atomic(root / "tables.json", json.dumps(records, indent=2, default=list))
    write_atomic(root / "claims.json", json.dumps([v.as_json() for v in verdicts], indent=2, default=list))
    write_atomic(root / TABLES_KEY, tables_key(study) + "\n")  # last: a killed render is redone
    log.info(header + text)
    return root / "tables.md"
