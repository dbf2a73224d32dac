"""The papers' findings as testable contrasts (``claims.yaml`` in a study folder), decided by code.

Each claim names two rows of the study (``treatment`` and ``control``; optionally a second
pair ``against`` for a difference of differences), a task set, a metric, the direction the
paper reports and the paper's own magnitude with its source. For every claim:

- the **effect** is the treatment's mean over the tasks minus the control's, over only the
  tasks every row of the claim scored;
- its interval and two-sided **p-value** come from the paired two-level bootstrap of the
  study's tables (training seeds, then documents; the same draws for every row);
- p-values are **Holm-corrected** across the claims of the file (family-wise ``alpha``);
- the **minimum detectable effect** (MDE) is what the run could detect with ``power`` at the
  strictest Holm level ``alpha / m``; **documents needed** is the per-task count at which
  the MDE would reach the paper's magnitude (the standard error shrinks as 1/sqrt(n));
- the **verdict**: ``agrees`` or ``contradicts`` when the corrected p-value is at most
  ``alpha`` (by the sign of the effect); ``not testable: control at trivial baseline`` when
  ``floor_check`` is set and the control's normalized score does not clear 0 (a model at its
  floor has nothing to lose); ``not testable at this size`` when the MDE exceeds the paper's
  magnitude; ``inconclusive`` otherwise.

Scores are normalized to the best trivial baseline by default (``(s - b) / (1 - b)``,
clipped at 0), so a model answering one label everywhere scores 0 and cannot win a claim.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field
from tabulate import tabulate

from harness.stats import (bootstrap_p_value, documents_needed, holm, minimum_detectable_effect,
                           percentile_interval)
from plumbing.recipes import RecipeError, read_recipe_yaml, validate_mapping
from plumbing.recipes import Strict as _Strict
from study.cells import Bootstrap, Row

CLAIMS_FILE = "claims.yaml"
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
    against: Pair | None = Field(default=None, description="subtract this pair's difference (difference of differences)")
    tasks: TaskSet | list[str]
    metric: str | None = Field(default=None, description="per-task metric; None: the table's (each task type's in views)")
    normalized: bool = Field(default=True, description="score to the best trivial baseline, (s - b) / (1 - b)")
    direction: Literal["increase", "decrease"]
    paper_effect: PaperEffect | None = None
    floor_check: bool = Field(default=False, description="the control must be above its trivial baseline "
                                                          "(a loss needs something to lose)")


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
    for claim in claims.claims:
        selectors = [claim.treatment, claim.control] + ([claim.against.treatment, claim.against.control]
                                                        if claim.against else [])
        for sel in selectors:
            if sel.model not in models:
                raise RecipeError(f"{path}: claims.{claim.id}: unknown model {sel.model!r} (study models: {sorted(models)})")
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
    documents: int  # fewest documents per task among the claim's tasks
    seeds: int  # training seeds of the treatment
    effect: float | None = None
    ci: tuple[float, float] | None = None
    p: float | None = None
    p_holm: float | None = None
    mde: float | None = None
    paper: str = ""
    documents_needed: int | None = None
    verdict: str = "inconclusive"
    note: str = ""

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


def _tasks(claim: Claim, rows: list[Row], task_sets, path: str) -> list[str]:
    if isinstance(claim.tasks, list):
        wanted = list(claim.tasks)
    else:
        wanted = task_sets(claim.tasks, rows)
    common = [t for t in wanted if all(t in r.tasks() for r in rows)]
    if not common:
        raise RecipeError(f"{path}: claims.{claim.id}: no task of {claim.tasks} was scored by every row of the claim")
    return common


def decide(claims: ClaimsFile, rows: list[Row], boot: Bootstrap, metric_of, task_sets,
           path: str = CLAIMS_FILE) -> list[Verdict]:
    """Every claim's effect, corrected p-value, MDE and verdict.

    ``metric_of(task, claim_metric)`` gives a task's metric; ``task_sets(name, rows)`` the
    tasks of a named set (seen, unseen, a view of the rows' training data)."""
    m = len(claims.claims)
    verdicts, reps_of = [], []
    for claim in claims.claims:
        pairs = [(claim.treatment, claim.control, 1.0)]
        if claim.against:
            pairs.append((claim.against.treatment, claim.against.control, -1.0))
        resolved = [(_find(rows, t, claim, path), _find(rows, c, claim, path), sign) for t, c, sign in pairs]
        involved = [r for t, c, _ in resolved for r in (t, c)]
        tasks = _tasks(claim, involved, task_sets, path)

        def score(row: Row) -> tuple[float, np.ndarray]:
            return boot.mean_over(row, tasks, lambda t: metric_of(t, claim.metric), claim.normalized)

        effect, reps = 0.0, np.zeros(boot.resamples)
        for t, c, sign in resolved:
            (pt, rt), (pc, rc) = score(t), score(c)
            effect += sign * (pt - pc)
            reps = reps + sign * (rt - rc)
        metrics = sorted({metric_of(t, claim.metric) for t in tasks})
        metric = "/".join(metrics) + (" normalized" if claim.normalized else "")
        docs = min(boot.documents(t) for t in tasks)
        treatment = resolved[0][0]
        contrast = f"{claim.treatment.describe()} - {claim.control.describe()}"
        if claim.against:
            contrast = f"[{contrast}] - [{claim.against.treatment.describe()} - {claim.against.control.describe()}]"
        v = Verdict(claim.id, claim.says, claim.source, contrast, tasks, metric, docs,
                    len([s for s in treatment.seeds() if s is not None]) or 1,
                    effect=effect, ci=percentile_interval(reps), p=bootstrap_p_value(reps))
        spread = float(np.std(reps, ddof=1))
        # Replicates without spread (every row answered alike on every draw) give no power estimate.
        v.mde = minimum_detectable_effect(spread, claims.alpha / m, claims.power) if spread > 0 else float("nan")
        if claim.paper_effect:
            v.paper = f"{claim.paper_effect.value:+.3f} {claim.paper_effect.metric}"
            v.documents_needed = documents_needed(docs, v.mde, claim.paper_effect.value)
        if claim.floor_check:
            control = resolved[0][1]
            _, floor_reps = boot.mean_over(control, tasks, lambda t: metric_of(t, claim.metric), True)
            if percentile_interval(floor_reps)[0] <= 0:
                v.note = "floor"
        verdicts.append(v)
        reps_of.append(reps)

    for v, p_holm in zip(verdicts, holm([v.p for v in verdicts], claims.alpha)):
        v.p_holm = p_holm
    for claim, v in zip(claims.claims, verdicts):
        wanted = 1 if claim.direction == "increase" else -1
        if v.note == "floor":
            v.verdict = "not testable: control at trivial baseline"
            v.note = "the control's normalized score does not clear 0, so there is nothing to lose"
        elif v.p_holm <= claims.alpha:
            v.verdict = "agrees" if np.sign(v.effect) == wanted else "contradicts"
        elif claim.paper_effect and not v.mde <= abs(claim.paper_effect.value):  # NaN: untestable too
            v.verdict = "not testable at this size"
            v.note = ((f"MDE {v.mde:.3f} exceeds the paper's {abs(claim.paper_effect.value):.3f}"
                       + ("" if claim.paper_effect.metric in v.metric else f" (paper in {claim.paper_effect.metric})"))
                      if v.mde == v.mde else "the bootstrap replicates do not vary, so no detectable effect can be estimated")
        else:
            v.verdict = "inconclusive"
    return verdicts


def claims_table(verdicts: list[Verdict], claims: ClaimsFile) -> str:
    rows = []
    for v in verdicts:
        effect = f"{v.effect:+.3f} [{v.ci[0]:+.3f}, {v.ci[1]:+.3f}]" if v.effect is not None else ""
        rows.append([v.id, v.says, v.verdict, effect, f"{v.p:.3g}", f"{v.p_holm:.3g}", f"{v.mde:.3f}" if v.mde == v.mde else "n/a",
                     v.paper or "not given", v.documents_needed if v.documents_needed is not None else "",
                     f"{len(v.tasks)} x {v.documents}", v.seeds, v.metric])
    seeds = {v.seeds for v in verdicts}
    caption = (f"Claims ({len(verdicts)}), decided by code: paired two-level bootstrap (training seeds, then "
               f"documents), two-sided p-values Holm-corrected at family-wise alpha {claims.alpha}; MDE at "
               f"{claims.power:.0%} power and alpha/{len(verdicts)}; 'docs needed' per task for the MDE to reach the "
               f"paper's magnitude.")
    if seeds == {1}:
        caption += " One training seed: the intervals cover documents only, not training noise."
    details = "\n".join(f"- **{v.id}** ({v.source}): {v.contrast} on {', '.join(v.tasks)}"
                        + (f". {v.note}" if v.note else "") for v in verdicts)
    return (caption + "\n\n" + tabulate(rows, headers=["claim", "says", "verdict", "effect [95% CI]", "p", "p (Holm)",
                                                        "MDE", "paper", "docs needed", "tasks x docs", "seeds",
                                                        "metric"],
                                         tablefmt="github", disable_numparse=True)
            + "\n\n" + details)
