"""One task index for every command: the packaged suite plus the user's ``--include_path`` folders.

lm-eval finds tasks by walking folders; ``eval``, ``tasks``, ``validate``, ``train``,
study eval sets and ``leaderboard submit`` all build their index here, so a held-out task
a user drops into a folder of their own is seen the same way by each of them.

- Names and patterns expand with lm-eval's own matcher (``TaskManager.match_tasks``), so
  ``fin_fp*`` means what it means to ``lm_eval --tasks``; a name that matches nothing is
  an error listing the nearest names.
- A task's *role* comes from the tag it declares: ``finharness_seen_members``,
  ``finharness_unseen_members`` (and their ``_generative`` twins), or
  ``finharness_retention_members``. The role groups aggregate those tags, so a new task
  joins a role with one line in its own YAML.
- Old names (the ``fin_<x>_gen`` generative twins, now ``generative_fin_<x>``) still
  resolve for one release, with a deprecation line.
- A task outside the package is pinned by the content of its files
  (:func:`task_fingerprint`): the board refuses results whose task files changed since.
"""
from __future__ import annotations

import difflib
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fin_tasks import HUB_TASKS_DIR, PACKAGE_DIR, TASKS_DIR

log = logging.getLogger("finharness")

# What each role aggregates: the groups whose members are the tasks declaring the role's tag.
# arXiv 2411.02476's prompt formats (fin_tasks/tasks/_format_*_yaml), scored and generated.
PAPER_FORMATS = ("alpaca", "label", "generative_alpaca", "generative_label")
ROLE_GROUPS: dict[str, tuple[str, ...]] = {
    "seen": ("finharness_seen", "finharness_seen_generative", *(f"finharness_seen_{f}" for f in PAPER_FORMATS)),
    "unseen": ("finharness_unseen", "finharness_unseen_generative", *(f"finharness_unseen_{f}" for f in PAPER_FORMATS)),
    "retention": ("finharness_retention",),
}

_TWINS = ("fpb", "fiqa_sa", "tfns", "headlines", "finred", "fomc", "finarg_auc", "fincausal", "ma")
# Deprecated in 0.2, gone in 0.3: "gen" meant "generative" here and "generalization" in gen_*.
ALIASES: dict[str, str] = {
    **{f"fin_{t}_gen": f"generative_fin_{t}" for t in _TWINS},
    **{f"finharness_{g}_gen": f"finharness_{g}_generative" for g in ("seen", "unseen", "all")},
}


class UnknownTask(ValueError):
    """A task name, pattern or task folder that is not there."""


def include_paths(paths: Iterable[str | Path] | None) -> list[Path]:
    """The user's task folders, resolved; a missing one is an error naming it."""
    out: list[Path] = []
    for raw in paths or ():
        path = Path(raw).expanduser().resolve()
        if not path.exists():
            raise UnknownTask(f"--include_path {raw}: no such file or folder")
        if path not in out:
            out.append(path)
    return out


def index_paths(extra: Sequence[Path] = (), hub: bool = False) -> list[Path]:
    return [TASKS_DIR, *([HUB_TASKS_DIR] if hub else []), *extra]


class _TagOverrideNote(logging.Filter):
    """lm-eval warns when a tag is declared under two include paths; :func:`task_manager`
    merges the tag's members instead, so the warning would mislead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Task '%s' from %s overrides") or record.args[1] is not None


logging.getLogger("lm_eval.tasks._index").addFilter(_TagOverrideNote())


def _merge_tags(manager) -> None:
    """A tag's members across every indexed folder. lm-eval 0.4.13 keeps only the last
    folder's members of a tag (a later path "overrides" it), so a user's held-out task
    tagged ``finharness_unseen_members`` would otherwise push the packaged ones out."""
    from lm_eval.tasks._index import Kind

    members: dict[str, set[str]] = {}
    for name, entry in manager.task_index.items():
        if entry.kind in (Kind.TASK, Kind.PY_TASK):
            for tag in entry.tags:
                members.setdefault(tag, set()).add(name)
    for tag, names in members.items():
        entry = manager.task_index.get(tag)
        if entry is not None and entry.kind is Kind.TAG:
            entry.tags = names


_INDEXED: dict[tuple, Any] = {}  # one built index per folder set and state of its files, per process


def _folder_state(paths: Sequence[Path]) -> tuple:
    """Every file under ``paths`` by name, size and modification time: an edited, added or
    removed task file makes a new index."""
    state = []
    for root in paths:
        for file in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if file.is_file():
                stat = file.stat()
                state.append((str(file), stat.st_size, stat.st_mtime_ns))
    return tuple(state)


def task_manager(include_paths: Sequence[str | Path] = (), hub: bool = False, include_defaults: bool = False):
    """lm-eval's TaskManager over the packaged tasks and ``include_paths`` (lm-eval's own
    ~14,700 built-in tasks only when asked: indexing them costs ~10 s).

    Indexing reads every YAML (~0.25 s for the packaged suite), and one command asks for the
    index many times (a study's evaluations, each board submission's checks), so a process
    builds it once per folder set while the folders' files are unchanged. Each caller gets
    its own copy of the manager: what one sets on it (``score_on_validation``) stays its own.
    """
    import copy

    from lm_eval.tasks import TaskManager

    from fin_tasks.sandbox import sandbox_templates

    sandbox_templates()  # every prompt this process renders from these tasks, in Jinja's sandbox
    paths = index_paths([Path(p) for p in include_paths], hub)
    key = (tuple(str(p) for p in paths), include_defaults, _folder_state(paths))
    manager = _INDEXED.get(key)
    if manager is None:
        manager = TaskManager(include_path=[str(p) for p in paths], include_defaults=include_defaults)
        _merge_tags(manager)
        _INDEXED[key] = manager
    return copy.copy(manager)


def deprecated_alias(name: str) -> str:
    new = ALIASES.get(name)
    if new is None:
        return name
    log.warning("%s is deprecated: it is now %s (the old name goes in finharness 0.3)", name, new)
    return new


def expand(requested: Iterable[str], known: Sequence[str], where: str = "--tasks") -> list[str]:
    """Task, group and tag names for lm-eval: each entry taken as a name, else as a pattern
    matched by lm-eval's own matcher; order kept, duplicates dropped."""
    from lm_eval.utils import pattern_match

    known_set = set(known)
    out: list[str] = []
    for entry in requested:
        entry = deprecated_alias(entry)
        matches = [entry] if entry in known_set else pattern_match([entry], list(known))
        if not matches:
            raise UnknownTask(f"{where}: no task, group or tag matches {entry!r}{near_names(entry, known)}")
        out += [m for m in matches if m not in out]
    return out


def near_names(entry: str, known: Sequence[str]) -> str:
    stem = entry.replace("*", "").replace("?", "")
    near = difflib.get_close_matches(stem, list(known), n=5, cutoff=0.6)
    near += [k for k in known if stem and k.startswith(stem) and k not in near][: 5 - len(near)]
    return f" (did you mean: {', '.join(near)}?)" if near else " (see `finharness tasks`)"


def load_members(manager, tasks: Iterable[str]) -> dict[str, Any]:
    """The lm-eval task objects the names stand for, groups and tags expanded (each task once,
    in order): what a run scores, for counting its documents or tokens before it runs."""
    names = list(dict.fromkeys(m for t in tasks for m in group_members(t, manager.task_index)))
    return manager.load(names)["tasks"]


def group_members(name: str, index: Mapping, seen: tuple[str, ...] = ()) -> list[str]:
    """The tasks a group (or tag, or task) stands for, from lm-eval's task index."""
    from lm_eval.tasks._index import Kind

    if name in seen:
        raise ValueError(f"group {name!r} contains itself")
    entry = index.get(name)
    if entry is None:
        raise ValueError(f"unknown task, group or tag {name!r}")
    if entry.kind is Kind.TAG:
        return sorted(entry.tags)
    if entry.kind is Kind.GROUP:
        children = entry.cfg.get("task") or []
        out: list[str] = []
        for child in children if isinstance(children, list) else [children]:
            out += group_members(child["task"] if isinstance(child, dict) else child, index, seen + (name,))
        return out
    return [name]


def roles(index: Mapping) -> dict[str, str]:
    """``task -> role`` (seen / unseen / retention) for every task of ``index`` that declares one."""
    out: dict[str, str] = {}
    for role, groups in ROLE_GROUPS.items():
        for group in groups:
            if group not in index:
                continue
            for task in group_members(group, index):
                if out.setdefault(task, role) != role:
                    raise ValueError(f"task {task!r} declares two roles: {out[task]} and {role}")
    return out


def is_packaged(entry) -> bool:
    return entry.yaml_path is not None and Path(entry.yaml_path).resolve().is_relative_to(PACKAGE_DIR)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def task_files(entry) -> list[Path]:
    """The files a task outside the package is made of: everything beside its YAML (its
    templates and, in the usual layout, its data/), plus a data folder it names elsewhere."""
    folder = Path(entry.yaml_path).resolve().parent
    roots = [folder]
    data_dir = ((entry.cfg or {}).get("dataset_kwargs") or {}).get("data_dir")
    if isinstance(data_dir, str):
        target = (folder / data_dir).resolve()
        if not target.is_relative_to(folder):
            roots.append(target)
    files: list[Path] = []
    for root in roots:
        found = [root] if root.is_file() else sorted(root.rglob("*"))
        files += [p for p in found if p.is_file() and "__pycache__" not in p.parts]
    return files


def task_fingerprint(entry) -> dict[str, Any]:
    """``{"yaml": path, "files": {relative path: sha256}}`` of a task outside the package."""
    base = Path(entry.yaml_path).resolve().parent
    files = {}
    for path in task_files(entry):
        name = str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
        files[name] = _digest(path)
    return {"yaml": str(Path(entry.yaml_path).resolve()), "files": files}


def external_fingerprints(tasks: Iterable[str], index: Mapping) -> dict[str, dict[str, Any]]:
    """Fingerprints of the scored tasks that do not ship with finharness."""
    return {t: task_fingerprint(index[t]) for t in tasks if t in index and not is_packaged(index[t])}


def fingerprint_mismatch(task: str, recorded: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """What changed in a task's files since it was scored, naming the file; None if nothing."""
    old, new = recorded.get("files") or {}, current.get("files") or {}
    base = Path(current.get("yaml", "")).parent
    for name in sorted(set(old) | set(new)):
        if name not in new:
            return f"task {task}: file {base / name} was scored but is gone"
        if name not in old:
            return f"task {task}: file {base / name} was not there when it was scored"
        if old[name] != new[name]:
            return f"task {task}: file {base / name} changed since it was scored (sha256 {new[name][:12]}, " \
                   f"scored with {old[name][:12]})"
    return None


_FORMAT_OF = {"base": "alpaca", "instruct": "label"}


def task_variant(name: str, prompt_format: str, prompts: str = "finben", scoring: str = "loglik") -> str:
    """The task (or group) a study scores for a FinBen task name: in arXiv 2411.02476's format
    for the model's prompt format (``prompts: paper``: Alpaca for base models, ``label:`` for
    instruct ones) and generated (``scoring: generate``) or scored by log-likelihood. Names
    outside the financial suite (gen_*, a user's tasks, the retention panel) are kept."""
    fmt = _FORMAT_OF[prompt_format] if prompts == "paper" else ""
    gen = scoring == "generate"
    if name.startswith("fin_"):
        return f"{'generative_' if gen else ''}{fmt + '_' if fmt else ''}{name}"
    role = next((r for r in ("seen", "unseen", "all") if name == f"finharness_{r}"), None)
    if role:
        return f"finharness_{role}{'_generative' if gen else ''}{'_' + fmt if fmt else ''}"
    return name


def finben_name(task: str) -> str:
    """The FinBen task a format or scoring variant belongs to (``label_fin_fpb`` -> ``fin_fpb``)."""
    name = task.removeprefix("generative_")
    for fmt in _FORMAT_OF.values():
        if name.startswith(f"{fmt}_fin_"):
            return name.removeprefix(f"{fmt}_")
    return name if name.startswith("fin_") else task
