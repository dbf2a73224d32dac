"""``finharness``: one command, one subcommand per job."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from harness.models import CheckpointError


def _limit(text: str) -> int | float:
    """A document count (>= 1) or a fraction of each task (< 1); checked before any model loads."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--limit must be a number, not {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"--limit must be a positive, finite number, not {text}")
    return int(value) if value >= 1 else value


def _shots(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--num_fewshot must be a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--num_fewshot must be 0 or more, not {text}")
    return value


def cmd_eval(args: argparse.Namespace) -> int:
    from harness.evaluate import EvalRequest, parse_model_args, run_eval
    from harness.report import docs_scored, score_table

    tasks = [t for chunk in args.tasks for t in chunk.split(",") if t]
    extra = parse_model_args(args.model_args or "")
    for model in args.model:
        outcome = run_eval(EvalRequest(
            model=model, tasks=tasks, num_fewshot=args.num_fewshot, limit=args.limit,
            batch_size=args.batch_size, device=args.device, dtype=args.dtype,
            chat_template=args.chat_template, online=args.online,
            include_defaults=args.include_defaults, output_path=args.output_path,
            log_samples=args.log_samples, seed=args.seed, backend=args.backend,
            use_cache=not args.no_cache, base_model=args.base_model,
            weight_type=args.weight_type, model_args=extra, split=args.split,
        ))
        if outcome.results is None:  # a non-zero rank under `accelerate launch`
            continue
        docs = docs_scored(outcome.results)
        print(f"\n## {model}  ({outcome.model.describe()})")
        print(score_table(outcome.results))
        print(f"\n{docs} docs in {outcome.seconds:.1f} s ({docs / outcome.seconds:.2f} docs/s)")
    return 0


def dropped_note(row: dict) -> str:
    return "; ".join(f"{n} {split} rows dropped (no gold label)" for split, n in row.get("dropped", {}).items())


def cmd_tasks(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from fin_tasks import HUB_TASKS_DIR, TASKS_DIR
    from fin_tasks.common.validate import validate_paths
    from harness.evaluate import set_offline

    set_offline(args.online)
    rows, errors = validate_paths([TASKS_DIR, HUB_TASKS_DIR])
    table = [
        [r["name"], r["kind"], len(r.get("labels", [])) or "",
         (r.get("splits") or {}).get("test", ""), r.get("skipped", "") or dropped_note(r)]
        for r in rows
    ]
    print(tabulate(table, headers=["name", "kind", "labels", "test docs", "note"], tablefmt="github"))
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    return 1 if errors else 0


def cmd_validate(args: argparse.Namespace) -> int:
    from fin_tasks import HUB_TASKS_DIR, TASKS_DIR
    from fin_tasks.common.validate import validate_paths
    from harness.evaluate import set_offline

    set_offline(args.online)
    paths = args.paths or [TASKS_DIR, HUB_TASKS_DIR]
    rows, errors = validate_paths(paths, with_data=not args.no_data)
    for row in rows:
        note = f"  (data not checked: {row['skipped']})" if "skipped" in row else ""
        print(f"ok     {row['name']}{note}")
    for err in errors:
        print(f"error  {err}")
    print(f"{len(rows)} valid, {len(errors)} invalid")
    return 1 if errors else 0


def cmd_models(args: argparse.Namespace) -> int:
    from harness.models import EMBEDDED, convert_embedded, embedded_path

    if args.action == "list":
        for name, model in EMBEDDED.items():
            kind = "instruct" if model.instruct else "base"
            print(f"{name:24s} {kind:9s} {model.hf_id:40s} {embedded_path(name)}")
        return 0
    for name in args.names or list(EMBEDDED):
        if name not in EMBEDDED:
            raise CheckpointError(f"unknown embedded model {name!r} (known: {', '.join(EMBEDDED)})")
        print(convert_embedded(name))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from training.run import train_recipe

    train_recipe(args.recipe, resume=args.resume, overwrite=args.overwrite, output_dir=args.output_dir)
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from merges.run import merge_recipe

    folders = merge_recipe(args.recipe, output_dir=args.output_dir, dry_run=args.dry_run)
    if args.select_on and not args.dry_run:
        from tabulate import tabulate

        from merges.select import select_point

        tasks = [t for t in args.select_on.split(",") if t]
        selection = select_point(folders, tasks, metric=args.metric, limit=args.limit)
        print(tabulate([{k: v for k, v in r.items() if k != "folder"} for r in selection["points"]],
                       headers="keys", tablefmt="github", floatfmt=".4f"))
        print(f"best on validation ({args.metric}): {selection['best']}")
    return 0


def cmd_views(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from fin_tasks import task_manager
    from harness.result_files import load_results
    from harness.views import load_views, place_tasks, view_of, view_table

    trained = [t for entry in args.trained_on for t in entry.split(",") if t]
    views = load_views()
    places = place_tasks(views, task_manager().task_index)
    unknown = [t for t in trained if t not in places]
    if unknown:
        raise ValueError(f"--trained-on: {', '.join(unknown)} is not a generalization-suite task")
    if args.results is None:
        rows = [[t, places[t].task_type, view_of(t, trained, places)] for t in sorted(places)]
        print(tabulate(rows, headers=["task", "type", "view"], tablefmt="github"))
        return 0
    rows = view_table(load_results(args.results)["results"], trained, places, views)
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".4f"))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from harness.stats import compare

    rows = [compare(args.a, args.b, task, args.metric, args.resamples, args.level, args.seed)
            for entry in args.tasks for task in entry.split(",") if task]
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".4f"))
    return 0


def cmd_forgetting(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from harness.measures import change_table, read_scores, seen_and_unseen

    seen, unseen = seen_and_unseen()
    rows, averages = change_table(read_scores(args.entry, args.metric), read_scores(args.reference, args.metric),
                                  seen, unseen)
    print(f"{args.metric}: {args.entry} against {args.reference}\n")
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt="+.4f"))
    if averages:
        print()
        print(tabulate(averages, headers="keys", tablefmt="github", floatfmt="+.4f"))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from leaderboard.store import Board

    board = Board(args.board)
    if args.action == "submit":
        from leaderboard.submission import load_submission
        from leaderboard.submit import submit

        options = {k: v for k, v in (("batch_size", args.batch_size), ("device", args.device)) if v is not None}
        entry = submit(load_submission(args.submission), board, **options)
        print(f"entry {entry} added to {board.path}")
        return 0
    if args.action == "show":
        from leaderboard.table import show

        print(show(board.entries(), metric=args.metric, sort=args.sort, ascending=args.ascending, fmt=args.format))
        return 0
    from leaderboard.render import render

    entries = board.entries()
    out = render(entries, args.out, metric=args.metric, title=args.title)
    print(f"wrote {out} ({len(entries)} entries)")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from study.run import run_study

    if args.action == "run":
        run_study(args.folder, full=args.full, output_dir=args.output_dir, device=args.device,
                  dry_run=args.dry_run, board=args.board)
        return 0
    from study.spec import load_study
    from study.tables import write_tables

    write_tables(load_study(args.folder, full=args.full, output_dir=args.output_dir))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finharness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="score checkpoints on financial tasks (lm-eval)")
    ev.add_argument("--model", "-m", action="append", required=True,
                    help="embedded model name, checkpoint folder (training run, merge output) or "
                         "PEFT adapter folder; repeat for several")
    ev.add_argument("--base_model", default=None,
                    help="base checkpoint for an adapter (default: the adapter's base_model_name_or_path) or delta")
    ev.add_argument("--weight_type", choices=["auto", "original", "adapter", "delta"], default="auto",
                    help="auto: a folder with adapter_config.json and no config.json is an adapter")
    ev.add_argument("--tasks", "-t", action="append", default=None,
                    help="tasks, groups or patterns, comma-separated (default: finharness_all)")
    ev.add_argument("--num_fewshot", type=_shots, default=None)
    ev.add_argument("--limit", type=_limit, default=None, help="first N docs per task (or a fraction)")
    ev.add_argument("--batch_size", default=8)
    ev.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ev.add_argument("--dtype", default="float32")
    ev.add_argument("--chat_template", choices=["auto", "on", "off"], default="auto",
                    help="auto: on for instruct checkpoints (embedded instruct model, or a tokenizer chat template)")
    ev.add_argument("--online", action="store_true", help="allow the Hugging Face Hub (Hub-only tasks such as fin_ma)")
    ev.add_argument("--include_defaults", action="store_true", help="also index lm-eval's built-in tasks")
    ev.add_argument("--output_path", type=Path, default=None, help="write lm-eval results and samples here")
    ev.add_argument("--log_samples", action="store_true")
    ev.add_argument("--seed", type=int, default=1234)
    ev.add_argument("--split", choices=["test", "validation"], default="test",
                    help="validation: score each task's validation split (to choose merge weights or checkpoints)")
    ev.add_argument("--backend", choices=["hf-shared-prefix", "hf", "vllm"], default="hf-shared-prefix",
                    help="lm-eval model backend: hf-shared-prefix scores each context once (default); "
                         "hf is lm-eval's own; vllm for GPU machines (pip install vllm)")
    ev.add_argument("--model_args", default=None,
                    help="extra lm-eval model_args, e.g. parallelize=True (hf) or "
                         "tensor_parallel_size=2,data_parallel_size=2 (vllm)")
    ev.add_argument("--no_cache", action="store_true",
                    help="do not read or write the per-checkpoint request cache (FINHARNESS_LM_CACHE)")
    ev.set_defaults(func=cmd_eval)

    ts = sub.add_parser("tasks", help="list the tasks with their label sets and sizes")
    ts.add_argument("--online", action="store_true")
    ts.set_defaults(func=cmd_tasks)

    va = sub.add_parser("validate", help="check task YAMLs and their data before lm-eval runs them")
    va.add_argument("paths", nargs="*", type=Path, help="YAML files or folders (default: the packaged suite)")
    va.add_argument("--no-data", action="store_true", help="check the YAML only, do not load data")
    va.add_argument("--online", action="store_true")
    va.set_defaults(func=cmd_validate)

    tr = sub.add_parser("train", help="LoRA / FTICL fine-tuning from a YAML recipe")
    tr.add_argument("recipe", type=Path, help="training recipe (see training/recipes/)")
    tr.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    tr.add_argument("--overwrite", action="store_true", help="discard an earlier run of the same name")
    tr.add_argument("--output-dir", type=Path, default=None, help="parent of the run folder (default: the recipe's output_dir)")
    tr.set_defaults(func=cmd_train)

    me = sub.add_parser("merge", help="merge fine-tuned models with MergeKit from a YAML recipe")
    me.add_argument("recipe", type=Path, help="merge recipe (see merges/recipes/)")
    me.add_argument("--output-dir", type=Path, default=None, help="parent of the merge folder (default: the recipe's output_dir)")
    me.add_argument("--dry-run", action="store_true", help="check the recipe and print the MergeKit YAML; merge nothing")
    me.add_argument("--select-on", default=None, metavar="TASKS",
                    help="score every merged point on these tasks' validation split and record the best "
                         "(selection.json); comma-separated tasks or groups")
    me.add_argument("--metric", default="acc", help="the metric --select-on maximizes (task mean)")
    me.add_argument("--limit", type=_limit, default=None, help="--select-on: first N validation docs per task")
    me.set_defaults(func=cmd_merge)

    vi = sub.add_parser("views", help="in-domain / out-of-domain / cross-task placement of the gen_* tasks")
    vi.add_argument("--trained-on", action="append", required=True,
                    help="the task(s) the model was fine-tuned on, e.g. gen_sentiment_amazon")
    vi.add_argument("--results", type=Path, default=None,
                    help="an lm-eval results JSON: print the mean score per task type and view")
    vi.set_defaults(func=cmd_views)

    co = sub.add_parser("compare", help="paired bootstrap interval and permutation test between two result folders")
    co.add_argument("a", type=Path, help="--output_path folder of the first entry")
    co.add_argument("b", type=Path, help="--output_path folder of the second entry")
    co.add_argument("--tasks", "-t", action="append", required=True, help="task(s), comma-separated")
    co.add_argument("--metric", default="acc", help="a per-sample metric of the task (acc, f1_macro, rougeL, ...)")
    co.add_argument("--resamples", type=int, default=2000)
    co.add_argument("--level", type=float, default=0.95)
    co.add_argument("--seed", type=int, default=0)
    co.set_defaults(func=cmd_compare)

    fo = sub.add_parser("forgetting", help="per-task change of one result folder against another (seen/unseen averages)")
    fo.add_argument("entry", type=Path, help="--output_path folder of the fine-tuned or merged model")
    fo.add_argument("reference", type=Path, help="--output_path folder of the reference (e.g. the base model zero-shot)")
    fo.add_argument("--metric", default="acc")
    fo.set_defaults(func=cmd_forgetting)

    lb = sub.add_parser("leaderboard", help="submit scored models to the board, show it, render it as HTML")
    lb_sub = lb.add_subparsers(dest="action", required=True)
    board_help = "the board's SQLite file (default: $FINHARNESS_BOARD or ~/.cache/finharness/leaderboard/board.sqlite)"
    ls = lb_sub.add_parser("submit", help="validate a submission YAML, score it if needed, record it")
    ls.add_argument("submission", type=Path, help="submission YAML (see leaderboard/examples/)")
    ls.add_argument("--board", type=Path, default=None, help=board_help)
    ls.add_argument("--batch_size", default=None)
    ls.add_argument("--device", default=None)
    lh = lb_sub.add_parser("show", help="print the board (tabulate)")
    lh.add_argument("--board", type=Path, default=None, help=board_help)
    lh.add_argument("--metric", default="acc", help="the per-task metric shown (ROUGE-L where a task lacks it)")
    lh.add_argument("--sort", default="unseen", help="any column: unseen, forgetting, fin_fpb, model, ...")
    lh.add_argument("--ascending", action="store_true")
    lh.add_argument("--format", default="github", help="any tabulate format: github, plain, latex, html, ...")
    lr = lb_sub.add_parser("render", help="write the board as one static HTML page")
    lr.add_argument("--board", type=Path, default=None, help=board_help)
    lr.add_argument("--out", type=Path, default=Path("leaderboard.html"))
    lr.add_argument("--metric", default="acc")
    lr.add_argument("--title", default="finharness leaderboard")
    lb.set_defaults(func=cmd_leaderboard)

    st = sub.add_parser("study", help="run a paper's study (recipes/<study>/): train, merge, score, tabulate")
    st.add_argument("action", choices=["run", "table"], help="run: every step not done yet; table: re-render the tables")
    st.add_argument("folder", type=Path, help="study folder (recipes/<study>/)")
    st.add_argument("--full", action="store_true", help="the papers' sizes (study.yaml `full:`), for a GPU machine")
    st.add_argument("--output-dir", type=Path, default=None, help="parent of the study's output (default: study.yaml)")
    st.add_argument("--device", default=None)
    st.add_argument("--dry-run", action="store_true", help="list the steps and which are done; run nothing")
    st.add_argument("--board", type=Path, default=None, help="leaderboard file the study submits to")
    st.set_defaults(func=cmd_study)

    mo = sub.add_parser("models", help="embedded default models: list, or convert and print their paths")
    mo.add_argument("action", choices=["list", "path"])
    mo.add_argument("names", nargs="*")
    mo.set_defaults(func=cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "tasks", None) is None and args.command == "eval":
        args.tasks = ["finharness_all"]
    try:
        return args.func(args)
    except (CheckpointError, ValueError) as err:
        print(f"finharness: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
