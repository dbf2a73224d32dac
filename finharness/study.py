"""``finharness study run | table``: a paper's study from its recipe folder."""
from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from study.run import run_study

    if args.action == "run":
        run_study(args.folder, full=args.full, output_dir=args.output_dir, device=args.device,
                  dry_run=args.dry_run, board=args.board)
        return 0
    from study.spec import load_study
    from study.tables import write_tables

    write_tables(load_study(args.folder, full=args.full, output_dir=args.output_dir))
    return 0


def register(sub) -> None:
    st = sub.add_parser("study", help="run a paper's study (recipes/studies/<study>/): train, merge, score, tabulate")
    st.add_argument("action", choices=["run", "table"], help="run: every step not done yet; table: re-render the tables")
    st.add_argument("folder", type=Path, help="study folder (recipes/studies/<study>/)")
    st.add_argument("--full", action="store_true", help="the papers' sizes (study.yaml `full:`), for a GPU machine")
    st.add_argument("--output-dir", type=Path, default=None, help="parent of the study's output (default: study.yaml)")
    st.add_argument("--device", default=None)
    st.add_argument("--dry-run", action="store_true", help="list the steps and which are done; run nothing")
    st.add_argument("--board", type=Path, default=None, help="leaderboard file the study submits to")
    st.set_defaults(func=run)
