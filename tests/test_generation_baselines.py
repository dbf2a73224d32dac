"""Generation tasks get trivial answers too: the input's first sentence(s), scored as the model is."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evidence.generation_baselines import lead, lead_scores, sentences
from fin_tasks.common.rouge import process_results_rouge
from study.cells import Bootstrap

ARTICLES = [
    ("Shares of Acme rose 5% on Monday. The firm beat forecasts. Analysts were surprised.\nMore later.",
     "Acme shares rose after it beat forecasts."),
    ("The central bank held rates! Inflation stayed high? Markets fell.", "The central bank kept rates on hold."),
    ("A storm closed the port for two days. Ships waited offshore.", "Port shut by storm."),
]


def test_the_lead_is_the_first_sentences_of_the_input():
    assert sentences("One. Two! Three?\nFour") == ["One.", "Two!", "Three?", "Four"]
    assert lead(ARTICLES[0][0], 1) == "Shares of Acme rose 5% on Monday."
    assert lead(ARTICLES[1][0], 3) == "The central bank held rates! Inflation stayed high? Markets fell."
    assert lead("No full stop at all", 3) == "No full stop at all"


def rows(model_answers: list[str]) -> list[dict]:
    """lm-eval sample rows of a generation task: the doc, and the model's answer's scores."""
    return [{"doc_id": i, "doc": {"input": text, "output": summary},
             **process_results_rouge({"output": summary}, [answer])}
            for i, ((text, summary), answer) in enumerate(zip(ARTICLES, model_answers))]


def test_a_lead_scores_what_the_tasks_own_scorer_gives_it():
    found = lead_scores(rows(["x", "y", "z"]))
    first = [process_results_rouge({"output": s}, [lead(t, 1)]) for t, s in ARTICLES]
    assert set(found) == {"first sentence", "first three sentences"}
    for metric in ("rouge1", "rouge2", "rougeL", "bleu"):
        assert found["first sentence"][metric] == pytest.approx(np.mean([f[metric] for f in first]))
    assert lead_scores([{"doc_id": 0, "doc": {"text": "a"}, "acc": 1.0}]) == {}  # not a generation task


def test_a_study_reads_rouge_normalized_to_the_lead_only_where_it_asks(tmp_path: Path):
    folder = tmp_path / "evals" / "vanilla"
    folder.mkdir(parents=True)
    answers = ["Acme shares rose after it beat forecasts.", "Rates held.", "Storm."]
    (folder / "samples_gen_summary_xsum_2026-12-07T10-00-00.000000.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows(answers)))
    raw = np.mean([process_results_rouge({"output": s}, [a])["rougeL"] for (_, s), a in zip(ARTICLES, answers)])
    b = max(lead_scores(rows(answers), ["rougeL"])[name]["rougeL"] for name in ("first sentence",
                                                                                "first three sentences"))

    as_before = Bootstrap(50, 0)  # generation_baseline: none, as studies run before it existed
    assert as_before.baselines(folder, "gen_summary_xsum", "rougeL") == {}
    assert as_before.score(folder, "gen_summary_xsum", "rougeL", normalized=True)[0] == pytest.approx(raw)

    lead_read = Bootstrap(50, 0, generation_baseline="lead")
    assert max(lead_read.baselines(folder, "gen_summary_xsum", "rougeL").values()) == pytest.approx(b)
    point, reps = lead_read.score(folder, "gen_summary_xsum", "rougeL", normalized=True)
    assert point == pytest.approx((raw - b) / (1 - b)) and len(reps) == 50
    # Left-out documents leave the lead's documents too.
    restricted = lead_read.restricted({"gen_summary_xsum": {2}})
    two = lead_scores(rows(answers)[:2], ["rougeL"])
    assert restricted.baselines(folder, "gen_summary_xsum", "rougeL") == pytest.approx(
        {name: s["rougeL"] for name, s in two.items()})


def test_an_eval_records_the_leads_and_its_table_shows_them_under_the_task():
    from evidence.generation_baselines import run_lead_baselines
    from evidence.report import score_table

    logged = rows(["Acme rose.", "Rates held.", "Storm."])
    model = {m: float(np.mean([r[m] for r in logged])) for m in ("rouge1", "rouge2", "rougeL", "bleu")}
    results = {"results": {"gen_summary_xsum": {"alias": "gen_summary_xsum",
                                                **{f"{m},none": v for m, v in model.items()}}},
               "n-samples": {"gen_summary_xsum": {"effective": 3}}}
    found = run_lead_baselines(results, {"gen_summary_xsum": logged})["gen_summary_xsum"]
    best = max(found["baselines"]["first sentence"]["rougeL"], found["baselines"]["first three sentences"]["rougeL"])
    assert found["docs"] == 3 and found["normalized"]["rougeL"] == pytest.approx((model["rougeL"] - best) / (1 - best))

    results["finharness"] = {"generation_baselines": {"gen_summary_xsum": found}}
    table = score_table(results)
    lines = table.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| gen_summary_xsum"))
    assert lines[at + 1].startswith("| · first sentence of the input") and f"{best:.4f}" in "".join(lines[at + 1:at + 3])
    assert "copying the input's first sentence" in table
