"""The papers' measures, computed from stored lm-eval results, never re-typed.

- :func:`change_table`: per task, a fine-tuned (or merged) entry against a reference
  entry on the same tasks (usually the same base model zero-shot): the score, the
  reference's, and the change (negative = forgetting on an unseen task, gain on a seen
  one), then the change averaged over the seen and the unseen tasks (tasks, not
  documents, as arXiv 2411.02476 averages).
- :func:`normalized_scores`: for a merge, each task's score divided by the score of the
  single-task fine-tuned model of that task (FusionBench's normalized score), and the mean.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from statistics import mean

from harness.result_files import load_results, results_file


def seen_and_unseen() -> tuple[set[str], set[str]]:
    """The financial tasks the paper's models were fine-tuned on (seen) and held out
    (unseen): the members of the ``finharness_seen[_gen]`` / ``finharness_unseen[_gen]`` groups."""
    from fin_tasks import task_manager
    from harness.views import group_members

    index = task_manager().task_index
    seen = {t for g in ("finharness_seen", "finharness_seen_gen") for t in group_members(g, index)}
    unseen = {t for g in ("finharness_unseen", "finharness_unseen_gen") for t in group_members(g, index)}
    return seen, unseen


def read_scores(results_dir: Path, metric: str) -> dict[str, float]:
    """``task -> score`` of one metric, tasks only (group rows are averages, left out)."""
    data = load_results(results_file(results_dir))
    groups = set(data.get("groups", {}))
    key = f"{metric},none"
    return {
        task: float(scores[key]) for task, scores in data["results"].items()
        if task not in groups and isinstance(scores.get(key), (int, float))
    }


def change_table(
    entry: Mapping[str, float], reference: Mapping[str, float],
    seen: Iterable[str] = (), unseen: Iterable[str] = (),
) -> tuple[list[dict], list[dict]]:
    """Per-task rows and the seen/unseen averages of ``entry - reference``.

    Only tasks both entries scored are compared; a task in neither list is reported but
    not averaged.
    """
    seen, unseen = set(seen), set(unseen)
    common = sorted(set(entry) & set(reference))
    if not common:
        raise ValueError("the two entries share no scored task")
    rows = []
    for task in common:
        role = "seen" if task in seen else "unseen" if task in unseen else ""
        rows.append({"task": task, "role": role, "score": entry[task],
                     "reference": reference[task], "change": entry[task] - reference[task]})
    averages = []
    for role in ("seen", "unseen"):
        members = [r for r in rows if r["role"] == role]
        if members:
            averages.append({
                "tasks": role, "n": len(members),
                "score": mean(r["score"] for r in members),
                "reference": mean(r["reference"] for r in members),
                "change": mean(r["change"] for r in members),
            })
    return rows, averages


def normalized_scores(merged: Mapping[str, float], single_task: Mapping[str, float]) -> tuple[dict[str, float], float]:
    """``merged[t] / single_task[t]`` per task the single-task models cover, and the mean."""
    common = sorted(set(merged) & set(single_task))
    if not common:
        raise ValueError("the merge was not scored on any task of the single-task models")
    zero = [t for t in common if single_task[t] == 0]
    if zero:
        raise ValueError(f"single-task score is 0 on {zero}: the normalized score is undefined there")
    ratios = {t: merged[t] / single_task[t] for t in common}
    return ratios, mean(ratios.values())
