"""Tables from lm-eval result dicts (tabulate, never hand-formatted)."""
from __future__ import annotations

from typing import Any

from tabulate import tabulate

METRICS = ("acc", "f1_macro", "f1_weighted", "mcc", "missing", "rouge1", "rouge2", "rougeL")  # their order first


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
    """One row per group and task, in lm-eval's order; group members indented."""
    metrics = metric_columns(results) if metrics is None else metrics
    rows = []
    entries = {**results.get("groups", {}), **results.get("results", {})}
    n_docs = {name: info.get("effective") for name, info in results.get("n-samples", {}).items()}
    for name, entry in results.get("results", {}).items():
        label = entry.get("alias", name)
        row = [label, n_docs.get(name, "")]
        row += [_value(entries[name], m) for m in metrics]
        rows.append(row)
    return rows


def score_table(results: dict[str, Any], fmt: str = "github") -> str:
    # Only the metric columns some task reported (no `missing` without generative
    # classification, no ROUGE without generation tasks), and any metric a user's task adds.
    metrics = metric_columns(results)
    headers = ["task", "docs", *metrics]
    rows = score_rows(results, metrics)
    return tabulate(rows, headers=headers, tablefmt=fmt, floatfmt=".4f", missingval="")


def docs_scored(results: dict[str, Any]) -> int:
    return sum(int(info.get("effective", 0)) for info in results.get("n-samples", {}).values())
