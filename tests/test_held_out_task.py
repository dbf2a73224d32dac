"""A held-out task is one YAML, end to end: the README's own files, copied into a scratch
folder outside the package, through validate -> tasks -> eval -> forgetting -> submit ->
the board, where it is counted as unseen."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evidence.measures import read_scores
from evidence.records import RunRecord
from fin_tasks import TASKS_DIR
from finharness.main import main
from leaderboard.store import Board
from leaderboard.submission import load_submission
from leaderboard.submit import submit
from leaderboard.table import board_rows
from tests.helpers.checkpoints import build_tiny_checkpoint, perturbed_copy
from tests.helpers.records import undeclared
from tests.helpers.tasks import HELD_OUT_TASK, readme_files

REPO = Path(__file__).resolve().parents[1]
TASK = HELD_OUT_TASK


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The README's steps in a scratch folder: copy the template, write the files as shown."""
    root = tmp_path_factory.mktemp("user")
    files = readme_files()
    # Every file a user must create is shown (a template that names three splits needs three files).
    assert {f"my_tasks/{TASK}/{TASK}.yaml", f"my_tasks/{TASK}/data/test.jsonl", f"my_tasks/{TASK}/data/validation.jsonl",
            f"my_tasks/{TASK}/data/train.jsonl", "ft.yaml"} <= set(files)
    folder = root / "my_tasks" / TASK
    (folder / "data").mkdir(parents=True)
    printed = subprocess.run([sys.executable, "-m", "fin_tasks"], capture_output=True, text=True, check=True)
    shutil.copy(Path(printed.stdout.strip()) / "_multiple_choice_yaml", folder)
    for path, body in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(body)
    return root


@pytest.fixture(scope="module")
def scored(workspace, tmp_path_factory):
    models = tmp_path_factory.mktemp("held-out-models")
    base = build_tiny_checkpoint(models / "base")
    tuned = perturbed_copy(base, models / "tuned", seed=5, scale=0.5)
    include = str(workspace / "my_tasks")
    for name, model in (("base", base), ("ft", tuned)):
        assert main(["eval", "-m", str(model), "--include_path", include, "-t", f"fin_fpb,fin_finarg_auc,{TASK}",
                     "--limit", "4", "--chat_template", "off", "-o", str(workspace / "results" / name)]) == 0
    return {"base": base, "ft": tuned}


def test_validate_and_tasks_see_the_task_with_its_role(workspace, capsys):
    assert main(["validate", "--include_path", str(workspace / "my_tasks")]) == 0
    assert f"ok     {TASK}" in capsys.readouterr().out
    assert main(["tasks", "--include_path", str(workspace / "my_tasks")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if f"| {TASK} " in line)
    assert re.search(r"\| multiple_choice \| unseen +\| +2 \| +6 \|", row), row


def test_eval_scores_it_and_records_its_files(workspace, scored):
    results = json.loads(next((workspace / "results" / "ft").rglob("results_*.json")).read_text())
    assert set(results["results"]) >= {TASK, "fin_fpb"}
    record = results["finharness"]
    assert record["include_paths"] == [str((workspace / "my_tasks").resolve())]
    files = record["external_tasks"][TASK]["files"]
    assert set(files) == {f"{TASK}.yaml", "_multiple_choice_yaml", "data/test.jsonl", "data/validation.jsonl",
                          "data/train.jsonl"}
    assert "fin_fpb" not in record["external_tasks"]  # packaged tasks are pinned by the package
    assert undeclared(record, RunRecord) == []


def test_forgetting_counts_it_as_unseen_without_being_told(workspace, scored, capsys):
    ft, base = workspace / "results" / "ft", workspace / "results" / "base"
    assert main(["forgetting", str(ft), str(base)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"\| {TASK} +\| unseen +\|", out)
    mine, ref = read_scores(ft, "acc"), read_scores(base, "acc")
    unseen = [TASK, "fin_finarg_auc"]
    change = sum(mine[t] - ref[t] for t in unseen) / 2
    assert re.search(rf"\| unseen +\| +2 \| .* \| +{re.escape(f'{change:+.4f}')} \|", out), out


def test_submit_and_board_count_it_as_unseen(workspace, scored, tmp_path):
    ft = yaml.safe_load((workspace / "ft.yaml").read_text())
    assert ft["include_paths"] == ["my_tasks"]
    base = {**ft, "model": "smollm2-135m-instruct", "model_type": "instruct", "results": "results/base"}
    del base["base_model"]
    for data in (base, ft):  # the tiny models have no chat template: their results say so
        data["chat_template"] = False
    (workspace / "base.yaml").write_text(yaml.safe_dump(base))
    (workspace / "ft-tiny.yaml").write_text(yaml.safe_dump({**ft, "chat_template": False}))
    board = Board(tmp_path / "board.sqlite")
    submit(load_submission(workspace / "base.yaml"), board)
    ft_id = submit(load_submission(workspace / "ft-tiny.yaml"), board)

    # Shown from the board alone: the roles were stored with the verified entry.
    rows, tasks = board_rows(board.entries(), "acc")
    assert TASK in tasks
    row = next(r for r in rows if r["id"] == ft_id)
    mine = read_scores(workspace / "results" / "ft", "acc")
    ref = read_scores(workspace / "results" / "base", "acc")
    assert row["unseen"] == pytest.approx((mine[TASK] + mine["fin_finarg_auc"]) / 2)
    assert row["unseen_change"] == pytest.approx((mine[TASK] + mine["fin_finarg_auc"] - ref[TASK] - ref["fin_finarg_auc"]) / 2)
    entry = next(e for e in board.entries() if e.id == ft_id)
    assert entry.metadata["roles"][TASK] == "unseen"


def test_the_board_refuses_results_whose_task_files_changed(workspace, scored, tmp_path):
    copy = tmp_path / "user"
    shutil.copytree(workspace, copy)
    test = copy / "my_tasks" / TASK / "data" / "test.jsonl"
    test.write_text(test.read_text().replace("raised our full-year guidance", "cut our full-year guidance"))
    (copy / "ft-tiny.yaml").write_text(yaml.safe_dump({**yaml.safe_load((copy / "ft.yaml").read_text()),
                                                       "chat_template": False}))
    board = Board(tmp_path / "board.sqlite")
    with pytest.raises(ValueError, match=rf"task {TASK}: file .*data/test\.jsonl changed since it was scored"):
        submit(load_submission(copy / "ft-tiny.yaml"), board)
    assert board.entries() == []


def test_without_its_folder_the_board_names_the_task(workspace, scored, tmp_path):
    data = {**yaml.safe_load((workspace / "ft.yaml").read_text()), "chat_template": False, "include_paths": []}
    (workspace / "no-include.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=rf"unknown task\(s\) {TASK} \(not in the finharness suite; give its folder"):
        submit(load_submission(workspace / "no-include.yaml"), Board(tmp_path / "b.sqlite"))


def test_a_broken_yaml_in_an_include_path_is_named_by_eval(tmp_path, tiny_checkpoint, capsys):
    """lm-eval drops it with a DEBUG line and then says only "Tasks not found" (bad input 10)."""
    folder = tmp_path / "mine" / "fin_bad"
    folder.mkdir(parents=True)
    (folder / "fin_bad.yaml").write_text("task: fin_bad\ndoc_to_text: [unclosed\n")
    code = main(["eval", "-m", str(tiny_checkpoint), "--include_path", str(tmp_path / "mine"), "-t", "fin_bad"])
    assert code == 2
    assert re.search(r"fin_bad\.yaml:\d+: not valid YAML", capsys.readouterr().err)


def test_plain_lm_eval_scores_the_packaged_tasks_and_the_folder_in_one_run(workspace, scored, tmp_path):
    """The README's spelling: lm-eval keeps one --include_path, so `python -m fin_tasks my_tasks`
    prints one folder holding both; the held-out task joins the unseen group there too."""
    folder = subprocess.run([sys.executable, "-m", "fin_tasks", "my_tasks"], capture_output=True, text=True,
                            check=True, cwd=workspace).stdout.strip()
    out = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={scored['base']},dtype=float32",
         "--include_path", folder, "--tasks", "fin_fpb,finharness_unseen", "--limit", "2", "--device", "cpu"],
        capture_output=True, text=True, cwd=workspace, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
        timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    for task in ("fin_fpb", TASK, "fin_finarg_auc", "finharness_unseen"):
        assert re.search(rf"\|\s*(- )?{task}\s*\|", out.stdout), (task, out.stdout[-3000:])
    readme = (REPO / "README.md").read_text()
    assert '--include_path "$(python -m fin_tasks my_tasks)" --tasks fin_fpb,finharness_unseen\n' in readme


def test_packaged_template_copy_is_the_packaged_one(workspace):
    assert (workspace / "my_tasks" / TASK / "_multiple_choice_yaml").read_text() == \
        (TASKS_DIR / "_multiple_choice_yaml").read_text()


def test_a_task_with_its_own_metric_gets_its_own_column():
    from evidence.report import score_table

    results = {"results": {
        "fin_fpb": {"alias": "fin_fpb", "acc,none": 0.5, "acc_stderr,none": 0.1, "f1_macro,none": 0.4},
        "fin_earnings_tone": {"alias": "fin_earnings_tone", "acc,none": 0.75, "f1_binary,none": 0.8},
    }, "n-samples": {"fin_fpb": {"effective": 4}, "fin_earnings_tone": {"effective": 4}}}
    header, _, fpb, tone = score_table(results).splitlines()
    assert [h.strip() for h in header.strip("|").split("|")] == ["task", "docs", "acc", "f1_macro", "f1_binary"]
    assert tone.split("|")[-2].strip() == "0.8000" and fpb.split("|")[-2].strip() == ""
