"""``finharness push RUN_OR_MERGE --repo ORG/NAME``: a training run or merge folder to the Hub.

The folder's model card gets its ``model-index`` from a finharness evaluation first
(``--results``, the folder ``finharness eval --output_path`` wrote), so the card carries
what the checkpoint scored. Offline (the default) nothing is uploaded and the command says
so; ``--online`` uploads with ``huggingface_hub`` (log in first, or set ``HF_TOKEN``).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from plumbing.atomic import write_atomic

KINDS = ("training_run", "merge")
SKIP = ["checkpoints/*", "*.partial", ".*"]  # resumable optimizer state and scratch files stay home


@dataclass
class Pushed:
    card: Path  # the folder's model card, written (with a model-index when results were given)
    with_index: bool
    url: str | None  # the Hub commit; None offline (nothing uploaded)


def push(folder: Path, repo: str, results: Path | None = None, online: bool = False,
         private: bool = False) -> Pushed:
    from plumbing.folders import read_manifest
    from plumbing.model_cards import HUB_ID, with_eval_results

    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None or manifest.kind not in KINDS:
        raise ValueError(f"{folder}: not a finished training run or merge folder (no finharness.json of those kinds)")
    if not HUB_ID.match(repo):
        raise ValueError(f"--repo {repo!r}: expected ORG/NAME")
    card = folder / "README.md"
    if results is not None:
        from evidence.model_index import eval_results

        write_atomic(card, with_eval_results(card, repo, eval_results(results)))
    if not online:
        return Pushed(card, results is not None, None)
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo, private=private, exist_ok=True)
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo, ignore_patterns=SKIP,
                               commit_message=f"finharness push {folder.name}")
    return Pushed(card, results is not None, str(getattr(commit, "commit_url", commit)))


def run(args: argparse.Namespace) -> int:
    done = push(args.folder, args.repo, args.results, online=args.online, private=args.private)
    if done.url is None:
        index = f" (with a model-index from {args.results})" if done.with_index else ""
        print(f"card ready: {done.card}{index}"
              f"\noffline: nothing was uploaded. Add --online (logged in, or HF_TOKEN set) to upload {args.folder} "
              f"to {args.repo}.")
    else:
        print(f"pushed {args.folder} to {args.repo}: {done.url}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("push", help="upload a training run or merge folder to the Hub, its card with a model-index")
    p.add_argument("folder", type=Path, help="a finished `finharness train` run or `finharness merge` folder")
    p.add_argument("--repo", required=True, help="ORG/NAME on the Hub")
    p.add_argument(
        "--results",
        type=Path,
        default=None,
        help="a `finharness eval --output_path` folder of this checkpoint: its scores go into the card's model-index",
    )
    p.add_argument("--private", action="store_true", help="create the Hub repository as private")
    p.add_argument("--online", action="store_true", help="allow the upload (offline by default)")
    p.set_defaults(func=run)
