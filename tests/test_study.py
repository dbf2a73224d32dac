"""`finharness study run` end to end: both papers' studies on tiny random models, a few documents.

The study folders under recipes/ are used as they are, except for the models (tiny ones)
and the sizes (a few examples and documents), so the test exercises the shipped recipes.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from evidence.measures import read_scores
from evidence.result_files import load_results, results_file, samples_file
from evidence.stats import read_samples
from finharness.main import main
from leaderboard.store import Board
from plumbing.folders import is_finished, read_manifest
from plumbing.recipes import RecipeError
from study.run import run_study
from study.spec import load_study
from tests.helpers.checkpoints import build_tiny_checkpoint
from tests.helpers.train_runs import CHATML

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "studies"


def shrink(study: str, dest: Path, models: dict[str, Path], limit: int = 3, samples: int = 2,
           tasks: list[list[str]] | None = None, leaderboard: bool = True) -> Path:
    """A copy of ``recipes/studies/<study>`` on the given tiny models and sizes (and fewer tasks)."""
    folder = dest / study
    shutil.copytree(RECIPES / study, folder)

    def edit(name: str, change) -> None:
        path = folder / name
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def study_file(d):
        for m in d["models"]:
            m["model"] = str(models[m["label"]])
        d["table"]["resamples"] = 50
        d["leaderboard"] = leaderboard

    def train_file(d):
        d.pop("seeds", None)  # one training seed keeps the suite fast; seeds have their own test
        d["samples"] = samples
        # No warmup: a run this small takes one optimizer step, which warmup would take at lr 0.
        d["training"].update(max_length=256, batch_size=2, warmup_ratio=0.0)
        d["lora"].update(r=2, alpha=4)
        for run in d["runs"]:
            for task in run["tasks"]:
                task["samples"] = samples

    def eval_file(d):
        for i, s in enumerate(d["sets"]):
            s["limit"] = limit
            if tasks:
                s["tasks"] = tasks[i]

    def claims_file(d):
        # A claim may name only tasks the study scores: keep those of the shrunk sets.
        scored = {t for names in tasks for t in names}
        for c in d["claims"]:
            if isinstance(c["tasks"], list):
                # A claim whose tasks are all cut (the positive control's Headlines) takes the first kept task.
                c["tasks"] = [t for t in c["tasks"] if t in scored] or tasks[0][:1]

    edit("study.yaml", study_file)
    edit("train.yaml", train_file)
    edit("eval.yaml", eval_file)
    if tasks and (folder / "claims.yaml").is_file():
        edit("claims.yaml", claims_file)
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("study-models")
    return {"base": build_tiny_checkpoint(root / "base"),
            "instruct": build_tiny_checkpoint(root / "instruct", chat_template=CHATML)}


@pytest.mark.slow
def test_instruct_merge_study_runs_end_to_end_and_resumes(tiny_models, tmp_path, capsys, progress, monkeypatch):
    # Two seen tasks and one unseen keep the suite fast; the study's own set is finharness_all.
    folder = shrink("fin-instruct-merge", tmp_path / "recipes", tiny_models,
                    tasks=[["fin_fpb", "fin_fomc", "fin_finarg_auc"], ["fin_fpb", "fin_finarg_auc"],
                           ["gen_sentiment_sst2_mc"], ["gen_sentiment_sst2_mc"], ["fin_fpb", "fin_fomc"]])
    board = tmp_path / "board.sqlite"
    study = run_study(folder, output_dir=tmp_path / "out", board=board)
    root = Path(study.root)

    # Five LoRA runs on the instruct model (the CPU size has no base-model slot) and the Task
    # Arithmetic merge, each a finished folder with the expanded recipe beside the study,
    # runnable with `finharness train` / `merge`.
    assert len(study.train_recipes) == 5 and len(study.merge_recipes) == 1
    for recipe in study.train_recipes:
        assert is_finished(recipe.run_dir(), "training_run")
        assert (root / "recipes" / "train" / f"{recipe.name}.yaml").is_file()
    assert read_manifest(root / "merges" / "instruct-task-arithmetic", "merge").data["method"]

    # The paper's rows.
    records = json.loads((root / "tables.json").read_text())
    rows = {(r["model"], r["row"]) for r in records}
    assert {("instruct", "zero-shot"), ("instruct", "few-shot (1)"), ("instruct", "FT single"),
            ("instruct", "FT multi (multi)"), ("instruct", "merged: task-arithmetic")} <= rows
    assert not any(m == "base" for m, r in rows)

    # A merged row's "Δ unseen" is its unseen mean minus the zero-shot's, from the stored results.
    def unseen_mean(label: str) -> float:
        scores = read_scores(root / "evals" / label / "zero-shot-set0", "f1_weighted")
        return scores["fin_finarg_auc"]

    ta = next(r for r in records if r["row"] == "merged: task-arithmetic")
    assert ta["Δ unseen"] == pytest.approx(unseen_mean("instruct--task-arithmetic") - unseen_mean("instruct"))
    low, high = ta["Δ unseen CI"]
    assert low <= high
    # The FT single row takes FOMC from the FOMC specialist.
    single = next(r for r in records if r["model"] == "instruct" and r["row"] == "FT single")
    fomc = read_samples(samples_file(root / "evals" / "instruct--fomc" / "zero-shot-set0", "fin_fomc"), "f1_weighted")
    assert single["fin_fomc"] == pytest.approx(read_scores(root / "evals" / "instruct--fomc" / "zero-shot-set0",
                                                           "f1_weighted")["fin_fomc"])
    assert len(fomc) == 3  # the limit
    tables = (root / "tables.md").read_text()
    assert "seen mean [95% CI]" in tables
    # Trivial answers beside the models, and the study's claims decided by code.
    assert "| (no model) | majority" in tables and "unseen f1_macro normalized" in tables
    assert "One training seed per trained row: the intervals do not cover training noise" in tables
    # What each trained checkpoint may have seen, from its recorded lineage; vanilla rows: unknown.
    section = tables[tables.index("## What the checkpoints may have seen"):]
    lines = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in section.splitlines()}
    assert "%" in lines[("instruct", "FT single")] and "?" not in lines[("instruct", "FT single")]
    assert "?" in lines[("instruct", "zero-shot")]
    verdicts = json.loads((root / "claims.json").read_text())
    assert [v["id"] for v in verdicts][:3] == ["A0-ft-raises-own-task", "A1-ft-raises-seen", "A2-ft-costs-unseen"]
    assert verdicts[0]["positive_control"] and "## Discrimination" in tables
    assert all(v["verdict"] in ("agrees", "contradicts", "inconclusive", "not testable at this size",
                                "not testable: control at trivial baseline",
                                "not testable: both rows at trivial baseline",
                                "not testable: instruct vanilla clears its trivial baseline on none of the tasks") or
               v["verdict"].startswith("not testable: the treatment learned no discrimination (AUC ")
               for v in verdicts if v["id"] != "A5-base-forgets-more")
    # The base-model claim: only the full study has a base model.
    a5 = next(v for v in verdicts if v["id"] == "A5-base-forgets-more")
    assert a5["verdict"] == "not run at this size: no base model"
    # The retention variants are gated on the vanilla model clearing its baseline.
    a2r = next(v for v in verdicts if v["id"] == "A2r-ft-costs-retention")
    assert "tasks gated on instruct zero-shot clearing its trivial baseline on development rows" in a2r["note"]
    # Those rows are the study's development sets: scored outside every test slice, on no table or board.
    development = [s for s in study.evals if s.split == "development"]
    assert len(development) == 7  # the vanilla model on the retention gate; 4 single, multi, merge on the seen one
    from evidence.result_files import load_results, results_file

    sst2 = load_results(results_file(Path(development[0].folder)))
    assert sst2["finharness"]["split"] == "development"
    assert sst2["finharness"]["slice"]["development_outside"] == [3]
    test_docs = {r["doc_id"] for r in map(json.loads, samples_file(
        root / "evals" / "instruct" / "zero-shot-set2", "gen_sentiment_sst2_mc").read_text().splitlines())}
    dev_docs = {r["doc_id"] for r in map(json.loads, samples_file(
        Path(development[0].folder), "gen_sentiment_sst2_mc").read_text().splitlines())}
    assert len(dev_docs) == 3 and not test_docs & dev_docs
    assert tables.index("## Claims") < tables.index("## Tables")

    # The study's compact logs rebuild every number without a model: the same claims and tables.
    from finharness.main import main

    shipped = tmp_path / "docs" / "results" / "fin-instruct-merge"
    assert main(["study", "pack", str(folder), "--output_path", str(tmp_path / "out"), "--to", str(shipped)]) == 0
    assert (shipped / "logs.tar.gz").stat().st_size < 200_000 and (shipped / "claims.json").is_file()
    assert (shipped / "claims.svg").is_file() and (shipped / "loss.png").is_file()  # the pictures tables.md shows
    rebuilt = tmp_path / "rebuilt"
    assert main(["study", "table", str(folder), "--from", str(shipped / "logs.tar.gz"), "--output_path", str(rebuilt)]) == 0
    assert json.loads((rebuilt / "fin-instruct-merge" / "claims.json").read_text()) == \
        json.loads((shipped / "claims.json").read_text())
    assert json.loads((rebuilt / "fin-instruct-merge" / "tables.json").read_text()) == \
        json.loads((shipped / "tables.json").read_text())

    # Every scored checkpoint is on the board.
    entries = Board(board).entries()
    assert len(entries) == len(study.evals) - len(development) == 15
    # ... and a merged entry's forgetting is measured against the vanilla instruct model on the same set.
    from leaderboard.table import board_rows

    rows = {r["model"]: r for r in board_rows(entries)[0]}
    merged = rows["fin-instruct-merge/instruct/task-arithmetic [all tasks]"]
    vanilla = rows["fin-instruct-merge/instruct [all tasks]"]
    assert merged["reference_id"] == vanilla["id"]
    assert merged["unseen_change"] == pytest.approx(merged["unseen"] - vanilla["unseen"])

    # A second run finds everything done and redoes nothing: not even the board's verification
    # of results it already holds.
    capsys.readouterr()
    verified = []
    import leaderboard.submit

    real_verify = leaderboard.submit.verify_results
    monkeypatch.setattr(leaderboard.submit, "verify_results", lambda *a, **k: verified.append(a) or real_verify(*a, **k))
    run_study(folder, output_dir=tmp_path / "out", board=board)
    assert verified == []
    out = capsys.readouterr().out
    assert out.count("already done") == 5 + 1 + 22 + 1  # trainings, merges, evaluations, tables
    assert len(Board(board).entries()) == 15

    # A changed table spec makes the tables stale: only they are redone.
    spec = yaml.safe_load((folder / "study.yaml").read_text())
    spec["table"]["resamples"] = 60
    (folder / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    run_study(folder, output_dir=tmp_path / "out", board=board)
    out = capsys.readouterr().out
    assert out.count("already done") == 5 + 1 + 22 and "tables.md / tables.json: done in" in out
    assert "(60 resamples" in (root / "tables.md").read_text()


@pytest.mark.slow
def test_generalization_study_runs_end_to_end(tiny_models, tmp_path):
    # One in-domain and one out-of-domain dataset per task type.
    # 4 examples in batches of 2: a warm-up step (lr 0) and one that moves the weights.
    folder = shrink("ft-generalization", tmp_path / "recipes", tiny_models, limit=2, leaderboard=False, samples=4,
                    tasks=[["gen_sentiment_amazon_mc", "gen_sentiment_yelp_mc"], ["gen_summary_xsum", "gen_summary_xlsum"],
                           ["gen_summary_xsum", "gen_summary_xlsum"]])
    study = run_study(folder, output_dir=tmp_path / "out", board=tmp_path / "board.sqlite")
    records = json.loads((Path(study.root) / "tables.json").read_text())

    # FTICL runs put k demonstrations in each training prompt.
    recipe = yaml.safe_load((Path(study.root) / "runs" / "base-xsum-fticl" / "recipe.yaml").read_text())
    assert recipe["fticl"]["k"] == 1

    # Each fine-tuned model against the vanilla model in the same setting, by view.
    amazon = next(r for r in records if r["checkpoint"] == "base/amazon" and r["setting"] == "few-shot")
    assert set(amazon["in_domain"]["tasks"]) == {"gen_sentiment_amazon_mc"}
    assert "gen_sentiment_yelp_mc" in amazon["out_of_domain"]["tasks"]
    assert set(amazon["cross_task"]["tasks"]) == {"gen_summary_xsum", "gen_summary_xlsum"}
    assert amazon["cross_task"]["metric"] == "rougeL"
    vanilla = next(r for r in records if r["checkpoint"] == "base" and r["setting"] == "few-shot")
    expected = np.mean([amazon[t] - vanilla[t] for t in amazon["cross_task"]["tasks"]])
    assert amazon["cross_task"]["change"] == pytest.approx(expected)
    xsum = next(r for r in records if r["checkpoint"] == "base/xsum" and r["setting"] == "zero-shot")
    assert set(xsum["in_domain"]["tasks"]) == {"gen_summary_xsum"}

    # Every fine-tuned run's distance from the vanilla model, measured and tabulated.
    for run in ("amazon", "amazon-fticl", "xsum", "xsum-fticl"):
        measured = json.loads((Path(study.root) / "deviation" / f"base--{run}.json").read_text())
        assert measured["relative_weight_change"] > 0 and measured["kl"] > 0
        # In-domain: the test documents of the tasks the run was trained on, teacher forced.
        trained = yaml.safe_load((Path(study.root) / "runs" / f"base-{run}" / "recipe.yaml").read_text())["tasks"]
        assert measured["kl_tasks"] == [t["name"] for t in trained] and measured["kl_texts"] == 16
        assert measured["kl_scope"].startswith("reference-answer tokens") and measured["eos_shift"] is not None
    tables = (Path(study.root) / "tables.md").read_text()
    assert "### Deviation from the vanilla model" in tables and "| base/xsum-fticl " in tables
    bleu_table = tables.split("ROUGE-L beside BLEU")[1]
    xsum_row = next(line for line in bleu_table.splitlines() if line.startswith("| base/xsum "))
    assert [cell.strip() for cell in xsum_row.strip("|").split("|")][2:] != ["", ""]  # both measured


def test_the_shipped_study_b_logs_rebuild_its_shipped_claims(tmp_path):
    """docs/RESULTS.md's Study B numbers come back from the 0.7 MB of logs in the repository,
    with no model: the same claims.json as the one shipped beside them."""
    shipped = Path(__file__).resolve().parents[1] / "docs" / "results" / "ft-generalization"
    from finharness.main import main

    assert main(["study", "table", str(RECIPES / "ft-generalization"), "--from", str(shipped / "logs.tar.gz"),
                 "--output_path", str(tmp_path)]) == 0
    rebuilt = json.loads((tmp_path / "ft-generalization" / "claims.json").read_text())
    assert rebuilt == json.loads((shipped / "claims.json").read_text())
    assert next(c for c in rebuilt if c["id"] == "B0-ft-raises-own-task")["verdict"] == "agrees"


@pytest.mark.parametrize("study", ["fin-instruct-merge-confirmatory"])
def test_a_confirmatory_runs_logs_rebuild_its_shipped_claims_and_tables(tmp_path, study):
    """RESULTS.md's confirmatory numbers come back from the logs shipped in docs/results/<study>,
    under the study folder the run was locked with: the same claims.json and tables.json."""
    from finharness.main import main

    shipped = Path(__file__).resolve().parents[1] / "docs" / "results" / study
    assert main(["study", "table", str(RECIPES / study), "--from", str(shipped / "logs.tar.gz"),
                 "--output_path", str(tmp_path)]) == 0
    assert json.loads((tmp_path / study / "claims.json").read_text()) == json.loads((shipped / "claims.json").read_text())
    assert json.loads((tmp_path / study / "tables.json").read_text()) == json.loads((shipped / "tables.json").read_text())


def test_study_errors_name_the_file_and_field(tmp_path, tiny_models):
    folder = shrink("fin-instruct-merge", tmp_path, tiny_models)
    merge = folder / "merge.yaml"
    merge.write_text(merge.read_text().replace("runs: [sentiment, headlines, finred, fomc]}",
                                               "runs: [sentiment, headlines, finred, nope]}", 1))
    with pytest.raises(RecipeError, match=r"merge.yaml: merges.task-arithmetic.runs: no training run \['nope'\]"):
        load_study(folder)
    merge.write_text(merge.read_text().replace("finred, nope]}", "finred, fomc]}", 1))
    train = yaml.safe_load((folder / "train.yaml").read_text())
    train.pop("seed", None)
    train["seeds"] = [1, 2]
    next(r for r in train["runs"] if r["name"] == "fomc")["seeds"] = [1]  # a merge needs each seed's own run
    (folder / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False))
    with pytest.raises(RecipeError, match=r"merges.task-arithmetic.runs: fomc \(seed 2\) not trained"):
        load_study(folder)
    (folder / "eval.yaml").unlink()
    with pytest.raises(RecipeError, match=r"eval.yaml: missing"):
        load_study(folder)


def test_full_switch_uses_the_papers_sizes():
    small, full = load_study(RECIPES / "fin-instruct-merge"), load_study(RECIPES / "fin-instruct-merge", full=True)
    assert small.evals[0].limit == 100 and full.evals[0].limit is None
    # The CPU size has the instruct model only; the paper's experiment has its base model too.
    assert [m.label for m in small.spec.models] == ["instruct"]
    assert [m.label for m in full.spec.models] == ["base", "instruct"]
    assert {t.samples for r in full.train_recipes for t in r.tasks} == {None}
    assert full.train_recipes[0].training.epochs == 2 and small.train_recipes[0].training.epochs == 1
    assert Path(full.root).name == "fin-instruct-merge-full"


def test_training_seeds_give_a_run_and_a_merge_per_seed(tmp_path, tiny_models):
    folder = shrink("fin-instruct-merge", tmp_path, tiny_models)
    train = yaml.safe_load((folder / "train.yaml").read_text())
    train.pop("seed", None)
    train["seeds"] = [1, 2, 3]
    (folder / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False))
    study = load_study(folder)
    # Both `seed:` and `seeds:` is refused, as `finharness train` refuses it.
    both = tmp_path / "both"
    shutil.copytree(folder, both)
    (both / "train.yaml").write_text(yaml.safe_dump({**train, "seed": 5}, sort_keys=False))
    with pytest.raises(RecipeError, match="give seed or seeds, not both"):
        load_study(both)
    # 5 runs x 3 seeds, and the merge once per seed from that seed's runs.
    assert len(study.train_recipes) == 15 and len(study.merge_recipes) == 3
    assert {r.seed for r in study.train_recipes} == {1, 2, 3}
    ta = next(r for r in study.merge_recipes if r.name == "instruct-task-arithmetic-s2")
    assert all(m.model.endswith("-s2") for m in ta.models)
    assert {c.label for c in study.checkpoints if c.run == "fomc"} >= {"instruct/fomc-s1", "instruct/fomc-s3"}


def test_a_run_can_change_the_training_block_for_its_own_task(tmp_path, tiny_models):
    """One study, two rates: a run's `training:` overrides train.yaml's block for that run only."""
    folder = shrink("ft-generalization", tmp_path, tiny_models)
    train = yaml.safe_load((folder / "train.yaml").read_text())
    xsum = next(r for r in train["runs"] if r["name"] == "xsum")
    xsum["training"] = {"lr": 2.0e-3}
    (folder / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False))
    recipes = {r.name: r for r in load_study(folder).train_recipes}
    assert recipes["base-xsum"].training.lr == 2.0e-3 and recipes["base-amazon"].training.lr == train["training"]["lr"]
    assert recipes["base-xsum"].training.batch_size == recipes["base-amazon"].training.batch_size
    xsum["training"] = {"learning_rate": 2.0e-3}  # a misspelt field is refused, naming the run
    (folder / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False))
    with pytest.raises(RecipeError, match=r"run xsum.*learning_rate"):
        load_study(folder)


def test_a_run_can_have_more_seeds_and_a_set_can_be_scored_by_some_runs_only(tmp_path, tiny_models):
    """A claim whose variance is mostly seeds gets more of them for its own runs (`seeds:` on the
    run), and its large set is scored by those runs only (`runs:` on the set): the other runs
    keep the study's seeds and skip the set, the vanilla model scores it."""
    folder = shrink("ft-generalization", tmp_path, tiny_models)
    train = yaml.safe_load((folder / "train.yaml").read_text())
    train.pop("seed", None)
    train["seeds"] = [42, 1]
    for run in train["runs"]:
        if run["name"].startswith("xsum"):
            run["seeds"] = [42, 1, 2, 3]
    (folder / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False))
    evals = yaml.safe_load((folder / "eval.yaml").read_text())
    b3 = next(i for i, s in enumerate(evals["sets"])
              if s.get("settings") == ["few-shot"] and "gen_summary_xlsum" in s["tasks"])
    evals["sets"][b3]["runs"] = ["xsum", "xsum-fticl"]
    (folder / "eval.yaml").write_text(yaml.safe_dump(evals, sort_keys=False))
    study = load_study(folder)
    seeds = {}
    for point in study.checkpoints:
        seeds.setdefault(point.run, set()).add(point.seed)
    assert seeds["xsum-fticl"] == {42, 1, 2, 3} and seeds["amazon"] == {42, 1}
    scorers = {(s.checkpoint.run, s.checkpoint.seed) for s in study.evals if s.set_index == b3}
    assert scorers == {("", None)} | {(run, seed) for run in ("xsum", "xsum-fticl") for seed in (42, 1, 2, 3)}

    evals["sets"][b3]["runs"] = ["xsum", "xsum-ftcl"]  # a misspelt run is refused, naming the set
    (folder / "eval.yaml").write_text(yaml.safe_dump(evals, sort_keys=False))
    with pytest.raises(RecipeError, match=r"eval.yaml: sets\[\d+\].runs: xsum-ftcl is no training run"):
        load_study(folder)


def test_a_run_after_another_fine_tunes_that_runs_model_seed_by_seed(tmp_path, tiny_models):
    """Sequential fine-tuning (`after:`): the held-out specialist's model, then the seen tasks on top."""
    folder = shrink("fin-instruct-merge", tmp_path, tiny_models)
    train = yaml.safe_load((folder / "train.yaml").read_text())
    train.pop("seed", None)
    train["seeds"] = [1, 2]
    seen = next(r for r in train["runs"] if r["name"] == "multi")["tasks"]
    train["runs"] += [{"name": "heldout", "tasks": [{"name": "fin_finarg_auc"}, {"name": "fin_fincausal"}],
                       "covers": ["fin_finarg_auc", "fin_fincausal"]},
                      {"name": "heldout-then-seen", "kind": "multi", "after": "heldout", "tasks": seen}]
    (folder / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False))
    study = load_study(folder)
    recipes = {r.name: r for r in study.train_recipes}
    for seed in (1, 2):
        after = recipes[f"instruct-heldout-then-seen-s{seed}"]
        assert after.base_model == str(recipes[f"instruct-heldout-s{seed}"].run_dir())
        assert study.trained_model(after) == "instruct"  # the dry run counts its tokens with the study model's
    point = next(c for c in study.checkpoints if c.run == "heldout-then-seen" and c.seed == 1)
    assert point.trained_on == [t["name"] for t in seen]  # its own tasks: the gates ask whether it learned those

    heldout = next(r for r in train["runs"] if r["name"] == "heldout")
    heldout["seeds"] = [1]  # seed 2 would start from a model never trained: refused, naming the seed
    (folder / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False))
    with pytest.raises(RecipeError, match=r"runs.heldout-then-seen.seeds: heldout \(seed 2\) not trained"):
        load_study(folder)
    heldout.pop("seeds")

    train["runs"].insert(0, train["runs"].pop())  # listed before the run it follows: refused, naming the field
    (folder / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False))
    with pytest.raises(RecipeError, match=r"train.yaml: runs.heldout-then-seen.after: 'heldout' is not a run listed "
                                          r"before it for model instruct"):
        load_study(folder)


def test_a_merge_weight_chosen_on_development_rows_merges_every_seed_at_it(tiny_models, tmp_path):
    """merge.yaml's `select:`: the candidates are merged from the first seed's runs, scored on
    development rows only, and every seed is merged at the best weight; the candidates are no
    study row and no test document is scored before the choice."""
    folder = shrink("fin-instruct-merge", tmp_path / "recipes", tiny_models, tasks=[["fin_fpb"]] * 5, leaderboard=False)
    (folder / "claims.yaml").unlink()
    train = yaml.safe_load((folder / "train.yaml").read_text())
    train["runs"] = [r for r in train["runs"] if r["name"] in ("sentiment", "fomc")]
    train.pop("seed", None)
    train["seeds"] = [1, 2]
    (folder / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False))
    evals = yaml.safe_load((folder / "eval.yaml").read_text())
    evals["sets"], evals["vanilla"] = evals["sets"][:1], ["zero-shot"]
    (folder / "eval.yaml").write_text(yaml.safe_dump(evals, sort_keys=False))
    (folder / "merge.yaml").write_text(yaml.safe_dump({"merges": [{
        "name": "ta-tuned", "model": "instruct", "method": "task_arithmetic", "runs": ["sentiment", "fomc"],
        "select": {"weights": [0.25, 1.0], "tasks": ["fin_fpb"], "limit": 3}}]}))

    study = run_study(folder, output_dir=tmp_path / "out")
    root = Path(study.root)
    selection = json.loads((root / "merges" / "instruct-ta-tuned-candidates" / "selection.json").read_text())
    assert selection["split"] == "development" and [p["weight"] for p in selection["points"]] == [0.25, 1.0]
    chosen = next(p["weight"] for p in selection["points"] if p["folder"] == selection["best"])
    for seed in (1, 2):
        made = yaml.safe_load((root / "merges" / f"instruct-ta-tuned-s{seed}" / "mergekit.yaml").read_text())
        assert {m["parameters"]["weight"] for m in made["models"]} == {chosen}
        assert all(f"-s{seed}" in m["model"] for m in made["models"])
        assert (root / "recipes" / "merge" / f"instruct-ta-tuned-s{seed}.yaml").is_file()
    # The candidates were scored on development rows alone; the tables show the chosen merge only.
    for point in selection["points"]:
        assert load_results(results_file(Path(point["folder"]).parent / "development" / Path(point["folder"]).name)
                            )["finharness"]["split"] == "development"
    rows = {r["row"] for r in json.loads((root / "tables.json").read_text())}
    assert "merged: ta-tuned" in rows and not any("candidates" in r for r in rows)
    chosen_at = (root / "merges" / "instruct-ta-tuned-candidates" / "selection.json").stat().st_mtime
    assert all(chosen_at < results_file(Path(s.folder)).stat().st_mtime for s in study.evals)
    # The dry run's plan counts the choice: each candidate's development rows and every seed's merge.
    from study.estimate import study_work

    planned = [(w.kind, w.label, w.items) for w in study_work(study)
               if "ta-tuned" in w.label and (w.kind == "merge" or "development" in w.label)]
    assert planned == [("merge", "instruct-ta-tuned-candidates", 4),
                       ("eval", "instruct/ta-tuned weight 0.25 (development rows)", 3),
                       ("eval", "instruct/ta-tuned weight 1 (development rows)", 3),
                       ("merge", "instruct-ta-tuned-s1", 2), ("merge", "instruct-ta-tuned-s2", 2)]
    with pytest.raises(RecipeError, match="give weight or select, not both"):
        (folder / "merge.yaml").write_text(yaml.safe_dump({"merges": [{
            "name": "x", "model": "instruct", "method": "task_arithmetic", "runs": ["fomc"], "weight": 0.5,
            "select": {"weights": [0.25, 1.0], "tasks": ["fin_fpb"]}}]}))
        load_study(folder)


def test_the_confirmatory_design_names_its_rows_and_chooses_everything_before_a_test_document():
    """Study A's confirmatory design (not yet run): its claims name rows the study makes, the
    forgetting arm's runs are a held-out specialist and a sequential fine-tune of it, the tuned
    merge's weight is chosen (on development rows) before the first test evaluation."""
    from study.claims import check_claims, load_claims
    from study.run import plan_steps

    folder = RECIPES / "fin-instruct-merge-confirmatory"
    study = load_study(folder)
    check_claims(load_claims(folder), study, "claims.yaml")
    recipes = {r.name: r for r in study.train_recipes}
    assert recipes["instruct-heldout-then-seen-s1"].base_model == str(recipes["instruct-heldout-s1"].run_dir())
    assert {t.name for t in recipes["instruct-heldout-s1"].tasks} == {"fin_finarg_auc", "fin_fincausal"}
    arms = {c.id: (c.arm, c.positive_control) for c in load_claims(folder).claims}
    assert arms["F0-heldout-specialist-learns"] == arms["F1-sequential-ft-forgets"] == ("forgetting", True)
    assert arms["A0-ft-raises-own-task"] == ("gains", True) and all(arm for arm, _ in arms.values())
    kinds = [s.kind for s in plan_steps(study)]
    assert kinds.index("select") < kinds.index("eval") and kinds.count("select") == 1
    assert study.spec.table.generation_baseline == "lead"


def test_a_training_recipe_with_seeds_is_one_run_per_seed():
    from training.recipe import parse_recipe

    recipe = parse_recipe({"name": "fpb", "base_model": "m", "tasks": [{"name": "fin_fpb"}], "seeds": [7, 8]})
    assert [(r.name, r.seed) for r in recipe.per_seed()] == [("fpb-s7", 7), ("fpb-s8", 8)]
    # One seed keeps the plain name, as a study with one seed does (plumbing/seeds.py: one rule).
    single = parse_recipe({"name": "fpb", "base_model": "m", "tasks": [{"name": "fin_fpb"}], "seeds": [7]})
    assert [(r.name, r.seed) for r in single.per_seed()] == [("fpb", 7)]
    with pytest.raises(RecipeError, match="give seed or seeds, not both"):
        parse_recipe({"name": "fpb", "base_model": "m", "tasks": [{"name": "fin_fpb"}], "seed": 1, "seeds": [7]})


@pytest.mark.slow
def test_a_study_in_the_papers_formats_trains_and_scores_each_model_in_its_own(tiny_models, tmp_path):
    """prompts: paper + scoring: generate + a shot grid: the base model reads the Alpaca template,
    the instruct one 'sentence: ... label:', both generate, and their rows line up on FinBen names."""
    folder = tmp_path / "paper-formats"
    folder.mkdir()
    (folder / "study.yaml").write_text(yaml.safe_dump({
        "name": "paper-formats", "prompts": "paper", "leaderboard": False, "one_family": True,
        "models": [{"label": "base", "model": str(tiny_models["base"]), "prompt_format": "base"},
                   {"label": "instruct", "model": str(tiny_models["instruct"]), "prompt_format": "instruct"}],
        "table": {"kind": "seen_unseen", "resamples": 20}}))
    (folder / "train.yaml").write_text(yaml.safe_dump({
        "samples": 4, "lora": {"r": 2, "alpha": 4},
        "training": {"epochs": 1, "batch_size": 2, "max_length": 256},
        "runs": [{"name": "fomc", "tasks": [{"name": "fin_fomc"}], "covers": ["fin_fomc"]}]}))
    (folder / "eval.yaml").write_text(yaml.safe_dump({
        "sets": [{"tasks": ["fin_fomc", "fin_fincausal"], "limit": 3, "few_shot": [1, 2],
                  "settings": ["zero-shot", "few-shot"]}],
        "vanilla": ["zero-shot", "few-shot"], "trained": ["zero-shot"], "scoring": "generate", "batch_size": 4}))
    study = run_study(folder, output_dir=tmp_path / "out")
    root = Path(study.root)

    trained = {r.name: [t.name for t in r.tasks] for r in study.train_recipes}
    assert trained == {"base-fomc": ["alpaca_fin_fomc"], "instruct-fomc": ["label_fin_fomc"]}
    steps = {(s.checkpoint.label, s.setting): (s.tasks, s.shots) for s in study.evals}
    assert steps[("base", "zero-shot")] == (["generative_alpaca_fin_fomc", "generative_alpaca_fin_fincausal"], 0)
    assert steps[("instruct", "few-shot")] == (["generative_label_fin_fomc", "generative_label_fin_fincausal"], 1)
    assert steps[("instruct", "2-shot")][1] == 2 and ("instruct/fomc", "2-shot") not in steps

    # The tables key both formats by the FinBen task, so the base and instruct rows compare.
    records = json.loads((root / "tables.json").read_text())
    rows = {(r["model"], r["row"]): r for r in records if r.get("kind") != "baseline"}
    for key in [("base", "zero-shot"), ("instruct", "zero-shot"), ("instruct", "few-shot (1)"), ("instruct", "2-shot"),
                ("base", "FT single")]:
        assert key in rows, (key, sorted(rows))
        assert "fin_fomc" in rows[key] and "fin_fincausal" in rows[key]
    # The embedded-style pair here is one family (both tiny Llamas): no family note.
    assert "different families" not in (root / "tables.md").read_text()


def test_full_models_replace_the_cpu_defaults_with_the_same_labels(tmp_path, tiny_models):
    full = load_study(RECIPES / "fin-instruct-merge", full=True)
    assert {m.label: m.model for m in full.spec.models} == {
        "base": "meta-llama/Meta-Llama-3-8B", "instruct": "meta-llama/Meta-Llama-3-8B-Instruct"}
    assert full.models_supplied and not load_study(RECIPES / "fin-instruct-merge").models_supplied
    assert {r.base_model for r in full.train_recipes} == {"meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-8B-Instruct"}
    b = load_study(RECIPES / "ft-generalization", full=True)
    assert [m.model for m in b.spec.models] == ["meta-llama/Llama-2-7b-hf"]

    # --model LABEL=MODEL replaces one checkpoint; an unknown label is named.
    folder = shrink("fin-instruct-merge", tmp_path, tiny_models)
    swapped = load_study(folder, models={"instruct": str(tiny_models["base"])})
    assert {m.label: m.model for m in swapped.spec.models}["instruct"] == str(tiny_models["base"])
    with pytest.raises(RecipeError, match="--model chat=x: the study has no model 'chat'"):
        load_study(folder, models={"chat": "x"})


def test_a_one_family_study_refuses_supplied_models_of_two_families(tmp_path, tiny_models):
    from study.spec import check_families, family_note, model_families
    from tests.helpers.checkpoints import build_tiny_gemma3

    gemma = build_tiny_gemma3(tmp_path / "gemma", tokenizer_from=tiny_models["base"])
    folder = shrink("fin-instruct-merge", tmp_path, tiny_models)
    # A user's study with both of the paper's models (the CPU default has the instruct one only).
    spec = yaml.safe_load((folder / "study.yaml").read_text())
    spec["models"].insert(0, {"label": "base", "model": str(tiny_models["base"]), "prompt_format": "base"})
    (folder / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    study = load_study(folder, models={"base": str(gemma)})
    with pytest.raises(RecipeError, match=r"one_family: the supplied models are of different families \(base: gemma3_text, instruct: llama\)"):
        check_families(study)
    # The CPU defaults (not supplied) are run, and every table names the difference instead.
    assert "different families (base: gemma3_text; instruct: llama)" in family_note(model_families(study))


def test_probe_measures_speed_and_the_dry_run_plan_turns_work_into_hours(tiny_models, tmp_path, capsys, progress):
    from study.estimate import THROUGHPUT, plan_table, probe, study_work

    folder = shrink("ft-generalization", tmp_path / "recipes", tiny_models, limit=2, leaderboard=False, samples=4,
                    tasks=[["gen_sentiment_amazon_mc"], ["gen_summary_xsum"], ["gen_summary_xsum"]])
    study = load_study(folder, output_dir=tmp_path / "out")
    assert f"No measured speed yet: `finharness study probe {folder}`" in plan_table(study)

    work = {w.label: w for w in study_work(study)}
    train = work["base-amazon"]
    assert train.items == 4 and train.tokens > 4 * 10  # 4 examples x 1 epoch, each tens of tokens
    zero, few = work["base zero-shot set 0"], work["base few-shot set 0"]
    assert zero.items == few.items == 2 and few.tokens > zero.tokens  # two in-context reviews cost tokens

    path = probe(study, steps=1, documents=2)
    measured = json.loads(path.read_text())["base"]
    assert measured["train_tokens_per_second"] > 0 and measured["eval_tokens_per_second"] > 0
    import os

    import torch

    assert measured["device"] == (torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)")
    assert path == Path(study.root) / THROUGHPUT and not (Path(study.root) / "runs").exists()  # nothing else written

    plan = plan_table(study)
    hours = train.tokens / measured["train_tokens_per_second"] / 3600
    row = next(line for line in plan.splitlines() if line.startswith("| train  | base-amazon "))
    assert f"| {hours:.2f} " in row
    assert "Total: training" in plan
    assert main(["study", "run", str(folder), "--dry_run", "--output_path", str(tmp_path / "out")]) == 0
    assert "| eval   | base/xsum few-shot set 2" in capsys.readouterr().out  # the summaries' few-shot set


def test_a_dry_run_before_any_probe_gives_hours_and_converts_nothing(tmp_path, monkeypatch):
    """The shipped Study A on a machine that never converted the embedded model: the plan reads
    the tokenizer from the GGUF file, takes hours from the 2-core CPU figures, writes no model."""
    from study.estimate import plan_table

    monkeypatch.setenv("FINHARNESS_HOME", str(tmp_path / "home"))
    study = load_study(RECIPES / "fin-instruct-merge", output_dir=tmp_path / "out")
    plan = plan_table(study)
    assert "No probe on this machine for instruct: hours from the embedded models' speed on a 2-core CPU" in plan
    assert re.search(r"Total: training \d+\.\d h, evaluation \d+\.\d h", plan)
    assert not (tmp_path / "home" / "models").exists() and not (tmp_path / "out").exists()


def test_study_b_confirmatory_design_gives_b3_its_own_arm_and_the_documents_it_needs():
    """Study B's confirmatory design (not yet run): B3 is read only once the summary arm's own
    positive control (the XSum run learned XSum) is decided, with ten seeds of its runs and the
    XL-Sum documents that plan needs (100), at the XSum rate chosen on development rows."""
    from study.claims import check_claims, load_claims

    folder = RECIPES / "ft-generalization-confirmatory"
    study = load_study(folder)
    check_claims(load_claims(folder), study, "claims.yaml")
    arms = {c.id: (c.arm, c.positive_control) for c in load_claims(folder).claims}
    assert arms["B0s-ft-raises-own-summary"] == ("summary", True) and arms["B3-fticl-helps-generation"][0] == "summary"
    assert arms["B0-ft-raises-own-task"] == ("sentiment", True) and all(arm for arm, _ in arms.values())
    xlsum_few_shot = [s for s in study.eval.sets if "gen_summary_xlsum" in s.tasks and "few-shot" in s.settings]
    assert [s.limit for s in xlsum_few_shot] == [100]
    assert xlsum_few_shot[0].runs == ["xsum", "xsum-fticl"]
    assert {r.training.lr for r in study.train_recipes if r.name.startswith("base-xsum")} == {2e-4}
    seeds = {}
    for recipe in study.train_recipes:
        seeds.setdefault(recipe.name.rsplit("-s", 1)[0], set()).add(recipe.seed)
    assert len(seeds["base-amazon"]) == 3 and len(seeds["base-xsum-fticl"]) == len(seeds["base-xsum"]) == 10


def test_a_task_scored_at_two_limits_is_refused_before_anything_runs(tmp_path, tiny_models):
    """Every row of a task is read on the same documents: a design that scores a task at 80
    zero-shot and 100 few-shot would stop its tables after the whole run, so it is refused."""
    folder = shrink("fin-instruct-merge", tmp_path, tiny_models)  # its zero-shot set is the group finharness_all
    evals = yaml.safe_load((folder / "eval.yaml").read_text())
    few_shot = next(s for s in evals["sets"] if "few-shot" in s.get("settings", []) and "fin_fpb" in s["tasks"])
    few_shot["limit"] = 5
    (folder / "eval.yaml").write_text(yaml.safe_dump(evals, sort_keys=False))
    with pytest.raises(RecipeError, match=r"eval.yaml: fin_\w+ is scored at two limits \(limit 3 in sets 0; limit 5 in "
                                          r"sets 1\): the tables read every row of a task on the same documents"):
        load_study(folder)
