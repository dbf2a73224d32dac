"""Check a results folder before it reaches the board: every score must follow from its logs.

A folder written by ``finharness eval --output_path`` (lm-eval's layout) holds
``results_<ts>.json`` and one ``samples_<task>_<ts>.jsonl`` per task. The board trusts
neither blindly. For every task it:

1. refuses a task finharness does not know (not in the packaged suite nor in the
   submission's ``include_paths``), and a task from those folders whose files differ
   from the ones it was scored with (the content hashes ``finharness eval`` records);
2. reads every per-sample row and refuses one whose ``doc`` is not the task's document
   of that ``doc_id`` (edited text or gold label), and refuses a set of rows that is not
   exactly the documents the declared ``limit`` selects (lm-eval's rule: the first
   ``limit`` documents), so rows cannot be cherry-picked and a partial run cannot pass
   as a full one;
3. re-scores each row from its logged responses with the task's own
   ``process_results`` (lm-eval's code, not a copy) and refuses a row whose logged
   metric values differ (an edited ``acc``);
4. aggregates the rows with the task's metrics and refuses a results file whose score
   differs (an edited ``results_*.json``), and checks lm-eval's ``task_hashes``.

What it cannot catch is a forger who edits the model's responses themselves; a
submission with a checkpoint is scored by the board, so that needs no trust.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evidence.baselines import NORMALIZED, PAIR_METRIC, from_rows, normalized_interval
from evidence.records import run_record
from evidence.result_files import load_results, results_file, sample_rows, samples_file
from fin_tasks.common.metrics import aggregation_of
from fin_tasks.index import external_fingerprints, fingerprint_mismatch, roles, task_manager
from fin_tasks.index import include_paths as checked
from fin_tasks.sandbox import refuse_code
from harness.slices import select, task_golds
from plumbing.vocabulary import SLICE_RULES, SliceMethod, SliceRule

TOLERANCE = 1e-6


class TamperedResults(ValueError):
    """A results folder whose scores do not follow from its own per-sample logs."""


@dataclass
class VerifiedResults:
    path: Path  # the results JSON
    data: dict[str, Any]
    scores: dict[str, dict[str, float]]  # task -> metric -> score, recomputed
    docs: dict[str, int] = field(default_factory=dict)  # task -> docs scored
    limit: float | None = None  # the declared limit, checked against every task's rows
    sample: SliceMethod = "first"  # how the limit chose documents (harness/slices.py), checked likewise
    seed: int | None = None
    rule: SliceRule = "prior"  # how a stratified slice allocated documents to labels (harness/slices.py)
    external: dict[str, dict] = field(default_factory=dict)  # task -> fingerprint, for tasks outside the package
    roles: dict[str, str] = field(default_factory=dict)  # task -> seen / unseen / retention, from the task YAMLs
    baselines: dict[str, dict] = field(default_factory=dict)  # task -> trivial baselines and collapse, from the rows
    intervals: dict[str, list[float]] = field(default_factory=dict)  # seen_norm / unseen_norm / ... -> 95% interval
    shots: dict[str, int] = field(default_factory=dict)  # task -> few-shot examples, checked against the prompts


def _declared_limit(data: dict[str, Any], path: Path) -> float | None:
    limit = data.get("config", {}).get("limit")
    return _positive(limit, path, "config.limit")


def _positive(limit: Any, path: Path, field_name: str) -> float | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not math.isfinite(limit) or limit <= 0:
        raise TamperedResults(f"{path}: {field_name} is {limit!r}, not a positive number or null")
    return float(limit)


@dataclass(frozen=True)
class DeclaredSlice:
    """How the results say their documents were chosen; checked against every task's logged ones."""

    limit: float | None
    method: SliceMethod = "first"
    seed: int | None = None
    rule: SliceRule = "prior"


@dataclass(frozen=True)
class LoggedTask:
    """What the results file says of one task beside its per-sample rows."""

    scores: dict[str, Any]  # its "results" entry
    docs: int | None  # n-samples' effective count
    hash: str | None  # task_hashes
    version: Any  # versions


def _declared_slice(data: dict[str, Any], path: Path) -> DeclaredSlice:
    """A finharness slice where the results record one, else lm-eval's own ``--limit`` (the
    first N). A stratified slice recorded without a rule was drawn by the old one (``floor``)."""
    recorded = run_record(data).get("slice") or {}
    method = recorded.get("method")
    if method in ("stratified", "random"):
        seed = recorded.get("seed")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
            raise TamperedResults(f"{path}: finharness.slice.seed is {seed!r}, not a whole number in [0, 2**32)")
        rule = recorded.get("rule", "floor")
        if rule not in SLICE_RULES:
            raise TamperedResults(f"{path}: finharness.slice.rule is {rule!r}, not {' or '.join(SLICE_RULES)}")
        return DeclaredSlice(_positive(recorded.get("limit"), path, "finharness.slice.limit"), method, seed, rule)
    return DeclaredSlice(_declared_limit(data, path))


def _plain(value: Any) -> Any:
    """JSON round trip of a metric value: tuples come back as lists."""
    return json.loads(json.dumps(value, default=str))


def _response(value: Any) -> Any:
    """lm-eval logs a loglikelihood answer as ``["-6.06", "False"]``; parse it back."""
    if isinstance(value, list) and len(value) == 2 and value[1] in ("True", "False"):
        return float(value[0]), value[1] == "True"
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _task_hash(rows: list[dict]) -> str:
    from lm_eval.utils import hash_string

    return hash_string("".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in rows))


PROMPT_PARTS = ("instruction", "input")  # fin_tasks.common.data.attach_prompt_parts adds them


def _read_rows(path: Path) -> list[dict]:
    try:
        return [row for _, row in sample_rows(path, ("doc_id", "doc", "filtered_resps", "arguments"))]
    except ValueError as err:
        raise TamperedResults(f"{err}; a half-written log?") from None


def _check_task(name: str, task, rows: list[dict], logged: LoggedTask, where: Path,
                declared: DeclaredSlice) -> dict[str, float]:
    """One task's rows checked against the task itself (documents, rescored metrics), the slice
    its settings select, and the results file (count, hash, aggregates); its scores."""
    per_metric = _rescored_rows(name, task, rows, logged.scores, where, logged.version)
    _check_slice(name, task, {row["doc_id"] for row in rows}, len(rows), where, declared)
    if logged.docs is not None and len(rows) != logged.docs:
        raise TamperedResults(f"{where}: {len(rows)} sample rows, but the results file counts {logged.docs} docs")
    if logged.hash and _task_hash(rows) != logged.hash:
        raise TamperedResults(f"{where}: the rows do not match the results file's task hash")
    scores = {}
    aggregations = task.aggregation()
    for key, value in logged.scores.items():
        metric = key.partition(",")[0]
        if metric not in per_metric or "stderr" in metric:
            continue
        recomputed = float(aggregations.get(metric, aggregation_of(metric))(per_metric[metric]))
        if not _same(recomputed, value):
            raise TamperedResults(
                f"{name}: {metric} is {value!r} in the results file, but {recomputed!r} "
                f"from its {len(rows)} per-sample rows")
        scores[metric] = recomputed
    return scores


def rescore_compact_rows(name: str, task, rows: list[dict], where: Path, docs: list | None = None) -> None:
    """Rows of a study pack's compact log (no document text, only the label set): each row's
    logged metrics must be what its logged responses score on the task's own document of that
    id (``docs``: the task's ``eval_docs``, when the caller holds them). Rows without responses
    (a compact generative row) are not rescored."""
    _rescored_rows(name, task, [r for r in rows if "filtered_resps" in r], {}, where, None, check_docs=False,
                   docs=docs)


def _rescored_rows(name: str, task, rows: list[dict], logged: dict[str, Any], where: Path,
                   logged_version: Any, check_docs: bool = True, docs: list | None = None) -> dict[str, list]:
    """Each row is the task's own document, once, and its logged metrics are what its responses
    score; returns every metric's per-document values."""
    docs = task.eval_docs if docs is None else docs  # indexed by doc_id: a slice reads only its rows
    seen: set[int] = set()
    per_metric: dict[str, list] = {}
    # A metric the task gained after the log was written (an older task version: BLEU came
    # with version 1.1 of the generation tasks) is absent from every row and from the
    # results; it is left off the entry. Absent from some rows only, it is refused.
    newer_task = logged_version is not None and str(logged_version) != str(getattr(task, "VERSION", logged_version))
    claimed = {key.partition(",")[0] for key in logged}
    not_logged: dict[str, int] = {}
    for row in rows:
        doc_id = row["doc_id"]
        if not isinstance(doc_id, int) or not 0 <= doc_id < len(docs) or doc_id in seen:
            raise TamperedResults(f"{where}: doc_id {doc_id!r} is out of range or repeated")
        seen.add(doc_id)
        expected = _plain(docs[doc_id])
        if check_docs and isinstance(row["doc"], dict) and isinstance(expected, dict):
            # Rows logged before the loader added the prompt parts (2026-12-01) lack them; the
            # parts are rendered from the document's own fields, so it is the same document.
            expected = {k: v for k, v in expected.items() if k not in PROMPT_PARTS or k in row["doc"]}
        if check_docs and expected != row["doc"]:
            raise TamperedResults(f"{where}: doc {doc_id} is not {name}'s document {doc_id} (edited text or label)")
        rescored = task.process_results(docs[doc_id], [_response(r) for r in row["filtered_resps"]])
        for metric, value in rescored.items():
            if newer_task and metric not in claimed and row.get(metric) is None:
                not_logged[metric] = not_logged.get(metric, 0) + 1
                continue
            if not _same(_plain(value), row.get(metric)):
                raise TamperedResults(
                    f"{where}: doc {doc_id}: {metric} is logged as {row.get(metric)!r}, "
                    f"but its responses score {_plain(value)!r}")
            per_metric.setdefault(metric, []).append(value)
    for metric, count in not_logged.items():
        if count != len(rows):
            raise TamperedResults(f"{where}: {metric} is missing from {count} of {len(rows)} rows")
    return per_metric


def _check_slice(name: str, task, seen: set[int], rows: int, where: Path, declared: DeclaredSlice) -> None:
    """The logged documents are exactly those the settings select: the seeded slice rebuilt from
    the task's own documents (it cannot be chosen by hand), or lm-eval's first N."""
    from lm_eval.evaluator_utils import get_sample_size

    limit, method, seed, rule = declared.limit, declared.method, declared.seed, declared.rule
    if limit is not None and method != "first":
        selected = set(select(task_golds(task), limit, method, seed, rule))
        said = f"a {method} slice of {limit:g} (seed {seed})"
    else:
        # lm-eval's own rule: get_sample_size, then the first that many of eval_docs.
        wanted = get_sample_size(task, limit)
        count = len(task.eval_docs)
        selected = set(range(count if wanted is None else min(wanted, count)))
        said = "no limit (the whole test split)" if limit is None else f"limit {limit:g}"
    if seen == selected:
        return
    missing, extra = sorted(selected - seen), sorted(seen - selected)
    detail = "; ".join(part for part in (
        f"missing doc_id {', '.join(map(str, missing[:5]))}{' ...' if len(missing) > 5 else ''}" if missing else "",
        f"doc_id {', '.join(map(str, extra[:5]))} not selected" if extra else "",
    ) if part)
    chosen = sorted(selected)
    span = f"documents {chosen[0]}-{chosen[-1]}" if chosen == list(range(len(chosen))) else f"{len(chosen)} documents"
    raise TamperedResults(f"{where}: {said} selects {span} of {name}, but the log holds {rows} rows ({detail})")


def _check_score_types(logged: dict[str, Any], name: str, path: Path) -> None:
    """Every metric value of a task in the results file is a finite number (a string or a
    10**400 would be skipped or overflow later, and a score dropped is a score hidden)."""
    for key, value in logged.items():
        if "," not in key or "stderr" in key:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (isinstance(value, int) and abs(value) > 1e300) or not math.isfinite(float(value)):
            raise TamperedResults(f"{path}: results.{name}.{key} is {str(value)[:40]!r}, not a finite number")


SHOT_ROWS_CHECKED = 20  # prompts counted per task: one forged setting shows in every row


def _declared_shots(data: dict[str, Any], path: Path, name: str) -> int:
    """A task's few-shot count, which a results file states three times (lm-eval's ``n-shot``
    and ``configs.<task>.num_fewshot``, finharness's ``num_fewshot``): each a whole number,
    all the same. The count is then checked against the prompts themselves."""
    said = {
        f"n-shot.{name}": (data.get("n-shot") or {}).get(name),
        f"configs.{name}.num_fewshot": ((data.get("configs") or {}).get(name) or {}).get("num_fewshot"),
        "finharness.num_fewshot": run_record(data).get("num_fewshot"),
    }
    for field_name, value in said.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise TamperedResults(f"{path}: {field_name} is {value!r}, not a whole number of examples")
    stated = {k: v for k, v in said.items() if v is not None}
    if len(set(stated.values())) > 1:
        said_all = ", ".join(f"{k}={v}" for k, v in stated.items())
        raise TamperedResults(f"{path}: the few-shot counts disagree ({said_all})")
    return next(iter(stated.values()), 0)


def _logged_context(row: dict) -> str | None:
    """The prompt a sample row was scored on (its first request's context)."""
    args = row.get("arguments")
    if isinstance(args, dict):
        first = next(iter(args.values()), None)
    else:
        first = args[0] if isinstance(args, list) and args else None
    context = first.get("arg_0") if isinstance(first, dict) else first[0] if isinstance(first, list) and first else None
    return context if isinstance(context, str) else None


def _check_shots_in_prompts(name: str, task, rows: list[dict], shots: int, where: Path) -> None:
    """Each of the first rows' prompts holds ``shots`` examples from the task's few-shot pool:
    counted as occurrences of the pool's rendered questions (as lm-eval renders a shot), less
    the document's own question. A forged ``n-shot`` cannot pass with honest prompts."""
    try:
        pool = task.fewshot_docs() or []
    except Exception:  # noqa: BLE001 - no few-shot split: nothing to count, lm-eval could not have drawn any
        pool = []
    if not pool:
        if shots:
            raise TamperedResults(f"{where}: {shots} few-shot examples stated, but {name} has no few-shot pool")
        return
    template = getattr(getattr(task, "fewshot_cfg", None), "doc_to_text", None)

    def question(doc) -> str | None:
        text = task.doc_to_text(doc, template) if template is not None else task.doc_to_text(doc)
        return text if isinstance(text, str) and text.strip() else None

    texts = {t for t in map(question, pool) if t}
    docs = task.eval_docs
    for row in sorted(rows, key=lambda r: r["doc_id"])[:SHOT_ROWS_CHECKED]:
        context = _logged_context(row)
        if context is None:
            raise TamperedResults(f"{where}: doc {row['doc_id']}: no logged prompt")
        own = question(docs[row["doc_id"]])
        found = sum(context.count(t) for t in texts) - (1 if own in texts and own in context else 0)
        if found != shots:
            raise TamperedResults(f"{where}: doc {row['doc_id']}'s logged prompt holds {found} example(s) from "
                                  f"{name}'s few-shot pool, but the results state {shots}")


def _check_external(path: Path, data: dict[str, Any], tasks: list[str], index) -> dict[str, dict]:
    """Tasks from the user's folders: the files the board reads must be the files scored."""
    current = external_fingerprints(tasks, index)
    recorded = run_record(data).get("external_tasks") or {}
    for task, fingerprint in current.items():
        if task not in recorded:
            raise TamperedResults(f"{path}: task {task} comes from {fingerprint['yaml']}, but the results record no "
                                  "hash of its files; score it with `finharness eval --include_path`")
        problem = fingerprint_mismatch(task, recorded[task], fingerprint)
        if problem:
            raise TamperedResults(f"{path}: {problem}")
    return current


def verify_results(folder: Path, include_paths: list[str | Path] = ()) -> VerifiedResults:
    """The folder's scores, each recomputed from its logs; an error naming what is wrong.

    ``include_paths``: folders of the submission's own tasks, beside the packaged suite.
    """
    path = results_file(Path(folder))
    data = load_results(path)
    groups = set(data.get("groups", {})) | set(data.get("group_subtasks", {}))
    tasks = [t for t in data["results"] if t not in groups]
    if not tasks:
        raise ValueError(f"{path}: no task scores in it")
    folders = checked(include_paths)
    refuse_code(folders, where="include_paths:")  # before lm-eval reads a line of them
    manager = task_manager(folders)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        where = f" nor in {', '.join(map(str, folders))}" if folders else "; give its folder as include_paths"
        raise ValueError(f"{path}: unknown task(s) {', '.join(unknown)} (not in the finharness suite{where})")
    external = _check_external(path, data, tasks, manager.task_index)
    task_objects = manager.load(tasks)["tasks"]  # lm-eval's current call (get_task_dict is deprecated)
    n_samples = data.get("n-samples", {})
    hashes = data.get("task_hashes", {})
    declared = _declared_slice(data, path)
    scores, docs, baselines, pairs, shots = {}, {}, {}, {}, {}
    for name in tasks:
        where = samples_file(Path(folder), name)
        rows = _read_rows(where)
        _check_score_types(data["results"][name], name, path)
        shots[name] = _declared_shots(data, path, name)
        _check_shots_in_prompts(name, task_objects[name], rows, shots[name], where)
        logged = LoggedTask(data["results"][name], n_samples.get(name, {}).get("effective"), hashes.get(name),
                            (data.get("versions") or {}).get(name))
        scores[name] = _check_task(name, task_objects[name], rows, logged, where, declared)
        docs[name] = len(rows)
        found = _baselines(name, rows, scores[name], manager)
        if found is not None:
            baselines[name] = found
            pairs[name] = [tuple(int(v) for v in row[PAIR_METRIC]) for row in rows]
    role_of = roles(manager.task_index)
    return VerifiedResults(path, data, scores, docs, declared.limit, declared.method, declared.seed, declared.rule,
                           external, {t: role_of[t] for t in tasks if t in role_of}, baselines,
                           _intervals(baselines, pairs, role_of), shots)


def _intervals(baselines: dict[str, dict], pairs: dict[str, list], role_of: dict[str, str]) -> dict[str, list[float]]:
    """Per role, the 95% interval of the mean normalized macro-F1 over the role's tasks."""
    out = {}
    for role in sorted(set(role_of.values())):
        members = {t: (pairs[t], max(b[NORMALIZED] for b in baselines[t]["baselines"].values()))
                   for t in pairs if role_of.get(t) == role}
        found = normalized_interval(members) if members else None
        if found is not None:
            out[f"{role}_norm"] = [round(found[0], 6), round(found[1], 6)]
    return out


def _baselines(name: str, rows: list[dict], scores: dict[str, float], manager) -> dict | None:
    """Trivial baselines and the collapse flag, recomputed from the verified rows (never read
    from the results file)."""

    found = from_rows(name, rows, scores, manager)
    return None if found is None else found.as_json()
