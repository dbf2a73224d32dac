"""Check task YAMLs before lm-eval sees them.

lm-eval drops a YAML it cannot parse with a DEBUG-level log line, and only reports an
unknown field when the task is built. This module turns each of those into an error that
names the file and the field, and for finharness tasks also loads the data, so a label
outside the label set, or a split the YAML names but the data lacks, is caught up front.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jinja2
import yaml
from lm_eval.config.group import GroupConfig
from lm_eval.config.task import TaskConfig

from fin_tasks.common import data as task_data
from fin_tasks.common import generalization_data
from fin_tasks.sandbox import FunctionRef, load_task_config, template_environment

TASK_FIELDS = {f.name for f in dataclasses.fields(TaskConfig)}
GROUP_FIELDS = {f.name for f in dataclasses.fields(GroupConfig)}
SPLIT_FIELDS = ("training_split", "validation_split", "test_split", "fewshot_split")


class TaskYamlError(ValueError):
    """A task or group YAML that lm-eval would drop or reject."""


def yaml_files(paths: Iterable[Path]) -> list[Path]:
    """Every ``*.yaml`` lm-eval would index under ``paths`` (files are taken as given), and
    every ``*.yml``, which lm-eval skips without a word: :func:`read_config` says so."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found += sorted(p for pattern in ("**/*.yaml", "**/*.yml") for p in path.glob(pattern)
                            if "__pycache__" not in p.parts)
        else:
            found.append(path)
    return found


def read_config(path: Path) -> dict[str, Any]:
    """Load a YAML the way lm-eval does (includes merged), running none of its code: the
    package's own ``!function`` tags resolve, any other stays unresolved (validate reports it)."""
    if Path(path).suffix == ".yml":
        raise TaskYamlError(f"{path}: lm-eval only reads task files ending in .yaml; rename it to "
                            f"{Path(path).with_suffix('.yaml').name}")
    try:
        cfg = load_task_config(path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise TaskYamlError(f"{where}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
    except FileNotFoundError as err:
        raise TaskYamlError(f"{path}: include not found: {err.filename or err}") from None
    except ValueError as err:
        raise TaskYamlError(str(err) if str(err).startswith(str(Path(path).resolve())) else f"{path}: {err}") from None
    if "task" not in cfg and "group" not in cfg:
        raise TaskYamlError(f"{path}: neither a 'task' nor a 'group' field; lm-eval would skip this file")
    return cfg


def check_names(path: Path, cfg: dict[str, Any]) -> None:
    """A task, group or tag name is one word a terminal and a page print as written (X8)."""
    from plumbing.text import printable, unsafe_characters

    tags = cfg.get("tag") or []
    named = [("group", cfg.get("group"))] if "group" in cfg else [("task", cfg.get("task"))]  # a group lists tasks
    for field, name in [*named, *[("tag", t) for t in (tags if isinstance(tags, list) else [tags])]]:
        if not isinstance(name, str):
            raise TaskYamlError(f"{path}: field {field} is {name!r}, not a name")
        found = unsafe_characters(name)
        if found or not name.strip() or any(c.isspace() for c in name):
            raise TaskYamlError(f"{path}: field {field} {printable(name)!r} is not a plain name (no spaces, control "
                                f"or bidi-override characters{': it holds ' + ', '.join(found) if found else ''})")


def check_fields(path: Path, cfg: dict[str, Any]) -> None:
    if "group" in cfg:
        # lm-eval applies non-group keys of a group YAML to its member tasks.
        allowed, kind = GROUP_FIELDS | TASK_FIELDS, "group"
    else:
        allowed, kind = TASK_FIELDS, "task"
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise TaskYamlError(f"{path}: unknown {kind} field(s) {unknown}; lm-eval's {kind} config has no such key")


LOADERS = {module.__name__: module for module in (task_data, generalization_data)}


def loader_of(cfg: dict[str, Any]):
    """The finharness data module a task loads through, or None for any other task."""
    return LOADERS.get(getattr(cfg.get("custom_dataset"), "__module__", None))


def is_finharness_task(cfg: dict[str, Any]) -> bool:
    return loader_of(cfg) is not None


def is_classification(cfg: dict[str, Any]) -> bool:
    return cfg.get("output_type") == "multiple_choice" or "labels" in (cfg.get("dataset_kwargs") or {})


def check_labels_declared(path: Path, cfg: dict[str, Any]) -> list[str]:
    labels = (cfg.get("dataset_kwargs") or {}).get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise TaskYamlError(f"{path}: field dataset_kwargs.labels must be a non-empty list of strings")
    if len(set(labels)) != len(labels):
        raise TaskYamlError(f"{path}: field dataset_kwargs.labels repeats a label: {labels}")
    # The generalization suite reads the choices off each row (the loader adds them).
    if cfg.get("doc_to_choice") not in (labels, "choices"):
        raise TaskYamlError(f"{path}: field doc_to_choice must equal dataset_kwargs.labels ({labels})")
    return labels


def check_prompt_renders(path: Path, cfg: dict[str, Any], doc: dict[str, Any]) -> None:
    """Render ``doc_to_text`` strictly: a misspelt field would render as '' in lm-eval."""
    template = cfg.get("doc_to_text")
    if not isinstance(template, str) or "{{" not in template and "{%" not in template:
        return
    try:
        template_environment().from_string(template).render(**doc)
    except jinja2.TemplateError as err:  # a SecurityError too: the template reached for Python's internals
        raise TaskYamlError(f"{path}: field doc_to_text does not render on the first test row: {err}") from None


def check_metrics(path: Path, cfg: dict[str, Any], doc: dict[str, Any]) -> None:
    """Every metric in ``metric_list`` must be one the task produces: lm-eval drops an
    unknown one silently, or crashes after scoring every document on a misspelt one."""
    names = [m.get("metric") for m in cfg.get("metric_list") or [] if isinstance(m, dict)]
    process = cfg.get("process_results")
    if isinstance(process, FunctionRef):
        return  # the folder's own code: validate does not run it (it says so)
    if callable(process):
        if cfg.get("output_type") == "multiple_choice":
            choices = cfg.get("doc_to_choice")
            n = len(doc.get("choices", [])) if choices == "choices" else len(choices or [])
            results: list[Any] = [(-1.0, False)] * max(n, 1)
        else:
            results = [""]
        produced = set(process(doc, results))
        source = f"its process_results ({getattr(process, '__name__', process)})"
    else:
        from lm_eval.api.registry import METRIC_REGISTRY

        produced, source = set(METRIC_REGISTRY), "lm-eval's metric registry"
    unknown = [name for name in names if name not in produced]
    if unknown:
        raise TaskYamlError(f"{path}: field metric_list names {unknown}, which {source} does not produce "
                            f"(it produces: {', '.join(sorted(produced)[:20])})")


def check_data(path: Path, cfg: dict[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    """Load a finharness task's data; return split sizes and rows dropped per split.

    Raises on any mismatch.
    """
    kwargs = dict(cfg.get("dataset_kwargs") or {})
    dropped: dict[str, int] = {}
    try:
        if loader_of(cfg) is generalization_data:
            splits, dropped = generalization_data.read_splits(config_source=str(path), **kwargs)
        else:
            splits = task_data.load(config_source=str(path), **kwargs)
    except task_data.TaskDataError as err:
        raise TaskYamlError(f"{path}: {err}") from None
    for field in SPLIT_FIELDS:
        name = cfg.get(field)
        if name is not None and name not in splits:
            raise TaskYamlError(
                f"{path}: field {field} names split {name!r}, which the data does not have "
                f"(has: {', '.join(splits) or 'none'})"
            )
    test = cfg.get("test_split") or cfg.get("validation_split")
    check_prompt_renders(path, cfg, splits[test][0])
    check_metrics(path, cfg, splits[test][0])
    return {name: len(ds) for name, ds in splits.items()}, dropped


def validate_file(path: Path, *, with_data: bool = True) -> dict[str, Any]:
    """Validate one YAML; returns a summary row. Raises :class:`TaskYamlError`."""
    cfg = read_config(path)
    check_fields(path, cfg)
    check_names(path, cfg)
    row: dict[str, Any] = {"file": str(path), "name": cfg["group"] if "group" in cfg else cfg["task"]}
    if "group" in cfg or not is_finharness_task(cfg):
        row["kind"] = "group" if "group" in cfg else "task"
        return row
    row["kind"] = cfg.get("output_type", "generate_until")
    if is_classification(cfg):
        row["labels"] = check_labels_declared(path, cfg)
    if with_data:
        try:
            row["splits"], dropped = check_data(path, cfg)
            if dropped:
                row["dropped"] = dropped
        except task_data.DataUnavailable as err:
            row["skipped"] = str(err)
    return row


def validate_paths(paths: Iterable[Path], *, with_data: bool | Sequence[Path] = True) -> tuple[list[dict], list[str]]:
    """Validate every YAML under ``paths``; returns (rows, errors), one error per bad file.

    ``with_data``: load and check every task's data, none, or (a list of folders) only the data
    of tasks under those folders. A name defined twice is an error in any case."""
    rows, errors, names = [], [], {}
    data_under = None if isinstance(with_data, bool) else [Path(p).resolve() for p in with_data]
    for path in yaml_files(paths):
        data = with_data if data_under is None else any(path.resolve().is_relative_to(d) for d in data_under)
        try:
            row = validate_file(path, with_data=data)
        except TaskYamlError as err:
            errors.append(str(err))
            continue
        if row["name"] in names:
            errors.append(f"{path}: name {row['name']!r} is already defined in {names[row['name']]}")
            continue
        names[row["name"]] = path
        rows.append(row)
    return rows, errors


def _suite_stamp(with_data: bool = False) -> str:
    """What the packaged suite's validation depends on: every YAML's path, size and time (the
    included ``_..._yaml`` templates too), the validating code's, and lm-eval's version (a stat
    per file: no YAML is read); with its data, every data file's too, and whether the Hub is
    reachable (a Hub-only task is sized online, skipped offline)."""
    import hashlib
    from importlib.metadata import version

    from fin_tasks import HUB_TASKS_DIR, TASKS_DIR

    code = sorted(Path(__file__).parent.glob("*.py"))
    digest = hashlib.sha256(version("lm_eval").encode())
    kinds = ("yaml", "yml", ".jsonl", ".json") if with_data else ("yaml", "yml")
    configs = sorted(p for root in (TASKS_DIR, HUB_TASKS_DIR) for p in root.rglob("*")
                     if p.name.endswith(kinds) and p.is_file())
    if with_data:
        from plumbing.offline import is_offline

        digest.update(f"data, offline={is_offline()}\n".encode())
    for path in [*configs, *code]:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def validate_with_suite(include_paths: Sequence[Path], suite_data: bool = False) -> tuple[list[dict], list[str]]:
    """The packaged suite (its YAMLs only; with ``suite_data``, its data too: sizes, as
    ``finharness tasks`` lists them) and the user's folders (data included), as
    ``validate_paths([TASKS_DIR, HUB_TASKS_DIR, *include_paths], with_data=include_paths)``.

    The suite's rows are validated once per change of its files and kept in finharness's
    cache (1.4 s of every ``finharness eval`` start on 2 cores; reading every data file for
    ``tasks``, far more); a user folder is always validated, and a name it defines that the
    suite defines too is an error naming both."""
    import json

    from fin_tasks import HUB_TASKS_DIR, TASKS_DIR
    from plumbing.atomic import write_atomic
    from plumbing.checkpoints import finharness_home

    cache = finharness_home() / "cache" / f"suite_validation{'_with_data' if suite_data else ''}.json"
    stamp = _suite_stamp(suite_data)
    try:
        stored = json.loads(cache.read_text())
        suite = stored["rows"] if stored.get("stamp") == stamp else None
    except (OSError, ValueError, KeyError, TypeError):
        suite = None
    if suite is None:
        suite, errors = validate_paths([TASKS_DIR, HUB_TASKS_DIR], with_data=suite_data)
        if errors:
            return suite, errors
        write_atomic(cache, json.dumps({"stamp": stamp, "rows": suite}))
    rows, errors = validate_paths(include_paths, with_data=True) if include_paths else ([], [])
    defined = {r["name"]: r["file"] for r in suite}
    for row in rows:
        if row["name"] in defined:
            errors.append(f"{row['file']}: name {row['name']!r} is already defined in {defined[row['name']]}")
    return suite + [r for r in rows if r["name"] not in defined], errors
