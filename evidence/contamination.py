"""Could the model have seen this test item? Overlap of scored documents with what it was shown.

For every scored task, each scored test document is checked against three sources
(:mod:`plumbing.fingerprints`: equal normalized text, or a shared word n-gram, n = 8 by
default):

- **lineage**: the texts the checkpoint was fine-tuned on (its run's or its merge inputs'
  record, :mod:`plumbing.lineage`); "unknown" for a checkpoint without one, never clean;
- **few-shot pool**: the split lm-eval draws in-context examples from (finharness's samplers
  never show a pool row that repeats a test document, so this says what plain sampling would
  have risked);
- **other splits**: the task's train / validation / few-shot splits, which anyone fine-tuning
  on the task's public data may have used.

The **clean subset** is the scored documents no known source flags. Its score is printed
beside the full score with a paired bootstrap interval on the difference (the same document
draws for both; the clean score of a draw is taken on that draw's clean documents).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from evidence.baselines import NORMALIZED, best_baseline, from_rows
from evidence.baselines import normalize as normalized_score
from evidence.records import run_record
from evidence.result_files import load_results, results_file, samples_file
from evidence.stats import percentile_interval, task_draws
from fin_tasks.common.data import read_jsonl
from fin_tasks.common.decontamination import (TASKS_ROOT, fingerprint_of, packaged_data_dirs, read_texts, split_texts,
                                              task_text)
from fin_tasks.common.metrics import CORPUS_AGGREGATIONS, aggregation_of, from_confusion
from plumbing.atomic import write_atomic
from plumbing.checkpoints import checkpoint_fingerprint
from plumbing.fingerprints import DEFAULT_N, Fingerprint, normalize
from plumbing.lineage import Lineage, read_lineage
from plumbing.vocabulary import LineageStatus

SOURCES = ("lineage", "few-shot pool", "other splits")
RESAMPLES = 1000
DEFAULT_METRICS = ("acc", "f1_macro")


@dataclass
class CleanScore:
    metric: str
    full: float
    clean: float | None  # None: no clean document
    difference: float | None  # clean minus full
    interval: tuple[float, float] | None


@dataclass
class TaskContamination:
    task: str
    docs: int
    ngram: int
    lineage: LineageStatus
    flagged: dict[str, list[int]]  # source -> flagged doc ids (lineage: only when known)
    contaminated: list[int]  # flagged by any known source
    scores: list[CleanScore] = field(default_factory=list)

    @property
    def share(self) -> float:
        return len(self.contaminated) / self.docs if self.docs else 0.0

    def as_json(self) -> dict[str, Any]:
        return {"docs": self.docs, "ngram": self.ngram, "lineage": self.lineage, "share": self.share,
                "flagged": self.flagged, "contaminated": self.contaminated,
                "scores": [asdict(s) for s in self.scores]}


# --- sources -------------------------------------------------------------------------------

def task_sources(task, n: int = DEFAULT_N) -> dict[str, Fingerprint]:
    """The few-shot pool's and the other splits' fingerprints of a loaded lm-eval task."""
    test_split = task.config.test_split
    pool_split = task.config.fewshot_split
    dataset = getattr(task, "dataset", None) or {}
    pool = split_texts(task, pool_split) if pool_split and pool_split != test_split and pool_split in dataset else []
    # Nested subsets (train_2000 inside train) repeat rows: each text once.
    others = dict.fromkeys(t for split in dataset if split != test_split for t in split_texts(task, split))
    return {"few-shot pool": fingerprint_of(tuple(dict.fromkeys(pool)), n),
            "other splits": fingerprint_of(tuple(others), n)}


def flag(texts: Sequence[str], sources: Mapping[str, Fingerprint], n: int = DEFAULT_N) -> dict[str, np.ndarray]:
    return {name: fp.overlaps(texts, n) for name, fp in sources.items()}


# --- clean-subset scores -------------------------------------------------------------------

def clean_score(values: Sequence[Any], clean: np.ndarray, metric: str, task: str,
                resamples: int = RESAMPLES, level: float = 0.95) -> CleanScore:
    """Full and clean-subset score, and a paired bootstrap interval of clean minus full."""
    values = list(values)
    clean = np.asarray(clean, dtype=bool)
    n = len(values)
    draws = task_draws(task, n, resamples)
    counts = np.stack([np.bincount(row, minlength=n) for row in draws]).astype(float)
    pairs = metric in CORPUS_AGGREGATIONS and n and all(isinstance(v, (tuple, list)) and len(v) == 2 for v in values)

    def scored(weights: np.ndarray) -> np.ndarray:
        """The metric under per-document weights (one row of weights per replicate)."""
        if pairs:
            golds = np.array([int(v[0]) for v in values])
            preds = np.array([int(v[1]) for v in values])
            size = int(max(golds.max(initial=0), preds.max(initial=0))) + 2  # as confusion_matrices: + missing
            codes = golds * size + np.where(preds < 0, size - 1, preds)
            onehot = np.zeros((n, size * size))
            onehot[np.arange(n), codes] = 1.0
            matrices = (weights @ onehot).reshape(len(weights), size, size)
            with np.errstate(invalid="ignore", divide="ignore"):
                return from_confusion(metric, matrices)
        array = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (weights @ array) / weights.sum(axis=1)

    full = float(aggregation_of(metric)(values))
    if not clean.any():
        return CleanScore(metric, full, None, None, None)
    clean_value = float(aggregation_of(metric)([v for v, c in zip(values, clean) if c]))
    diffs = scored(counts * clean) - scored(counts)
    diffs = diffs[np.isfinite(diffs)]
    interval = percentile_interval(diffs, level) if len(diffs) else None
    return CleanScore(metric, full, clean_value, clean_value - full, interval)


# --- one evaluation -------------------------------------------------------------------------

def task_report(task_name: str, task, rows: Sequence[Mapping[str, Any]], lineage: Lineage,
                n: int = DEFAULT_N, metrics: Sequence[str] = DEFAULT_METRICS) -> TaskContamination:
    """One scored task's overlap and clean-subset scores, from its per-sample rows."""
    rows = sorted(rows, key=lambda r: int(r["doc_id"]))
    texts = [task_text(task, r["doc"]) for r in rows]
    sources: dict[str, Fingerprint] = dict(task_sources(task, n))
    if lineage.status == "known" and lineage.fingerprint is not None:
        sources = {"lineage": lineage.fingerprint, **sources}
    flags = flag(texts, sources, n)
    ids = [int(r["doc_id"]) for r in rows]
    any_flag = np.zeros(len(rows), dtype=bool)
    for found in flags.values():
        any_flag |= found
    report = TaskContamination(
        task_name, len(rows), n, lineage.status,
        {name: [d for d, f in zip(ids, found) if f] for name, found in flags.items()},
        [d for d, f in zip(ids, any_flag) if f])
    logged = [m for m in metrics if rows and m in rows[0]]
    if metrics and not logged and rows:
        logged = [k for k, v in rows[0].items() if k not in ("doc", "doc_id", "target", "arguments", "resps",
                                                             "filtered_resps", "filter", "metrics", "doc_hash",
                                                             "prompt_hash", "target_hash")
                  and isinstance(v, (int, float, list))][:1]
    for metric in logged:
        values = [tuple(r[metric]) if isinstance(r[metric], list) else r[metric] for r in rows]
        report.scores.append(clean_score(values, ~any_flag, metric, task_name))
    return report


def run_contamination(samples: Mapping[str, list[dict]], manager, lineage: Lineage, n: int = DEFAULT_N,
                      metrics: Sequence[str] = DEFAULT_METRICS,
                      tasks: Mapping[str, Any] | None = None) -> dict[str, TaskContamination]:
    """Every scored task of one evaluation (its lm-eval ``samples``); ``tasks``: those already loaded."""
    out = {}
    for name, rows in samples.items():
        if not rows:
            continue
        task = tasks[name] if tasks and name in tasks else manager.load([name])["tasks"][name]
        out[name] = task_report(name, task, rows, lineage, n, metrics)
    return out


def report_table(reports: Mapping[str, TaskContamination], lineage: Lineage) -> str:
    from tabulate import tabulate

    rows = []
    for name, r in reports.items():
        for s in r.scores or [None]:
            rows.append([name, r.docs,
                         *(f"{len(r.flagged[src])}" if src in r.flagged else "unknown" for src in SOURCES),
                         f"{r.share:.1%}",
                         s.metric if s else "", f"{s.full:.4f}" if s else "",
                         f"{s.clean:.4f}" if s and s.clean is not None else "",
                         f"{s.difference:+.4f} [{s.interval[0]:+.4f}, {s.interval[1]:+.4f}]"
                         if s and s.interval else ""])
    n = next(iter(reports.values())).ngram if reports else DEFAULT_N
    caption = (f"Scored test documents whose normalized text, or a word {n}-gram of it, appears in the checkpoint's "
               f"training lineage, the task's few-shot pool, or its other splits. Lineage: {lineage.describe()}. "
               f"'clean' scores the documents no known source flags; clean - full with a paired 95% bootstrap "
               f"interval ({RESAMPLES} resamples).")
    return caption + "\n\n" + tabulate(
        rows, headers=["task", "docs", "in lineage", "in few-shot pool", "in other splits", "contaminated",
                       "metric", "full", "clean", "clean - full [95% CI]"],
        tablefmt="github", disable_numparse=True)


# --- the whole packaged suite ----------------------------------------------------------------

def suite_overlap(n: int = DEFAULT_N) -> list[dict[str, Any]]:
    """Every packaged test split against its own other splits and against every train split."""
    folders = packaged_data_dirs()
    splits = {f: {s: read_texts(f / f"{s}.jsonl") for s in ("train", "validation", "fewshot")
                  if (f / f"{s}.jsonl").is_file()} for f in folders}
    all_train = Fingerprint.of([t for f in folders for t in splits[f].get("train", [])], ns=(n,))
    out = []
    for folder in folders:
        test = read_texts(folder / "test.jsonl")
        norm = [normalize(t) for t in test]
        own = {s: Fingerprint.of(texts, ns=(n,)) for s, texts in splits[folder].items()}
        row = {"data": str(folder.relative_to(TASKS_ROOT).as_posix()).removesuffix("/data"), "test docs": len(test)}
        for split in ("train", "validation", "fewshot"):
            if split in own:
                row[f"in {split} (text)"] = int(own[split].same_texts(test).sum())
                row[f"in {split} ({n}-gram)"] = int(own[split].overlaps(test, n).sum())
        row["in any train split"] = int(all_train.overlaps(test, n).sum())
        row["repeated inside test"] = len(norm) - len(set(norm))
        out.append(row)
    return out


def suite_table(rows: Sequence[Mapping[str, Any]], n: int = DEFAULT_N) -> str:
    from tabulate import tabulate

    headers = ["data", "test docs", "in train (text)", f"in train ({n}-gram)", "in validation (text)",
               f"in validation ({n}-gram)", "in fewshot (text)", f"in fewshot ({n}-gram)", "in any train split",
               "repeated inside test"]
    headers = [h for h in headers if any(h in r for r in rows)]
    body = [[r.get(h, "") for h in headers] for r in rows]
    return (f"Every packaged test split against its own other splits (equal normalized text, or a shared word "
            f"{n}-gram) and against every packaged train split; 'repeated inside test' counts test documents "
            f"whose normalized text another test document already has.\n\n"
            + tabulate(body, headers=headers, tablefmt="github"))


# --- a results folder (finharness contamination RESULTS) ------------------------------------

def read_sample_rows(path) -> list[dict]:
    """An lm-eval per-sample log's rows (each needs doc_id and doc); a bad line is an error naming it."""
    from pathlib import Path

    rows = read_jsonl(Path(path), fields=("doc_id", "doc"))
    for row in rows:
        row.pop("_where")
    return rows


def folder_report(folder, model: str | None = None, tasks: Sequence[str] = (), n: int = DEFAULT_N,
                  metrics: Sequence[str] = DEFAULT_METRICS) -> tuple[Lineage, dict[str, TaskContamination]]:
    """The contamination of one ``--output_path`` folder's scored tasks; written beside them
    (``contamination.json``, atomic)."""
    import json
    from pathlib import Path

    from fin_tasks.index import task_manager

    folder = Path(folder)
    results = load_results(results_file(folder))
    record = run_record(results)
    model = model or record.get("model")
    lineage = scored_lineage(model, record) if model else Lineage("unknown", why="the results name no model")
    scored = list(tasks) or [t for t in results.get("configs", {}) if t in results["results"]]
    manager = task_manager(record.get("include_paths") or [])
    samples = {task: read_sample_rows(samples_file(folder, task)) for task in scored}
    reports = run_contamination(samples, manager, lineage, n, metrics)
    write_atomic(results_file(folder).parent / "contamination.json", json.dumps(
        {"model": model, "lineage": lineage.status, "lineage_note": lineage.describe(), "ngram": n,
         "tasks": {t: r.as_json() for t, r in reports.items()}}, indent=1))
    return lineage, reports


def scored_lineage(model, record: Mapping[str, Any]) -> Lineage:
    """The lineage of the checkpoint a results folder was scored on, read from ``model`` only
    when it is still that checkpoint: its lineage file is the one the scoring recorded (its
    sha256), or, for results made before scorings recorded it, its weights are the scored
    revision. Anything else reads unknown, saying why (C4, C5): another checkpoint now at the
    path would lend the results its training texts."""
    from pathlib import Path

    lineage = read_lineage(model)
    if lineage.status != "known":
        return lineage
    pinned = (record.get("lineage") or {}).get("sha256") if isinstance(record.get("lineage"), Mapping) else None
    if pinned:
        if pinned != lineage.digest:
            return Lineage("unknown", why=f"{model}: its lineage file changed since these results were scored")
        return lineage
    revision = str(record.get("revision") or "")
    folder = Path(model)
    if revision and folder.is_dir() and checkpoint_fingerprint(folder) not in revision.split("-"):
        return Lineage("unknown", why=f"{model} now holds other weights than the ones scored (revision {revision})")
    return lineage


# --- the board's record of an entry ----------------------------------------------------------

def clean_record(name: str, task, rows: Sequence[Mapping[str, Any]], lineage: Lineage, manager,
                 n: int = DEFAULT_N) -> dict[str, Any]:
    """What the board keeps per task: the contaminated share, counts per source, and the clean
    subset's scores with macro-F1 normalized to the trivial answers *on the clean documents*."""
    report = task_report(name, task, rows, lineage, n, metrics=())
    dirty = set(report.contaminated)
    clean_rows = [r for r in rows if int(r["doc_id"]) not in dirty]
    record: dict[str, Any] = {"docs": report.docs, "lineage": lineage.status, "share": report.share,
                              "flagged": {src: len(ids) for src, ids in report.flagged.items()},
                              "clean_docs": len(clean_rows), "scores": {}, "normalized": None}
    if not clean_rows:
        return record
    metrics = [k for k, v in clean_rows[0].items() if k in CORPUS_AGGREGATIONS or k in ("acc", "acc_norm")]
    record["scores"] = {m: float(aggregation_of(m)([tuple(r[m]) if isinstance(r[m], list) else r[m]
                                                   for r in clean_rows])) for m in metrics}
    found = from_rows(name, clean_rows, record["scores"], manager) if NORMALIZED in record["scores"] else None
    if found is not None:
        best = best_baseline(found.baselines, NORMALIZED)
        if best is not None:
            record["normalized"] = normalized_score(record["scores"][NORMALIZED], best)
    return record


def board_contamination(folder, tasks: Sequence[str], manager, lineage: Lineage) -> dict[str, dict[str, Any]]:
    """Every verified task's :func:`clean_record`, from the per-sample logs under ``folder``."""
    from pathlib import Path

    out = {}
    for name in tasks:
        rows = read_sample_rows(samples_file(Path(folder), name))
        if rows:
            task = manager.load([name])["tasks"][name]
            out[name] = clean_record(name, task, rows, lineage, manager)
    return out
