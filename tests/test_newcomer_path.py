"""The newcomer's path (issue 51): each command run as a user runs it, with the outcome or the
message a user needs to go on."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from finharness.main import main
from plumbing.recipes import RECIPES_DIR
from tests.helpers.checkpoints import build_tiny_checkpoint, perturbed_copy

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Two tiny models scored on the same FPB slice, and one on another slice."""
    root = tmp_path_factory.mktemp("newcomer")
    base = build_tiny_checkpoint(root / "base")
    tuned = perturbed_copy(base, root / "tuned", seed=3, scale=0.5)
    for name, model, limit in (("base", base, 12), ("tuned", tuned, 12), ("other", tuned, 9)):
        assert main(["eval", "-m", str(model), "-t", "fin_fpb,fin_finarg_auc", "--limit", str(limit),
                     "--chat_template", "off", "-o", str(root / name)]) == 0
    return root


def test_forgetting_shows_the_interval_the_baseline_normalized_scores_and_collapse(scored, capsys):
    assert main(["forgetting", str(scored / "tuned"), str(scored / "base")]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| task"))
    assert [h.strip() for h in header.strip("|").split("|")] == [
        "task", "role", "metric", "docs", "score", "reference", "change", "95% CI", "p", "baseline", "normalized",
        "normalized ref", "collapsed"]
    row = next(line for line in out.splitlines() if line.startswith("| fin_fpb "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["fin_fpb", "seen", "acc", "12"]
    low, high = map(float, re.fullmatch(r"\[([-+.\d]+), ([-+.\d]+)\]", cells[7]).groups())
    assert low <= float(cells[6]) <= high
    assert 0 < float(cells[9]) < 1  # the best trivial answer's accuracy on these 12 documents
    assert "baseline = the best trivial answer's score on the same documents" in out
    assert "| unseen " in out and "normalized change" in out


def test_forgetting_refuses_a_metric_no_task_reports(scored, capsys):
    assert main(["forgetting", str(scored / "tuned"), str(scored / "base"), "--metric", "accuracy"]) == 2
    err = capsys.readouterr().err
    assert "--metric 'accuracy': no task the two folders scored reports it (they report: acc, " in err


def test_forgetting_refuses_folders_scored_on_different_documents(scored, capsys):
    assert main(["forgetting", str(scored / "other"), str(scored / "base")]) == 2
    err = capsys.readouterr().err
    assert "were not scored on the same documents" in err and "score both on the same slice" in err


def test_eval_says_what_it_kept_and_what_comes_next(tmp_path, capsys):
    model = build_tiny_checkpoint(tmp_path / "m")
    assert main(["eval", "-m", str(model), "-t", "fin_fpb", "--limit", "2", "--chat_template", "off"]) == 0
    assert "Nothing was kept (no --output_path). Add -o DIR to keep the results" in capsys.readouterr().out
    assert main(["eval", "-m", str(model), "-t", "fin_fpb", "--limit", "2", "--chat_template", "off",
                 "-o", str(tmp_path / "r")]) == 0
    assert f"Next: `finharness forgetting {tmp_path / 'r'} REFERENCE_DIR`" in capsys.readouterr().out


def test_study_table_before_any_run_says_what_to_run_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # where the README runs it: the shipped pack is found
    folder = "recipes/studies/fin-instruct-merge"
    assert main(["study", "table", folder, "--output_path", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no evaluation of this study has finished yet, so there is nothing to tabulate" in err
    assert f"finharness study run {folder}" in err
    assert f"finharness study table {folder} --from docs/results/fin-instruct-merge/logs.tar.gz" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.svg"))


def test_push_offline_writes_the_card_and_says_what_online_adds(tmp_path, capsys):
    from plumbing.folders import building

    run = tmp_path / "runs" / "fpb-lora"
    with building(run, "training_run") as build:
        (build.path / "README.md").write_text("---\nlibrary_name: transformers\n---\n# fpb-lora\n")
        build.record = {"name": "fpb-lora"}
    assert main(["push", str(run), "--repo", "acme/fpb-lora"]) == 0
    out = capsys.readouterr().out
    assert f"card ready: {run / 'README.md'}" in out
    assert f"offline: nothing was uploaded. Add --online (logged in, or HF_TOKEN set) to upload {run} to acme/fpb-lora" \
        in out


def test_a_merge_of_runs_not_trained_yet_names_the_recipes_that_make_them(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = RECIPES_DIR / "merges" / "task_arithmetic_seen.yaml"
    assert main(["merge", str(recipe), "--dry_run"]) == 2
    err = capsys.readouterr().err
    made_by = RECIPES_DIR / "training" / "fpb_instruct_lora.yaml"
    assert f"model 'runs/fpb-instruct-lora': no such folder yet; the shipped training recipe {made_by} makes it: " \
           f"finharness train {made_by}" in err
    assert "--online" not in err


def test_the_documented_benchmark_commands_do_not_overwrite_the_shipped_figures():
    """Run as written, a benchmark prints its table; it writes into benchmarks/results/ only when asked."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    commands = [line for page in pages for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S)
                for line in block.splitlines() if "benchmarks/" in line]
    assert commands, "the docs show benchmark commands"
    assert [c for c in commands if "benchmarks/results" in c] == []


def test_leaderboard_show_says_what_its_columns_are_in_and_why_a_model_has_two_rows(scored, tmp_path, capsys):
    from tests.bad_input.forgery import submission

    board = tmp_path / "board.sqlite"
    for folder in ("tuned", "other"):  # one model, scored on 12 and on 9 documents per task
        (tmp_path / folder).mkdir()
        sub = submission(tmp_path / folder, model="acme/tiny", results=str(scored / folder))
        assert main(["leaderboard", "submit", str(sub), "--board", str(board)]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "show", "--board", str(board), "--metric", "f1_macro"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the notes are wrapped for a terminal
    assert "seen / unseen / retention and their *_change: f1_macro" in out
    assert "the board ranks on unseen_norm" in out
    assert ("acme/tiny has 2 entries (#1: 2 tasks, 0-shot, 12 documents per task, stratified slice, revision "
            in out) and "#2: 2 tasks, 0-shot, 9 documents per task" in out


def test_board_ranks_compare_only_entries_scored_alike(scored, tmp_path):
    """Issue 46: rank bands ranked a 12-document entry against a 9-document one. Each is now
    ranked among entries with its own tasks and documents; two alike share one ranking."""
    from leaderboard.store import Board
    from leaderboard.table import board_rows
    from tests.bad_input.forgery import submission

    board = Board(tmp_path / "board.sqlite")
    from leaderboard.submission import load_submission
    from leaderboard.submit import submit

    for name, folder in (("a", "tuned"), ("b", "base"), ("c", "other")):
        (tmp_path / name).mkdir()
        submit(load_submission(submission(tmp_path / name, model=name, results=str(scored / folder))), board)
    ranks = {r["model"]: r["unseen_rank"] for r in board_rows(board.entries())[0]}
    assert ranks["c"] == "1 of 1"  # scored on 9 documents: nothing alike to rank against
    assert ranks["a"].endswith(" of 2") and ranks["b"].endswith(" of 2")
