"""Tables from lm-eval result dicts (tabulate, never hand-formatted)."""
from __future__ import annotations

from typing import Any

from tabulate import tabulate

from evidence.baselines import NORMALIZED, for_display  # the normalized column
from evidence.records import run_record

METRICS = ("acc", "f1_macro", "f1_weighted", "mcc", "acc_norm", "f1_macro_norm", "f1_weighted_norm", "mcc_norm",
           "missing", "rouge1", "rouge2", "rougeL", "bleu")  # their order first
# Printed by default: the acc_norm rule's accuracy, macro-F1 and MCC stand beside the summed
# rule's; every metric is in the results file.
HIDDEN_BY_DEFAULT = ("f1_weighted_norm",)


def metric_columns(results: dict[str, Any]) -> list[str]:
    """Every metric some task reported: the suite's in their usual order, then any other
    (a user task's own ``metric_list``) in the order the results hold them."""
    found: list[str] = []
    for entry in {**results.get("groups", {}), **results.get("results", {})}.values():
        for key, value in entry.items():
            name, sep, _ = key.partition(",")
            if sep and not name.endswith("_stderr") and isinstance(value, (int, float)) and name not in found:
                found.append(name)
    return [m for m in METRICS if m in found] + [m for m in found if m not in METRICS]


def _value(entry: dict[str, Any], metric: str) -> float | None:
    value = entry.get(f"{metric},none")
    return value if isinstance(value, (int, float)) else None




def score_rows(results: dict[str, Any], metrics: list[str] | None = None) -> list[list[Any]]:
    """One row per group and task, in lm-eval's order; under each classification task, what
    its trivial answers score on the same documents (evidence/baselines.py)."""
    metrics = metric_columns(results) if metrics is None else metrics
    baselines = run_record(results).get("baselines") or {}
    leads = run_record(results).get("generation_baselines") or {}
    rows = []
    entries = {**results.get("groups", {}), **results.get("results", {})}
    n_docs = {name: info.get("effective") for name, info in results.get("n-samples", {}).items()}
    for name, entry in results.get("results", {}).items():
        label = entry.get("alias", name)
        found = baselines.get(name)
        if found and found.get("collapsed"):
            label += " (collapsed)"
        row = [label, n_docs.get(name, "")]
        row += [_value(entries[name], m) for m in metrics]
        row.append(for_display((found or {}).get("normalized", {}).get(NORMALIZED)))
        rows.append(row)
        for baseline, scores in (found or {}).get("baselines", {}).items():
            answer = (found.get("answers") or {}).get(baseline)
            rows.append([f"· {baseline}" + (f": {answer}" if answer else ""), ""]
                        + [scores.get(m) for m in metrics] + [None])
        for baseline, scores in leads.get(name, {}).get("baselines", {}).items():  # a generation task's
            rows.append([f"· {baseline} of the input", ""] + [scores.get(m) for m in metrics] + [None])
    return rows


def shares(counts: dict[str, int], docs: int) -> str:
    """``'up' 97%, 'down' 3%``: label shares, most common first."""
    return ", ".join(f"{label!r} {count / docs:.0%}" for label, count in counts.items()) if docs else ""


def collapse_notes(results: dict[str, Any]) -> list[str]:
    """One line per task whose answers are far from the gold labels with no positive MCC: the
    predicted and the gold label shares side by side."""
    notes = []
    for name, found in (run_record(results).get("baselines") or {}).items():
        if found.get("collapsed"):
            docs = found["docs"]
            gold = f"; gold: {shares(found['gold'], docs)}" if found.get("gold") else ""
            distance = f" (distance {found['distance']:.2f}, MCC {found['mcc']:+.2f})" if "distance" in found else ""
            notes.append(f"{name}: answers {shares(found['predicted'], docs)}{gold}{distance}")
    return notes


def unsampled_notes(results: dict[str, Any]) -> list[str]:
    """Labels a stratified slice gave no document (it keeps the task's label prior)."""
    missing = (run_record(results).get("slice") or {}).get("unsampled_labels") or {}
    return [f"{task}: {len(labels)} of its labels have no document in the slice ({', '.join(labels)})"
            for task, labels in missing.items()]


def score_table(results: dict[str, Any], fmt: str = "github") -> str:
    # Only the metric columns some task reported (no `missing` without generative
    # classification, no ROUGE without generation tasks), and any metric a user's task adds.
    metrics = [m for m in metric_columns(results) if m not in HIDDEN_BY_DEFAULT]
    has_baselines = bool(run_record(results).get("baselines"))
    headers = ["task", "docs", *metrics] + ([f"{NORMALIZED} normalized"] if has_baselines else [])
    rows = score_rows(results, metrics)
    if not has_baselines:
        rows = [row[:-1] for row in rows]
    table = tabulate(rows, headers=headers, tablefmt=fmt, floatfmt=".4f", missingval="")
    if has_baselines:
        table += ("\n\nUnder each classification task: what answering the slice's most common label "
                  "(majority), the training split's most common label (train prior), a uniformly random label, "
                  "or a label drawn with the training split's label shares (prior-matched) scores on the same "
                  f"documents. {NORMALIZED} normalized = (score - b) / (1 - b), b the best of them; shown clipped "
                  "at 0 (no better than a trivial answer), while comparisons and the board use it unclipped. "
                  "*_norm: lm-eval's acc_norm rule (the label with the highest log-likelihood per character).")
        notes = collapse_notes(results)
        if notes:
            table += ("\nCollapsed (answers far from the gold labels, total-variation distance >= 0.3, with "
                      "MCC < 0.1):\n" + "\n".join(f"- {n}" for n in notes))
    if run_record(results).get("generation_baselines"):
        table += ("\n\nUnder each generation task: what copying the input's first sentence, or its first three, "
                  "scores on the same documents (evidence/generation_baselines.py).")
    missing = unsampled_notes(results)
    if missing:
        table += "\nThe slice keeps each task's label prior, so rare labels can be absent:\n" + "\n".join(
            f"- {n}" for n in missing)
    leaks = contamination_notes(results)
    if leaks:
        table += "\n" + "\n".join(leaks)
    return table


def contamination_notes(results: dict[str, Any]) -> list[str]:
    """What the checkpoint may have seen: its lineage, and per task the contaminated share with
    the clean-subset score (finharness contamination prints the whole table)."""
    record = run_record(results)
    lineage = record.get("lineage")
    if not lineage:
        return []
    lines = [f"Training lineage: {lineage.get('note')}."]
    for task, found in (record.get("contamination") or {}).items():
        flagged = found.get("flagged", {})
        parts = ", ".join(f"{len(ids)} in {source}" for source, ids in flagged.items())
        score = next(iter(found.get("scores") or []), None)
        clean = ""
        if score and score.get("clean") is not None:
            low, high = score["interval"] or (float("nan"), float("nan"))
            clean = (f"; {score['metric']} full {score['full']:.4f}, clean {score['clean']:.4f} "
                     f"(clean - full {score['difference']:+.4f} [{low:+.4f}, {high:+.4f}])")
        lines.append(f"- {task}: {found.get('share', 0):.1%} of {found.get('docs')} scored documents seen "
                     f"({parts}){clean}")
    skipped = {t: n for t, n in (record.get("fewshot_pool_skipped") or {}).items() if n}
    if skipped:
        lines.append("Few-shot examples never repeat a test document; pool rows skipped: "
                     + ", ".join(f"{t} {n}" for t, n in skipped.items()))
    return lines


def docs_scored(results: dict[str, Any]) -> int:
    return sum(int(info.get("effective", 0)) for info in results.get("n-samples", {}).values())
