"""What every layout of a study's main table shares: number formatting, the captions of
intervals and collapse, the trivial answers' rows, the study's one bootstrap, and
:class:`TableKind`, the interface a layout implements (``study/seen_unseen_table.py``,
``study/views_table.py``; the registry is ``study/tables.py`` ``TABLE_KINDS``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

from evidence.report import shares
from evidence.views import load_views, place_tasks
from fin_tasks.index import task_manager
from study.cells import Bootstrap, Row
from study.spec import Study

MetricOf = Callable[..., str]  # (task, claim_metric=None) -> the metric a claim on the task reads
TaskSets = Callable[[str, list[Row]], list[str]]  # (a claim's task-set name, its rows) -> tasks


class TableKind(ABC):
    """One layout of a study's main table (study.yaml ``table.kind``) and the task sets its
    claims may name."""

    @abstractmethod
    def table(self, study: Study, boot: Bootstrap) -> tuple[str, list[dict], list[Row]]:
        """The table's markdown, one record per row (tables.json), and the rows."""

    @abstractmethod
    def metric_of(self, study: Study) -> MetricOf:
        """``(task, claim_metric) -> metric``: a claim's own metric, else the table's."""

    @abstractmethod
    def task_sets(self, study: Study, claims_file: Path) -> TaskSets:
        """The tasks a claim's ``tasks: <set>`` names on its rows (an error naming the claims file
        for a set of the other layout)."""

    def development_seen(self, study: Study) -> set[str] | None:
        """The seen tasks the development rows are built with (None: rows need none)."""
        return None

    def pictures(self, records: list[dict], root: Path) -> list[str]:
        """Markdown lines of the layout's own pictures, drawn under ``root``."""
        return []


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


def baseline_rows(boot: Bootstrap, rows: Sequence[Row], tasks: Sequence[str], metric: str) -> list[dict]:
    """The trivial answers' scores per task (from the logged gold labels), one record per baseline."""
    found: dict[str, dict[str, float]] = {}
    for task in tasks:
        folder = next((f for r in rows for fs in r.sources.get(task, {}).values() for f in fs), None)
        if folder is None:
            continue
        for name, value in boot.baselines(folder, task, metric).items():
            found.setdefault(name, {})[task] = value
    return [{"row": name, **scores} for name, scores in found.items()]


def collapse_mark(boot: Bootstrap, row: Row, task: str) -> str:
    return " †" if boot.collapsed_in(row, task) else ""


COLLAPSE_NOTE = ("† collapsed: the answers' label shares are far from the gold ones (total-variation distance >= "
                 "0.3) with no positive MCC (below 0.1), for at least one of the cell's checkpoints; the score then "
                 "says how common the answered labels are, not what the model learned. A classifier that predicts "
                 "the gold shares is never marked, however imbalanced the slice.")


def collapse_footnotes(boot: Bootstrap, rows: Sequence[Row], tasks: Sequence[str]) -> str:
    """Per collapsed cell: the predicted and the gold label shares side by side."""
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


def views_places():
    """The generalization views (fin_tasks/views/generalization.yaml) and each task's place in them."""
    views = load_views()
    return views, place_tasks(views, task_manager().task_index)


def mean_or_blank(boot: Bootstrap, row: Row, tasks: Sequence[str], metric: str) -> str:
    try:
        found = boot.mean_over(row, tasks, lambda t: metric)
    except ValueError:  # a per-sample log from before the metric existed
        return ""
    return fmt(found[0]) if found else ""
