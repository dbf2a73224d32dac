"""The papers' findings as testable contrasts (``claims.yaml`` in a study folder), decided by code.

Each claim names two rows of the study (``treatment`` and ``control``; optionally a second
pair ``against`` for a difference of differences), a task set, a metric and decision rule,
the direction the paper reports and the paper's own magnitude with its source. For every claim:

- the **effect** is the treatment's mean over the tasks minus the control's, on unclipped
  normalized scores ``(s - b) / (1 - b)`` (``b`` the best trivial answer: a linear map, so
  the effect is unbiased even at the floor), over the tasks every row of the claim scored;
  a task no row of the claim scored is an error naming it;
- its **standard error** has two components (``evidence.stats.Estimate``): the documents
  (paired bootstrap, the same draws for every row) and the training seeds (each trained
  row's between-seed variance over its seed count); the **interval** is t-type and the
  two-sided **p-value** comes from the t distribution with Welch-Satterthwaite degrees of
  freedom, so it is centred on the null and honest with three seeds;
- p-values are **Holm-corrected** across the claims of the file (family-wise ``alpha``);
- the **minimum detectable effect** (MDE) is what the run could detect with ``power`` at the
  strictest Holm level ``alpha / m``, with the standard error the test would face *under the
  alternative*: the control's own answers with enough of its wrong ones made right to move
  the score by the MDE (documents), plus the run's seed component. **Documents needed** and
  **seeds needed** are the sizes at which it would reach the paper's magnitude, each with
  the other kept (seed noise does not shrink with documents);
- the paper's magnitude enters the size rule only in the claim's own metric: a normalized
  claim converts it as ``value / (1 - mean b)``, ``b`` the best trivial score of each task
  on the claim's documents; a claim in another metric than the paper's gets no size verdict;
- **floor checks** (on unless ``floor_check: false``): a claim of a loss whose control does
  not clear its trivial baseline (lower interval bound above 0) has nothing to lose, and a
  claim whose treatment and control both sit at the floor compares two trivial answers:
  both read ``not testable``, whatever the p-value says;
- the **verdict**: ``agrees`` or ``contradicts`` when the corrected p-value is at most
  ``alpha`` (by the sign of the effect); ``not testable at this size`` when the MDE exceeds
  the paper's magnitude in the claim's metric; ``inconclusive`` otherwise.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from tabulate import tabulate

from evidence.discrimination import discriminates
from evidence.stats import (Estimate, documents_needed, holm, percentile_interval, power_multiplier, replicates,
                            seeds_needed)
from fin_tasks.common.metrics import BATCH_CALIBRATED, LENGTH_NORMALIZED, aggregation_of, base_metric
from plumbing.atomic import write_atomic
from plumbing.recipes import RecipeError, read_recipe_yaml, validate_mapping
from plumbing.recipes import Strict as _Strict
from plumbing.vocabulary import RowKind
from study.cells import Bootstrap, Row

CLAIMS_FILE = "claims.yaml"
RULE_METRICS = ("acc", "f1_macro", "f1_weighted", "mcc")  # those the acc_norm rule has a twin of
TaskSet = Literal["seen", "unseen", "in_domain", "out_of_domain", "cross_task"]
ScoreRule = Literal["sum", "per_char", "calibrated"]  # how a label is read from its log-likelihoods
Subset = Literal["all", "clean"]  # all documents, or those no involved checkpoint may have seen
GateRule = Literal["argmax", "threshold_free"]
# which gate made a claim untestable ("": none did)
Gate = Literal["absent", "no_task", "discrimination", "control_floor", "both_floor", ""]


class Selector(_Strict):
    """One row of the study: a model, the kind of checkpoint, its run, the setting."""

    model: str
    kind: RowKind = "vanilla"
    run: str | None = Field(default=None, description="training run or merge name (any, if one row matches)")
    setting: str = Field(default="zero-shot", pattern=r"^(zero-shot|few-shot|[1-9][0-9]*-shot)$")

    def describe(self) -> str:
        return f"{self.model} {self.kind}{f' {self.run}' if self.run else ''} ({self.setting})"


class Pair(_Strict):
    treatment: Selector
    control: Selector


class PaperEffect(_Strict):
    value: float = Field(description="the paper's difference, treatment minus control, in its metric")
    metric: str = Field(description="the metric the paper reports it in")


class Claim(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    says: str = Field(description="the finding, in a sentence")
    source: str = Field(description="where the paper says it (table or section)")
    treatment: Selector
    control: Selector
    against: Pair | None = Field(
        default=None, description="subtract this pair's difference (difference of differences)"
    )
    tasks: TaskSet | list[str]
    metric: str | None = Field(
        default=None, description="per-task metric; None: the table's (each task type's in views)"
    )
    rule: ScoreRule = Field(
        default="sum", description="decision rule of multiple-choice tasks: summed log-likelihood, lm-eval's "
                                   "acc_norm (per character), or batch-calibrated (evidence/calibration.py)")
    normalized: bool = Field(default=True, description="score to the best trivial baseline, (s - b) / (1 - b)")
    direction: Literal["increase", "decrease"]
    paper_effect: PaperEffect | None = None
    floor_check: bool = Field(default=True, description="a loss needs a control above its trivial baseline, and "
                                                         "two rows both at it compare nothing")
    positive_control: bool = Field(
        default=False, description="a claim the study must decide (agrees or contradicts) at its size; if it "
                                   "does not, the study's training is too small and no other verdict is read")
    arm: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="the part of the study the claim belongs to (sentiment, summary, ...): a positive control "
                    "with an arm licenses only the claims of that arm (an Amazon control says nothing about "
                    "XSum runs); one without an arm gates every claim, and a claim without one is gated by all")
    subset: Subset = Field(
        default="all", description="clean: only the documents no involved checkpoint may have seen (its lineage, "
                                   "the few-shot pool, the task's other splits; finharness contamination)")
    floor_gate: Selector | None = Field(
        default=None, description="keep only the tasks where this row (the vanilla model) clears its trivial "
                                  "baseline, decided on the study's development rows (without them: on a seeded half "
                                  "of each task's documents, the claim read on the other half); a forgetting claim "
                                  "needs something to lose")
    gate_rule: GateRule = Field(
        default="argmax", description="how floor_gate decides that a task has something to lose. argmax: the row's "
                                      "normalized score clears 0 (claims written before 2026-12-07). threshold_free: "
                                      "it ranks the labels above chance (AUC interval above 0.5) or its "
                                      "batch-calibrated answers clear the trivial ones; a generation task, its score "
                                      "clears the input's lead (study.yaml's generation_baseline)")

    @model_validator(mode="after")
    def _one_document_filter(self):
        if self.floor_gate is not None and self.subset == "clean":
            raise ValueError("floor_gate and subset: clean together are not supported (each picks documents)")
        return self


class ClaimsFile(_Strict):
    alpha: float = Field(default=0.05, gt=0, lt=1)
    power: float = Field(default=0.8, gt=0, lt=1)
    claims: list[Claim] = Field(min_length=1)


def load_claims(folder: str | Path) -> ClaimsFile | None:
    path = Path(folder) / CLAIMS_FILE
    if not path.is_file():
        return None
    parsed = validate_mapping(ClaimsFile, read_recipe_yaml(path), str(path))
    ids = [c.id for c in parsed.claims]
    if len(set(ids)) != len(ids):
        raise RecipeError(f"{path}: claims: an id is used twice: {sorted({i for i in ids if ids.count(i) > 1})}")
    return parsed


def _study_tasks(study) -> tuple[set[str], set[str]]:
    """Every task the study's test sets score, groups expanded, as FinBen names (a
    study in the paper's formats scores label_fin_fpb for fin_fpb), and the metrics they report
    (their YAMLs' metric_list, read without running any code)."""
    from fin_tasks.index import finben_name, group_members, task_manager
    from fin_tasks.sandbox import load_task_config

    index = task_manager(study.eval.include_paths, hub=True).task_index
    scored = {t for step in study.evals if step.split == "test"  # development rows are the gates' alone
              for name in step.tasks if name in index for t in group_members(name, index)}
    metrics: set[str] = set()
    for t in scored:
        if index[t].yaml_path:
            cfg = load_task_config(index[t].yaml_path)
            metrics |= {m.get("metric") for m in cfg.get("metric_list") or [] if isinstance(m, dict)}
    return {finben_name(t) for t in scored}, {m for m in metrics if isinstance(m, str)}


def check_claims(claims: ClaimsFile, study, path: str) -> None:
    """Before any training: every selector names a study model and one of its runs or merges,
    and every task a claim lists is one the study's evaluations score (a typo such as
    ``fin_fpbx`` fails here, not at table time after the lock recorded the file)."""
    scored, metrics = _study_tasks(study)
    for claim in claims.claims:
        if claim.metric is not None and metrics and claim.metric not in metrics:  # Q2: named here, not at table time
            raise RecipeError(f"{path}: claims.{claim.id}: metric {claim.metric!r} is not one the study's tasks report "
                              f"(they report: {', '.join(sorted(metrics))})")
        if isinstance(claim.tasks, list):
            missing = [t for t in claim.tasks if t not in scored]
            if missing:
                from fin_tasks.index import near_names

                raise RecipeError(f"{path}: claims.{claim.id}: tasks: {', '.join(missing)}: not scored by any of the "
                                  f"study's evaluation sets{near_names(missing[0], sorted(scored))}")
    runs = {(c.model, c.role if c.role != "vanilla" else "vanilla", c.run) for c in study.checkpoints}
    models = {m.label for m in study.spec.models}
    # Models only the full (GPU) study has: their claims read "not run at this size" here.
    full_only = {m["label"] for m in (study.spec.full or {}).get("models", []) if isinstance(m, dict)} - models
    for claim in claims.claims:
        selectors = [claim.treatment, claim.control] + ([claim.against.treatment, claim.against.control]
                                                        if claim.against else [])
        for sel in selectors:
            if sel.model in full_only:
                continue
            if sel.model not in models:
                raise RecipeError(
                    f"{path}: claims.{claim.id}: unknown model {sel.model!r} (study models: {sorted(models)})"
                )
            if sel.kind != "vanilla" and not any(m == sel.model and k == sel.kind and (sel.run is None or r == sel.run)
                                                 for m, k, r in runs):
                known = sorted(f"{k} {r}" for m, k, r in runs if m == sel.model and k != "vanilla")
                raise RecipeError(f"{path}: claims.{claim.id}: {sel.model} has no {sel.kind} "
                                  f"{sel.run or ''} checkpoint (it has: {', '.join(known)})")


@dataclass
class Verdict:
    id: str
    says: str
    source: str
    contrast: str
    tasks: list[str]
    metric: str
    rule: ScoreRule
    documents: int  # fewest documents per task among the claim's tasks
    seeds: int  # training seeds of the treatment (0: an untrained row)
    effect: float | None = None
    ci: tuple[float, float] | None = None
    se: float | None = None
    df: float | None = None
    doc_sd: float | None = None  # the document component's standard deviation
    seed_sd: float | None = None  # the seed component's standard deviation
    p: float | None = None
    p_holm: float | None = None
    mde: float | None = None
    paper: str = ""  # the paper's magnitude as it reports it
    paper_in_metric: float | None = None  # ... in the claim's metric (None: not comparable)
    attainable: tuple[float, float] | None = None  # the range the effect can take, for display only
    documents_needed: int | None = None
    seeds_needed: int | None = None
    floor: dict[str, str] = field(default_factory=dict)  # row -> "clears" | "at floor" (with its interval)
    verdict: str = "inconclusive"
    note: str = ""
    subset: Subset = "all"
    auc: str = ""  # the treatment's discrimination on the tasks it was trained on
    positive_control: bool = False
    # The reading under the current rules (RULES): see read_under_current_rules.
    rules: str = "before 2026-12-07"  # the rules that decided `verdict`
    reading: str = ""  # the claim's word under RULES
    df_reading: float | None = None  # Estimate.conservative_df
    p_conservative: float | None = None  # p with the conservative df
    p_reading: float | None = None  # ... serially gatekept: a positive control at alpha, the rest Holm-corrected
    mde_reading: float | None = None  # the MDE at the reading's level, df and direction
    calibrated: str = ""  # the same contrast under the batch-calibrated rule: effect [95% CI], p
    auc_gain: str = ""  # treatment's AUC minus control's on the claim's tasks [95% CI, documents]

    def as_json(self) -> dict:
        return asdict(self)


def _find(rows: list[Row], sel: Selector, claim: Claim, path: str) -> Row:
    found = [r for r in rows if r.model == sel.model and r.kind == sel.kind and r.setting == sel.setting
             and (sel.run is None or r.run == sel.run)]
    if len(found) != 1:
        names = sorted({f"{r.model} {r.kind} {r.run or '-'} ({r.setting})" for r in rows})
        what = "no row" if not found else f"{len(found)} rows ({', '.join(r.name for r in found)}); name its run"
        raise RecipeError(f"{path}: claims.{claim.id}: {sel.describe()} matches {what}. Rows: {'; '.join(names)}")
    return found[0]


def _tasks(claim: Claim, involved: list[Row], task_sets, path: str) -> tuple[list[str], list[str]]:
    """The claim's tasks every one of its rows scored, and those dropped (with why). A task that
    none of its rows scored (a typo, a task the study never ran) is an error naming it."""
    wanted = list(claim.tasks) if isinstance(claim.tasks, list) else task_sets(claim.tasks, involved)
    if isinstance(claim.tasks, list):
        unscored = [t for t in wanted if not any(t in r.tasks() for r in involved)]
        if unscored:
            raise RecipeError(
                f"{path}: claims.{claim.id}: tasks: {', '.join(unscored)}: no row of the claim scored "
                f"{'it' if len(unscored) == 1 else 'them'} (unknown task, or not in the study's eval sets)"
            )
    common = [t for t in wanted if all(t in r.tasks() for r in involved)]
    dropped = [f"{t} (not scored by {', '.join(r.name for r in involved if t not in r.tasks())})"
               for t in wanted if t not in common and any(t in r.tasks() for r in involved)]
    if not common:
        raise RecipeError(f"{path}: claims.{claim.id}: no task of {claim.tasks} was scored by every row of the claim")
    return common, dropped


def _metric(claim: Claim, task: str, metric_of, path: str, rule: str | None = None) -> str:
    metric = metric_of(task, claim.metric)
    rule = rule or claim.rule
    if rule in ("per_char", "calibrated"):
        if metric not in RULE_METRICS:
            raise RecipeError(f"{path}: claims.{claim.id}: rule {rule} needs a multiple-choice metric "
                              f"({', '.join(RULE_METRICS)}); {task} is scored by {metric}")
        return metric + (LENGTH_NORMALIZED if rule == "per_char" else BATCH_CALIBRATED)
    return metric


def _paper_in_metric(claim: Claim, tasks: list[str], metric, boot: Bootstrap, control: Row) -> tuple[float | None, str]:
    """The paper's magnitude in the claim's own units, and how it was converted (or why not)."""
    effect = claim.paper_effect
    bases = {base_metric(metric(t)) for t in tasks}
    if bases != {effect.metric}:
        return None, (f"the paper reports {effect.metric}, this claim is decided in {'/'.join(sorted(bases))}: "
                      "no size verdict")
    if not claim.normalized:
        return effect.value, ""
    best = []
    for t in tasks:
        folder = next(f for fs in control.sources[t].values() for f in fs)
        found = boot.baselines(folder, t, metric(t))
        if not found:
            return None, f"{t} has no trivial baseline to convert the paper's magnitude with: no size verdict"
        best.append(max(found.values()))
    b = float(np.mean(best))
    return effect.value / (1 - b), (f"paper {effect.value:+.3f} {effect.metric} = {effect.value / (1 - b):+.3f} "
                                    f"normalized (/ (1 - b), b = {b:.3f}: the mean best trivial {effect.metric} on "
                                    f"these documents)")


def _alternative(boot: Bootstrap, control: Row, tasks: list[str], metric, normalized: bool,
                 direction: str = "increase"):
    """The document variance of "treatment minus control" under the alternative, as a function
    of the effect: the control's own answers (its first checkpoint of each task) with a share of
    its wrong ones made right (a ``decrease`` claim: its right ones made wrong), in a seeded
    order, until the mean normalized score moves by the effect. None where a task has no notion
    of a right answer (a summary's ROUGE)."""
    bases = []
    for t in tasks:
        folder = next(f for fs in control.sources[t].values() for f in fs)
        m = metric(t)
        values = boot.values(folder, t, m)
        pairs = boot.pairs(folder, t)
        if pairs is None and not all(v in (0.0, 1.0) for v in values):
            return None
        b = max(boot.baselines(folder, t, m).values(), default=None) if normalized else None
        wrong = [i for i, v in enumerate(values) if (v[0] != v[1] if isinstance(v, tuple) else v < 1)]
        moved = wrong if direction == "increase" else sorted(set(range(len(values))) - set(wrong))
        order = np.random.default_rng(zlib_seed(t)).permutation(moved) if moved else np.array([], dtype=int)
        n_labels = len(boot.logs.labels(folder, t) or []) or 2
        bases.append((t, m, values, order, b, n_labels))

    def scored(values, m, t, b):
        point, reps = replicates(values, aggregation_of(m), boot.draws(t))
        if b is not None:  # a slice a trivial answer gets all right normalizes to 0, as cells.Bootstrap.score does
            point, reps = ((point - b) / (1 - b), (reps - b) / (1 - b)) if b < 1 else (0.0, np.zeros_like(reps))
        return point, reps

    controls = [scored(v, m, t, b) for t, m, v, _, b, _ in bases]
    memo: dict[tuple[int, ...], tuple[float, float]] = {}

    def at(share: float) -> tuple[float, float]:
        counts = tuple(int(round(share * len(order))) for _, _, _, order, _, _ in bases)
        if counts not in memo:
            memo[counts] = _at(counts)
        return memo[counts]

    def moved(v, n_labels: int):
        if direction == "increase":
            return (v[0], v[0]) if isinstance(v, tuple) else 1.0
        return (v[0], (v[0] + 1) % n_labels) if isinstance(v, tuple) else 0.0

    def _at(counts: tuple[int, ...]) -> tuple[float, float]:
        effects, reps = [], []
        for (t, m, values, order, b, n_labels), (cp, cr), count in zip(bases, controls, counts):
            fixed = set(order[:count].tolist())
            alt = [moved(v, n_labels) if i in fixed else v for i, v in enumerate(values)]
            ap, ar = scored(alt, m, t, b)
            effects.append(ap - cp if direction == "increase" else cp - ap)
            reps.append(ar - cr)
        diff = np.mean(reps, axis=0)
        n = min(boot.documents(t) for t in tasks)
        return float(np.mean(effects)), float(diff.var(ddof=1)) * n / max(n - 1, 1)

    def doc_var(effect: float) -> float:
        low, high = 0.0, 1.0
        if at(high)[0] < abs(effect):
            return at(high)[1]
        for _ in range(25):
            mid = (low + high) / 2
            low, high = (mid, high) if at(mid)[0] < abs(effect) else (low, mid)
        return at(high)[1]

    return doc_var


def zlib_seed(task: str) -> int:
    import zlib

    return zlib.crc32(f"alternative:{task}".encode())


def _floor(boot: Bootstrap, row: Row, tasks: list[str], metric) -> tuple[bool, str]:
    found = boot.estimate([(row, 1.0)], tasks, metric, normalized=True)
    low, high = found.interval()
    return low > 0, f"{found.point:+.3f} [{low:+.3f}, {high:+.3f}]"


@dataclass
class Development:
    """A study's development rows (eval sets with ``split: development``: never a test document)
    and their own bootstrap: the gates read them, so no test document decides which claim is read."""

    rows: list[Row]
    boot: Bootstrap

    def like(self, row: Row) -> Row | None:
        """The development counterpart of a test row: the same model, kind, run and setting."""
        return next((r for r in self.rows if (r.model, r.kind, r.run, r.setting) == (row.model, row.kind, row.run,
                                                                                      row.setting)), None)


def _has_something_to_lose(boot: Bootstrap, row: Row, task: str, metric, rule: str) -> tuple[bool, str]:
    """Whether ``row`` clears its trivial answer on ``task`` by the claim's gate rule, and the
    figure that says so (the rule is ``Claim.gate_rule``)."""
    if rule == "argmax":
        return _floor(boot, row, [task], metric)
    found = boot.row_auc(row, [task])
    if found is None:  # a generation task: its score against the lead's
        return _floor(boot, row, [task], metric)
    point, reps = found
    finite = reps[np.isfinite(reps)]
    low, high = percentile_interval(finite) if len(finite) else (float("nan"), float("nan"))
    auc = f"AUC {point:.3f} [{low:.3f}, {high:.3f}]"
    if len(finite) and discriminates(reps):
        return True, auc
    clears, figure = _floor(boot, row, [task], lambda t: base_metric(metric(t)) + BATCH_CALIBRATED)
    return clears, f"{auc}, calibrated {figure}"


def _gated_on_development(development: Development | None, gate: Row, tasks: list[str],
                          metric, rule: str = "argmax") -> tuple[list[str], str] | None:
    """Tasks where ``gate`` clears its trivial baseline on its development rows (the claim then
    reads every test document); None where the study has no development counterpart of the gate."""
    counterpart = development.like(gate) if development is not None else None
    if counterpart is None:
        return None
    kept, shown = [], []
    for task in tasks:
        if not counterpart.sources.get(task):
            shown.append(f"{task}: no development rows (left out)")
            continue
        clears, figure = _has_something_to_lose(development.boot, counterpart, task, metric, rule)
        shown.append(f"{task} {'clears' if clears else 'at floor'} {figure} on {development.boot.documents(task)}")
        if clears:
            kept.append(task)
    return kept, (f"tasks gated on {gate.model} {gate.name} clearing its trivial baseline on development rows, "
                  f"no test document ({'; '.join(shown)}); the claim reads all its test documents")


def _learned_on(development: Development | None, whole: Bootstrap, treatment: Row,
                among: list[str] | None = None) -> tuple[str, bool] | None:
    """The discrimination gate on the treatment's development rows where it has them (its
    trained tasks among them), else on the test documents, said in the figure."""
    counterpart = development.like(treatment) if development is not None else None
    if counterpart is not None:
        found = _learned(development.boot, counterpart, among)
        if found is not None:
            return f"{found[0]} (development rows)", found[1]
    found = _learned(whole, treatment, among)
    return None if found is None else (f"{found[0]} (test documents: no development rows)"
                                       if development is not None else found[0], found[1])


def _gated(whole: Bootstrap, gate: Row, tasks: list[str], metric, claim_id: str,
           rule: str = "argmax") -> tuple[list[str], Bootstrap, str]:
    """Tasks where ``gate`` (the vanilla model) clears its trivial baseline, decided on one half of
    each task's documents (a seeded split); the claim is then read on the other half. Selecting
    on the same documents the claim tests would bias a loss toward agreeing: a control picked
    for scoring high is high partly by chance, and falls back on the treatment's rows."""
    import zlib

    selection: dict[str, set[int]] = {}
    held: dict[str, set[int]] = {}
    for task in tasks:
        folders = [f for by_seed in [gate.sources.get(task, {})] for fs in by_seed.values() for f in fs]
        if not folders:
            continue
        docs = sorted(whole.logs.read(folders[0], task, metric(task)))
        half = {d for d in docs if zlib.crc32(f"{claim_id}:{task}:{d}".encode()) % 2 == 0}
        selection[task], held[task] = half, set(docs) - half
    choose = whole.restricted(held)  # the selection half only
    kept, shown = [], []
    for task in tasks:
        if task not in selection:
            shown.append(f"{task} not scored by {gate.model} {gate.name}")
            continue
        clears, figure = _has_something_to_lose(choose, gate, task, metric, rule)
        shown.append(f"{task} {'clears' if clears else 'at floor'} {figure}")
        if clears:
            kept.append(task)
    note = (f"tasks gated on {gate.model} {gate.name} clearing its trivial baseline on a seeded half of the "
            f"documents ({'; '.join(shown)}); the claim is read on the other half")
    return kept, whole.restricted({t: selection[t] for t in kept}), note


def _attainable(boot: Bootstrap, control: Row, tasks: list[str], metric) -> tuple[float, float]:
    """The effect's attainable range given the control's score: the treatment between scoring 0
    on every task (normalized, -b / (1 - b)) and perfectly (1). Tables clip the interval to it
    for display; inference never clips."""
    floors = []
    for t in tasks:
        folder = next(f for fs in control.sources[t].values() for f in fs)
        b = max(boot.baselines(folder, t, metric(t)).values())
        floors.append(-b / (1 - b) if b < 1 else 0.0)
    point = boot.estimate([(control, 1.0)], tasks, metric, normalized=True).point
    return float(np.mean(floors)) - point, 1.0 - point


def _untested(claim: Claim, note: str) -> Verdict:
    """The verdict row of a claim with nothing to test (no task, no such model): no effect, no p-value."""
    return Verdict(claim.id, claim.says, claim.source, f"{claim.treatment.describe()} - {claim.control.describe()}",
                   [], claim.metric or "", claim.rule, 0, 0, positive_control=claim.positive_control, note=note)


def decide(claims: ClaimsFile, rows: list[Row], whole: Bootstrap, metric_of, task_sets,
           path: str = CLAIMS_FILE, current: bool = True, development: Development | None = None) -> list[Verdict]:
    """Every claim's effect, corrected p-value, MDE and verdict, and its reading under RULES
    (``current``: the run was locked under RULES, so the verdict is that reading).

    ``metric_of(task, claim_metric)`` gives a task's metric; ``task_sets(name, rows)`` the
    tasks of a named set (seen, unseen, a view of the rows' training data). ``development``:
    the study's development rows, which the gates then read instead of test documents."""
    measured = [_measure(claim, claims, rows, whole, metric_of, task_sets, path, development)
                for claim in claims.claims]
    verdicts = [m.verdict for m in measured]
    tested = [v for v in verdicts if v.p is not None]  # a claim left with no task has no test
    for v, p_holm in zip(tested, holm([v.p for v in tested], claims.alpha)):
        v.p_holm = p_holm
    for claim, m in zip(claims.claims, measured):
        m.verdict.verdict = m.flag or _verdict(claim, m.verdict, claims.alpha)
    read_under_current_rules(claims, measured, current)
    return verdicts


def _verdict(claim: Claim, v: Verdict, alpha: float) -> str:
    """A tested claim's word: decided by its Holm-corrected p, else sized against the paper's effect."""
    if v.p_holm <= alpha:
        wanted = 1 if claim.direction == "increase" else -1
        return "agrees" if np.sign(v.effect) == wanted else "contradicts"
    if v.paper_in_metric is not None and not v.mde <= abs(v.paper_in_metric):
        v.note = "; ".join(filter(None, [f"MDE {v.mde:.3f} exceeds the paper's {abs(v.paper_in_metric):.3f} in "
                                         f"this metric", v.note]))
        return "not testable at this size"
    return "inconclusive"


@dataclass
class Measured:
    """One claim as measured: its verdict row, the flag no p-value can change (and which gate
    raised it), and what the reading under the current rules recomputes from."""

    verdict: Verdict
    flag: str = ""
    gate: Gate = ""
    found: Estimate | None = None
    resolved: list = field(default_factory=list)
    tasks: list = field(default_factory=list)
    metric: object = None
    boot: Bootstrap | None = None
    calibrated_sign: float = 0.0  # the calibrated rule's decided direction at alpha (0: undecided)
    auc_sign: float = 0.0  # the side of 0 the AUC gain's interval lies on (0: it covers 0)
    development: Development | None = None  # the rows the gates read, where the study has them


# --- The current rules (RULES): what a verdict means ------------------------------------
#
# Decided 2026-12-07 after a statistics audit of both shipped studies (issue 46). Earlier runs
# keep the verdicts of the rules in force when they ran; their reading under these rules is
# shown beside them, never instead.
#
# 1. Serial gatekeeping: each positive control is tested on its own at alpha; the other claims
#    are Holm-corrected among themselves, and read only when every positive control agrees.
# 2. A positive control agrees only with a threshold-free gain on its own tasks: the
#    batch-calibrated rule agrees too (evidence/calibration.py), or the treatment's AUC gain over
#    the control has a 95% interval above 0. A gain in argmax accuracy alone can be a moved
#    decision threshold.
# 3. Degrees of freedom: the seeds' own (S - 1) where the seeds carry more than a quarter of
#    the variance (Estimate.conservative_df); Welch-Satterthwaite's is liberal there.
# 4. The MDE at the level the claim is tested at (alpha for a positive control, alpha over the
#    other tested claims), in the claim's direction, its document variance never below the
#    observed contrast's.
# 5. "Both rows at their trivial baseline" is a note on an increase claim, not a verdict: the
#    contrast is still a test (a row below its floor can rise to it). A decrease claim still
#    needs a control above its floor.
RULES = "2026-12-07"


def read_under_current_rules(claims: ClaimsFile, measured: list[Measured], current: bool = False) -> None:
    """Each claim's ``reading`` (and its p-values, MDE, calibrated and AUC columns) under RULES;
    ``current``: the run was locked under RULES, so its verdict is the reading."""
    alpha = claims.alpha
    for claim, m in zip(claims.claims, measured):
        if m.found is not None:
            m.verdict.df_reading = m.found.conservative_df
            m.verdict.p_conservative = m.found.p_value(m.found.conservative_df)
            _threshold_free(m, claim, alpha)
    controls = [(c, m) for c, m in zip(claims.claims, measured) if c.positive_control]
    others = [(c, m) for c, m in zip(claims.claims, measured) if not c.positive_control]
    for _, m in controls:
        m.verdict.p_reading = m.verdict.p_conservative
    tested = [m for _, m in others if m.verdict.p_conservative is not None]
    for m, p in zip(tested, holm([m.verdict.p_conservative for m in tested], alpha)):
        m.verdict.p_reading = p
    for claim, m in controls + others:
        level = alpha if claim.positive_control else alpha / max(len(tested), 1)
        m.verdict.reading = _reading(claim, m, alpha, level, claims.power)
    unshown = [(c, m.verdict.id) for c, m in controls if m.verdict.reading != "agrees"]
    for claim, m in others:
        # A control gates the claims of its own arm (or every claim, when it or the claim names none).
        blocking = [vid for c, vid in unshown if c.arm is None or claim.arm is None or c.arm == claim.arm]
        if blocking and m.verdict.reading in ("agrees", "contradicts", "inconclusive", "not testable at this size"):
            m.verdict.note = "; ".join(filter(None, [m.verdict.note, f"would read '{m.verdict.reading}'"]))
            m.verdict.reading = f"not read: positive control {', '.join(blocking)} not shown"
    if current:
        for m in measured:
            m.verdict.verdict, m.verdict.rules = m.verdict.reading, RULES


def _reading(claim: Claim, m: Measured, alpha: float, level: float, power: float) -> str:
    v = m.verdict
    if m.gate in ("absent", "no_task", "discrimination", "control_floor"):
        return m.flag
    treatment = m.resolved[0][0]
    own = [t for t in m.tasks if t in treatment.trained_on]
    if own and set(own) != set(treatment.trained_on):  # the claim's own trained tasks, not the row's mean
        learned = _learned_on(m.development, m.boot, treatment, own)
        if learned is not None:
            v.note = "; ".join(filter(None, [v.note, f"AUC on the claim's own tasks: {learned[0]}"]))
            if not learned[1]:
                return f"not testable: the treatment learned no discrimination on {', '.join(own)}"
    v.mde_reading = _mde(power_multiplier(level, power, m.found.conservative_df),
                         _doc_var_under_alternative(claim, m.boot, m.found, m.resolved, m.tasks, m.metric,
                                                    claim.direction, floor=True)[0], m.found)
    if v.p_reading <= alpha:
        wanted = 1 if claim.direction == "increase" else -1
        word = "agrees" if np.sign(v.effect) == wanted else "contradicts"
        thresholded = bool(v.calibrated or v.auc_gain)  # generated answers have no decision threshold to move
        if claim.positive_control and thresholded and np.sign(v.effect) not in (m.calibrated_sign, m.auc_sign):
            return f"{word} only through a moved threshold (no calibrated or AUC gain)"
        return word
    if v.paper_in_metric is not None and not v.mde_reading <= abs(v.paper_in_metric):
        return "not testable at this size"
    return "inconclusive"


def _threshold_free(m: Measured, claim: Claim, alpha: float) -> None:
    """The contrast under the batch-calibrated rule, and the AUC gain, on the claim's tasks
    (the signs a positive control needs: :func:`_reading`)."""
    v = m.verdict
    signed = [(r, sign) for (t, c), s in zip(m.resolved, (1.0, -1.0)) for r, sign in ((t, s), (c, -s))]
    metric_names = {t: m.metric(t) for t in m.tasks}
    if all(base_metric(n) in RULE_METRICS for n in metric_names.values()):
        def calibrated(t: str) -> str:
            return base_metric(metric_names[t]) + BATCH_CALIBRATED

        try:
            found = m.boot.estimate(signed, m.tasks, calibrated, claim.normalized)
        except ValueError:  # a task without per-label log-likelihoods (generated answers)
            found = None
        if found is not None:
            low, high = found.interval(df=found.conservative_df)
            p = found.p_value(found.conservative_df)
            v.calibrated = f"{found.point:+.3f} [{low:+.3f}, {high:+.3f}] p {p:.3g}"
            m.calibrated_sign = float(np.sign(found.point)) if p <= alpha else 0.0
    gains = []
    for (t, c), s in zip(m.resolved, (1.0, -1.0)):
        a, b = m.boot.row_auc(t, m.tasks), m.boot.row_auc(c, m.tasks)
        if a is None or b is None:
            return
        gains.append((s * (a[0] - b[0]), s * (a[1] - b[1])))
    point, reps = sum(g for g, _ in gains), sum(r for _, r in gains)
    finite = reps[np.isfinite(reps)]
    if len(finite):
        low, high = percentile_interval(finite)
        v.auc_gain = f"{point:+.3f} [{low:+.3f}, {high:+.3f}]"
        m.auc_sign = 1.0 if low > 0 else -1.0 if high < 0 else 0.0


def _measure(claim: Claim, claims: ClaimsFile, rows: list[Row], whole: Bootstrap, metric_of, task_sets,
             path: str, development: Development | None = None) -> Measured:
    """One claim's estimate, power and gates; the flag is a verdict that no p-value can change."""
    pairs = [(claim.treatment, claim.control)] + ([(claim.against.treatment, claim.against.control)]
                                                  if claim.against else [])
    absent = sorted({sel.model for pair in pairs for sel in pair} - {r.model for r in rows})
    if absent:  # a model only the full study has (check_claims refuses any other)
        return Measured(_untested(claim, f"this study has no {', '.join(absent)} model at this size"),
                        f"not run at this size: no {', '.join(absent)} model", "absent")
    resolved = [(_find(rows, t, claim, path), _find(rows, c, claim, path)) for t, c in pairs]
    involved = [r for pair in resolved for r in pair]
    tasks, dropped = _tasks(claim, involved, task_sets, path)
    boot, subset_note = (whole, "") if claim.subset == "all" else _clean(whole, involved, tasks)

    def metric(t: str) -> str:
        return _metric(claim, t, metric_of, path)

    if claim.floor_gate is not None:
        gate_row = _find(rows, claim.floor_gate, claim, path)
        on_development = _gated_on_development(development, gate_row, tasks, metric, claim.gate_rule)
        if on_development is not None:
            tasks, subset_note = on_development
        else:  # a study without development rows: a seeded half of the test documents decides
            tasks, boot, subset_note = _gated(whole, gate_row, tasks, metric, claim.id, claim.gate_rule)
        if not tasks:
            return Measured(_untested(claim, subset_note), f"not testable: {claim.floor_gate.model} "
                            f"{claim.floor_gate.kind} clears its trivial baseline on none of the tasks", "no_task")

    signed = [(r, sign) for (t, c), s in zip(resolved, (1.0, -1.0)) for r, sign in ((t, s), (c, -s))]
    found: Estimate = boot.estimate(signed, tasks, metric, claim.normalized)
    treatment, control = resolved[0]
    contrast = f"{claim.treatment.describe()} - {claim.control.describe()}"
    if claim.against:
        contrast = f"[{contrast}] - [{claim.against.treatment.describe()} - {claim.against.control.describe()}]"
    docs = min(boot.documents(t) for t in tasks)
    # "normalized" only where a trivial answer exists to normalize by (not ROUGE): a raw metric is named raw.
    normalized = claim.normalized and all(boot.baselines(next(f for fs in control.sources[t].values() for f in fs),
                                                         t, metric(t)) for t in tasks)
    v = Verdict(claim.id, claim.says, claim.source, contrast, tasks,
                "/".join(sorted({metric(t) for t in tasks})) + (" normalized" if normalized else ""),
                claim.rule, docs, len(treatment.trained_seeds()), effect=found.point, ci=found.interval(),
                se=found.se, df=found.df, doc_sd=float(np.sqrt(found.doc_var)),
                seed_sd=float(np.sqrt(found.seed_var)), p=found.p_value())
    v.subset, v.positive_control = claim.subset, claim.positive_control
    if normalized and not claim.against:
        v.attainable = _attainable(boot, control, tasks, metric)
    notes = [f"dropped {', '.join(dropped)}"] if dropped else []
    if subset_note:
        notes.append(subset_note)
    if found.unestimated:
        notes.append("a trained row has one seed: its training noise is not in the interval")
    notes += _power(v, claim, claims, boot, found, resolved, tasks, metric)
    flag, gate_notes, gate = _gate(v, claim, whole, boot, resolved, involved, tasks, metric, development)
    v.note = "; ".join(notes + gate_notes)
    return Measured(v, flag, gate, found, resolved, tasks, metric, boot, development=development)


def _power(v: Verdict, claim: Claim, claims: ClaimsFile, boot: Bootstrap, found: Estimate,
          resolved: list[tuple[Row, Row]], tasks: list[str], metric) -> list[str]:
    """The MDE under the alternative at the strictest Holm level, and the documents and seeds at
    which it would reach the paper's effect; returns the notes it makes."""
    notes = []
    treatment, control = resolved[0]
    k = power_multiplier(claims.alpha / len(claims.claims), claims.power, found.df)
    doc_var_at, alternative = _doc_var_under_alternative(claim, boot, found, resolved, tasks, metric)
    v.mde = _mde(k, doc_var_at, found)
    if not alternative:
        notes.append("MDE from the observed document variance (no right answer to simulate the alternative with)")
    if claim.paper_effect:
        v.paper = f"{claim.paper_effect.value:+.3f} {claim.paper_effect.metric}"
        v.paper_in_metric, how = _paper_in_metric(claim, tasks, metric, boot, control)
        if how:
            notes.append(how)
        if v.paper_in_metric is not None:
            target = abs(v.paper_in_metric)
            at_target = doc_var_at(target)
            v.documents_needed = documents_needed(v.documents, k, at_target, found.seed_var, target)
            seeds = len(treatment.trained_seeds())
            if found.seed_var > 0 and seeds:
                v.seeds_needed = seeds_needed(seeds, k, at_target, found.seed_var, target)
    return notes


def _doc_var_under_alternative(claim: Claim, boot: Bootstrap, found: Estimate, resolved: list[tuple[Row, Row]],
                               tasks: list[str], metric, direction: str = "increase", floor: bool = False):
    """``effect -> document variance`` the test would face at that effect (the control's answers
    moved toward it: :func:`_alternative`; with ``floor``, never below the observed contrast's),
    and whether an alternative could be simulated at all."""
    alternative = _alternative(boot, resolved[0][1], tasks, metric, claim.normalized, direction)
    against_var = (boot.estimate([(resolved[1][0], 1.0), (resolved[1][1], -1.0)], tasks, metric,
                                 claim.normalized).doc_var if claim.against else 0.0)

    def doc_var_at(effect: float) -> float:
        simulated = (alternative(effect) if alternative else found.doc_var) + against_var
        return max(simulated, found.doc_var) if floor else simulated

    return doc_var_at, alternative is not None


def _mde(k: float, doc_var_at, found: Estimate) -> float:
    """The effect ``k`` standard errors wide, the standard error taken at that effect (a fixed point)."""
    mde = k * found.se
    for _ in range(30):
        updated = k * float(np.sqrt(doc_var_at(mde) + found.seed_var))
        if abs(updated - mde) < 1e-5:
            break
        mde = updated
    return mde


def _gate(v: Verdict, claim: Claim, whole: Bootstrap, boot: Bootstrap, resolved: list[tuple[Row, Row]],
          involved: list[Row], tasks: list[str], metric,
          development: Development | None = None) -> tuple[str, list[str], str]:
    """The discrimination gate (the treatment learned its tasks: on its development rows where
    the study has them), then the floor check (the rows clear their trivial baselines); a
    failed gate is the claim's verdict, with its note and kind."""
    treatment, control = resolved[0]
    learned = _learned_on(development, whole, treatment)
    if learned is not None:
        v.auc, clears = learned
        if not clears:
            return (f"not testable: the treatment learned no discrimination (AUC {v.auc})",
                    ["its label log-likelihoods rank the documents of the tasks it was trained on no "
                     "better than chance: it learned the answer format or the prior, not the task"], "discrimination")
    if not (claim.floor_check and claim.normalized):
        return "", [], ""
    checks: dict[int, bool] = {}
    for row in involved:
        if id(row) not in checks:
            clears, shown = _floor(boot, row, tasks, metric)
            checks[id(row)] = clears
            v.floor[f"{row.model} {row.name}"] = ("clears " if clears else "at floor ") + shown
    if claim.direction == "decrease" and not all(checks[id(c)] for _, c in resolved):
        return ("not testable: control at trivial baseline",
                ["the control's normalized score does not clear 0, so there is nothing to lose"], "control_floor")
    if not any(checks[id(r)] for r in (treatment, control)):
        return ("not testable: both rows at trivial baseline",
                ["neither row's normalized score clears 0: the contrast compares two trivial answers"], "both_floor")
    return "", [], ""


def _learned(boot: Bootstrap, treatment: Row, among: list[str] | None = None) -> tuple[str, bool] | None:
    """The treatment's AUC [95% interval] on the tasks it was trained on (those it scored; with
    ``among``, only those of them), and whether it clears chance; None for an untrained row or
    one without log-likelihoods."""
    trained = [t for t in treatment.trained_on if treatment.sources.get(t) and (among is None or t in among)]
    if treatment.kind == "vanilla" or not trained:
        return None
    found = boot.row_auc(treatment, trained)
    if found is None:
        return None
    point, reps = found
    finite = reps[np.isfinite(reps)]
    if not len(finite):
        return None
    low, high = percentile_interval(finite)
    return f"{point:.3f} [{low:.3f}, {high:.3f}] on {', '.join(trained)}", discriminates(reps)


def positive_control_note(verdicts: list[Verdict], claims: ClaimsFile | None = None) -> str:
    """The lines the claims table opens with when a positive control does not agree (only
    "agrees" shows that the study can see the effect it must see), by the run's rules and,
    for an earlier run, by the current ones."""
    lines = []
    unshown = [v for v in verdicts if v.positive_control and v.verdict != "agrees"]
    if unshown:
        lines.append("**Positive control not shown: " + "; ".join(f"{v.id} is '{v.verdict}'" for v in unshown)
                     + ". This study's training or size does not show an effect it must show, so no other "
                       "verdict below can be read as evidence either way.**")
    reread = [v for v in verdicts if v.positive_control and v.rules != RULES and v.reading != "agrees"]
    if reread:
        arms = {c.id: c.arm for c in claims.claims} if claims is not None else {}
        scoped = sorted({arms[v.id] for v in reread if arms.get(v.id)})
        gated = ("no other claim of this run" if len(scoped) < len(reread) else
                 f"no other claim of the {', '.join(scoped)} arm{'s' if len(scoped) > 1 else ''}")
        lines.append(f"**Under the rules of {RULES}, the positive control is not shown: "
                     + "; ".join(f"{v.id} reads '{v.reading}'" for v in reread)
                     + f", so {gated} is read by those rules.**")
    return "\n\n".join(lines)


def _clean(boot: Bootstrap, involved: list[Row], tasks: list[str]) -> tuple[Bootstrap, str]:
    """The study read on each task's documents that no involved checkpoint's evaluation flagged;
    a task no involved checkpoint has a record for (lineage unknown everywhere) keeps every document."""
    exclude: dict[str, set[int]] = {}
    unrecorded = []
    for task in tasks:
        found = [boot.logs.contaminated(f, task) for row in involved
                 for by_seed in [row.sources.get(task, {})] for folders in by_seed.values() for f in folders]
        known = [ids for ids in found if ids is not None]
        if not known:
            unrecorded.append(task)
            continue
        exclude[task] = set().union(*known)
    note = "clean subset: " + ", ".join(f"{t} {len(ids)} documents left out" for t, ids in exclude.items())
    if unrecorded:
        note += f"; no contamination record (lineage unknown) for {', '.join(unrecorded)}: all its documents kept"
    return boot.restricted(exclude), note


def _size(n: int | None, target: float | None) -> str:
    """Blank without a magnitude to reach; 'never' when the other variance component alone is too large."""
    if target is None:
        return ""
    return "never" if n is None else str(n)


def _shown_effect(v: Verdict) -> str:
    """Effect [95% CI] as tables show it: the interval clipped to the attainable range, a clipped
    end marked ^ (the t-interval can run past what the rows can score; inference uses it whole)."""
    if v.effect is None:
        return ""
    low, high = v.ci
    lo, hi = v.attainable or (-np.inf, np.inf)
    shown_low = f"{max(low, lo):+.3f}{'^' if low < lo else ''}"
    shown_high = f"{min(high, hi):+.3f}{'^' if high > hi else ''}"
    return f"{v.effect:+.3f} [{shown_low}, {shown_high}]"


def claims_table(verdicts: list[Verdict], claims: ClaimsFile, preregistration: str = "") -> str:
    rows = []
    for v in verdicts:
        effect = _shown_effect(v)
        paper = (f"{v.paper_in_metric:+.3f}" if v.paper_in_metric is not None else "") if v.paper else "not given"
        current = v.rules == RULES
        reading = "" if current else v.reading
        if v.p is None:  # no task left to test (a floor gate kept none)
            rows.append([v.id, v.says, v.verdict, reading] + [""] * 11 + ["0", v.seeds or "-", v.metric])
            continue
        rows.append(
            [
                v.id,
                v.says,
                v.verdict,
                reading,
                effect,
                v.calibrated,
                v.auc_gain,
                f"{v.doc_sd:.3f} / {v.seed_sd:.3f}",
                # A run decided by RULES shows the numbers its verdicts rest on.
                f"{v.df_reading if current else v.df:.1f}",
                f"{v.p_conservative if current else v.p:.3g}",
                f"{v.p_reading if current else v.p_holm:.3g}",
                f"{v.mde_reading if current and v.mde_reading is not None else v.mde:.3f}",
                paper,
                _size(v.documents_needed, v.paper_in_metric),
                _size(v.seeds_needed, v.paper_in_metric if v.seed_sd > 0 else None),
                f"{len(v.tasks)} x {v.documents}",
                v.seeds or "-",
                f"{v.metric} ({v.rule}{', clean subset' if v.subset == 'clean' else ''})",
            ]
        )
    legacy = [v for v in verdicts if v.rules != RULES]
    rules = (
        f"'verdict' was decided by the rules in force when this run started ({legacy[0].rules}, below); "
        f"'reading' is the same evidence read by the rules of {RULES}, shown beside it, not instead: a positive "
        "control agrees only with a threshold-free gain on its own tasks (the batch-calibrated rule agrees, or the "
        "AUC gain's interval is above 0), is tested alone at alpha, and the other claims are read only when every "
        "positive control agrees (Holm among themselves); the seeds' own df where seeds carry over a quarter of "
        "the variance; the MDE at the claim's own level and direction; both rows at their floor is a note on an "
        "increase claim, not a verdict."
        if legacy else
        f"Verdicts by the rules of {RULES}: a positive control agrees only with a threshold-free gain on its own "
        "tasks (the batch-calibrated rule agrees, or the AUC gain's interval is above 0) and is tested alone at "
        "alpha ('p (Holm)' is its own p); the other claims are Holm-corrected among themselves and read only when "
        "every positive control agrees; df is the seeds' own where seeds carry over a quarter of the variance; the "
        "MDE is at the claim's own level and direction.")
    caption = (
        f"Claims ({len(verdicts)}), decided by code on unclipped normalized scores: t-type 95% interval and "
        f"two-sided p-value from two variance components (documents: paired bootstrap; training seeds: "
        f"between-seed variance / seeds) with Welch-Satterthwaite degrees of freedom (df); p Holm-corrected "
        f"at family-wise alpha {claims.alpha}. MDE at {claims.power:.0%} power and alpha/{len(verdicts)}, "
        f"with the standard error under the alternative. 'paper' is its magnitude in the claim's metric "
        f"(blank: reported in another metric, so no size verdict); 'docs needed' (per task, seeds kept) and "
        f"'seeds needed' (documents kept) are the sizes at which the MDE reaches it ('never': the other "
        f"component alone is too large). 'sd docs / seeds': the "
        f"two components' standard deviations; 'seeds': the treatment's training seeds. Intervals are shown "
        f"clipped to the range the effect can take (^ marks a clipped end: the treatment scoring perfectly, or "
        f"0, against the control's score); p-values and verdicts use them whole. 'calibrated': the "
        f"same contrast under batch calibration (each checkpoint's label posteriors divided by their mean over "
        f"the task's documents, then argmax; no gold label used), effect [95% CI] and p; 'AUC gain': the "
        f"treatment's macro one-vs-rest AUC minus the control's on the claim's tasks [95% CI over documents]. "
        + rules
    )
    if preregistration:
        caption = preregistration + "\n\n" + caption
    control = positive_control_note(verdicts, claims)
    if control:
        caption = control + "\n\n" + caption
    details = "\n".join(
        f"- **{v.id}** ({v.source}): {v.contrast} on {', '.join(v.tasks)}"
        + (" (positive control)" if v.positive_control else "")
        + (f". Treatment's AUC: {v.auc}" if v.auc else "")
        + (f". Floor: {'; '.join(f'{k} {s}' for k, s in v.floor.items())}" if v.floor else "")
        + (f". {v.note}" if v.note else "") for v in verdicts)
    headers = ["claim", "says", "verdict", f"reading ({RULES} rules)", "effect [95% CI]", "calibrated", "AUC gain",
               "sd docs / seeds", "df", "p", "p (Holm)", "MDE", "paper", "docs needed", "seeds needed", "tasks x docs",
               "seeds", "metric (rule)"]
    if not legacy:  # the verdict is the reading
        headers, rows = headers[:3] + headers[4:], [row[:3] + row[4:] for row in rows]
    return (caption + "\n\n" + tabulate(rows, headers=headers,
                                         tablefmt="github", disable_numparse=True)
            + "\n\n" + details)


# --- Preregistration: which claims file the evaluations were run under ------------------

LOCK_FILE = "claims.lock.json"


def claims_digest(folder: str | Path) -> str | None:
    import hashlib

    path = Path(folder) / CLAIMS_FILE
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def design_digests(folder: str | Path) -> dict[str, str]:
    """sha256 of every YAML of the study folder (study, train, merge, eval, claims): the design."""
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).glob("*.y*ml"))}


def record_claims(folder: str | Path, root: str | Path, run: int = 1) -> None:
    """The design's hashes (the claims file's and every other file of the study folder), the
    rules the verdicts will be decided by, the date and the run's number among the study's runs
    on record (study/record.py): written once, when the study's first evaluation starts."""
    import json
    from datetime import datetime, timezone

    lock = Path(root) / LOCK_FILE
    digest = claims_digest(folder)
    if lock.is_file() or digest is None:
        return
    write_atomic(lock, json.dumps({"sha256": digest, "recorded": datetime.now(timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"), "file": str(Path(folder) / CLAIMS_FILE), "design": design_digests(folder),
        "rules": RULES, "run": run}, indent=2) + "\n")


def read_lock(root: str | Path) -> dict | None:
    """The study's lock (None when no evaluation recorded one); an error naming a malformed one."""
    import json

    lock = Path(root) / LOCK_FILE
    if not lock.is_file():
        return None
    try:
        recorded = json.loads(lock.read_text())
        if not isinstance(recorded, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{lock}: not a claims lock (a JSON object with sha256 and recorded): {err}") from None
    return recorded


def locked_under_current_rules(root: str | Path) -> bool:
    """The study's evaluations started under RULES (its verdicts are read by them)."""
    recorded = read_lock(root)
    return recorded is not None and recorded.get("rules") == RULES


def preregistration_note(folder: str | Path, root: str | Path) -> str:
    """One line for the claims table's header: the claims (and, for runs locked since 2026-12-07,
    every design file) were fixed before the evaluations, or which changed after they started
    (the hashes and the date), or no record exists."""
    digest = claims_digest(folder)
    recorded = read_lock(root)
    if recorded is None:
        return ("**Preregistration: no record.** The claims file's hash was not recorded when this study's first "
                "evaluation started (evaluations made before finharness recorded it), so nothing shows the claims "
                f"were fixed before the results; claims.yaml now: sha256 {digest[:16] if digest else 'missing'}.")
    design, changed = recorded.get("design"), None
    if isinstance(design, dict):
        now = design_digests(folder)
        changed = sorted(name for name in set(design) | set(now) if design.get(name) != now.get(name))
    scope = ("the claims file only: the rest of the design was not hashed by runs before 2026-12-07"
             if changed is None else "every file of the study folder")
    number = recorded.get("run")
    if isinstance(number, int) and number > 1:
        scope += (f". This is run {number} of this study: {number - 1} earlier run(s) were on record when it "
                  "started (listed below)")
    if recorded.get("sha256") == digest and not changed:
        return (f"Preregistration: claims.yaml (sha256 {digest[:16]}) is the file recorded when the first "
                f"evaluation started ({recorded.get('recorded')}); the lock covers {scope}.")
    if recorded.get("sha256") == digest:
        return (f"**Preregistration: {', '.join(changed)} changed after the evaluations started** "
                f"({recorded.get('recorded')}); claims.yaml did not. The results below come from a design that "
                "moved after its first result.")
    return (f"**Preregistration: claims.yaml changed after the evaluations started.** Recorded "
            f"{recorded.get('recorded')}: sha256 {str(recorded.get('sha256'))[:16]}; now: "
            f"{digest[:16] if digest else 'missing'}. The verdicts below answer the changed claims"
            + (f"; also changed: {', '.join(others)}" if (others := [c for c in changed or [] if c != CLAIMS_FILE])
               else "") + ".")
