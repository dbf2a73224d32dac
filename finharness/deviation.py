"""``finharness deviation MODEL --base_model BASE``: how far a fine-tune moved from its base
(per-layer relative weight change; KL on teacher-forced reference answers of test documents,
with the end-of-sequence probability's shift reported apart)."""
from __future__ import annotations

import argparse
from pathlib import Path

from finharness.arguments import old_spelling


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from fin_tasks.index import include_paths
    from harness.deviation import measure, write

    if not args.base:
        raise ValueError("deviation: give --base_model, the model the checkpoint started from")
    result = measure(args.model, args.base, tasks=args.tasks or (), per_task=args.limit, seed=args.seed,
                     include_paths=include_paths(args.include_path))
    print(f"{args.model} against {args.base}: relative weight change {result.relative_weight_change:.6f}")
    if result.kl is not None:
        print(f"answer-token KL(base || model), EOS set apart: {result.kl:.6f} nats/token over {result.kl_tokens} "
              f"reference-answer tokens of {result.kl_texts} test documents ({', '.join(result.kl_tasks)}); "
              f"over the whole vocabulary: {result.kl_with_eos:.6f}")
        print(f"p(EOS) inside the answer: {result.eos_shift:+.6f} on average; right after it: "
              f"{result.eos_end_base:.4f} (base) -> {result.eos_end_tuned:.4f} (model)")
    print()
    print(tabulate([[g, f"{v:.6f}"] for g, v in result.layers.items()],
                   headers=["layer", "||W - W_base|| / ||W_base||"], tablefmt="github", disable_numparse=True))
    if args.output:
        write(result, args.output)
    return 0


def register(sub) -> None:
    de = sub.add_parser(
        "deviation", help="how far a fine-tuned checkpoint moved from its base (weights, answer-token KL, EOS shift)"
    )
    de.add_argument("model", help="fine-tuned or merged checkpoint folder")
    de.add_argument("--base_model", dest="base", help="the model it started from (embedded name or folder)")
    old_spelling(de, "--base", "--base_model", "base")
    de.add_argument(
        "--tasks",
        nargs="*",
        default=None,
        help="test documents of these tasks, teacher forced on their reference answers (none: weight change only)",
    )
    de.add_argument("--limit", type=int, default=16, help="documents per task for the KL (seeded)")
    de.add_argument("--seed", type=int, default=0, help="seed that picks the test documents")
    de.add_argument("--include_path", action="append", default=None, metavar="DIR",
                    help="a folder of your own task YAMLs (as lm_eval --include_path)")
    de.add_argument("--output_path", dest="output", type=Path, default=None, help="write the result as JSON here")
    old_spelling(de, "--output", "--output_path", "output", type=Path)
    de.set_defaults(func=run)
