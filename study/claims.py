"""The papers' findings as testable contrasts (``claims.yaml`` in a study folder), decided by code.

Each claim names two rows of the study (``treatment`` and ``control``; optionally a second
pair ``against`` for a difference of differences), a task set, a metric and decision rule,
the direction the paper reports and the paper's own magnitude with its source. For every claim:

- the **effect** is the treatment's mean over the tasks minus the control's, on unclipped
  normalized scores ``(s - b) / (1 - b)`` (``b`` the best trivial answer: a linear map, so
  the effect is unbiased even at the floor), over the tasks every row of the claim scored;
  a task no row of the claim scored is an error naming it;
- its **standard error** has two components (``harness.stats.Estimate``): the documents
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

from fin_tasks.common.metrics import LENGTH_NORMALIZED, base_metric
from harness.stats import Estimate, documents_needed, holm, power_multiplier, seeds_needed
from plumbing.recipes import RecipeError, read_recipe_yaml, validate_mapping
from plumbing.recipes import Strict as _Strict
from study.cells import Bootstrap, Row

CLAIMS_FILE = "claims.yaml"
RULE_METRICS = ("acc", "f1_macro", "f1_weighted", "mcc")  # those the acc_norm rule has a twin of
TaskSet = Literal["seen", "unseen", "in_domain", "out_of_domain", "cross_task"]


class Selector(_Strict):
    """One row of the study: a model, the kind of checkpoint, its run, the setting."""

    model: str
    kind: Literal["vanilla", "single", "multi", "merged"] = "vanilla"
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
    rule: Literal["sum", "per_char"] = Field(default="sum", description="decision rule of multiple-choice tasks: "
                                             "summed log-likelihood, or lm-eval's acc_norm (per character)")
    normalized: bool = Field(default=True, description="score to the best trivial baseline, (s - b) / (1 - b)")
    direction: Literal["increase", "decrease"]
    paper_effect: PaperEffect | None = None
    floor_check: bool = Field(default=True, description="a loss needs a control above its trivial baseline, and "
                                                         "two rows both at it compare nothing")
    positive_control: bool = Field(
        default=False, description="a claim the study must decide (agrees or contradicts) at its size; if it "
                                   "does not, the study's training is too small and no other verdict is read")
    subset: Literal["all", "clean"] = Field(
        default="all", description="clean: only the documents no involved checkpoint may have seen (its lineage, "
                                   "the few-shot pool, the task's other splits; finharness contamination)")
    floor_gate: Selector | None = Field(
        default=None, description="keep only the tasks where this row (the vanilla model) clears its trivial "
                                  "baseline, decided on a seeded half of each task's documents; the claim is read on "
                                  "the other half (a forgetting claim needs something to lose)")

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


def check_claims(claims: ClaimsFile, study, path: str) -> None:
    """Before any training: every selector names a study model and one of its runs or merges."""
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
    rule: str  # sum | per_char
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
    documents_needed: int | None = None
    seeds_needed: int | None = None
    floor: dict[str, str] = field(default_factory=dict)  # row -> "clears" | "at floor" (with its interval)
    verdict: str = "inconclusive"
    note: str = ""
    subset: str = "all"  # all | clean: the documents no involved checkpoint may have seen
    auc: str = ""  # the treatment's discrimination on the tasks it was trained on
    positive_control: bool = False

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


def _metric(claim: Claim, task: str, metric_of, path: str) -> str:
    metric = metric_of(task, claim.metric)
    if claim.rule == "per_char":
        if metric not in RULE_METRICS:
            raise RecipeError(f"{path}: claims.{claim.id}: rule per_char needs a multiple-choice metric "
                              f"({', '.join(RULE_METRICS)}); {task} is scored by {metric}")
        return metric + LENGTH_NORMALIZED
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


def _alternative(boot: Bootstrap, control: Row, tasks: list[str], metric, normalized: bool):
    """The document variance of "treatment minus control" under the alternative, as a function
    of the effect: the control's own answers (its first checkpoint of each task) with a share of
    its wrong ones made right, in a seeded order, until the mean normalized score moves by the
    effect. None where a task has no notion of a right answer (a summary's ROUGE)."""
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
        order = np.random.default_rng(zlib_seed(t)).permutation(wrong) if wrong else np.array([], dtype=int)
        bases.append((t, m, values, order, b))

    def scored(values, m, t, b):
        from fin_tasks.common.metrics import aggregation_of
        from harness.stats import replicates

        point, reps = replicates(values, aggregation_of(m), boot.draws(t))
        if b is not None:
            point, reps = (point - b) / (1 - b), (reps - b) / (1 - b)
        return point, reps

    controls = [scored(v, m, t, b) for t, m, v, _, b in bases]
    memo: dict[tuple[int, ...], tuple[float, float]] = {}

    def at(share: float) -> tuple[float, float]:
        counts = tuple(int(round(share * len(order))) for _, _, _, order, _ in bases)
        if counts not in memo:
            memo[counts] = _at(counts)
        return memo[counts]

    def _at(counts: tuple[int, ...]) -> tuple[float, float]:
        effects, reps = [], []
        for (t, m, values, order, b), (cp, cr), count in zip(bases, controls, counts):
            fixed = set(order[:count].tolist())
            alt = [((v[0], v[0]) if isinstance(v, tuple) else 1.0) if i in fixed else v for i, v in enumerate(values)]
            ap, ar = scored(alt, m, t, b)
            effects.append(ap - cp)
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


def _gated(whole: Bootstrap, gate: Row, tasks: list[str], metric, claim_id: str) -> tuple[list[str], Bootstrap, str]:
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
        docs = sorted(whole.read(folders[0], task, metric(task)))
        half = {d for d in docs if zlib.crc32(f"{claim_id}:{task}:{d}".encode()) % 2 == 0}
        selection[task], held[task] = half, set(docs) - half
    choose = whole.restricted(held)  # the selection half only
    kept, shown = [], []
    for task in tasks:
        if task not in selection:
            shown.append(f"{task} not scored by {gate.model} {gate.name}")
            continue
        clears, figure = _floor(choose, gate, [task], metric)
        shown.append(f"{task} {'clears' if clears else 'at floor'} {figure}")
        if clears:
            kept.append(task)
    note = (f"tasks gated on {gate.model} {gate.name} clearing its trivial baseline on a seeded half of the "
            f"documents ({'; '.join(shown)}); the claim is read on the other half")
    return kept, whole.restricted({t: selection[t] for t in kept}), note


def _untested(claim: Claim, note: str) -> Verdict:
    """The verdict row of a claim with nothing to test (no task, no such model): no effect, no p-value."""
    return Verdict(claim.id, claim.says, claim.source, f"{claim.treatment.describe()} - {claim.control.describe()}",
                   [], claim.metric or "", claim.rule, 0, 0, positive_control=claim.positive_control, note=note)


def decide(claims: ClaimsFile, rows: list[Row], whole: Bootstrap, metric_of, task_sets,
           path: str = CLAIMS_FILE) -> list[Verdict]:
    """Every claim's effect, corrected p-value, MDE and verdict.

    ``metric_of(task, claim_metric)`` gives a task's metric; ``task_sets(name, rows)`` the
    tasks of a named set (seen, unseen, a view of the rows' training data)."""
    measured = [_measure(claim, claims, rows, whole, metric_of, task_sets, path) for claim in claims.claims]
    verdicts = [v for v, _ in measured]
    tested = [v for v in verdicts if v.p is not None]  # a claim left with no task has no test
    for v, p_holm in zip(tested, holm([v.p for v in tested], claims.alpha)):
        v.p_holm = p_holm
    for claim, (v, flag) in zip(claims.claims, measured):
        v.verdict = flag or _verdict(claim, v, claims.alpha)
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


def _measure(claim: Claim, claims: ClaimsFile, rows: list[Row], whole: Bootstrap, metric_of, task_sets,
             path: str) -> tuple[Verdict, str]:
    """One claim's estimate, power and gates; the flag is a verdict that no p-value can change."""
    pairs = [(claim.treatment, claim.control)] + ([(claim.against.treatment, claim.against.control)]
                                                  if claim.against else [])
    absent = sorted({sel.model for pair in pairs for sel in pair} - {r.model for r in rows})
    if absent:  # a model only the full study has (check_claims refuses any other)
        return (_untested(claim, f"this study has no {', '.join(absent)} model at this size"),
                f"not run at this size: no {', '.join(absent)} model")
    resolved = [(_find(rows, t, claim, path), _find(rows, c, claim, path)) for t, c in pairs]
    involved = [r for pair in resolved for r in pair]
    tasks, dropped = _tasks(claim, involved, task_sets, path)
    boot, subset_note = (whole, "") if claim.subset == "all" else _clean(whole, involved, tasks)

    def metric(t: str) -> str:
        return _metric(claim, t, metric_of, path)

    if claim.floor_gate is not None:
        tasks, boot, subset_note = _gated(whole, _find(rows, claim.floor_gate, claim, path), tasks, metric, claim.id)
        if not tasks:
            return (_untested(claim, subset_note), f"not testable: {claim.floor_gate.model} {claim.floor_gate.kind} "
                                                   "clears its trivial baseline on none of the tasks")

    signed = [(r, sign) for (t, c), s in zip(resolved, (1.0, -1.0)) for r, sign in ((t, s), (c, -s))]
    found: Estimate = boot.estimate(signed, tasks, metric, claim.normalized)
    treatment, control = resolved[0]
    contrast = f"{claim.treatment.describe()} - {claim.control.describe()}"
    if claim.against:
        contrast = f"[{contrast}] - [{claim.against.treatment.describe()} - {claim.against.control.describe()}]"
    docs = min(boot.documents(t) for t in tasks)
    v = Verdict(claim.id, claim.says, claim.source, contrast, tasks,
                "/".join(sorted({metric(t) for t in tasks})) + (" normalized" if claim.normalized else ""),
                claim.rule, docs, len(treatment.trained_seeds()), effect=found.point, ci=found.interval(),
                se=found.se, df=found.df, doc_sd=float(np.sqrt(found.doc_var)),
                seed_sd=float(np.sqrt(found.seed_var)), p=found.p_value())
    v.subset, v.positive_control = claim.subset, claim.positive_control
    notes = [f"dropped {', '.join(dropped)}"] if dropped else []
    if subset_note:
        notes.append(subset_note)
    if found.unestimated:
        notes.append("a trained row has one seed: its training noise is not in the interval")
    notes += _power(v, claim, claims, boot, found, resolved, tasks, metric)
    flag, gate_notes = _gate(v, claim, whole, boot, resolved, involved, tasks, metric)
    v.note = "; ".join(notes + gate_notes)
    return v, flag


def _power(v: Verdict, claim: Claim, claims: ClaimsFile, boot: Bootstrap, found: Estimate,
          resolved: list[tuple[Row, Row]], tasks: list[str], metric) -> list[str]:
    """The MDE under the alternative at the strictest Holm level, and the documents and seeds at
    which it would reach the paper's effect; returns the notes it makes."""
    notes = []
    treatment, control = resolved[0]
    k = power_multiplier(claims.alpha / len(claims.claims), claims.power, found.df)
    alternative = _alternative(boot, control, tasks, metric, claim.normalized)
    against_var = (boot.estimate([(resolved[1][0], 1.0), (resolved[1][1], -1.0)], tasks, metric,
                                 claim.normalized).doc_var if claim.against else 0.0)

    def doc_var_at(effect: float) -> float:
        return (alternative(effect) if alternative else found.doc_var) + against_var

    mde = k * found.se
    for _ in range(30):
        updated = k * float(np.sqrt(doc_var_at(mde) + found.seed_var))
        if abs(updated - mde) < 1e-5:
            break
        mde = updated
    v.mde = mde
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


def _gate(v: Verdict, claim: Claim, whole: Bootstrap, boot: Bootstrap, resolved: list[tuple[Row, Row]],
          involved: list[Row], tasks: list[str], metric) -> tuple[str, list[str]]:
    """The discrimination gate (the treatment learned its tasks), then the floor check (the rows
    clear their trivial baselines); a failed gate is the claim's verdict, with its note."""
    treatment, control = resolved[0]
    learned = _learned(whole, treatment)
    if learned is not None:
        v.auc, clears = learned
        if not clears:
            return (f"not testable: the treatment learned no discrimination (AUC {v.auc})",
                    ["its label log-likelihoods rank the documents of the tasks it was trained on no "
                     "better than chance: it learned the answer format or the prior, not the task"])
    if not (claim.floor_check and claim.normalized):
        return "", []
    checks: dict[int, bool] = {}
    for row in involved:
        if id(row) not in checks:
            clears, shown = _floor(boot, row, tasks, metric)
            checks[id(row)] = clears
            v.floor[f"{row.model} {row.name}"] = ("clears " if clears else "at floor ") + shown
    if claim.direction == "decrease" and not all(checks[id(c)] for _, c in resolved):
        return ("not testable: control at trivial baseline",
                ["the control's normalized score does not clear 0, so there is nothing to lose"])
    if not any(checks[id(r)] for r in (treatment, control)):
        return ("not testable: both rows at trivial baseline",
                ["neither row's normalized score clears 0: the contrast compares two trivial answers"])
    return "", []


def _learned(boot: Bootstrap, treatment: Row) -> tuple[str, bool] | None:
    """The treatment's AUC [95% interval] on the tasks it was trained on (those it scored), and
    whether it clears chance; None for an untrained row or one without log-likelihoods."""
    from harness.discrimination import discriminates
    from harness.stats import percentile_interval

    trained = [t for t in treatment.trained_on if treatment.sources.get(t)]
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


def positive_control_note(verdicts: list[Verdict]) -> str:
    """The line the claims table opens with when a positive control was not decided."""
    undecided = [v for v in verdicts if v.positive_control and v.verdict not in ("agrees", "contradicts")]
    if not undecided:
        return ""
    return ("**Positive control not decided: " + "; ".join(f"{v.id} is '{v.verdict}'" for v in undecided)
            + ". This study's training or size is too small to show an effect it must show, so no other "
              "verdict below can be read as evidence either way.**")


def _clean(boot: Bootstrap, involved: list[Row], tasks: list[str]) -> tuple[Bootstrap, str]:
    """The study read on each task's documents that no involved checkpoint's evaluation flagged;
    a task no involved checkpoint has a record for (lineage unknown everywhere) keeps every document."""
    exclude: dict[str, set[int]] = {}
    unrecorded = []
    for task in tasks:
        found = [boot.contaminated(f, task) for row in involved
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


def claims_table(verdicts: list[Verdict], claims: ClaimsFile, preregistration: str = "") -> str:
    rows = []
    for v in verdicts:
        effect = f"{v.effect:+.3f} [{v.ci[0]:+.3f}, {v.ci[1]:+.3f}]" if v.effect is not None else ""
        paper = (f"{v.paper_in_metric:+.3f}" if v.paper_in_metric is not None else "") if v.paper else "not given"
        if v.p is None:  # no task left to test (a floor gate kept none)
            rows.append([v.id, v.says, v.verdict] + [""] * 9 + ["0", v.seeds or "-", v.metric])
            continue
        rows.append(
            [
                v.id,
                v.says,
                v.verdict,
                effect,
                f"{v.doc_sd:.3f} / {v.seed_sd:.3f}",
                f"{v.df:.1f}",
                f"{v.p:.3g}",
                f"{v.p_holm:.3g}",
                f"{v.mde:.3f}",
                paper,
                _size(v.documents_needed, v.paper_in_metric),
                _size(v.seeds_needed, v.paper_in_metric if v.seed_sd > 0 else None),
                f"{len(v.tasks)} x {v.documents}",
                v.seeds or "-",
                f"{v.metric} ({v.rule}{', clean subset' if v.subset == 'clean' else ''})",
            ]
        )
    caption = (
        f"Claims ({len(verdicts)}), decided by code on unclipped normalized scores: t-type 95% interval and "
        f"two-sided p-value from two variance components (documents: paired bootstrap; training seeds: "
        f"between-seed variance / seeds) with Welch-Satterthwaite degrees of freedom (df); p Holm-corrected "
        f"at family-wise alpha {claims.alpha}. MDE at {claims.power:.0%} power and alpha/{len(verdicts)}, "
        f"with the standard error under the alternative. 'paper' is its magnitude in the claim's metric "
        f"(blank: reported in another metric, so no size verdict); 'docs needed' (per task, seeds kept) and "
        f"'seeds needed' (documents kept) are the sizes at which the MDE reaches it ('never': the other "
        f"component alone is too large). 'sd docs / seeds': the "
        f"two components' standard deviations; 'seeds': the treatment's training seeds."
    )
    if preregistration:
        caption = preregistration + "\n\n" + caption
    control = positive_control_note(verdicts)
    if control:
        caption = control + "\n\n" + caption
    details = "\n".join(
        f"- **{v.id}** ({v.source}): {v.contrast} on {', '.join(v.tasks)}"
        + (" (positive control)" if v.positive_control else "")
        + (f". Treatment's AUC: {v.auc}" if v.auc else "")
        + (f". Floor: {'; '.join(f'{k} {s}' for k, s in v.floor.items())}" if v.floor else "")
        + (f". {v.note}" if v.note else "") for v in verdicts)
    return (caption + "\n\n" + tabulate(rows, headers=["claim", "says", "verdict", "effect [95% CI]",
                                                        "sd docs / seeds", "df", "p", "p (Holm)", "MDE", "paper",
                                                        "docs needed", "seeds needed", "tasks x docs", "seeds",
                                                        "metric (rule)"],
                                         tablefmt="github", disable_numparse=True)
            + "\n\n" + details)


# --- Preregistration: which claims file the evaluations were run under ------------------

LOCK_FILE = "claims.lock.json"


def claims_digest(folder: str | Path) -> str | None:
    import hashlib

    path = Path(folder) / CLAIMS_FILE
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def record_claims(folder: str | Path, root: str | Path) -> None:
    """The claims file's sha256 and the date, written once, when the study's first evaluation starts."""
    import json
    from datetime import datetime, timezone

    from plumbing.atomic import write_atomic

    lock = Path(root) / LOCK_FILE
    digest = claims_digest(folder)
    if lock.is_file() or digest is None:
        return
    write_atomic(lock, json.dumps({"sha256": digest, "recorded": datetime.now(timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"), "file": str(Path(folder) / CLAIMS_FILE)}, indent=2) + "\n")


def preregistration_note(folder: str | Path, root: str | Path) -> str:
    """One line for the claims table's header: the claims were fixed before the evaluations, or
    the file changed after they started (both hashes and the date), or no record exists."""
    import json

    lock = Path(root) / LOCK_FILE
    digest = claims_digest(folder)
    if not lock.is_file():
        return ("**Preregistration: no record.** The claims file's hash was not recorded when this study's first "
                "evaluation started (evaluations made before finharness recorded it), so nothing shows the claims "
                f"were fixed before the results; claims.yaml now: sha256 {digest[:16] if digest else 'missing'}.")
    try:
        recorded = json.loads(lock.read_text())
        if not isinstance(recorded, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{lock}: not a claims lock (a JSON object with sha256 and recorded): {err}") from None
    if recorded.get("sha256") == digest:
        return (f"Preregistration: claims.yaml (sha256 {digest[:16]}) is the file recorded when the first "
                f"evaluation started ({recorded.get('recorded')}).")
    return (f"**Preregistration: claims.yaml changed after the evaluations started.** Recorded "
            f"{recorded.get('recorded')}: sha256 {str(recorded.get('sha256'))[:16]}; now: "
            f"{digest[:16] if digest else 'missing'}. The verdicts below answer the changed claims.")
