"""``finharness``: one command, one subcommand per job."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from lm_eval._cli.utils import MergeDictAction

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


def eval_targets(args: argparse.Namespace) -> tuple[str, list[tuple[str, str | None, str]], dict]:
    """(backend, [(model, base_model, weight_type)], remaining model_args) from the flags.

    ``--model`` takes a checkpoint (finharness's own spelling, repeatable) or, as lm-eval
    users type it, a backend name with the checkpoint in ``--model_args pretrained=...``
    (``peft=`` for an adapter, ``delta=`` for delta weights on it).
    """
    from harness.evaluate import BACKENDS

    model_args = dict(args.model_args or {})
    named = [m for m in args.model if m in BACKENDS and not Path(m).exists()]
    checkpoints = [m for m in args.model if m not in named]
    backend = args.backend or "hf-shared-prefix"
    if named:
        if len(set(named)) > 1 or (args.backend is not None and args.backend != named[0]):
            raise ValueError(f"two backends named: {', '.join(sorted({*named, backend}))}")
        backend = named[0]
    targets = [(m, args.base_model, args.weight_type) for m in checkpoints]
    pretrained = model_args.pop("pretrained", None)
    adapter, delta = model_args.pop("peft", None), model_args.pop("delta", None)
    if pretrained is not None:
        if adapter and delta:
            raise ValueError("--model_args: give peft= or delta=, not both")
        if adapter or delta:
            targets.append((str(adapter or delta), str(pretrained), "adapter" if adapter else "delta"))
        else:
            targets.append((str(pretrained), args.base_model, args.weight_type))
    elif adapter or delta:
        raise ValueError("--model_args: peft= and delta= need pretrained= (the base model)")
    if not targets:
        raise ValueError(
            f"--model {named[0]} names lm-eval's {named[0]!r} backend, but no checkpoint was given: "
            f"add --model_args pretrained=PATH_OR_EMBEDDED_NAME (as with lm_eval), or pass the checkpoint "
            f"itself: finharness eval -m PATH --backend {named[0]}")
    return backend, targets, model_args


def cmd_eval(args: argparse.Namespace) -> int:
    from fin_tasks.index import include_paths
    from harness.evaluate import EvalRequest, run_eval
    from harness.report import docs_scored, score_table

    tasks = [t for chunk in args.tasks or ["finharness_all"] for t in chunk.split(",") if t]
    backend, targets, extra = eval_targets(args)
    chat = args.chat_template
    if args.apply_chat_template is not None:
        chat = "on" if args.apply_chat_template is not False else "off"
    template_name = args.apply_chat_template if isinstance(args.apply_chat_template, str) else None
    for model, base, weight_type in targets:
        outcome = run_eval(EvalRequest(
            model=model, tasks=tasks, num_fewshot=args.num_fewshot, limit=args.limit,
            batch_size=args.batch_size, device=args.device, dtype=args.dtype,
            chat_template=chat, online=args.online,
            include_defaults=args.include_defaults, output_path=args.output_path,
            log_samples=args.log_samples, seed=args.seed, backend=backend,
            use_cache=not args.no_cache, base_model=base,
            weight_type=weight_type, model_args=extra, split=args.split,
            include_paths=include_paths(args.include_path), chat_template_name=template_name,
            system_instruction=args.system_instruction, fewshot_as_multiturn=args.fewshot_as_multiturn,
            gen_kwargs=args.gen_kwargs, wandb_args=args.wandb_args, wandb_config_args=args.wandb_config_args,
            hf_hub_log_args=args.hf_hub_log_args,
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
    from fin_tasks.index import include_paths, roles, task_manager

    extra = include_paths(args.include_path)
    rows, errors = validate_paths([TASKS_DIR, HUB_TASKS_DIR, *extra])
    role = roles(task_manager(extra, hub=True).task_index) if not errors else {}
    table = [
        [r["name"], r["kind"], role.get(r["name"], ""), len(r.get("labels", [])) or "",
         (r.get("splits") or {}).get("test", ""), r.get("skipped", "") or dropped_note(r)]
        for r in rows
    ]
    print(tabulate(table, headers=["name", "kind", "role", "labels", "test docs", "note"], tablefmt="github"))
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    return 1 if errors else 0


def cmd_validate(args: argparse.Namespace) -> int:
    from fin_tasks import HUB_TASKS_DIR, TASKS_DIR
    from fin_tasks.common.validate import validate_paths
    from fin_tasks.index import include_paths

    paths = [*args.paths, *include_paths(args.include_path)] or [TASKS_DIR, HUB_TASKS_DIR]
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

    train_recipe(args.recipe, resume=args.resume, overwrite=args.overwrite, output_dir=args.output_dir,
                 include_paths=args.include_path or [], online=args.online)
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

    from fin_tasks.index import include_paths
    from harness.measures import change_table, read_scores, recorded_include_paths, task_roles

    # The roles of a user's tasks come from their YAMLs: the folders each evaluation recorded.
    folders = include_paths([*recorded_include_paths(args.entry), *recorded_include_paths(args.reference),
                             *(args.include_path or [])])
    roles = task_roles(folders)
    by_role = {r: {t for t, x in roles.items() if x == r} for r in ("seen", "unseen", "retention")}
    rows, averages = change_table(read_scores(args.entry, args.metric, fallback_to_own=True),
                                  read_scores(args.reference, args.metric, fallback_to_own=True),
                                  by_role["seen"], by_role["unseen"], by_role["retention"])
    print(f"{args.metric} (a task without it: its own first metric): {args.entry} against {args.reference}\n")
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
        entry = submit(load_submission(args.submission), board, include_paths=args.include_path or [], **options)
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
    ev.add_argument("--model", "-m", "-M", action="append", required=True,
                    help="embedded model name, checkpoint folder (training run, merge output), PEFT adapter "
                         "folder or (with --online) Hub id org/name; repeat for several. As with lm_eval, a "
                         "backend name also works: --model hf --model_args pretrained=PATH[,peft=ADAPTER]")
    ev.add_argument("--base_model", default=None,
                    help="base checkpoint for an adapter (default: the adapter's base_model_name_or_path) or delta")
    ev.add_argument("--weight_type", choices=["auto", "original", "adapter", "delta"], default="auto",
                    help="auto: a folder with adapter_config.json and no config.json is an adapter")
    ev.add_argument("--tasks", "-t", action="append", default=None,
                    help="tasks, groups, tags or lm-eval patterns ('fin_*', 'fin_fp*'), comma-separated "
                         "(default: finharness_all)")
    ev.add_argument("--include_path", action="append", default=None, metavar="DIR",
                    help="a folder of your own task YAMLs, as lm_eval --include_path; repeatable")
    ev.add_argument("--num_fewshot", "-f", type=_shots, default=None)
    ev.add_argument("--limit", "-L", type=_limit, default=None, help="first N docs per task (or a fraction)")
    ev.add_argument("--batch_size", "-b", default=8)
    ev.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ev.add_argument("--dtype", default="float32")
    ev.add_argument("--chat_template", choices=["auto", "on", "off"], default="auto",
                    help="auto: on for instruct checkpoints (embedded instruct model, or a tokenizer chat template)")
    ev.add_argument("--apply_chat_template", nargs="?", const=True, default=None, metavar="TEMPLATE",
                    help="lm-eval's spelling of --chat_template on (optionally a named template of the tokenizer)")
    ev.add_argument("--system_instruction", default=None, help="a system message before every prompt (lm-eval)")
    ev.add_argument("--fewshot_as_multiturn", nargs="?", const=True, default=None,
                    type=lambda x: x.lower() in ("true", "1", "yes"), metavar="BOOL",
                    help="few-shot examples as chat turns (default: on with the chat template and shots)")
    ev.add_argument("--gen_kwargs", default=None, nargs="+", action=MergeDictAction, metavar="KEY=VALUE",
                    help="generation arguments for generative tasks, as lm_eval --gen_kwargs")
    ev.add_argument("--wandb_args", default=None, nargs="+", action=MergeDictAction, metavar="KEY=VALUE",
                    help="log to Weights & Biases through lm-eval's WandbLogger (wandb.init arguments)")
    ev.add_argument("--wandb_config_args", default=None, nargs="+", action=MergeDictAction, metavar="KEY=VALUE")
    ev.add_argument("--hf_hub_log_args", default=None, nargs="+", action=MergeDictAction, metavar="KEY=VALUE",
                    help="lm-eval's EvaluationTracker arguments, e.g. hub_results_org=ORG,push_results_to_hub=True")
    ev.add_argument("--online", action="store_true",
                    help="allow the Hugging Face Hub (Hub ids, Hub-only tasks such as fin_ma)")
    ev.add_argument("--include_defaults", action="store_true", help="also index lm-eval's built-in tasks")
    ev.add_argument("--output_path", "-o", type=Path, default=None, help="write lm-eval results and samples here")
    ev.add_argument("--log_samples", "-s", action="store_true")
    ev.add_argument("--seed", type=int, default=1234)
    ev.add_argument("--split", choices=["test", "validation"], default="test",
                    help="validation: score each task's validation split (to choose merge weights or checkpoints)")
    ev.add_argument("--backend", choices=["hf-shared-prefix", "hf", "vllm"], default=None,
                    help="lm-eval model backend: hf-shared-prefix scores each context once (default); "
                         "hf is lm-eval's own; vllm for GPU machines (pip install 'finharness[vllm]')")
    ev.add_argument("--model_args", "-a", default=None, nargs="+", action=MergeDictAction, metavar="KEY=VALUE",
                    help="lm-eval model_args, parsed by lm-eval: pretrained=, peft=, revision=, parallelize=True "
                         "(hf), tensor_parallel_size=2 (vllm), ...")
    ev.add_argument("--no_cache", action="store_true",
                    help="do not read or write the per-checkpoint request cache (FINHARNESS_LM_CACHE)")
    ev.set_defaults(func=cmd_eval)

    ts = sub.add_parser("tasks", help="list the tasks with their roles, label sets and sizes")
    ts.add_argument("--include_path", action="append", default=None, metavar="DIR", help="your own task folders too")
    ts.add_argument("--online", action="store_true")
    ts.set_defaults(func=cmd_tasks)

    va = sub.add_parser("validate", help="check task YAMLs and their data before lm-eval runs them")
    va.add_argument("paths", nargs="*", type=Path, help="YAML files or folders (default: the packaged suite)")
    va.add_argument("--include_path", action="append", default=None, metavar="DIR",
                    help="a task folder to check, as lm_eval --include_path (same as a path argument)")
    va.add_argument("--no-data", action="store_true", help="check the YAML only, do not load data")
    va.add_argument("--online", action="store_true")
    va.set_defaults(func=cmd_validate)

    tr = sub.add_parser("train", help="LoRA / FTICL fine-tuning from a YAML recipe")
    tr.add_argument("recipe", type=Path, help="training recipe (see training/recipes/)")
    tr.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    tr.add_argument("--overwrite", action="store_true", help="discard an earlier run of the same name")
    tr.add_argument("--output-dir", type=Path, default=None, help="parent of the run folder (default: the recipe's output_dir)")
    tr.add_argument("--include_path", action="append", default=None, metavar="DIR",
                    help="task folders beside the recipe's include_paths")
    tr.add_argument("--online", action="store_true", help="allow a Hub id as base_model")
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
    me.add_argument("--online", action="store_true", help="allow Hub ids org/name[@revision] as merge inputs")
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
    fo.add_argument("--metric", default="acc", help="per task; a task without it is read on its own first metric")
    fo.add_argument("--include_path", action="append", default=None, metavar="DIR",
                    help="task folders whose role tags count (default: those the evaluations recorded)")
    fo.set_defaults(func=cmd_forgetting)

    lb = sub.add_parser("leaderboard", help="submit scored models to the board, show it, render it as HTML")
    lb_sub = lb.add_subparsers(dest="action", required=True)
    board_help = "the board's SQLite file (default: $FINHARNESS_BOARD or ~/.cache/finharness/leaderboard/board.sqlite)"
    ls = lb_sub.add_parser("submit", help="validate a submission YAML, score it if needed, record it")
    ls.add_argument("submission", type=Path, help="submission YAML (see leaderboard/examples/)")
    ls.add_argument("--board", type=Path, default=None, help=board_help)
    ls.add_argument("--batch_size", default=None)
    ls.add_argument("--device", default=None)
    ls.add_argument("--include_path", action="append", default=None, metavar="DIR",
                    help="task folders beside the submission's include_paths")
    ls.add_argument("--online", action="store_true", help="allow a Hub id as checkpoint or base_model")
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
    from harness.evaluate import set_offline

    args = build_parser().parse_args(argv)
    # Offline unless asked: a Hub lookup fails at once instead of waiting on timeouts.
    set_offline(getattr(args, "online", False))
    try:
        return args.func(args)
    except (CheckpointError, ValueError) as err:
        print(f"finharness: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
