"""``finharness contamination``: could the model have seen the documents it was scored on?"""
from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from evidence.contamination import folder_report, report_table, suite_overlap, suite_table

    if args.suite:
        print(suite_table(suite_overlap(args.ngram), args.ngram))
        return 0
    if args.results is None:
        raise ValueError("give a results folder (finharness eval --output_path) or --suite")
    tasks = [t for entry in args.tasks or () for t in entry.split(",") if t]
    lineage, reports = folder_report(args.results, args.model, tasks, args.ngram, args.metric or ("acc", "f1_macro"))
    print(report_table(reports, lineage))
    from evidence.result_files import results_file

    print(f"\nFlagged document ids: {results_file(args.results).parent / 'contamination.json'}")
    return 0


def register(sub) -> None:
    co = sub.add_parser("contamination", help="overlap of scored test documents with the checkpoint's training "
                                              "lineage, the few-shot pool and the task's other splits")
    co.add_argument("results", type=Path, nargs="?", help="--output_path folder of a finharness eval")
    co.add_argument("--model", "-m", help="the checkpoint whose lineage to read (default: the one the results name)")
    co.add_argument("--tasks", "-t", action="append", help="task(s), comma-separated (default: every scored task)")
    co.add_argument("--ngram", "-n", type=int, default=8, choices=(8, 13),
                    help="word n-gram length that counts as overlap (8: single-sentence items; 13: GPT-3's)")
    co.add_argument("--metric", action="append", help="metric(s) for the clean-subset score (default: acc, f1_macro)")
    co.add_argument("--suite", action="store_true",
                    help="every packaged test split against every packaged train split (no model needed)")
    co.set_defaults(func=run)
