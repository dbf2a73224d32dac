"""Forgetting and normalized scores, from stored results, checked by hand."""
import json
import re

import pytest

from evidence.measures import change_table, read_scores
from finharness.main import main
from tests.helpers.tasks import write_results


def test_change_by_hand():
    tuned = {"fin_fpb": 0.80, "fin_fomc": 0.60, "fin_finarg_auc": 0.40, "fin_fincausal": 0.30, "extra": 0.5}
    base = {"fin_fpb": 0.50, "fin_fomc": 0.50, "fin_finarg_auc": 0.50, "fin_fincausal": 0.40}
    rows, averages = change_table(tuned, base, seen=["fin_fpb", "fin_fomc"], unseen=["fin_finarg_auc", "fin_fincausal"])
    assert [r["task"] for r in rows] == ["fin_finarg_auc", "fin_fincausal", "fin_fomc", "fin_fpb"]  # "extra": base lacks it
    assert {r["task"]: round(r["change"], 10) for r in rows} == {
        "fin_fpb": 0.3, "fin_fomc": 0.1, "fin_finarg_auc": -0.1, "fin_fincausal": -0.1}
    # Seen: mean(0.8, 0.6) - mean(0.5, 0.5) = +0.2 (gain); unseen: mean(0.4, 0.3) - mean(0.5, 0.4) = -0.1 (forgetting).
    seen, unseen = averages
    assert (seen["tasks"], seen["n"], seen["change"]) == ("seen", 2, pytest.approx(0.2))
    assert (unseen["tasks"], unseen["n"], unseen["change"]) == ("unseen", 2, pytest.approx(-0.1))


def test_group_rows_are_not_tasks(tmp_path):
    folder = write_results(tmp_path / "r", {"fin_fpb": 0.5}, groups=["finharness_seen"])
    assert read_scores(folder, "acc") == {"fin_fpb": 0.5}
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no lm-eval results file"):
        read_scores(tmp_path / "empty", "acc")


def test_finharness_forgetting_prints_seen_and_unseen(tmp_path, capsys):
    tuned = write_results(tmp_path / "tuned", {"fin_fpb": 0.9, "fin_finarg_auc": 0.45, "fin_fincausal": 0.2})
    base = write_results(tmp_path / "base", {"fin_fpb": 0.5, "fin_finarg_auc": 0.5, "fin_fincausal": 0.3})
    assert main(["forgetting", str(tuned), str(base)]) == 0
    out = capsys.readouterr().out
    # Scores unsigned, the change signed, and the header says which way is forgetting.
    assert re.search(r"\| fin_fpb +\| seen +\| acc +\| +\| +0\.9000 \| +0\.5000 \| +\+0\.4000 \|", out)
    assert re.search(r"\| unseen +\| +2 \| +0\.3250 \| +0\.4000 \| +-0\.0750 \|", out)
    assert "on unseen and retention tasks a negative change is forgetting" in out


def test_one_rule_picks_the_metric_every_table_shows(tmp_path):
    """A summary task reports rouge1 first and no acc: the CLI's forgetting table, the board's
    table and the served app's intervals all show ROUGE-L; a user task shows its own first metric."""
    from evidence.measures import shown_metric
    from leaderboard.table import task_score

    assert shown_metric("acc", ["acc", "f1_macro"]) == "acc"
    assert shown_metric("acc", ["rouge1", "rouge2", "rougeL"]) == "rougeL"
    assert shown_metric("acc", ["exact", "f1"]) == "exact"
    assert shown_metric("acc", []) is None

    folder = write_results(tmp_path / "r", {"fin_fpb": 0.5})
    path = next(folder.glob("results_*.json"))
    data = json.loads(path.read_text())
    data["results"]["gen_summary_xlsum"] = {"rouge1,none": 0.3, "rouge2,none": 0.1, "rougeL,none": 0.2}
    data["configs"] = {"gen_summary_xlsum": {"metric_list": [{"metric": m} for m in ("rouge1", "rouge2", "rougeL")]}}
    path.write_text(json.dumps(data))
    assert read_scores(folder, "acc", fallback_to_own=True) == {"fin_fpb": 0.5, "gen_summary_xlsum": 0.2}
    assert task_score({"rouge1": 0.3, "rouge2": 0.1, "rougeL": 0.2}, "acc") == 0.2

