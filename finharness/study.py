"""``finharness study run | table``: a paper's study from its recipe folder."""
from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from study.run import run_study

    models = {}
    for pair in args.model or []:
        label, sep, model = pair.partition("=")
        if not sep or not label or not model:
            raise ValueError(f"--model {pair!r}: expected LABEL=MODEL (e.g. instruct=meta-llama/Meta-Llama-3-8B-Instruct)")
        models[label] = model
    if args.action == "probe":
        from plumbing.offline import set_offline
        from study.estimate import probe
        from study.spec import load_study

        set_offline(args.online)
        path = probe(load_study(args.folder, full=args.full, output_dir=args.output_dir, models=models),
                     device=args.device, online=args.online)
        print(path.read_text())
        return 0
    if args.action == "run":
        run_study(args.folder, full=args.full, output_dir=args.output_dir, device=args.device,
                  dry_run=args.dry_run, board=args.board, models=models, online=args.online)
        return 0
    from study.spec import load_study
    from study.tables import write_tables

    write_tables(load_study(args.folder, full=args.full, output_dir=args.output_dir, models=models))
    return 0


def register(sub) -> None:
    st = sub.add_parser("study", help="run a paper's study (recipes/studies/<study>/): train, merge, score, tabulate")
    st.add_argument("action", choices=["run", "table", "probe"],
                    help="run: every step not done yet (--dry-run: the plan, its work and hours); table: re-render "
                         "the tables; probe: measure training and scoring speed here for the plan's hours")
    st.add_argument("folder", type=Path, help="study folder (recipes/studies/<study>/)")
    st.add_argument("--full", action="store_true", help="the papers' sizes (study.yaml `full:`), for a GPU machine")
    st.add_argument("--output-dir", type=Path, default=None, help="parent of the study's output (default: study.yaml)")
    st.add_argument("--device", default=None)
    st.add_argument("--dry-run", action="store_true", help="list the steps and which are done; run nothing")
    st.add_argument("--board", type=Path, default=None, help="leaderboard file the study submits to")
    st.add_argument("--model", action="append", default=None, metavar="LABEL=MODEL",
                    help="replace a study model's checkpoint (folder or Hub id), e.g. base=meta-llama/Meta-Llama-3-8B")
    st.add_argument("--online", action="store_true", help="let Hub ids (the papers' models) download")
    st.set_defaults(func=run)
