"""Tables from lm-eval result dicts (tabulate, never hand-formatted)."""
from __future__ import annotations

from typing import Any

from tabulate import tabulate

METRICS = ("acc", "f1_macro", "f1_weighted", "mcc", "missing")


def _value(entry: dict[str, Any], metric: str) -> float | None:
    value = entry.get(f"{metric},none")
    return value if isinstance(value, (int, float)) else None


def score_rows(results: dict[str, Any]) -> list[list[Any]]:
    """One row per group and task, in lm-eval's order; group members indented."""
    rows = []
    entries = {**results.get("groups", {}), **results.get("results", {})}
    n_docs = {name: info.get("effective") for name, info in results.get("n-samples", {}).items()}
    for name, entry in results.get("results", {}).items():
        label = entry.get("alias", name)
        row = [label, n_docs.get(name, "")]
        row += [_value(entries[name], m) for m in METRICS]
        rows.append(row)
    return rows


def score_table(results: dict[str, Any], fmt: str = "github") -> str:
    headers = ["task", "docs", *METRICS]
    rows = score_rows(results)
    # Drop the `missing` column when no generative task ran.
    if all(row[-1] is None for row in rows):
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    return tabulate(rows, headers=headers, tablefmt=fmt, floatfmt=".4f", missingval="")


def docs_scored(results: dict[str, Any]) -> int:
    return sum(int(info.get("effective", 0)) for info in results.get("n-samples", {}).values())
