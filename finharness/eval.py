"""``finharness eval``: score checkpoints on tasks through lm-eval, with lm-eval's own flag spellings."""
from __future__ import annotations

import argparse
from pathlib import Path

from lm_eval._cli.utils import MergeDictAction

from finharness.arguments import positive_limit, seed_value, shot_count
from plumbing.ranks import group_size, leave_process_group
from harness.backends import BACKENDS, DEFAULT_BACKEND, backend_help
from plumbing.vocabulary import (CHAT_TEMPLATE_MODES, DEFAULT_SEED, DEFAULT_SLICE, DEFAULT_TASKS, SLICE_METHODS,
                                 WEIGHT_TYPES)


def eval_targets(args: argparse.Namespace) -> tuple[str, list[tuple[str, str | None, str]], dict]:
    """(backend, [(model, base_model, weight_type)], remaining model_args) from the flags.

    ``--model`` takes a checkpoint (finharness's own spelling, repeatable) or, as lm-eval
    users type it, a backend name with the checkpoint in ``--model_args pretrained=...``
    (``peft=`` for an adapter, ``delta=`` for delta weights on it).
    """

    model_args = dict(args.model_args or {})
    named = [m for m in args.model if m in BACKENDS and not Path(m).exists()]
    checkpoints = [m for m in args.model if m not in named]
    backend = args.backend or DEFAULT_BACKEND
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


def processes_note(results: dict, backend: str) -> str | None:
    """Under a multi-process launch: how many processes scored and how many documents each took.
    lm-eval hands rank r the documents r, r + W, r + 2W, ... of each task. Its ``hf`` backend does
    so only across GPUs (on CPU every process scores every document); ``hf-shared-prefix`` on CPU
    too."""
    import torch

    world = group_size()
    if world < 2:
        return None
    if backend != "hf-shared-prefix" and not (torch.cuda.is_available() and torch.cuda.device_count() > 1):
        return (f"{world} processes ran, and each scored every document: lm-eval's {backend} splits documents "
                "across ranks only across GPUs (--backend hf-shared-prefix splits them on CPU too)")
    counts = [0] * world
    for task, n in (results.get("n-samples") or {}).items():
        effective = int(n.get("effective", 0)) if isinstance(n, dict) else int(n)
        for rank in range(world):
            counts[rank] += len(range(rank, effective, world))
    shares = ", ".join(f"rank {r}: {c}" for r, c in enumerate(counts))
    return f"{world} processes scored, each its share of the documents ({shares})"


def run(args: argparse.Namespace) -> int:
    from evidence.report import docs_scored, score_table
    from fin_tasks.index import include_paths
    from harness.evaluate import EvalRequest, run_eval

    tasks = [t for chunk in args.tasks or DEFAULT_TASKS for t in chunk.split(",") if t.strip()]
    if not tasks:
        raise ValueError(f"--tasks {','.join(args.tasks)!r}: no task named (e.g. -t fin_fpb,fin_fomc; "
                         "`finharness tasks` lists them)")
    if args.output_path is not None and args.output_path.exists() and not args.output_path.is_dir():
        # Checked now: lm-eval would find out after scoring every document.
        raise ValueError(f"--output_path {args.output_path} is a file, not a folder; give a folder")
    backend, targets, extra = eval_targets(args)
    chat = args.chat_template
    if args.apply_chat_template is not None:
        chat = "on" if args.apply_chat_template is not False else "off"
    template_name = args.apply_chat_template if isinstance(args.apply_chat_template, str) else None
    for model, base, weight_type in targets:
        outcome = run_eval(EvalRequest(
            model=model, tasks=tasks, num_fewshot=args.num_fewshot, limit=args.limit, sample=args.sample,
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
        note = processes_note(outcome.results, backend)
        if note:
            print(note)
        print(next_step(args.output_path))
    leave_process_group()  # under torchrun: every rank leaves together
    return 0


def next_step(output_path: Path | None) -> str:
    """What the run kept, and what to do with it: without --output_path nothing is written."""
    if output_path is None:
        return ("Nothing was kept (no --output_path). Add -o DIR to keep the results and per-document logs that "
                "`finharness forgetting`, `compare` and `leaderboard submit` read; a rerun reads its answers from "
                "the request cache.")
    return (f"Kept in {output_path}, with the per-document logs. Next: "
            f"`finharness forgetting {output_path} REFERENCE_DIR` (the change against another model's results on the "
            f"same documents), or a submission naming `results: {output_path}` for `finharness leaderboard submit`.")


def register(sub) -> None:
    ev = sub.add_parser("eval", help="score checkpoints on financial tasks (lm-eval)")
    ev.add_argument("--model", "-m", "-M", action="append", required=True,
                    help="embedded model name, checkpoint folder (training run, merge output), PEFT adapter "
                         "folder or (with --online) Hub id org/name; repeat for several. As with lm_eval, a "
                         "backend name also works: --model hf --model_args pretrained=PATH[,peft=ADAPTER]")
    ev.add_argument("--base_model", default=None,
                    help="base checkpoint for an adapter (default: the adapter's base_model_name_or_path) or delta")
    ev.add_argument("--weight_type", choices=["auto", *WEIGHT_TYPES], default="auto",
                    help="auto: a folder with adapter_config.json and no config.json is an adapter")
    ev.add_argument("--tasks", "-t", action="append", default=None,
                    help="tasks, groups, tags or lm-eval patterns ('fin_*', 'fin_fp*'), comma-separated "
                         "(default: finharness_all)")
    ev.add_argument("--include_path", action="append", default=None, metavar="DIR",
                    help="a folder of your own task YAMLs, as lm_eval --include_path; repeatable")
    ev.add_argument("--num_fewshot", "-f", type=shot_count, default=None,
                    help="in-context examples per prompt (default: each task's own, usually 0)")
    ev.add_argument("--limit", "-L", type=positive_limit, default=None,
                    help="N documents per task (or a fraction), chosen by --sample")
    ev.add_argument("--sample", choices=SLICE_METHODS, default=DEFAULT_SLICE,
                    help="which documents --limit scores: stratified by gold label and seeded by --seed (default), "
                         "seeded random, or lm-eval's first N; the indices are written as samples.json "
                         "(lm_eval --samples)")
    ev.add_argument("--batch_size", "-b", default=8, help="documents per forward pass, or auto")
    ev.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ev.add_argument("--dtype", default="float32",
                    help="weights' dtype for scoring: float32, bfloat16 or float16; bfloat16-checked scores in "
                         "bfloat16 and re-scores in float32 every document bfloat16 could answer otherwise "
                         "(hf-shared-prefix)")
    ev.add_argument("--chat_template", choices=CHAT_TEMPLATE_MODES, default="auto",
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
    ev.add_argument("--wandb_config_args", default=None, nargs="+", action=MergeDictAction, metavar="KEY=VALUE",
                    help="extra wandb config values, as lm_eval")
    ev.add_argument("--hf_hub_log_args", default=None, nargs="+", action=MergeDictAction, metavar="KEY=VALUE",
                    help="lm-eval's EvaluationTracker arguments, e.g. hub_results_org=ORG,push_results_to_hub=True")
    ev.add_argument("--online", action="store_true",
                    help="allow the Hugging Face Hub (Hub ids, Hub-only tasks such as fin_ma)")
    ev.add_argument("--include_defaults", action="store_true", help="also index lm-eval's built-in tasks")
    ev.add_argument("--output_path", "-o", type=Path, default=None, help="write lm-eval results and samples here")
    ev.add_argument("--log_samples", "-s", action="store_true",
                    help="write per-document logs (finharness always writes them with --output_path)")
    ev.add_argument(
        "--seed", type=seed_value, default=DEFAULT_SEED, help="seed of the --limit slice and of lm-eval's samplers"
    )
    ev.add_argument("--split", choices=["test", "validation", "development"], default="test",
                    help="validation: score each task's validation split (to choose merge weights or checkpoints); "
                         "development: its validation rows that repeat no test document (for choices that must "
                         "not see a test document: budgets, rates, gates)")
    ev.add_argument("--backend", choices=BACKENDS, default=None,
                    help=f"lm-eval model backend (harness/backends.py): {backend_help()}")
    ev.add_argument("--model_args", "-a", default=None, nargs="+", action=MergeDictAction, metavar="KEY=VALUE",
                    help="lm-eval model_args, parsed by lm-eval: pretrained=, peft=, revision=, parallelize=True "
                         "(hf), tensor_parallel_size=2 (vllm), ...")
    ev.add_argument("--no_cache", action="store_true",
                    help="do not read or write the per-checkpoint request cache (FINHARNESS_LM_CACHE)")
    ev.set_defaults(func=run)
