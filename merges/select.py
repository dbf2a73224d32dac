"""Choose a sweep's point on development rows, never on a test document.

Each merged point is scored with ``finharness eval --split development`` on the chosen
tasks (each task's validation rows that repeat no test document: the packaged splits
overlap, and a weight chosen on a row that is also a test document has seen the test); the
point with the highest mean (tasks averaged, as the papers do) is recorded in
``<sweep>/selection.json`` with every point's scores. The test split is then scored once,
on the chosen point only.
"""
from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

from evidence.measures import read_scores
from plumbing.atomic import write_atomic
from plumbing.folders import building, is_finished


def score_on_development(folder: Path, out: Path, tasks: list[str], limit: int | None,
                        batch_size: int | str, device: str | None) -> Path:
    """Development-row results of one merged checkpoint in ``out`` (kept: a re-run reuses them)."""
    from harness.evaluate import EvalRequest, run_eval

    if is_finished(out, "evaluation"):
        return out
    with building(out, "evaluation") as build:
        run_eval(EvalRequest(model=str(folder), tasks=tasks, limit=limit, batch_size=batch_size, device=device,
                             output_path=build.path, split="development"))
        build.record = {"model": str(folder), "tasks": tasks, "limit": limit, "split": "development"}
    return out


def select_point(folders: list[Path], tasks: list[str], metric: str = "acc", limit: int | None = None,
                 batch_size: int | str = 8, device: str | None = None) -> dict:
    """Score every point on development rows; write and return the selection."""
    if len(folders) < 2:
        raise ValueError("--select_on needs a sweep (a recipe with `sweep:`): there is one merge, nothing to choose")
    root = folders[0].parent
    rows = []
    for folder in folders:
        out = score_on_development(folder, root / "development" / folder.name, tasks, limit, batch_size, device)
        scores = read_scores(out, metric)
        if not scores:
            raise ValueError(f"{out}: no task reported {metric!r}")
        rows.append({"point": folder.name, "folder": str(folder), **point_parameters(folder),
                     f"mean {metric}": mean(scores.values()), **scores})
    best = max(rows, key=lambda r: r[f"mean {metric}"])
    selection = {"split": "development", "metric": metric, "tasks": tasks, "limit": limit,
                 "best": best["folder"], "points": rows}
    write_atomic(root / "selection.json", json.dumps(selection, indent=2))
    sweep_curves(selection, root / "sweep")
    return selection


SWEPT = ("weight", "density", "lambda")


def point_parameters(folder: Path) -> dict[str, float]:
    """The swept values of one merge point, read from the MergeKit YAML it was made with
    (the first model's ``weight`` / ``density``, and the global ``lambda``)."""
    import yaml

    config = yaml.safe_load((folder / "mergekit.yaml").read_text())
    first = ((config.get("models") or [{}])[0].get("parameters") or {})
    found = {k: first[k] for k in ("weight", "density") if isinstance(first.get(k), (int, float))}
    if isinstance((config.get("parameters") or {}).get("lambda"), (int, float)):
        found["lambda"] = config["parameters"]["lambda"]
    found["method"] = config.get("merge_method")
    return found


def sweep_curves(selection: dict, path: Path) -> list[Path] | None:
    """Validation score against each swept parameter, one line per value of the others per
    method; the chosen point circled. None when no numeric parameter varies."""
    from plumbing.plots import pyplot, save

    points, metric = selection["points"], selection["metric"]
    varied = [k for k in SWEPT if len({p.get(k) for p in points if p.get(k) is not None}) > 1]
    if not varied:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(varied), figsize=(4.5 * len(varied), 3.6), squeeze=False, layout="constrained")
    for ax, key in zip(axes[0], varied):
        others = [k for k in ("method", *SWEPT) if k != key]
        groups: dict[tuple, list[dict]] = {}
        for p in points:
            if p.get(key) is not None:
                groups.setdefault(tuple(p.get(k) for k in others), []).append(p)
        for group, members in sorted(groups.items(), key=lambda g: str(g[0])):
            members.sort(key=lambda p: p[key])
            label = ", ".join(f"{k} {v}" for k, v in zip(others, group) if v is not None)
            ax.plot([p[key] for p in members], [p[f"mean {metric}"] for p in members], marker="o", label=label)
        best = next(p for p in points if p["folder"] == selection["best"])
        if best.get(key) is not None:
            ax.plot(best[key], best[f"mean {metric}"], "o", markersize=14, markerfacecolor="none",
                    markeredgecolor="black", label="chosen")
        ax.set_xlabel(key)
        ax.set_ylabel(f"development mean {metric}")
        ax.legend(fontsize=7)
    return save(fig, path)
