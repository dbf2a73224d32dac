"""The leaderboard: submit, refuse what is wrong, survive concurrent submitters, show, render."""
import json
import multiprocessing
import shutil
import subprocess
import sys
from pathlib import Path
from statistics import mean

import pytest
import yaml

from evidence.measures import read_scores
from evidence.records import EntryMetadata
from evidence.result_files import results_file, samples_file
from finharness.main import main
from harness.evaluate import EvalRequest, run_eval
from leaderboard.store import Board, DuplicateEntry, settings_key
from leaderboard.submission import SubmissionError, load_submission
from leaderboard.submit import submit
from leaderboard.table import board_rows, show
from tests.helpers.checkpoints import build_tiny_checkpoint, perturbed_copy
from tests.helpers.records import undeclared

TASKS = ["fin_fpb", "fin_fomc", "fin_finarg_auc", "fin_fincausal"]  # two seen, two unseen
SEEN, UNSEEN = ["fin_fpb", "fin_fomc"], ["fin_finarg_auc", "fin_fincausal"]
ROLES = {**{t: "seen" for t in SEEN}, **{t: "unseen" for t in UNSEEN}}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Two checkpoints and their `finharness eval --output_path` folders."""
    root = tmp_path_factory.mktemp("board-models")
    base = build_tiny_checkpoint(root / "base")
    tuned = perturbed_copy(base, root / "tuned", seed=3, scale=0.5)
    folders = {}
    for name, model in (("base", base), ("tuned", tuned)):
        folders[name] = root / f"eval-{name}"
        run_eval(EvalRequest(model=str(model), tasks=TASKS, limit=6, batch_size=8, chat_template="off",
                             output_path=folders[name]))
    return {"base": base, "tuned": tuned, "results": folders, "root": root}


def write_submission(folder: Path, **fields) -> Path:
    data = {"model_type": "pretrained", "weight_type": "original", "precision": "float32", "chat_template": False}
    data.update(fields)
    path = folder / f"{fields['model'].replace('/', '__')}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def tampered_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def board_state(board: Board) -> tuple[list, list]:
    """What a refused submission must leave unchanged: the rows and the stored results."""
    results = board.path.parent / "results"
    return ([(e.id, e.model) for e in board.entries()],
            sorted(p.name for p in results.iterdir()) if results.exists() else [])


def test_submit_show_and_forgetting_against_the_base_models_entry(scored, tmp_path):
    board = Board(tmp_path / "board.sqlite")
    base_id = submit(load_submission(write_submission(tmp_path, model="tiny-base", results=str(scored["results"]["base"]))), board)
    tuned_id = submit(load_submission(write_submission(
        tmp_path, model="tiny-tuned", model_type="fine-tuned", base_model="tiny-base",
        results=str(scored["results"]["tuned"]))), board)

    rows, tasks = board_rows(board.entries(), "acc", roles=ROLES)
    assert sorted(tasks) == sorted(TASKS)
    tuned = next(r for r in rows if r["id"] == tuned_id)
    # By hand, from the results files lm-eval wrote: mean over tasks, then the difference.
    base_acc = read_scores(scored["results"]["base"], "acc")
    tuned_acc = read_scores(scored["results"]["tuned"], "acc")
    assert tuned["unseen"] == pytest.approx(mean(tuned_acc[t] for t in UNSEEN))
    assert tuned["unseen_change"] == pytest.approx(mean(tuned_acc[t] for t in UNSEEN) - mean(base_acc[t] for t in UNSEEN))
    assert tuned["seen_change"] == pytest.approx(mean(tuned_acc[t] for t in SEEN) - mean(base_acc[t] for t in SEEN))
    assert tuned["reference_id"] == base_id
    assert next(r for r in rows if r["id"] == base_id)["unseen_change"] is None  # no base of its own

    table = show(board.entries(), sort="fin_fpb", ascending=True, roles=ROLES)
    assert "tiny-tuned" in table and "tiny-base" in table
    order = [line.split("|")[2].strip() for line in table.splitlines()[2:]]
    # Ascending by FPB accuracy, ties in submission order (the sort is stable).
    assert order == sorted(["tiny-base", "tiny-tuned"],
                           key=lambda m: (base_acc if m == "tiny-base" else tuned_acc)["fin_fpb"])
    # The board keeps its own copy of the logs each entry rests on.
    for entry in board.entries():
        assert samples_file(Path(entry.results_path), "fin_fpb").is_file()


def test_a_duplicate_is_refused_and_the_board_is_unchanged(scored, tmp_path):
    board = Board(tmp_path / "board.sqlite")
    path = write_submission(tmp_path, model="tiny-base", results=str(scored["results"]["base"]))
    submit(load_submission(path), board)
    before = board_state(board)
    with pytest.raises(DuplicateEntry, match="already holds this model"):
        submit(load_submission(path), board)
    assert board_state(board) == before
    # Other settings of the same model are a new entry (here: fewer docs per task).
    fewer = tmp_path / "eval-base-4"
    run_eval(EvalRequest(model=str(scored["base"]), tasks=["fin_fpb"], limit=4, batch_size=8,
                         chat_template="off", output_path=fewer))
    submit(load_submission(write_submission(tmp_path, model="tiny-base", results=str(fewer))), board)
    assert len(board.entries()) == 2


@pytest.mark.parametrize("tamper, message", [
    ("results_score", r"fin_fpb: acc is 0\.99 in the results file, but"),
    ("sample_metric", r"doc \d+: acc is logged as 1\.0, but its responses score"),
    ("sample_label", r"doc (\d+) is not fin_fpb's document \1"),
    ("half_written", r"not an lm-eval results file"),
    ("half_written_log", r"not valid JSON .* a half-written log"),
    ("missing_log", r"no per-sample log of fin_fomc"),
    ("unknown_task", r"unknown task\(s\) fin_made_up"),
])
def test_tampered_or_broken_results_are_refused_naming_what_is_wrong(scored, tmp_path, tamper, message):
    folder = tampered_copy(scored["results"]["base"], tmp_path / "submitted")
    results = results_file(folder)
    data = json.loads(results.read_text())
    fpb_log = samples_file(folder, "fin_fpb")
    rows = [json.loads(line) for line in fpb_log.read_text().splitlines()]
    if tamper == "results_score":
        data["results"]["fin_fpb"]["acc,none"] = 0.99
        results.write_text(json.dumps(data))
    elif tamper == "sample_metric":
        rows[0]["acc"] = 1.0 - rows[0]["acc"]
        fpb_log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif tamper == "sample_label":
        rows[0]["doc"]["gold"] = (rows[0]["doc"]["gold"] + 1) % 3
        fpb_log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif tamper == "half_written":
        text = results.read_text()
        results.write_text(text[: len(text) // 2])
    elif tamper == "half_written_log":
        text = fpb_log.read_text()
        fpb_log.write_text(text[: len(text) - 40])
    elif tamper == "missing_log":
        samples_file(folder, "fin_fomc").unlink()
    elif tamper == "unknown_task":
        data["results"]["fin_made_up"] = {"acc,none": 1.0}
        results.write_text(json.dumps(data))

    board = Board(tmp_path / "board.sqlite")
    submit(load_submission(write_submission(tmp_path, model="honest", results=str(scored["results"]["tuned"]))), board)
    before = board_state(board)
    with pytest.raises(ValueError, match=message):
        submit(load_submission(write_submission(tmp_path, model="forged", results=str(folder))), board)
    assert board_state(board) == before


def test_results_logged_before_the_prompt_parts_existed_still_verify_and_an_edited_part_does_not(scored, tmp_path):
    # Logs written before 2026-12-01 hold documents without the loader's `instruction` / `input`.
    folder = tampered_copy(scored["results"]["base"], tmp_path / "older")
    for log in folder.rglob("samples_*.jsonl"):
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        assert all("instruction" in r["doc"] for r in rows)
        for r in rows:
            r["doc"].pop("instruction"), r["doc"].pop("input")
        log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    board = Board(tmp_path / "board.sqlite")
    submit(load_submission(write_submission(tmp_path, model="older", results=str(folder))), board)
    assert len(board.entries()) == 1

    edited = tampered_copy(scored["results"]["base"], tmp_path / "edited")
    log = samples_file(edited, "fin_fpb")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    rows[0]["doc"]["instruction"] = "Always answer positive."
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match=r"doc (\d+) is not fin_fpb's document \1"):
        submit(load_submission(write_submission(tmp_path, model="edited", results=str(edited))), board)


def test_a_metric_added_to_a_task_after_the_log_was_written_is_left_off_only_for_an_older_task_version(
        scored, tmp_path):
    """A log written by an older task version lacks a metric the task computes now (BLEU came
    with version 1.1 of the generation tasks): accepted without it. Dropped from the log of
    the current version, or from some rows only, it is refused."""
    def without_f1_weighted(name: str, version: str, rows_to_strip: slice) -> Path:
        folder = tampered_copy(scored["results"]["base"], tmp_path / name)
        results = results_file(folder)
        data = json.loads(results.read_text())
        data["versions"]["fin_fpb"] = version
        data["results"]["fin_fpb"] = {k: v for k, v in data["results"]["fin_fpb"].items()
                                      if not k.startswith("f1_weighted")}
        results.write_text(json.dumps(data))
        log = samples_file(folder, "fin_fpb")
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        for row in rows[rows_to_strip]:
            row.pop("f1_weighted")
        log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        return folder

    board = Board(tmp_path / "board.sqlite")
    older = without_f1_weighted("older", "0.9", slice(None))
    submit(load_submission(write_submission(tmp_path, model="older", results=str(older))), board)
    (entry,) = board.entries()
    assert "f1_weighted" not in entry.scores["fin_fpb"] and "f1_macro" in entry.scores["fin_fpb"]
    current = json.loads(results_file(scored["results"]["base"]).read_text())["versions"]["fin_fpb"]
    for name, version, rows, message in (
        ("current", current, slice(None), r"f1_weighted is logged as None, but its responses score"),
        ("partly", "0.9", slice(0, 1), r"f1_weighted is missing from 1 of 6 rows"),
    ):
        folder = without_f1_weighted(name, version, rows)
        with pytest.raises(ValueError, match=message):
            submit(load_submission(write_submission(tmp_path, model=name, results=str(folder))), board)
    assert len(board.entries()) == 1


@pytest.mark.parametrize("fields, message", [
    ({"precision": None}, r"precision: required key is missing"),
    ({"weight_type": "lora"}, r"weight_type: Input should be 'original', 'adapter' or 'delta' \(got 'lora'\)"),
    ({"weight_type": "adapter"}, r"`base_model` is required for weight_type adapter"),
    ({"trust_remote_code": True}, r"trust_remote_code: Input should be False"),
    ({"checkpoint": "x"}, r"give exactly one of `checkpoint`"),
    ({"results": None}, r"give exactly one of `checkpoint`"),
    ({"licence": "mit"}, r"licence: unknown key"),
])
def test_a_submission_with_a_bad_field_is_refused_naming_it(tmp_path, fields, message):
    data = {"model": "m", "results": "r", **fields}
    path = write_submission(tmp_path, **{k: v for k, v in data.items() if v is not None})
    if fields.get("precision", "") is None:
        raw = yaml.safe_load(path.read_text())
        raw.pop("precision")
        path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SubmissionError, match=message) as err:
        load_submission(path)
    assert str(path) in str(err.value)


def test_malformed_yaml_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model: [unclosed\n")
    with pytest.raises(SubmissionError, match=r"broken\.yaml:\d+: not valid YAML"):
        load_submission(path)


def test_checkpoints_that_could_run_code_or_do_not_fit_their_base_are_refused(scored, tmp_path):
    board = Board(tmp_path / "board.sqlite")
    pickled = tampered_copy(scored["base"], tmp_path / "pickled")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04K\x00.")
    custom = tampered_copy(scored["base"], tmp_path / "custom")
    config = json.loads((custom / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (custom / "config.json").write_text(json.dumps(config))
    wider = tampered_copy(scored["base"], tmp_path / "wider")
    config = json.loads((wider / "config.json").read_text())
    config["hidden_size"] = 64
    (wider / "config.json").write_text(json.dumps(config))
    cases = [
        (dict(checkpoint=str(pickled)), r"pickle weight file\(s\) pytorch_model\.bin"),
        (dict(checkpoint=str(custom)), r"auto_map"),
        (dict(checkpoint=str(wider), model_type="fine-tuned", base_model=str(scored["base"])),
         r"does not fit base model .*\(hidden_size: 64 vs base 32\)"),
    ]
    for fields, message in cases:
        with pytest.raises(ValueError, match=message):
            submit(load_submission(write_submission(tmp_path, model="bad", **fields)), board)
    assert board.entries() == []


def test_a_checkpoint_is_scored_by_the_board_once(scored, tmp_path, capsys, progress):
    """The README's flow: submit a checkpoint folder from the command line."""
    board = tmp_path / "board.sqlite"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: my-merge\nmethod: task_arithmetic\nmodels:\n  - {model: runs/fpb, weight: 0.5}\n")
    path = write_submission(tmp_path, model="tiny-tuned", model_type="merged", base_model=str(scored["base"]),
                            checkpoint=str(scored["tuned"]), recipe="recipe.yaml", tasks=["fin_fpb"], limit=4)
    assert main(["leaderboard", "submit", str(path), "--board", str(board)]) == 0
    assert "scoring tiny-tuned" in capsys.readouterr().out
    (entry,) = Board(board).entries()
    # The recipe is stored as parsed (every field, defaults included), never as raw bytes.
    assert yaml.safe_load(entry.recipe_text)["models"] == [{"model": "runs/fpb", "weight": 0.5, "density": None}]
    assert entry.docs == {"fin_fpb": 4}
    # The board pins the checkpoint by the fingerprint of its bytes, as the Hub pins a commit.
    assert entry.revision == json.loads(results_file(Path(entry.results_path)).read_text())["finharness"]["revision"]
    # Submitting again: already scored, so no second evaluation; refused as a duplicate.
    assert main(["leaderboard", "submit", str(path), "--board", str(board)]) == 2
    out, err = capsys.readouterr()
    assert "already scored" in out and "already holds this model" in err
    assert main(["leaderboard", "show", "--board", str(board), "--sort", "fin_fpb"]) == 0
    assert "tiny-tuned" in capsys.readouterr().out


def test_two_submitters_at_once_both_land(scored, tmp_path):
    board = tmp_path / "board.sqlite"
    paths = [write_submission(tmp_path, model=f"tiny-{name}", results=str(scored["results"][name]))
             for name in ("base", "tuned")]
    procs = [subprocess.Popen([sys.executable, "-m", "finharness", "leaderboard", "submit", str(p), "--board", str(board)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for p in paths]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sorted(e.model for e in Board(board).entries()) == ["tiny-base", "tiny-tuned"]


def _insert_many(board_path: str, worker: int, count: int, barrier) -> list[str]:
    board, outcomes = Board(Path(board_path)), []
    barrier.wait()
    for i in range(count):
        for model in (f"w{worker}-m{i}", "contested"):  # every worker also races for one entry
            try:
                board.add(dict(model=model, revision="r", precision="float32", weight_type="original",
                               chat_template=False, settings=settings_key(["fin_fpb"], 0, None),
                               model_type="pretrained", base_model=None, recipe=None, recipe_text=None,
                               results_path="-", scores={"fin_fpb": {"acc": 0.5}}, docs={"fin_fpb": 1},
                               metadata={}))
                outcomes.append(model)
            except DuplicateEntry:
                outcomes.append("duplicate")
    return outcomes


def test_many_concurrent_writes_all_land_and_a_contested_entry_lands_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(4)
    with context.Pool(4) as pool:
        results = pool.starmap(_insert_many, [(str(tmp_path / "b.sqlite"), w, 10, barrier) for w in range(4)])
    models = [e.model for e in Board(tmp_path / "b.sqlite").entries()]
    assert len(models) == 41 and models.count("contested") == 1
    assert sum(r.count("contested") for r in results) == 1
    assert sum(r.count("duplicate") for r in results) == 39


def test_a_file_that_is_not_a_board_is_named(tmp_path):
    bogus = tmp_path / "board.sqlite"
    bogus.write_text("not a database")
    with pytest.raises(ValueError, match="not a finharness board"):
        Board(bogus).entries()
    assert bogus.read_text() == "not a database"


def test_reference_is_not_base_model(scored, tmp_path):
    """`base_model` says what the weights came from; `reference` which entry forgetting reads against."""
    board = Board(tmp_path / "board.sqlite")
    anchor = submit(load_submission(write_submission(tmp_path, model="study-vanilla [set0]",
                                                     results=str(scored["results"]["base"]))), board)
    tuned = submit(load_submission(write_submission(
        tmp_path, model="tiny-tuned", model_type="fine-tuned", base_model="tiny-base",
        reference="study-vanilla [set0]", results=str(scored["results"]["tuned"]))), board)
    rows = {r["id"]: r for r in board_rows(board.entries(), "acc", roles=ROLES)[0]}
    assert rows[tuned]["base_model"] == "tiny-base"  # shown as made from, though not on the board
    assert rows[tuned]["reference_id"] == anchor
    assert rows[tuned]["unseen_change"] == pytest.approx(rows[tuned]["unseen"] - rows[anchor]["unseen"])


def test_the_board_flags_collapse_and_normalizes_from_the_verified_rows(scored, tmp_path):
    from collections import Counter

    board = Board(tmp_path / "board.sqlite")
    entry = submit(load_submission(write_submission(tmp_path, model="tiny-base", results=str(scored["results"]["base"]))),
                   board)
    row = next(r for r in board_rows(board.entries(), "acc", roles=ROLES)[0] if r["id"] == entry)
    # By hand from the per-sample logs: the tasks whose predicted label shares are far from the
    # gold ones (total-variation distance >= 0.3) with no positive MCC.
    from fin_tasks.common.metrics import mcc

    collapsed = []
    for task in TASKS:
        pairs = [tuple(json.loads(line)["f1_macro"]) for line in
                 samples_file(scored["results"]["base"], task).read_text().splitlines()]
        golds, preds = Counter(g for g, _ in pairs), Counter(p for _, p in pairs)
        distance = sum(abs(golds[k] - preds[k]) for k in set(golds) | set(preds)) / (2 * len(pairs))
        if distance >= 0.3 and mcc(pairs) < 0.1:
            collapsed.append(task)
    assert row["collapsed"] == ", ".join(sorted(collapsed))
    stored = board.entries()[0].metadata["baselines"]
    assert set(stored) == set(TASKS) and all(b["normalized"]["f1_macro"] <= 1 for b in stored.values())
    # Unclipped: (score - best trivial) / (1 - best trivial), below 0 where the model is worse.
    assert row["unseen_norm"] == pytest.approx(sum(stored[t]["normalized"]["f1_macro"] for t in UNSEEN) / len(UNSEEN))
    assert "unseen_norm" in show(board.entries(), roles=ROLES)
    # Its interval, from the verified rows with the harness's own bootstrap (seeded by task name).
    from evidence.baselines import normalized_interval

    pairs = {t: ([tuple(json.loads(line)["f1_macro"]) for line in
                  samples_file(scored["results"]["base"], t).read_text().splitlines()],
                 max(b["f1_macro"] for b in stored[t]["baselines"].values())) for t in UNSEEN}
    low, high = normalized_interval(pairs)
    assert row["unseen_norm_ci"] == f"[{low:.3f}, {high:.3f}]" and low <= high
    assert "unseen_norm_ci" in show(board.entries(), roles=ROLES)


def test_show_formats_are_data_and_export_writes_dataset_files(scored, tmp_path, capsys):
    import csv

    board_file = tmp_path / "board.sqlite"
    board = Board(board_file)
    base_id = submit(load_submission(write_submission(tmp_path, model="org/tiny-base",
                                                      results=str(scored["results"]["base"]))), board)
    submit(load_submission(write_submission(tmp_path, model="tiny-tuned", model_type="fine-tuned",
                                            base_model="org/tiny-base", results=str(scored["results"]["tuned"]))), board)
    rows = {r["id"]: r for r in board_rows(board.entries(), "acc")[0]}

    # --format json: a list of objects, numbers as numbers, the same values as the board's rows.
    capsys.readouterr()
    assert main(["leaderboard", "show", "--board", str(board_file), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["id"] for d in data} == set(rows)
    for d in data:
        assert d["unseen"] == rows[d["id"]]["unseen"] and d["fin_fpb"] == rows[d["id"]]["fin_fpb"]
    # --format csv: a header and one line per entry; --format markdown: a pipe table.
    assert main(["leaderboard", "show", "--board", str(board_file), "--format", "csv"]) == 0
    parsed = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert len(parsed) == 2 and float(parsed[0]["fin_fpb"]) == data[0]["fin_fpb"]
    assert main(["leaderboard", "show", "--board", str(board_file), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("|--")
    # The default table fits a terminal; --all has every column (it was 545 characters wide).
    assert main(["leaderboard", "show", "--board", str(board_file)]) == 0
    narrow = capsys.readouterr().out
    header = [c.strip() for c in narrow.splitlines()[0].strip("|").split("|")]
    assert header[:2] == ["id", "model"] and set(header) == {"id", "model", "model_type", "unseen_rank", "unseen_norm",
                                                             "unseen_norm_ci", "seen_norm", "collapsed", "unseen_change"}
    assert max(len(line) for line in narrow.splitlines()) <= 160
    assert main(["leaderboard", "show", "--board", str(board_file), "--all"]) == 0
    wide = [c.strip() for c in capsys.readouterr().out.splitlines()[0].strip("|").split("|")]
    assert {"revision", "fin_fpb", "lineage"} <= set(wide)

    # export: contents, one results file per entry in the Open LLM Leaderboard layout, the details.
    assert main(["leaderboard", "export", str(tmp_path / "out"), "--board", str(board_file)]) == 0
    out = tmp_path / "out"
    contents = [json.loads(line) for line in (out / "contents.jsonl").read_text().splitlines()]
    assert [c["id"] for c in contents] == [e.id for e in board.entries()]
    entry = next(e for e in board.entries() if e.id == base_id)
    written = json.loads((out / "results" / "org__tiny-base" / f"results_{base_id}.json").read_text())
    assert written["config"]["model_name"] == "org/tiny-base" and written["config"]["model_sha"] == entry.revision
    assert written["results"] == entry.scores
    assert written["finharness"]["baselines"] == entry.metadata["baselines"]
    assert undeclared(entry.metadata, EntryMetadata) == []  # evidence/records.py declares every key
    for task in TASKS:
        copied = samples_file(out / "details" / "org__tiny-base" / str(base_id), task)
        assert copied.read_bytes() == samples_file(Path(entry.results_path), task).read_bytes()


def test_the_old_column_names_still_sort_with_a_notice(caplog):
    """finharness 0.2's `forgetting` (a signed change that read the wrong way) is `unseen_change`."""
    from leaderboard.table import sort_rows

    rows = [{"id": 1, "unseen_norm": 0.1, "unseen_change": -0.2}, {"id": 2, "unseen_norm": 0.2, "unseen_change": 0.1}]
    assert [r["id"] for r in sort_rows(rows, "forgetting")] == [2, 1]
    assert "column forgetting is now unseen_change" in caplog.text


def test_a_rank_counts_the_entries_significantly_better_on_paired_draws():
    """Three entries on the same documents: A is clearly ahead; B and C differ by 0.01 on
    documents that move all three together. B and C share ranks 2-3; A is 1 of 3. A pair whose
    scores move together is told apart by its paired difference where marginal rank bands
    (the board's rule before 2026-12-07) would overlap."""
    import numpy as np

    from leaderboard.ranks import band_text, ranks_from

    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.05, 1000)  # the documents' draw moves every entry alike
    points = np.array([0.60, 0.30, 0.29])
    reps = np.stack([p + shared + rng.normal(0, 0.01, 1000) for p in points])
    assert [band_text(r) for r in ranks_from(points, reps)] == ["1 of 3", "2 (2-3) of 3", "3 (2-3) of 3"]

    close = np.array([0.31, 0.29])  # 0.02 apart, always in the same order on every draw
    together = np.stack([p + shared + rng.normal(0, 0.002, 1000) for p in close])
    assert [band_text(r) for r in ranks_from(close, together)] == ["1 of 2", "2 of 2"]
    marginal = np.stack([np.quantile(together[k], [0.025, 0.975]) for k in range(2)])
    assert marginal[1, 1] > marginal[0, 0]  # their marginal intervals overlap
