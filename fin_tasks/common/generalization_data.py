"""Load a generalization-suite task's splits (arXiv 2403.09162's own subsets, packaged).

Task YAMLs under ``tasks/generalization/`` call :func:`load` through
``custom_dataset: !function ...``. Rows keep the paper's field names (``input``,
``input_1``, ``input_2``, ``answer``, ``output``), so the prompts read like the paper's
``prompt_map.json``. Splits, all from ``<yaml dir>/<data_dir>/``:

- ``test`` (required), ``fewshot`` (the paper's in-context examples, in order; from
  ``fewshot_dir`` when a dataset ships none of its own);
- ``train`` and ``train_<N>``: the paper's nested training subsets, rebuilt from each
  row's ``train_subset`` (the smallest subset holding it), so ``train_2000`` is exactly
  the paper's ``*_train_2000.json``;
- ``heldout_<N>``: the training rows outside ``train_<N>`` (for each subset but the largest),
  a development set for runs trained on ``train_<N>``: choosing their hyperparameters on it
  looks at neither their training rows nor the test split.

Classification tasks declare ``labels``: the loader adds ``choices`` and ``gold`` (the
label's index) and refuses a label outside the set, naming file, line and value. Rows
whose label is in ``drop_labels`` (NLI's ``-``, no annotator majority) are dropped and
counted; :func:`read_splits` returns the counts and :func:`load` logs them.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

from fin_tasks.common.data import TaskDataError, dataset_dict, data_dir_of, loaded_once, read_jsonl

log = logging.getLogger("finharness")

FILE_SPLITS = ("test", "fewshot", "train")


def _label_rows(rows: list[dict], labels: list[str], label_field: str, drop: set[str]) -> tuple[list[dict], int]:
    index = {label: i for i, label in enumerate(labels)}
    kept, dropped = [], 0
    for row in rows:
        label = row[label_field]
        if label in drop:
            dropped += 1
            continue
        if label not in index:
            raise TaskDataError(f"{row['_where']}: label {label!r} is not in the task's label set {labels}")
        row["choices"] = list(labels)
        row["gold"] = index[label]
        kept.append(row)
    return kept, dropped


def read_splits(
    data_dir: str = "data",
    labels: list[str] | None = None,
    label_field: str = "output",
    drop_labels: Sequence[str] = (),
    fewshot_dir: str | None = None,
    config_source: str | None = None,
    **_metadata: Any,
) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """Rows per split, and the number of rows dropped per split."""
    directory = data_dir_of(config_source, data_dir)
    if not (directory / "test.jsonl").is_file():
        raise TaskDataError(f"{directory}: missing split 'test' (expected {directory / 'test.jsonl'})")
    sources = {split: directory / f"{split}.jsonl" for split in FILE_SPLITS}
    if fewshot_dir is not None:
        sources["fewshot"] = data_dir_of(config_source, fewshot_dir) / "fewshot.jsonl"
        if not sources["fewshot"].is_file():
            raise TaskDataError(f"fewshot_dir {fewshot_dir!r}: no fewshot.jsonl at {sources['fewshot']}")
    fields = (label_field,) if labels is not None else ()
    splits, dropped = {}, {}
    for split, path in sources.items():
        if not path.is_file():
            continue
        rows = read_jsonl(path, fields)
        if labels is not None:
            rows, dropped[split] = _label_rows(rows, list(labels), label_field, set(drop_labels))
        for row in rows:
            row.pop("_where")
        if not rows:
            raise TaskDataError(f"{path}: split {split!r} is empty")
        splits[split] = rows
    sizes = sorted({r["train_subset"] for r in splits.get("train", []) if "train_subset" in r})
    for size in sizes:
        splits[f"train_{size}"] = [r for r in splits["train"] if r.get("train_subset", size + 1) <= size]
        if size < sizes[-1]:
            splits[f"heldout_{size}"] = [r for r in splits["train"] if r.get("train_subset", size + 1) > size]
    return splits, {k: v for k, v in dropped.items() if v}


def load(**kwargs: Any) -> datasets.DatasetDict:
    """``custom_dataset`` entry point for every generalization-suite task YAML (read once per
    process: :func:`fin_tasks.common.data.loaded_once`)."""
    source = kwargs.get("config_source")
    directories = [data_dir_of(source, kwargs.get("data_dir", "data"))]
    if kwargs.get("fewshot_dir") is not None:
        directories.append(data_dir_of(source, kwargs["fewshot_dir"]))
    if not all(d.is_dir() for d in directories):
        return _read(**kwargs)  # read_splits names what is missing
    return loaded_once(directories, kwargs, lambda: _read(**kwargs))


def _read(**kwargs: Any) -> datasets.DatasetDict:
    splits, dropped = read_splits(**kwargs)
    source = Path(kwargs.get("config_source") or "inline").name
    for split, count in dropped.items():
        kept = len(splits.get(split, ()))
        log.warning("%s: dropped %d of %d %s rows labelled %s (no gold label)", source, count, kept + count,
                    split, " or ".join(repr(x) for x in kwargs.get("drop_labels", ())))
    return dataset_dict(splits)
