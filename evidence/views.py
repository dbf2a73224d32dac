"""In-domain / out-of-domain / cross-task views of the generalization suite.

The views are data (``fin_tasks/views/generalization.yaml``): each task type names its
groups, its training task and the metric compared. Membership comes from lm-eval's own
task index (groups expand to their tags, tags to their tasks), so a task YAML dropped
into a type's folder is placed without an edit. Two tasks are the same dataset when they
read the same data folder, whatever their prompt template or scoring form.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Literal

from fin_tasks import PACKAGE_DIR
from fin_tasks.index import group_members  # noqa: F401  (re-exported: views are read by it)
from plumbing.recipes import Strict, read_recipe_yaml, validate_mapping

VIEWS_FILE = PACKAGE_DIR / "views" / "generalization.yaml"
View = Literal["in_domain", "out_of_domain", "cross_task"]
VIEWS: tuple[View, ...] = ("in_domain", "out_of_domain", "cross_task")


class TaskType(Strict):
    train_task: str
    metric: str
    groups: list[str]


class Views(Strict):
    task_types: dict[str, TaskType]


@dataclass(frozen=True)
class TaskPlace:
    task: str
    task_type: str
    data: Path  # the data folder: tasks sharing it are one dataset


def load_views(path: Path = VIEWS_FILE) -> Views:
    return validate_mapping(Views, read_recipe_yaml(path), path)


def _data_folder(entry) -> Path:
    data_dir = (entry.cfg.get("dataset_kwargs") or {}).get("data_dir", "data")
    return (Path(entry.yaml_path).parent / data_dir).resolve()


def place_tasks(views: Views, index: Mapping) -> dict[str, TaskPlace]:
    """Every task of the views' groups, with its task type and data folder.

    ``index`` is ``lm_eval.tasks.TaskManager(...).task_index``.
    """
    places: dict[str, TaskPlace] = {}
    for type_name, spec in views.task_types.items():
        for group in spec.groups:
            for task in group_members(group, index):
                known = places.get(task)
                if known is not None and known.task_type != type_name:
                    raise ValueError(f"task {task!r} is in both {known.task_type!r} and {type_name!r}")
                places[task] = TaskPlace(task, type_name, _data_folder(index[task]))
        if spec.train_task not in places or places[spec.train_task].task_type != type_name:
            raise ValueError(f"task_types.{type_name}.train_task: {spec.train_task!r} is not in its groups")
    return places


def view_of(task: str, trained_on: Iterable[str], places: Mapping[str, TaskPlace]) -> View | None:
    """Where ``task`` stands for a model fine-tuned on ``trained_on``; None if outside the suite."""
    place = places.get(task)
    trained = [places[t] for t in trained_on if t in places]
    if place is None or not trained:
        return None
    if any(t.data == place.data for t in trained):
        return "in_domain"
    if any(t.task_type == place.task_type for t in trained):
        return "out_of_domain"
    return "cross_task"


def view_table(
    scores: Mapping[str, Mapping[str, float]],
    trained_on: Sequence[str],
    places: Mapping[str, TaskPlace],
    views: Views,
) -> list[dict]:
    """Mean score per (task type, view) for one model, from lm-eval's ``results`` mapping.

    ``scores`` is ``results["results"]``: task -> {"acc,none": 0.71, ...}. Each task type
    is compared on its own metric; tasks not in the suite or not scored are left out.
    """
    cells: dict[tuple[str, View], list[float]] = {}
    for task, metrics in scores.items():
        view = view_of(task, trained_on, places)
        if view is None:
            continue
        task_type = places[task].task_type
        key = f"{views.task_types[task_type].metric},none"
        if key in metrics and isinstance(metrics[key], (int, float)):
            cells.setdefault((task_type, view), []).append(float(metrics[key]))
    return [
        {"task_type": t, "view": v, "metric": views.task_types[t].metric, "tasks": len(vals), "mean": mean(vals)}
        for (t, v), vals in sorted(cells.items(), key=lambda kv: (kv[0][0], VIEWS.index(kv[0][1])))
    ]
