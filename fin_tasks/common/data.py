"""Load a task's splits: the packaged JSONL next to its YAML, or its public Hub dataset.

Task YAMLs call :func:`load` through ``custom_dataset: !function ...``; lm-eval passes
the task ``metadata`` (including ``config_source``, the YAML's path) and
``dataset_kwargs`` as keyword arguments. Rows are ``{"id", "text", "label", ...}``; the
loader adds ``choices`` (the YAML's label set) and ``gold`` (the label's index), and
refuses any label outside the set, naming the file, line and value. With a ``prompt``
mapping (``{instruction: <jinja>, input: <jinja>}``), each row also gets ``instruction`` and
``input``, rendered from the row: one wording of a task's instruction, laid out by each
prompt format (FinBen's, arXiv 2411.02476's Alpaca and ``label:`` formats) in its own YAML.

Which source is used:
- ``packaged`` (default when ``<yaml dir>/<data_dir>/test.jsonl`` exists): offline,
  identical everywhere, built by ``scripts/build_fin_data.py``.
- ``hub``: ``datasets.load_dataset(hub_id)``, for tasks that ship no data (M&A) or when
  ``FINHARNESS_DATA=hub``. FinBen's schema (``choices`` + ``gold``) and plain
  ``label`` columns are understood. When the Hub is switched off (``HF_HUB_OFFLINE`` or
  ``HF_DATASETS_OFFLINE``) this raises :class:`DataUnavailable` at once instead of
  waiting on a network timeout.
"""
from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets

from plumbing.jsonl import jsonl_rows
from plumbing.offline import is_offline

SPLITS = ("train", "validation", "test")


class _QuietCustomDatasetNotice(logging.Filter):
    """lm-eval warns on every load of a ``custom_dataset`` task that it takes ``--metadata``
    kwargs; ours need none, and the notice (two lines per task per run) buried real warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.startswith(("fin_", "gen_", "generative_", "alpaca_fin_", "label_fin_"))
            and "Custom kwargs can be passed to `--metadata`" in message
        )


logging.getLogger("lm_eval.api.task").addFilter(_QuietCustomDatasetNotice())


class TaskDataError(ValueError):
    """The task's data does not fit its YAML (bad row, unknown label, missing split)."""


class DataUnavailable(RuntimeError):
    """The task has no packaged data and the Hub cannot be reached."""


def read_jsonl(path: Path, fields: tuple[str, ...] = ("text", "label")) -> list[dict]:
    """Rows of a JSONL file, each tagged ``_where`` (file:line) for error messages."""
    rows = []
    for lineno, row in jsonl_rows(path, TaskDataError):
        missing = [f for f in fields if not isinstance(row, dict) or f not in row]
        if missing:
            raise TaskDataError(f"{path}:{lineno}: a row needs the field(s) {missing}")
        # A null would reach the prompt as the word "None".
        null = [f for f in fields if row[f] is None]
        if null:
            raise TaskDataError(f"{path}:{lineno}: field(s) {null} are null")
        # An empty text would be scored as a bare "Text: " prompt: no document at all.
        if "text" in fields and isinstance(row["text"], str) and not row["text"].strip():
            raise TaskDataError(f"{path}:{lineno}: field 'text' is empty; drop the row or fill it in")
        row["_where"] = f"{path}:{lineno}"
        rows.append(row)
    return rows


def _attach_labels(rows: list[dict], labels: list[str], where: str) -> list[dict]:
    index = {label: i for i, label in enumerate(labels)}
    for row in rows:
        label = row["label"]
        if label not in index:
            raise TaskDataError(
                f"{row.pop('_where', where)}: label {label!r} is not in the task's label set {labels}"
            )
        row.pop("_where", None)
        row["choices"] = list(labels)
        row["gold"] = index[label]
    return rows


def data_dir_of(config_source: str | None, data_dir: str) -> Path:
    path = Path(data_dir)
    if path.is_absolute():
        return path
    if not config_source or config_source == "inline":
        raise TaskDataError(f"data_dir {data_dir!r} is relative but the task has no YAML file to resolve it from")
    return Path(config_source).resolve().parent / path


_LOADED: OrderedDict[tuple, datasets.DatasetDict] = OrderedDict()
_KEEP = 64  # task datasets kept per process (a study scores dozens of tasks, each several times)


def loaded_once(directories: list[Path], arguments: dict[str, Any], build: Callable[[], datasets.DatasetDict]
                ) -> datasets.DatasetDict:
    """One read of a task's packaged files per process: one ``finharness eval`` loads each task
    four times (its slice, lm-eval's own load, the slice record, the baselines). Keyed by the
    loader's arguments and every file's path, size and time, so an edited file is read again.
    The datasets are shared, never changed in place (Arrow tables; lm-eval maps into new ones)."""
    files = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns)
                  for d in directories for p in sorted(d.glob("*.jsonl")))
    key = (json.dumps(arguments, sort_keys=True, default=str), files)
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    found = _LOADED[key] = build()
    if len(_LOADED) > _KEEP:
        _LOADED.popitem(last=False)
    return found


def load_packaged(directory: Path, labels: list[str], prompt: dict[str, str] | None = None,
                  where: str = "<task>") -> datasets.DatasetDict:
    return loaded_once([directory], {"labels": labels, "prompt": prompt, "where": where},
                       lambda: _read_packaged(directory, labels, prompt, where))


def _read_packaged(directory: Path, labels: list[str], prompt: dict[str, str] | None,
                   where: str) -> datasets.DatasetDict:
    if not (directory / "test.jsonl").is_file():
        raise TaskDataError(f"{directory}: missing split 'test' (expected {directory / 'test.jsonl'})")
    out = {}
    for split in SPLITS:
        path = directory / f"{split}.jsonl"
        if path.is_file():
            rows = _attach_labels(read_jsonl(path), labels, str(path))
            if not rows:  # lm-eval would fail on it far from here (an IndexError, naming no file)
                raise TaskDataError(f"{path}: no rows; a split file holds one JSON object per line (or leave the "
                                    "file out where the task names no such split)")
            out[split] = attach_prompt_parts(rows, prompt, where)
    return dataset_dict(out)


def dataset_dict(splits: dict[str, list[dict]]) -> datasets.DatasetDict:
    # The few-shot pool's rows that repeat a test row are marked, so no sampler shows them.
    from fin_tasks.common.decontamination import mark_pool

    return datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in mark_pool(splits).items()})


def _hub_label(row: dict, label_field: str, label_names: list[str] | None) -> str:
    if "choices" in row and "gold" in row:  # FinBen schema
        return str(row["choices"][int(row["gold"])])
    value = row[label_field]
    if label_names is not None and isinstance(value, int):
        return label_names[value]
    return str(value)


def load_hub(
    hub_id: str,
    labels: list[str],
    splits: dict[str, str],
    text_field: str = "text",
    label_field: str = "label",
    label_names: list[str] | None = None,
    name: str | None = None,
    prompt: dict[str, str] | None = None,
    where: str = "<task>",
) -> datasets.DatasetDict:
    if is_offline("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        raise DataUnavailable(f"{hub_id} is on the Hugging Face Hub and the Hub is switched off (offline)")
    raw = datasets.load_dataset(hub_id, name)
    by_lower = {label.lower(): label for label in labels}
    out = {}
    for ours, theirs in splits.items():
        if theirs not in raw:
            raise TaskDataError(f"{hub_id}: missing split {theirs!r} (has {sorted(raw)})")
        rows = []
        for i, row in enumerate(raw[theirs]):
            label = _hub_label(row, label_field, label_names)
            rows.append({
                "id": str(row.get("id", i)),
                "text": row[text_field],
                "label": by_lower.get(label.strip().lower(), label),
                "_where": f"{hub_id}[{theirs}] row {i}",
            })
        out[ours] = attach_prompt_parts(_attach_labels(rows, labels, hub_id), prompt, where)
    return dataset_dict(out)


def attach_prompt_parts(rows: list[dict], prompt: dict[str, str] | None, where: str) -> list[dict]:
    """Add ``instruction`` and ``input`` to every row, rendered (Jinja) from the row itself.
    A part naming one field bare is copied; a part reading only what every row shares
    (``choices``) is rendered once: tens of thousands of rows load at every task load."""
    if prompt is None:
        return rows
    import jinja2
    from jinja2 import meta

    from fin_tasks.sandbox import template_environment

    unknown = set(prompt) - {"instruction", "input"}
    if unknown or not prompt:
        raise TaskDataError(f"{where}: dataset_kwargs.prompt takes instruction and input, not {sorted(unknown)}")
    env = template_environment()
    for key, source in prompt.items():
        fields = meta.find_undeclared_variables(env.parse(source))
        missing = sorted({f for f in fields for row in rows[:1] if f not in row})
        if missing:
            raise TaskDataError(f"{where}: dataset_kwargs.prompt.{key}: {missing[0]!r} is undefined "
                                f"(row fields: {sorted(k for k in rows[0] if not k.startswith('_'))})")
        if len(fields) == 1 and source.strip() in {"{{%s}}" % f for f in fields} | {"{{ %s }}" % f for f in fields}:
            field = next(iter(fields))
            for row in rows:
                row[key] = str(row[field])
            continue
        template, cache = env.from_string(source), {}
        for row in rows:
            values = tuple(repr(row[f]) for f in sorted(fields))
            if values not in cache:
                try:
                    cache[values] = template.render(**{f: row[f] for f in fields})
                except (jinja2.UndefinedError, jinja2.exceptions.SecurityError) as err:
                    raise TaskDataError(f"{where}: dataset_kwargs.prompt.{key}: {err.message}") from None
            row[key] = cache[values]
    return rows


def load(
    labels: list[str],
    hub_id: str | None = None,
    hub_splits: dict[str, str] | None = None,
    hub_fields: dict[str, Any] | None = None,
    data_dir: str = "data",
    config_source: str | None = None,
    prompt: dict[str, str] | None = None,
    **_metadata: Any,
) -> datasets.DatasetDict:
    """``custom_dataset`` entry point for every finharness task YAML."""
    where = config_source or "<task>"
    directory = data_dir_of(config_source, data_dir)
    packaged = (directory / "test.jsonl").is_file()
    wanted = os.environ.get("FINHARNESS_DATA", "packaged").strip().lower()
    if wanted not in {"packaged", "hub"}:
        raise ValueError(f"FINHARNESS_DATA must be 'packaged' or 'hub', not {wanted!r}")
    if packaged and (wanted == "packaged" or not hub_splits):
        return load_packaged(directory, labels, prompt, where)
    if not (hub_id and hub_splits):
        raise TaskDataError(f"{directory}: missing split 'test' and the task names no hub_id/hub_splits to fetch")
    return load_hub(hub_id, labels, hub_splits, **(hub_fields or {}), prompt=prompt, where=where)
