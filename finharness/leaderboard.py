"""``finharness leaderboard submit | show | export | serve | render``."""
from __future__ import annotations

import argparse
from pathlib import Path

from finharness.arguments import old_spelling


def run(args: argparse.Namespace) -> int:
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
        from leaderboard.export import DATA_FORMATS, rows_as
        from leaderboard.table import show

        if args.format in DATA_FORMATS:
            print(rows_as(args.format, board.entries(), metric=args.metric, sort=args.sort, ascending=args.ascending),
                  end="")
        else:  # markdown is GitHub's table; any other name is a tabulate format
            fmt = "github" if args.format == "markdown" else args.format
            entries = board.entries()
            print(show(entries, metric=args.metric, sort=args.sort, ascending=args.ascending, fmt=fmt,
                       all_columns=args.all))
            if entries:
                import textwrap

                from leaderboard.table import board_notes

                print("\n" + "\n".join(textwrap.fill(note, 100) for note in board_notes(entries, args.metric)))
        return 0
    if args.action == "serve":
        if not board.path.is_file():
            # Connecting would create an empty board and serve "0 entries" without a word.
            raise ValueError(f"leaderboard serve: no board at {board.path} (submit an entry first, or give --board)")
        try:
            from leaderboard.serve import serve
        except ImportError as err:
            raise ValueError(f"leaderboard serve needs Gradio: pip install 'finharness[board]' ({err})") from None
        serve(board, host=args.host, port=args.port, metric=args.metric)
        return 0
    if args.action == "export":
        from leaderboard.export import export

        entries = board.entries()
        out = export(entries, args.dir, metric=args.metric)
        print(f"wrote {len(entries)} entries to {out} (contents.jsonl, results/, details/)")
        return 0
    from leaderboard.render import render

    entries = board.entries()
    out = render(entries, args.out, metric=args.metric, title=args.title)
    print(f"wrote {out} ({len(entries)} entries)")
    return 0


def register(sub) -> None:
    lb = sub.add_parser("leaderboard", help="submit scored models to the board, show it, render it as HTML")
    lb_sub = lb.add_subparsers(dest="action", required=True)
    board_help = "the board's SQLite file (default: $FINHARNESS_BOARD or ~/.cache/finharness/leaderboard/board.sqlite)"
    ls = lb_sub.add_parser("submit", help="validate a submission YAML, score it if needed, record it")
    ls.add_argument("submission", type=Path, help="submission YAML (see recipes/submissions/)")
    ls.add_argument("--board", type=Path, default=None, help=board_help)
    ls.add_argument("--batch_size", default=None, help="when the board scores a checkpoint: documents per forward pass")
    ls.add_argument("--device", default=None, help="when the board scores a checkpoint: cpu, cuda, cuda:1, ...")
    ls.add_argument("--include_path", action="append", default=None, metavar="DIR",
                    help="task folders beside the submission's include_paths")
    ls.add_argument("--online", action="store_true", help="allow a Hub id as checkpoint or base_model")
    lh = lb_sub.add_parser("show", help="print the board (tabulate)")
    lh.add_argument("--board", type=Path, default=None, help=board_help)
    lh.add_argument("--metric", default="acc", help="the per-task metric shown (ROUGE-L where a task lacks it)")
    lh.add_argument("--sort", default="unseen_norm",
                    help="any column (default: unseen macro-F1 normalized to the best trivial answer, which a "
                         "constant answer cannot win): unseen, unseen_change, fin_fpb, model, ...")
    lh.add_argument("--ascending", action="store_true", help="lowest first")
    lh.add_argument("--all", action="store_true",
                    help="every column (entry metadata, every summary, every task); default: those that fit a terminal")
    lh.add_argument("--format", default="markdown",
                    help="json or csv (the rows as data), markdown, or any tabulate format (plain, latex, html, ...)")
    le = lb_sub.add_parser("export", help="write the board as dataset files: contents.jsonl, Open-LLM-Leaderboard-"
                                          "style results JSON per entry, per-sample details")
    le.add_argument("dir", type=Path, help="folder to write contents.jsonl, results/ and details/ into")
    le.add_argument("--board", type=Path, default=None, help=board_help)
    le.add_argument("--metric", default="acc", help="per-task metric of the task columns")
    lv = lb_sub.add_parser("serve", help="the board as a Gradio app: search, filters, columns, per-entry drill-down "
                                         "(pip install 'finharness[board]')")
    lv.add_argument("--board", type=Path, default=None, help=board_help)
    lv.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (default) keeps it on this machine")
    lv.add_argument("--port", type=int, default=7860, help="port to listen on")
    lv.add_argument("--metric", default="acc", help="per-task metric of the task columns")
    lr = lb_sub.add_parser("render", help="write the board as one static HTML page")
    lr.add_argument("--board", type=Path, default=None, help=board_help)
    lr.add_argument(
        "--output_path", dest="out", type=Path, default=Path("leaderboard.html"), help="the HTML page to write"
    )
    old_spelling(lr, "--out", "--output_path", "out", type=Path)
    lr.add_argument("--metric", default="acc", help="per-task metric of the task columns")
    lr.add_argument("--title", default="finharness leaderboard", help="the page's title")
    lb.set_defaults(func=run)
