"""Board rows: per-task scores, seen / unseen averages and forgetting, from stored entries.

- *seen*, *unseen* and *retention* are the tasks that declare those roles by tag (the
  ``finharness_seen``/``finharness_unseen`` split of arXiv 2411.02476, plus the
  ``finharness_retention`` panel of general tasks); a submitted task from a user's folder
  keeps the role its YAML declared when it was verified. Each average is over tasks, not
  documents, as the paper averages.
- *unseen_change* (negative = forgetting): the change of the entry's unseen average against its ``reference``
  entry (a submission's ``reference:``, else its ``base_model``) scored with the same
  settings, over the tasks both scored (negative = lost ground;
  ``evidence.measures.role_changes``, the rule ``finharness forgetting`` prints);
  *seen_change* and *retention_change* likewise. Empty when the base model is not on the
  board with those settings.
- *seen_norm* / *unseen_norm*: the mean macro-F1 normalized to the best trivial answer on
  the same documents (majority label, training prior, uniform and prior-matched random;
  0 = no better, below 0 = worse), unclipped, with its 95% bootstrap interval over documents
  (*_ci*, computed when the entry was verified), and *collapsed*: the tasks where the
  answers' label shares are far from the gold ones with MCC about 0; both recomputed from
  the verified per-sample rows (evidence/baselines.py).
- *unseen_rank* / *seen_rank*: the entry's rank on the normalized score and its rank band,
  among entries scored on the same tasks and documents: from 1 + the entries significantly
  better to N - those significantly worse (paired bootstrap, Holm; leaderboard/ranks.py).
  The board ranks on *unseen_norm*; it never falls back to a
  raw score, which answering a task's majority label can win.
- *lineage* (known: finharness trained or merged it and recorded what it was fine-tuned on;
  unknown otherwise, never "clean"), *contaminated* (per task, the share of scored documents
  whose text is in the entry's lineage, the task's few-shot pool or its other splits:
  evidence/contamination.py) and *seen_clean_norm* / *unseen_clean_norm* (the normalized
  macro-F1 on the documents no known source flags, against trivial answers on those same
  documents); ``show --sort unseen_clean_norm`` ranks on them.
- Each task shows one metric: ``--metric`` (default ``acc``) where the task reports it,
  else ROUGE-L (summaries), else the first metric of the task's own ``metric_list`` (a
  user task's own metric): ``evidence.measures.shown_metric``, the rule every table uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from statistics import mean
from typing import Any

from evidence.baselines import NORMALIZED
from evidence.measures import members_by_role, role_changes, shown_metric, task_roles
from leaderboard.store import Entry
from plumbing.logs import log

INFO_COLUMNS = ("id", "model", "model_type", "weight_type", "base_model", "precision", "chat_template",
                "num_fewshot", "revision")
SUMMARY_COLUMNS = ("unseen_rank", "seen", "unseen", "seen_norm", "seen_norm_ci", "unseen_norm", "unseen_norm_ci",
                   "seen_rank", "collapsed", "lineage", "contaminated", "seen_clean_norm", "unseen_clean_norm",
                   "seen_change", "unseen_change", "retention", "retention_change")


def task_score(scores: dict[str, float], metric: str) -> float | None:
    """The score of the metric :func:`evidence.measures.shown_metric` picks (scores keep metric_list order)."""
    name = shown_metric(metric, scores)
    return scores[name] if name is not None else None


def board_roles(entries: list[Entry]) -> dict[str, str]:
    """The packaged tasks' roles, and those each entry's user tasks declared when verified."""
    roles = task_roles()
    for e in entries:
        for task, role in (e.metadata.get("roles") or {}).items():
            roles.setdefault(task, role)
    return roles


def _average(values: dict[str, float | None], members: set[str]) -> float | None:
    picked = [v for t, v in values.items() if t in members and v is not None]
    return mean(picked) if picked else None


def reference_name(entry: Entry) -> str | None:
    """The board entry an entry is compared against: its ``reference``, else its ``base_model``."""
    return entry.metadata.get("reference") or entry.base_model


def _reference(entry: Entry, entries: list[Entry]) -> Entry | None:
    """The reference's entry with the same settings, the same chat-template choice first."""
    name = reference_name(entry)
    if not name:
        return None
    same = [e for e in entries if e.model == name and e.settings == entry.settings and e.id != entry.id]
    same.sort(key=lambda e: (e.chat_template != entry.chat_template, e.id))
    return same[0] if same else None


def _normalized(entry: Entry, tasks: set[str]) -> float | None:
    """Mean over ``tasks`` of the entry's macro-F1 normalized to the best trivial answer (0: no
    better), unclipped: recomputed from the verified score and baselines (entries verified before
    the board stopped clipping stored a clipped value)."""
    from evidence.baselines import best_baseline, normalize

    values = []
    for task, found in (entry.metadata.get("baselines") or {}).items():
        best = best_baseline(found.get("baselines") or {}, NORMALIZED)
        score = (entry.scores.get(task) or {}).get(NORMALIZED)
        if task in tasks and best is not None and score is not None:
            values.append(normalize(score, best))
    return mean(values) if values else None


def _contamination(entry: Entry) -> dict[str, Any]:
    return entry.metadata.get("contamination") or {}


def _contaminated(entry: Entry) -> str | None:
    """The tasks where the entry may have seen scored documents, with the share (None: not recorded)."""
    found = _contamination(entry).get("tasks")
    if found is None:
        return None
    return ", ".join(f"{t} {r['share']:.0%}" for t, r in sorted(found.items()) if r.get("share"))


def _clean_normalized(entry: Entry, tasks: set[str]) -> float | None:
    """Mean over ``tasks`` of the clean subset's macro-F1, normalized to the trivial answers on
    the clean documents (the documents no known source says the model could have seen)."""
    found = _contamination(entry).get("tasks") or {}
    values = [r["normalized"] for t, r in found.items() if t in tasks and r.get("normalized") is not None]
    return mean(values) if values else None


def _interval(entry: Entry, role: str) -> str | None:
    """The 95% bootstrap interval of a role's normalized mean, computed from the verified rows."""
    found = (entry.metadata.get("intervals") or {}).get(f"{role}_norm")
    return f"[{found[0]:.3f}, {found[1]:.3f}]" if found else None


def board_rows(entries: list[Entry], metric: str = "acc",
               roles: Mapping[str, str] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """One dict per entry (info, summary and task columns) and the task columns' names."""
    roles = board_roles(entries) if roles is None else roles
    members = members_by_role(roles)
    per_entry = {e.id: {t: task_score(s, metric) for t, s in e.scores.items()} for e in entries}
    order = {"seen": 0, "unseen": 1, "retention": 2}
    tasks = sorted({t for values in per_entry.values() for t in values}, key=lambda t: (order.get(roles.get(t), 3), t))
    averages = {i: {r: _average(v, m) for r, m in members.items()} for i, v in per_entry.items()}
    from leaderboard.ranks import band_text, rank_bands

    bands = {role: rank_bands(entries, members[role]) for role in ("seen", "unseen")}
    rows = []
    for e in entries:
        ref = _reference(e, entries)
        mine = averages[e.id]
        # `finharness forgetting`'s own rule: the change over the tasks both entries scored.
        change = role_changes(per_entry[e.id], per_entry[ref.id], roles) if ref else dict.fromkeys(members)
        row: dict[str, Any] = {
            "id": e.id, "model": e.model, "model_type": e.model_type, "weight_type": e.weight_type,
            "base_model": e.base_model or "", "precision": e.precision, "chat_template": e.chat_template,
            "num_fewshot": e.settings.get("num_fewshot", 0), "revision": e.revision[:12],
            "seen": mine["seen"], "unseen": mine["unseen"],
            "seen_norm": _normalized(e, members["seen"]), "unseen_norm": _normalized(e, members["unseen"]),
            "seen_norm_ci": _interval(e, "seen"), "unseen_norm_ci": _interval(e, "unseen"),
            "seen_rank": band_text(bands["seen"].get(e.id)), "unseen_rank": band_text(bands["unseen"].get(e.id)),
            "collapsed": ", ".join(sorted(t for t, b in (e.metadata.get("baselines") or {}).items()
                                          if b.get("collapsed"))),
            "lineage": _contamination(entry=e).get("lineage", ""), "contaminated": _contaminated(e),
            "seen_clean_norm": _clean_normalized(e, members["seen"]),
            "unseen_clean_norm": _clean_normalized(e, members["unseen"]),
            "seen_change": change["seen"], "unseen_change": change["unseen"],
            "retention": mine["retention"], "retention_change": change["retention"],
            "recipe": e.recipe or "", "reference_id": ref.id if ref else None,
        }
        row.update({t: per_entry[e.id].get(t) for t in tasks})
        rows.append(row)
    return rows, tasks


RANK_COLUMNS = {"unseen_rank": "unseen_norm", "seen_rank": "seen_norm"}  # a rank column sorts by its score


# Column names of finharness 0.2, read with a notice until 0.3: "forgetting" held a signed
# change (+ = the unseen average rose), which read the wrong way.
OLD_COLUMNS = {"forgetting": "unseen_change", "seen_gain": "seen_change"}


def sort_rows(rows: list[dict[str, Any]], column: str, ascending: bool = False) -> list[dict[str, Any]]:
    """Sort by any column; ties by the normalized unseen score, then by entry id; empty cells
    (entries verified before baselines existed) last whichever the direction. Never by a raw
    average: answering FinCausal's majority label (93% of it) would top that."""
    if column in OLD_COLUMNS:
        log.warning("column %s is now %s (the old name goes in finharness 0.3)", column, OLD_COLUMNS[column])
        column = OLD_COLUMNS[column]
    if rows and column not in rows[0]:
        raise ValueError(f"no column {column!r} on the board (columns: {', '.join(rows[0])})")
    column = RANK_COLUMNS.get(column, column)

    def by(name: str, items: list[dict[str, Any]], reverse: bool) -> list[dict[str, Any]]:
        present = [r for r in items if r.get(name) is not None]
        missing = [r for r in items if r.get(name) is None]
        return sorted(present, key=lambda r: r[name], reverse=reverse) + missing

    ordered = sorted(rows, key=lambda r: r["id"])
    if column != "unseen_norm":
        ordered = by("unseen_norm", ordered, reverse=True)
    return by(column, ordered, reverse=not ascending)


def board_columns(tasks: list[str]) -> list[str]:
    """The board's columns in order: the entry's information, the summaries, then each task."""
    return [*INFO_COLUMNS, *SUMMARY_COLUMNS, *tasks]


# What fits a terminal: who the entry is, its rank band and the scores it is ranked on.
TERMINAL_COLUMNS = ("id", "model", "model_type", "unseen_rank", "unseen_norm", "unseen_norm_ci", "seen_norm",
                    "unseen_change", "collapsed")


def show(entries: list[Entry], metric: str = "acc", sort: str = "unseen_norm", ascending: bool = False,
         fmt: str = "github", roles: Mapping[str, str] | None = None, all_columns: bool = False) -> str:
    """The board as a table: the columns that fit a terminal (and the sort column), or every
    column (``all_columns``: entry metadata, every summary and every task)."""
    from tabulate import tabulate

    if not entries:
        return "(the board is empty)"
    rows, tasks = board_rows(entries, metric, roles)
    rows = sort_rows(rows, sort, ascending)
    columns = board_columns(tasks)
    if not all_columns:
        columns = [c for c in columns if c in TERMINAL_COLUMNS or c == sort]
    from plumbing.text import printable

    shown = [[printable(v) if isinstance(v, str) else v for v in (r[c] for c in columns)] for r in rows]
    return tabulate(shown, headers=[printable(c) for c in columns], tablefmt=fmt, floatfmt=".4f", missingval="")


def _settings_text(entry: Entry) -> str:
    s = entry.settings
    limit = "all documents" if s.get("limit") is None else f"{s['limit']:g} documents per task"
    sample = f", {s['sample']} slice" if s.get("sample") not in (None, "first") else ""
    return f"{len(s.get('tasks') or [])} tasks, {s.get('num_fewshot', 0)}-shot, {limit}{sample}"


def board_notes(entries: list[Entry], metric: str) -> list[str]:
    """What the table's columns are in, and why one model can stand on two rows (printed under
    ``leaderboard show``'s table)."""
    notes = [f"Task columns and seen / unseen / retention and their *_change: {metric} (ROUGE-L where a task "
             "lacks it; --metric picks). *_norm, *_norm_ci and the ranks: macro-F1 normalized to the best trivial "
             "answer on the same documents (0 = no better); the board ranks on unseen_norm."]
    by_model: dict[str, list[Entry]] = {}
    for e in entries:
        by_model.setdefault(e.model, []).append(e)
    for model, same in sorted(by_model.items()):
        if len(same) > 1:
            described = "; ".join(f"#{e.id}: {_settings_text(e)}, revision {e.revision[:8]}"
                                  for e in sorted(same, key=lambda e: e.id))
            notes.append(f"{model} has {len(same)} entries ({described}): each is one revision scored with one "
                         "setting; rows with other tasks, shots or slices are not comparable score for score.")
    return notes
