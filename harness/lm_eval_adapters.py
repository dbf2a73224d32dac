"""Every place finharness reaches into lm-eval's state, in one module, each with why.

Written against lm-eval 0.4.13. ``ADAPTED`` names each lm-eval symbol an adapter replaces or
relies on, with the sha256 of its source in that version; ``tests/test_lm_eval_adapters.py``
fails loudly, naming the symbol and its adapter, the day an upgrade changes one, so each is
re-read rather than silently kept.

Extension points lm-eval offers (no patch; documented where they live):
- the model backend ``hf-shared-prefix`` registers with ``lm_eval.api.registry.register_model``
  (``harness/backend/shared_prefix_lm.py``); ``pyproject.toml`` also declares it under the
  ``lm_eval.models`` entry point of lm-eval PR #4013, inert on 0.4.13;
- the task index wraps ``lm_eval.tasks.TaskManager`` (``fin_tasks/index.py``: tag members
  merged across include paths).

One patch lives below this floor, because every task index installs it whichever floor builds
the index: ``fin_tasks.sandbox.sandbox_templates`` points ``lm_eval.utils.env`` (which
``apply_template`` reads at each call) at Jinja's immutable sandbox.
"""
from __future__ import annotations

import os
import sys
from typing import Any

LM_EVAL_VERSION = "0.4.13"

# lm-eval symbol -> (the adapter that depends on it, its source's sha256 in LM_EVAL_VERSION, first 16)
ADAPTED: dict[str, tuple[str, str]] = {
    # simple_evaluate calls add_env_info and get_git_commit_hash through its module's names
    "lm_eval.evaluator.simple_evaluate": ("adapt_evaluator", "9eecb3c9d0d9660c"),
    "lm_eval.loggers.utils.add_env_info": ("adapt_evaluator", "a6e55f7becead9c0"),
    "lm_eval.loggers.utils.get_git_commit_hash": ("adapt_evaluator", "3b8396124d9caddc"),
    "lm_eval.tasks.TaskManager.load": ("score_on_validation", "86eb26dc3ad8ca3e"),
    "lm_eval.loggers.evaluation_tracker.GeneralConfigTracker.log_experiment_args":
        ("name_results_folder", "bb077419ea8158a2"),
    "lm_eval.api.model.CachingLM.__init__": ("write_without_waiting", "f6220824858c3165"),  # SqliteDict(autocommit)
    "lm_eval.api.model.CacheHook": ("write_without_waiting", "b7e5b18b1830cd6f"),  # its dbdict
    "lm_eval.utils.apply_template": ("fin_tasks.sandbox.sandbox_templates", "5980b059b01a5c10"),  # env at each call
}


def source_digest(symbol: str) -> str:
    """The first 16 hex digits of the sha256 of an lm-eval symbol's source (module path, then attributes)."""
    import hashlib
    import importlib
    import inspect

    parts = symbol.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return hashlib.sha256(inspect.getsource(found).encode()).hexdigest()[:16]
    raise ImportError(symbol)


# --- the evaluator's environment record -------------------------------------------------------

_ENVIRONMENTS: dict[str, dict[str, Any]] = {}


def _env_info_once(storage: dict[str, Any]) -> None:
    """lm-eval's ``add_env_info``, run once per process and working folder: it asks torch's
    ``collect_env``, which starts about ten child processes (0.7 s on 2 cores) whose answers
    do not change while the process runs. The values are lm-eval's."""
    from lm_eval.loggers.utils import add_env_info

    cwd = os.getcwd()  # the "upper_git_hash" it records is the working folder's parent's
    if cwd not in _ENVIRONMENTS:
        _ENVIRONMENTS[cwd] = {}
        add_env_info(_ENVIRONMENTS[cwd])
    storage.update(_ENVIRONMENTS[cwd])


def _quiet_git_hash() -> str | None:
    """lm-eval's own commit probe (``git describe --always``) with the process's stderr sent to
    /dev/null while it runs: outside a git checkout git prints "fatal: not a git repository" in
    the middle of the run's output. The value is lm-eval's."""
    from lm_eval.loggers.utils import get_git_commit_hash

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)  # git, a child process, inherits file descriptor 2
            return get_git_commit_hash()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def adapt_evaluator() -> None:
    """``simple_evaluate`` records the environment and lm-eval's commit through two names it
    imported into ``lm_eval.evaluator``; both are replaced by the same values, computed once per
    process (:func:`_env_info_once`) and without git's stderr (:func:`_quiet_git_hash`).
    Idempotent: installed once per process."""
    import lm_eval.evaluator as evaluator

    evaluator.get_git_commit_hash = _quiet_git_hash
    evaluator.add_env_info = _env_info_once


# --- the scored split ------------------------------------------------------------------------

def score_on_validation(manager, required: bool = True) -> None:
    """Make ``manager`` load every task with its validation split as the scored split
    (``required=False``: the tasks that have one; the others keep their test split).

    lm-eval scores a task's ``test_split``; choosing among checkpoints (a merge sweep's
    points) must not look at it, so the loaded tasks are pointed at ``validation_split``.
    Few-shot examples drawn from that same split skip the scored document, as lm-eval does.
    lm-eval has no option for it, so this manager's ``load`` is wrapped (the manager is the
    caller's own copy: ``fin_tasks.index.task_manager``).
    """
    load = manager.load

    def load_validation(*args, **kwargs):
        loaded = load(*args, **kwargs)
        for name, task in loaded["tasks"].items():
            split = task.config.validation_split
            if not split:
                if not required:
                    continue
                raise ValueError(f"task {name} has no validation split to score (--split validation)")
            task.set_config(key="test_split", value=split)
        return loaded

    manager.load = load_validation


# --- the results folder's name ---------------------------------------------------------------

def name_results_folder(tracker, model: str) -> None:
    """Name the tracker's output folder by the model as the user named it (runs/fpb-lora ->
    runs__fpb-lora), not by the resolved checkpoint's absolute path, which lm-eval would mangle
    (it sanitizes the ``pretrained=`` path it is given)."""
    from lm_eval.utils import sanitize_model_name

    tracker.general_config_tracker.model_name_sanitized = sanitize_model_name(str(model).rstrip("/"))


# --- the request cache's writes --------------------------------------------------------------

def write_without_waiting(hook) -> None:
    """Let lm-eval's cache hook write each answer without waiting for it to be committed.

    lm-eval opens the cache as a ``SqliteDict`` with ``autocommit=True``: its writer thread
    runs SQLite in autocommit mode, so every statement is committed as it runs, and on top of
    that each write queued a blocking commit and captured the caller's stack (for sqlitedict's
    error text): about 2 ms an answer on 2 cores, as long as scoring one with a tiny model.
    Without the wait, each answer is still committed by the writer thread as it comes (a
    killed run loses only the few still queued), and lm-eval's own ``commit()`` when its call
    returns waits for all of them.
    """
    dbdict = getattr(hook, "dbdict", None)
    if dbdict is None:
        return
    dbdict.autocommit = False  # the dict's switch only: the writer thread still commits each statement
    if hasattr(dbdict.conn, "_outer_stack"):
        dbdict.conn._outer_stack = False
