"""The README's tour, run as written and in order, as a new user runs it from a checkout: each
`finharness` line of its code block through the command line's own entry point, in a scratch
folder holding the repository's recipes. A tiny instruct model stands in for the embedded
SmolLM2-135M-Instruct (whose tour takes about half an hour on 2 cores); nothing else is
changed, and no file the README does not show is written first."""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

import plumbing.checkpoints
from finharness.main import main
from plumbing.folders import is_finished
from tests.helpers.checkpoints import build_tiny_checkpoint
from tests.helpers.train_runs import CHATML

REPO = Path(__file__).resolve().parents[1]


def tour_commands() -> list[list[str]]:
    """The tour's `finharness` commands, in order (comments dropped, `a && b` is two)."""
    section = REPO.joinpath("README.md").read_text().split("## A tour")[1].split("\n## ")[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    commands = []
    for line in block.splitlines():
        for part in line.split("  #")[0].split("&&"):
            words = shlex.split(part)
            if words:
                assert words[0] == "finharness", line  # the tour is finharness commands only
                commands.append(words[1:])
    return commands


@pytest.mark.slow
def test_the_tour_runs_as_written(tmp_path, monkeypatch, capsys):
    tiny = build_tiny_checkpoint(tmp_path / "tiny-instruct", chat_template=CHATML)
    real = plumbing.checkpoints.convert_embedded
    # The embedded instruct model is the tiny one; the dry run's Gemma is only counted, never converted.
    monkeypatch.setattr(plumbing.checkpoints, "convert_embedded",
                        lambda name: tiny if name == "smollm2-135m-instruct" else real(name))
    monkeypatch.setenv("FINHARNESS_BOARD", str(tmp_path / "board.sqlite"))
    user = tmp_path / "checkout"
    shutil.copytree(REPO / "recipes", user / "recipes")
    monkeypatch.chdir(user)

    commands = tour_commands()
    assert [c[0] for c in commands] == ["tasks", "eval", "train", "eval", "forgetting", "contamination", "merge",
                                        "train", "train", "train", "merge", "leaderboard", "leaderboard", "study"]
    for words in commands:
        assert main(words) == 0, words
        said = capsys.readouterr().out
        if words[:2] == ["leaderboard", "show"]:
            assert "smollm2-135m-instruct" in said  # the submitted entry is on the board

    # What the tour says each step makes.
    for run in ("fpb", "headlines", "finred", "fomc"):
        assert is_finished(user / "runs" / f"{run}-instruct-lora", "training_run"), run
    for name in ("base", "ft"):
        assert list((user / "results" / name).rglob("results_*.json")), name
    merged = [p for p in user.rglob("finharness.json") if "ta-seen-instruct" in str(p)]
    assert merged and is_finished(merged[0].parent, "merge")
    assert not (user / "merges").exists()  # outputs stay out of the Python packages' names

