"""A task folder is data: its templates render in a sandbox, and what in it would run code is
found by reading it, never by running it.

lm-eval renders every prompt with a plain Jinja environment, in which a template reaches
Python's globals (``{{ cycler.__init__.__globals__.os.popen(...) }}``), and its YAML loader
imports whatever a ``!function`` tag names, first from a ``.py`` file beside the YAML. Here:

- :func:`template_environment` is the one Jinja environment finharness renders task
  templates in (lm-eval's prompts once :func:`sandbox_templates` is installed, the prompt
  parts of ``dataset_kwargs.prompt``, ``validate``'s check): an immutable sandbox with
  lm-eval's settings and filters, no underscore attributes, and a cap on the text one
  expression may build.
- :func:`read_task_yaml` reads one YAML as data: ``!function`` tags become
  :class:`FunctionRef` (nothing imported), and a YAML whose aliases expand past
  ``plumbing.yaml_data.MAX_EXPANDED_NODES`` (an alias bomb) is refused.
- :func:`code_in_task_folders` lists every way a folder would run code of its own: a Python
  file, a ``!function`` naming anything outside the finharness package, remote dataset
  code, a template reaching for Python internals. The board refuses a folder with any
  (:func:`refuse_code`); ``validate`` says so; a user's own ``eval`` may run them.
"""
from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from jinja2 import BaseLoader, StrictUndefined, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fin_tasks import PACKAGE_DIR
from plumbing.yaml_data import load_yaml_data

# A ``!function`` in a folder that is not the user's own may name only the package's own
# functions (the copied templates use fin_tasks.common.data.load, its samplers and metrics).
PACKAGE_FUNCTIONS = "fin_tasks."
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyd", ".so")
MAX_RENDERED_CHARS = 1_000_000  # per expression: a few-shot prompt is a few thousand


class TaskFolderCode(ValueError):
    """A task folder that would run code of its own where only data is accepted."""


@dataclass(frozen=True)
class FunctionRef:
    """A ``!function`` tag read as data: what it names, and where."""

    spec: str
    file: Path
    line: int

    @property
    def packaged(self) -> bool:
        return self.spec.startswith(PACKAGE_FUNCTIONS) and "/" not in self.spec


@dataclass(frozen=True)
class CodeUse:
    """One way a task folder would run code: the file, the line if known, and what. ``kind``
    says whose rule refuses it: the board refuses every kind; a user's own ``eval`` runs
    ``file``, ``function`` and ``remote`` code (it is theirs) and reads data ``outside`` its
    folder (a link, a data_dir elsewhere), but never a ``template`` that reaches Python's
    internals or a folder it cannot read as data (``unreadable``)."""

    file: Path
    line: int | None
    what: str
    kind: Literal["file", "function", "remote", "template", "unreadable", "outside"]

    def __str__(self) -> str:
        return f"{self.file}{f':{self.line}' if self.line else ''}: {self.what}"


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with a cap on ``*`` and ``**``: ``{{ 'a' * 10**10 }}``
    would otherwise fill the machine's memory. A template string is compiled once: lm-eval
    calls ``from_string`` for every document's every field (about 0.8 ms each here)."""

    intercepted_binops = frozenset(["*", "**"])
    COMPILED_KEPT = 1024

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._compiled: dict[str, object] = {}

    def from_string(self, source, globals=None, template_class=None):
        if globals is not None or template_class is not None or not isinstance(source, str):
            return super().from_string(source, globals, template_class)
        template = self._compiled.get(source)
        if template is None:
            if len(self._compiled) >= self.COMPILED_KEPT:
                self._compiled.clear()
            template = self._compiled[source] = super().from_string(source)
        return template

    def call_binop(self, context, operator_name: str, left, right):
        if operator_name == "**":
            if isinstance(right, (int, float)) and abs(right) > 64:
                raise SecurityError(f"a task template raises to the power {right}: refused")
            return left ** right
        if isinstance(left, (str, list, tuple)) or isinstance(right, (str, list, tuple)):
            count = right if isinstance(left, (str, list, tuple)) else left
            size = len(left) if isinstance(left, (str, list, tuple)) else len(right)
            if isinstance(count, int) and size * count > MAX_RENDERED_CHARS:
                raise SecurityError(f"a task template repeats a value {count} times: refused")
        return operator.mul(left, right)


def _regex_replace(string: str, pattern: str, repl: str, count: int = 0) -> str:
    import re

    return re.sub(pattern, repl, string, count=count)


def template_environment() -> ImmutableSandboxedEnvironment:
    """The environment task templates render in: lm-eval's settings (strict undefined, kept
    trailing newline, its ``regex_replace`` filter) inside Jinja's immutable sandbox."""
    env = _Sandbox(loader=BaseLoader(), undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["regex_replace"] = _regex_replace
    env.globals.pop("lipsum", None)  # a text generator no task needs, and an easy way to burn CPU
    return env


def sandbox_templates() -> None:
    """Every prompt lm-eval renders in this process goes through :func:`template_environment`
    (``lm_eval.utils.apply_template`` reads the module's ``env`` at each call)."""
    import lm_eval.utils as lm_utils

    if not isinstance(lm_utils.env, _Sandbox):
        lm_utils.env = template_environment()


class _DataLoader(yaml.SafeLoader):
    """YAML as data: the safe loader, with ``!function`` read as a :class:`FunctionRef`."""


def _function_ref(loader: _DataLoader, node: yaml.Node) -> FunctionRef:
    # loader.source: the file load_yaml_data reads
    return FunctionRef(str(loader.construct_scalar(node)), loader.source, node.start_mark.line + 1)


_DataLoader.add_constructor("!function", _function_ref)


def read_task_yaml(path: Path) -> Any:
    """One task YAML as plain data (includes not followed); ``!function`` tags as
    :class:`FunctionRef`. Raises ``yaml.YAMLError`` for bad YAML and ``ValueError`` naming the
    file for an alias bomb."""
    with Path(path).open("rb") as fh:
        return load_yaml_data(fh, path, _DataLoader)


def load_task_config(path: Path, _seen: frozenset[Path] = frozenset()) -> dict[str, Any]:
    """A task YAML as lm-eval reads it (its includes merged in order, its own keys winning,
    an include's ``task_list`` dropped), without running code: a ``!function`` naming the
    package's own function is that function (imported by its dotted name, never from a file
    beside the YAML); any other stays a :class:`FunctionRef`."""
    path = Path(path).expanduser().resolve()
    if path in _seen:
        raise ValueError(f"{path}: include cycle")
    cfg = _resolve_packaged(read_task_yaml(path))
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a YAML mapping, got {type(cfg).__name__}")
    includes = cfg.pop("include", None)
    if includes is None:
        return cfg
    merged: dict[str, Any] = {}
    for inc in includes if isinstance(includes, list) else [includes]:
        inc_cfg = load_task_config(Path(inc) if Path(inc).is_absolute() else path.parent / inc, _seen | {path})
        inc_cfg.pop("task_list", None)
        merged.update(inc_cfg)
    merged.update(cfg)
    return merged


def _resolve_packaged(value: Any) -> Any:
    import importlib

    if isinstance(value, dict):
        return {k: _resolve_packaged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_packaged(v) for v in value]
    if isinstance(value, FunctionRef) and value.packaged:
        module, _, name = value.spec.rpartition(".")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            raise ValueError(f"{value.file}:{value.line}: !function {value.spec}: "
                             "no such finharness function") from None
    return value


def _walk(value: Any, trail: str = ""):
    """(field path, value) for every leaf of a YAML document."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, f"{trail}.{key}" if trail else str(key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _walk(child, f"{trail}[{i}]")
    else:
        yield trail, value


def _template_reaches_internals(source: str) -> str | None:
    """The first attribute a template names that starts with an underscore (Python's
    internals, the way out of a template), or None."""
    env = template_environment()
    try:
        tree = env.parse(source)
    except TemplateSyntaxError:
        return None  # not a template lm-eval could render either; validate reports it
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem):
            name = getattr(node.arg, "value", None)
        else:  # x|attr('__class__')
            name = getattr(node.args[0], "value", None) if node.name == "attr" and node.args else None
        if isinstance(name, str) and name.startswith("_"):
            return name
    return None


def _uses_in_yaml(path: Path, data: Any) -> list[CodeUse]:
    found = []
    data_dir = ((data.get("dataset_kwargs") or {}) if isinstance(data, dict) else {}).get("data_dir")
    if isinstance(data_dir, str) and not (path.parent / data_dir).resolve().is_relative_to(path.parent.resolve()):
        # The board would read (and log into its store) whatever files sit there on its machine.
        found.append(CodeUse(path, None, f"dataset_kwargs.data_dir {data_dir!r} reads data outside the task's "
                                         "folder", "outside"))
    for trail, value in _walk(data):
        if isinstance(value, FunctionRef) and not value.packaged:
            found.append(CodeUse(path, value.line, f"{trail}: !function {value.spec} would import and run code "
                                                   f"(only {PACKAGE_FUNCTIONS}* functions are accepted)", "function"))
        elif trail.endswith("trust_remote_code") and value not in (False, None):
            found.append(CodeUse(path, None, f"{trail}: {value!r} would run a dataset's own code", "remote"))
        elif isinstance(value, str) and ("{{" in value or "{%" in value):
            reached = _template_reaches_internals(value)
            if reached:
                found.append(CodeUse(path, None, f"{trail}: the template reaches {reached!r} (Python internals)",
                                     "template"))
    return found


MAX_FOLDER_FILES = 20_000  # a task folder holds a few files per task; "/" holds millions


class _TooLarge(Exception):
    pass


def _entries(folder: Path) -> list[Path]:
    """Everything under ``folder``, stopping past :data:`MAX_FOLDER_FILES`."""
    found = []
    for p in folder.rglob("*"):
        found.append(p)
        if len(found) > MAX_FOLDER_FILES:
            raise _TooLarge
    return sorted(found)


def _code_files(folder: Path, entries: list[Path]) -> list[CodeUse]:
    found = [CodeUse(p, None, "a code file (a task folder may hold YAML, templates and data only)", "file")
             for p in entries if p.suffix in CODE_SUFFIXES and p.is_file()]
    return found + [CodeUse(p, None, "a link (the board reads task folders' own files only)", "outside")
                    for p in entries if p.is_symlink()]


def _yaml_files(entries: list[Path]) -> list[Path]:
    return [p for p in entries if p.is_file() and (p.suffix in (".yaml", ".yml") or p.name.endswith("_yaml"))]


def code_in_task_folders(folders: Iterable[str | Path]) -> list[CodeUse]:
    """Every way the folders would run code, found by reading them: their code files, and in
    each YAML (and every file it includes, unless packaged) a ``!function`` outside the
    package, remote dataset code, or a template reaching for Python internals. A YAML that
    cannot be read as data is reported too (lm-eval would read it otherwise)."""
    folders = [Path(f).resolve() for f in folders]
    found: list[CodeUse] = []
    todo: list[Path] = []
    for folder in folders:
        if folder.is_relative_to(PACKAGE_DIR):  # the packaged suite is finharness's own code and data
            continue
        if not folder.is_dir():
            todo.append(folder)
            continue
        try:
            entries = _entries(folder)
        except _TooLarge:
            found.append(CodeUse(folder, None, f"holds more than {MAX_FOLDER_FILES:,} files: not a task folder",
                                 "unreadable"))
            continue
        found += _code_files(folder, entries)
        todo += _yaml_files(entries)
    seen: set[Path] = set()
    scanned_dirs = set(folders)
    while todo:
        path = todo.pop().resolve()
        if path in seen or path.is_relative_to(PACKAGE_DIR):
            continue
        seen.add(path)
        if not any(path.is_relative_to(d) for d in scanned_dirs):
            # An include from elsewhere: lm-eval resolves its !function tags beside it first.
            scanned_dirs.add(path.parent)
            try:
                found += _code_files(path.parent, _entries(path.parent))
            except _TooLarge:
                found.append(CodeUse(path.parent, None, f"holds more than {MAX_FOLDER_FILES:,} files: not a task "
                                                        "folder", "unreadable"))
        try:
            data = read_task_yaml(path)
        except (yaml.YAMLError, OSError, RecursionError) as err:
            found.append(CodeUse(path, None, f"not readable as data ({type(err).__name__})", "unreadable"))
            continue
        except ValueError as err:  # an alias bomb
            found.append(CodeUse(path, None, str(err).removeprefix(f"{path}: "), "unreadable"))
            continue
        found += _uses_in_yaml(path, data)
        includes = data.get("include") if isinstance(data, dict) else None
        for inc in includes if isinstance(includes, list) else [includes] if includes else []:
            if isinstance(inc, str):
                todo.append(Path(inc) if Path(inc).is_absolute() else path.parent / inc)
    return found


BOARD_RULE = "the board reads task folders as data and runs none of them"


def refuse_code(folders: Iterable[str | Path], where: str = "task folder",
                kinds: Iterable[str] = ("file", "function", "remote", "template", "unreadable", "outside"),
                why: str = BOARD_RULE) -> None:
    """Raise :class:`TaskFolderCode` naming the first file (and line) that would run code of
    one of ``kinds`` (by default every kind: the board's rule)."""
    kinds = set(kinds)
    found = [use for use in code_in_task_folders(folders) if use.kind in kinds]
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise TaskFolderCode(f"{where} {found[0]}{more}; {why}")
