"""``finharness study run recipes/studies/<study>``: train, merge, score, tabulate, submit.

Every step is skipped when its output is already there, so a killed study resumes where
it stopped: a training run continues from its last checkpoint (``finharness train
--resume``), a finished merge or evaluation folder is kept (both are built under a
temporary name and renamed when complete), and board entries already recorded are left.

Under a multi-process launcher (``torchrun --nproc_per_node N -m finharness study run ...``
or ``accelerate launch``), every rank runs the training steps (DDP, one run folder) and the
scoring steps (each rank scores its share of the documents; rank 0 writes the results)
together; the steps that write shared files alone (merges, deviations, tables, the board)
run on rank 0 while the others wait, and every rank takes rank 0's word on what is done.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from merges.mergekit_yaml import to_yaml
from plumbing.atomic import write_atomic
from plumbing.folders import building, is_finished
from plumbing.logs import log
from plumbing.ranks import join_process_group, rank_zero_says, wait_for_all
from study.spec import Checkpoint, EvalStep, Study, TunedMerge, check_families, deviation_file, load_study
from training.recipe import dump_recipe

StepKind = Literal["train", "merge", "select", "deviate", "eval", "table", "submit"]
ALL_RANKS: tuple[StepKind, ...] = ("train", "eval")  # steps every process of a multi-process launch runs together


@dataclass
class Step:
    kind: StepKind
    label: str
    done: Callable[[], bool]
    run: Callable[[], None]


def write_recipes(study: Study) -> None:
    """The expanded recipes, as files ``finharness train`` / ``merge`` accept."""
    root = Path(study.root) / "recipes"
    for recipe in study.train_recipes:
        path = root / "train" / f"{recipe.name}.yaml"
        text = dump_recipe(recipe)
        if not path.is_file() or path.read_text() != text:
            write_atomic(path, text)
    for recipe in study.merge_recipes:
        path = root / "merge" / f"{recipe.name}.yaml"
        text = to_yaml(recipe.model_dump(mode="json", by_alias=True, exclude_none=True))
        if not path.is_file() or path.read_text() != text:
            write_atomic(path, text)


def eval_done(step: EvalStep) -> bool:
    return is_finished(step.folder, "evaluation")


def run_eval_step(step: EvalStep, batch_size: int | str, device: str | None, online: bool = False,
                  rank: int = 0) -> None:
    """Score into a hidden work folder, manifest last, then rename: a results folder is always
    complete. A non-zero rank of a multi-process launch scores its share and writes nothing."""
    from harness.evaluate import EvalRequest, run_eval

    def score(output_path: Path | None):
        return run_eval(EvalRequest(
            model=step.checkpoint.path, tasks=step.tasks, num_fewshot=step.shots, limit=step.limit,
            batch_size=batch_size, device=device, output_path=output_path, log_samples=True, online=online,
            include_paths=[Path(p) for p in step.include_paths], split=step.split,
            development_outside=tuple(step.development_outside)))

    if rank != 0:
        score(None)
        return
    with building(Path(step.folder), "evaluation") as build:
        outcome = score(build.path)
        build.record = {
            "checkpoint": step.checkpoint.model_dump(), "setting": step.setting, "shots": step.shots,
            "tasks": step.tasks, "limit": step.limit, "seconds": outcome.seconds, "split": step.split,
        }


def run_deviation_step(study: Study, point: Checkpoint) -> None:
    from harness.deviation import measure, write

    spec = study.spec.deviation
    vanilla = next(m.model for m in study.spec.models if m.label == point.model)
    # In-domain by default: the test documents of the tasks this checkpoint was trained on.
    tasks = spec.tasks or point.trained_on
    result = measure(point.path, vanilla, tasks=tasks, per_task=spec.per_task, seed=spec.seed,
                     include_paths=study.eval.include_paths)
    write(result, deviation_file(study.root, point))


def select_weight(study: Study, tuned: TunedMerge, device: str | None) -> None:
    """Score the candidates on development rows and write the choice (merges/select.py). The
    design is recorded first, as before any evaluation: the choice is part of the run."""
    from merges.run import merge_folders
    from merges.select import select_point
    from study.claims import record_claims
    from study.record import next_run_number

    record_claims(study.folder, study.root, next_run_number(study.spec.name, study.full))
    sweep = next(r for r in study.merge_recipes if r.name == tuned.sweep)
    select_point(merge_folders(sweep), tuned.select.tasks, tuned.select.metric, tuned.select.limit,
                 study.eval.batch_size, device)


def chosen_weight(tuned: TunedMerge) -> float:
    """The weight the development rows chose for a tuned merge (its selection file)."""
    from merges.select import point_parameters

    selection = json.loads(Path(tuned.selection).read_text())
    return float(point_parameters(Path(selection["best"]))["weight"])


def merge_tuned(study: Study, tuned: TunedMerge, i: int) -> None:
    """One seed's merge at the chosen weight, its expanded recipe kept beside the others."""
    from merges.run import merge_recipe

    recipe = tuned.recipe(i, chosen_weight(tuned))
    write_atomic(Path(study.root) / "recipes" / "merge" / f"{recipe.name}.yaml",
                 to_yaml(recipe.model_dump(mode="json", by_alias=True, exclude_none=True)))
    merge_recipe(recipe)


def plan_steps(study: Study, device: str | None = None, board: Path | None = None, online: bool = False,
               rank: int = 0) -> list[Step]:
    from merges.run import merge_folders, merge_recipe
    from training.run import train_recipe

    steps = []
    for recipe in study.train_recipes:
        steps.append(Step("train", recipe.name, lambda r=recipe: is_finished(r.run_dir(), "training_run"),
                          lambda r=recipe: train_recipe(r, resume=True, online=online)))
    for recipe in study.merge_recipes:
        folders = merge_folders(recipe)  # a tuned merge's candidates: one folder per weight
        steps.append(Step("merge", recipe.name, lambda fs=folders: all(is_finished(f, "merge") for f in fs),
                          lambda r=recipe: merge_recipe(r)))
    for tuned in study.tuned:
        steps.append(Step("select", f"{tuned.entry}: weight on development rows of {', '.join(tuned.select.tasks)}",
                          lambda t=tuned: Path(t.selection).is_file(),
                          lambda t=tuned: select_weight(study, t, device)))
        for i, data in enumerate(tuned.recipes):
            steps.append(Step("merge", f"{data['name']} (the chosen weight)",
                              lambda n=data["name"]: is_finished(Path(study.root) / "merges" / n, "merge"),
                              lambda t=tuned, i=i: merge_tuned(study, t, i)))
    if study.spec.deviation:
        for point in study.checkpoints:
            if point.role != "vanilla":
                steps.append(Step("deviate", f"{point.label} against {point.model}",
                                  lambda p=point: deviation_file(study.root, p).is_file(),
                                  lambda p=point: run_deviation_step(study, p)))
    from study.claims import record_claims
    from study.record import next_run_number

    def evaluate(step: EvalStep) -> None:
        if rank == 0:  # the design in force when the first evaluation starts, numbered after the record's runs
            record_claims(study.folder, study.root, next_run_number(study.spec.name, study.full))
        run_eval_step(step, study.eval.batch_size, device, online, rank)

    for step in study.evals:
        label = (f"{step.checkpoint.label} {step.setting} ({step.shots}-shot) on set {step.set_index}"
                 + (" (development rows, for the gates)" if step.split == "development" else ""))
        steps.append(Step("eval", label, lambda s=step: eval_done(s), lambda s=step: evaluate(s)))

    from study.tables import tables_current, write_tables

    # Redone only when an evaluation, the table spec or the table code changed since.
    steps.append(Step("table", "tables.md / tables.json", lambda: tables_current(study),
                      lambda: write_tables(study)))
    if study.spec.leaderboard:
        from leaderboard.store import Board
        from study.board import submit_study

        steps.append(Step("submit", "leaderboard entries", lambda: False,
                          lambda: submit_study(study, Board(board))))
    return steps


def run_study(folder: str | Path, *, full: bool = False, output_dir: str | Path | None = None,
              device: str | None = None, dry_run: bool = False, board: Path | None = None,
              models: dict[str, str] | None = None, online: bool = False) -> Study:
    """Run every step not done yet. ``models`` replaces a label's checkpoint; ``online``
    lets Hub ids (the papers' models) download."""
    from plumbing.offline import set_offline

    set_offline(online)
    study = load_study(folder, full=full, output_dir=output_dir, models=models)
    from study.claims import CLAIMS_FILE, check_claims, load_claims

    claims = load_claims(folder)  # a wrong claims.yaml fails now, not after hours of training
    if claims is not None:
        check_claims(claims, study, str(Path(folder) / CLAIMS_FILE))
    rank = join_process_group()
    say = log.info if rank == 0 else log.debug  # one voice in a multi-process launch
    steps = plan_steps(study, device, board, online, rank)
    say(f"study {study.spec.name}{' (--full)' if full else ''}: {len(steps)} steps -> {study.root}")
    if dry_run:
        from study.estimate import plan_table

        for i, step in enumerate(steps, 1):
            say(f"[{i}/{len(steps)}] {step.kind:6s} {step.label}{'  (done)' if step.done() else ''}")
        say("\n" + plan_table(study))
        return study
    if rank == 0:
        check_families(study)  # downloads supplied Hub models (--online) before any training
        write_recipes(study)
    wait_for_all()
    started = time.perf_counter()
    for i, step in enumerate(steps, 1):
        prefix = f"[{i}/{len(steps)}] {step.kind:6s} {step.label}"
        if rank_zero_says(step.done()):
            say(f"{prefix}: already done")
            continue
        say(f"{prefix} ...")
        t0 = time.perf_counter()
        if rank == 0 or step.kind in ALL_RANKS:
            step.run()
        wait_for_all()
        say(f"{prefix}: done in {time.perf_counter() - t0:.0f} s (study: {time.perf_counter() - started:.0f} s)")
    if rank == 0:
        write_atomic(Path(study.root) / "study_run.json", json.dumps({
            "study": study.spec.name, "full": full, "seconds_this_run": time.perf_counter() - started,
        }, indent=2))
    return study
