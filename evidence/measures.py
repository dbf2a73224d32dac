"""The papers' measures, computed from stored lm-eval results, never re-typed.

- :func:`change_table`: per task, a fine-tuned (or merged) entry against a reference
  entry on the same tasks (usually the same base model zero-shot): the score, the
  reference's, and the change (negative = forgetting on an unseen task, gain on a seen
  one), then the change averaged over the seen and the unseen tasks (tasks, not
  documents, as arXiv 2411.02476 averages).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from statistics import mean

from evidence.records import run_record
from evidence.result_files import load_results, results_file
from fin_tasks.index import ROLE_GROUPS

ROLES = tuple(ROLE_GROUPS)  # seen, unseen, retention


def task_roles(include_paths: Iterable[Path] = ()) -> dict[str, str]:
    """``task -> seen | unseen | retention``: the role tag each task declares (fin_tasks/index.py),
    over the packaged suite, its Hub-only tasks and the user's ``include_paths``."""
    from fin_tasks.index import roles, task_manager

    return roles(task_manager(list(include_paths), hub=True).task_index)


def members_by_role(roles: Mapping[str, str]) -> dict[str, set[str]]:
    """``role -> its tasks`` for every role (seen, unseen, retention), from ``task -> role``."""
    return {role: {t for t, r in roles.items() if r == role} for role in ROLES}


def seen_and_unseen(include_paths: Iterable[Path] = ()) -> tuple[set[str], set[str]]:
    """The financial tasks the paper's models were fine-tuned on (seen) and held out (unseen)."""
    members = members_by_role(task_roles(include_paths))
    return members["seen"], members["unseen"]


SUMMARY_METRIC = "rougeL"


def shown_metric(metric: str, reported: Iterable[str]) -> str | None:
    """The one rule for which metric a table shows for a task (CLI, board, served app).

    ``metric`` where the task reports it, else ROUGE-L (a summary's headline score), else
    the first metric the task reports (its own ``metric_list`` order: a user task's metric).
    """
    reported = list(reported)
    for name in (metric, SUMMARY_METRIC):
        if name in reported:
            return name
    return reported[0] if reported else None


def own_metrics(config: Mapping | None) -> list[str]:
    """A task's metrics in its own ``metric_list`` order (lm-eval's ``configs`` entry)."""
    metrics = [m.get("metric") for m in (config or {}).get("metric_list") or [] if isinstance(m, Mapping)]
    return [m for m in metrics if isinstance(m, str)]


def read_scores(results_dir: Path, metric: str, fallback_to_own: bool = False) -> dict[str, float]:
    """``task -> score`` of one metric, tasks only (group rows are averages, left out).

    With ``fallback_to_own``, a task that does not report ``metric`` is read on the metric
    :func:`shown_metric` picks (a summary task's ROUGE-L, a user task's own metric).
    """
    data = load_results(results_file(results_dir))
    groups = set(data.get("groups", {}))
    out = {}
    for task, scores in data["results"].items():
        if task in groups:
            continue
        name = metric
        if fallback_to_own:
            reported = [m for m in own_metrics(data.get("configs", {}).get(task)) if f"{m},none" in scores]
            name = shown_metric(metric, reported) or metric
        value = scores.get(f"{name},none")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[task] = float(value)
    return out


def change_table(
    entry: Mapping[str, float], reference: Mapping[str, float],
    seen: Iterable[str] = (), unseen: Iterable[str] = (), retention: Iterable[str] = (),
) -> tuple[list[dict], list[dict]]:
    """Per-task rows and the seen / unseen / retention averages of ``entry - reference``.

    Only tasks both entries scored are compared; a task in no list is reported but
    not averaged.
    """
    seen, unseen, retention = set(seen), set(unseen), set(retention)
    common = sorted(set(entry) & set(reference))
    if not common:
        raise ValueError("the two entries share no scored task")
    rows = []
    for task in common:
        role = ("seen" if task in seen else "unseen" if task in unseen
                else "retention" if task in retention else "")
        rows.append({"task": task, "role": role, "score": entry[task],
                     "reference": reference[task], "change": entry[task] - reference[task]})
    averages = []
    for role in ROLES:
        members = [r for r in rows if r["role"] == role]
        if members:
            averages.append({
                "tasks": role, "n": len(members),
                "score": mean(r["score"] for r in members),
                "reference": mean(r["reference"] for r in members),
                "change": mean(r["change"] for r in members),
            })
    return rows, averages


def role_changes(entry: Mapping[str, float], reference: Mapping[str, float],
                 roles: Mapping[str, str]) -> dict[str, float | None]:
    """``role -> mean change over the role's tasks both entries scored`` (None where they
    share none): the numbers ``forgetting`` prints, for the board's columns."""
    common = {t: v for t, v in entry.items() if v is not None and reference.get(t) is not None}
    if not common:
        return dict.fromkeys(ROLES)
    members = members_by_role(roles)
    _, averages = change_table(common, {t: reference[t] for t in common}, *(members[r] for r in ROLES))
    found = {row["tasks"]: row["change"] for row in averages}
    return {role: found.get(role) for role in ROLES}


def recorded_include_paths(results_dir: Path) -> list[str]:
    """The task folders an evaluation was run with (``finharness eval --include_path``),
    where they still exist: a user's task keeps its role when its folder is not named again."""
    data = load_results(results_file(results_dir))
    paths = run_record(data).get("include_paths") or []
    return [p for p in paths if isinstance(p, str) and Path(p).exists()]
