"""``finharness study run | table | probe | pack``: a paper's study from its recipe folder."""
from __future__ import annotations

import argparse
from pathlib import Path

from finharness.arguments import old_spelling


def run(args: argparse.Namespace) -> int:
    from study.run import run_study

    models = {}
    for pair in args.model or []:
        label, sep, model = pair.partition("=")
        if not sep or not label or not model:
            raise ValueError(
                f"--model {pair!r}: expected LABEL=MODEL (e.g. instruct=meta-llama/Meta-Llama-3-8B-Instruct)"
            )
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
        from plumbing.ranks import leave_process_group

        # Under torchrun / accelerate launch, every rank trains and scores together (study/run.py).
        run_study(args.folder, full=args.full, output_dir=args.output_dir, device=args.device,
                  dry_run=args.dry_run, board=args.board, models=models, online=args.online)
        leave_process_group()
        return 0
    from study.spec import load_study

    if args.action == "pack":
        from study.pack import pack

        study = load_study(args.folder, full=args.full, output_dir=args.output_dir, models=models)
        out = args.to or Path("docs") / "results" / Path(study.root).name
        path = pack(study, out)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and the study's tables beside it")
        return 0
    if args.logs is not None:
        import tempfile

        from study.pack import tables_from

        output = args.output_dir or Path(tempfile.mkdtemp(prefix="finharness-study-logs-"))
        path, note = tables_from(args.logs, load_study(args.folder, full=args.full, output_dir=output, models=models))
        print(f"tables rebuilt from {args.logs}: {path}" + (f"\nnote: {note}" if note else ""))
        return 0
    from study.run import eval_done
    from study.tables import write_tables

    study = load_study(args.folder, full=args.full, output_dir=args.output_dir, models=models)
    if not any(eval_done(step) for step in study.evals):
        # Nothing to tabulate: say what to run, and write nothing (no empty plots).
        pack = Path("docs") / "results" / Path(study.root).name / "logs.tar.gz"
        shipped = (f", or rebuild its tables from the shipped logs with no model: finharness study table "
                   f"{args.folder} --from {pack}") if pack.is_file() else ""
        raise ValueError(f"{study.root}: no evaluation of this study has finished yet, so there is nothing to "
                         f"tabulate. Run it first: finharness study run {args.folder} (--dry_run shows its steps and "
                         f"hours){shipped}")
    write_tables(study)
    return 0


def register(sub) -> None:
    st = sub.add_parser("study", help="run a paper's study (recipes/studies/<study>/): train, merge, score, tabulate")
    st.add_argument("action", choices=["run", "table", "probe", "pack"],
                    help="run: every step not done yet (--dry_run: the plan, its work and hours); table: re-render "
                         "the tables (--from: from packed logs, no model needed); probe: measure training and "
                         "scoring speed here for the plan's hours; pack: the study's compact per-sample logs and "
                         "tables, for the repository")
    st.add_argument("folder", type=Path, help="study folder (recipes/studies/<study>/)")
    st.add_argument("--full", action="store_true", help="the papers' sizes (study.yaml `full:`), for a GPU machine")
    st.add_argument("--output_path", dest="output_dir", type=Path, default=None,
                    help="parent of the study's output (default: study.yaml)")
    old_spelling(st, "--output-dir", "--output_path", "output_dir", type=Path)
    st.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when there is one)")
    st.add_argument("--dry_run", action="store_true", help="list the steps and which are done; run nothing")
    old_spelling(st, "--dry-run", "--dry_run", "dry_run", flag=True)
    st.add_argument("--board", type=Path, default=None, help="leaderboard file the study submits to")
    st.add_argument("--model", action="append", default=None, metavar="LABEL=MODEL",
                    help="replace a study model's checkpoint (folder or Hub id), e.g. base=meta-llama/Meta-Llama-3-8B")
    st.add_argument("--online", action="store_true", help="let Hub ids (the papers' models) download")
    st.add_argument("--from", dest="logs", type=Path, default=None, metavar="ARCHIVE",
                    help="table: rebuild from a `study pack` archive (docs/results/<study>/logs.tar.gz) into "
                         "--output_path (default: a scratch folder)")
    st.add_argument("--to", type=Path, default=None, metavar="DIR",
                    help="pack: where to write logs.tar.gz and the tables (default: docs/results/<study>/)")
    st.set_defaults(func=run)
