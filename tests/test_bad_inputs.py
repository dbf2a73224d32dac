"""The catalogue of bad inputs: one case per hole a probe found, each refused with a clear
message and no damage done. Numbers are the items of the issue that listed them."""
import json
import sqlite3
import shutil
from pathlib import Path

import pytest
import yaml

from harness.evaluate import EvalRequest, run_eval
from harness.result_files import results_file, samples_file
from leaderboard.render import render_html
from leaderboard.store import Board
from leaderboard.submission import SubmissionError, load_submission
from leaderboard.submit import submit
from leaderboard.verify import _task_hash
from tests.conftest import build_tiny_checkpoint


@pytest.fixture(scope="module")
def five_docs(tmp_path_factory):
    """An honest `finharness eval --limit 5` folder on a tiny model (a seeded, stratified slice)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    model = build_tiny_checkpoint(root / "model")
    out = root / "eval"
    run_eval(EvalRequest(model=str(model), tasks=["fin_fpb"], limit=5, batch_size=8, chat_template="off",
                         output_path=out))
    return out


@pytest.fixture(scope="module")
def first_five(tmp_path_factory):
    """The same with lm-eval's own --limit (the first five documents)."""
    root = tmp_path_factory.mktemp("bad-inputs-first")
    model = build_tiny_checkpoint(root / "model")
    run_eval(EvalRequest(model=str(model), tasks=["fin_fpb"], limit=5, sample="first", chat_template="off",
                         output_path=root / "eval"))
    return root / "eval"


def submission(folder: Path, **fields) -> Path:
    data = {"model_type": "pretrained", "weight_type": "original", "precision": "float32", "chat_template": False,
            "model": "m", **fields}
    path = folder / "submission.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def rows_of(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def recompute(folder: Path, task: str, rows: list[dict]) -> None:
    """What a careful forger does after editing a log: aggregates, counts and hashes to match."""
    from lm_eval.tasks import get_task_dict

    from fin_tasks import task_manager

    samples_file(folder, task).write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = results_file(folder)
    data = json.loads(path.read_text())
    aggregation = get_task_dict([task], task_manager())[task].aggregation()
    for key in list(data["results"][task]):
        metric = key.partition(",")[0]
        if metric in aggregation and "stderr" not in metric:
            data["results"][task][key] = float(aggregation[metric]([r[metric] for r in rows]))
    data["n-samples"][task] = {"original": 970, "effective": len(rows)}
    data["task_hashes"][task] = _task_hash(rows)
    path.write_text(json.dumps(data))


def cherry_picked(source: Path, tmp_path: Path, declare) -> Path:
    """A copy of ``source`` keeping only rows 0 and 3 of FPB (say, the two answered correctly),
    every aggregate recomputed to match, and the results edited by ``declare`` to claim a
    slice of two."""
    forged = shutil.copytree(source, tmp_path / "forged")
    rows = rows_of(samples_file(forged, "fin_fpb"))
    recompute(forged, "fin_fpb", [rows[0], rows[3]])
    data = json.loads(results_file(forged).read_text())
    declare(data)
    results_file(forged).write_text(json.dumps(data))
    return forged


def test_01_cherry_picked_rows_are_refused(five_docs, tmp_path):
    forged = cherry_picked(five_docs, tmp_path, lambda data: data["finharness"]["slice"].update(limit=2))
    board = Board(tmp_path / "board.sqlite")
    with pytest.raises(ValueError, match=r"a stratified slice of 2 \(seed 1234\) selects 2 documents of fin_fpb, "
                                         r"but the log holds 2 rows \(missing doc_id"):
        submit(load_submission(submission(tmp_path, results=str(forged))), board)
    assert board.entries() == []


def test_01_cherry_picked_rows_of_a_first_n_run_are_refused(first_five, tmp_path):
    forged = cherry_picked(first_five, tmp_path, lambda data: data["config"].update(limit=2.0))
    board = Board(tmp_path / "board.sqlite")
    with pytest.raises(ValueError, match=r"limit 2 selects documents 0-1 of fin_fpb, but the log holds 2 rows "
                                         r"\(missing doc_id 1; doc_id 3 not selected\)"):
        submit(load_submission(submission(tmp_path, results=str(forged))), board)
    assert board.entries() == []


def test_02_a_partial_run_cannot_pass_as_the_whole_test_split(five_docs, tmp_path):
    forged = shutil.copytree(five_docs, tmp_path / "forged")
    data = json.loads(results_file(forged).read_text())
    data["config"]["limit"] = None
    data["finharness"]["slice"] = {"method": None, "seed": 1234, "limit": None}
    results_file(forged).write_text(json.dumps(data))
    board = Board(tmp_path / "board.sqlite")
    with pytest.raises(ValueError, match=r"no limit \(the whole test split\) selects documents 0-969 of fin_fpb, "
                                         r"but the log holds 5 rows \(missing doc_id"):
        submit(load_submission(submission(tmp_path, results=str(forged))), board)
    # The honest folder is taken, and its slice is the one its rows were checked against.
    entry_id = submit(load_submission(submission(tmp_path, results=str(five_docs))), board)
    settings = board.entries()[0].settings
    settings = settings if isinstance(settings, dict) else json.loads(settings)
    assert (settings["limit"], settings["sample"], settings["seed"]) == (5, "stratified", 1234)
    assert entry_id == board.entries()[0].id


def test_03_a_script_link_as_recipe_is_refused_and_never_rendered_as_a_link(five_docs, tmp_path):
    with pytest.raises(SubmissionError, match=r"recipe.*'javascript:alert\(1\)//://': give a local path or an http"):
        load_submission(submission(tmp_path, results=str(five_docs), recipe="javascript:alert(1)//://"))
    # A board written before this check: the stored value is shown as text, never as an href.
    board = Board(tmp_path / "board.sqlite")
    submit(load_submission(submission(tmp_path, results=str(five_docs), recipe="https://example.org/r.yaml")), board)
    with sqlite3.connect(board.path) as db:
        db.execute("UPDATE entries SET recipe = ?", ("javascript:alert(1)//://",))
    html = render_html(board.entries())
    assert "javascript:alert(1)" in html  # shown, escaped as text
    assert 'href="javascript' not in html.replace(" ", "")


def test_04_a_symlink_in_a_submitted_folder_is_refused_and_nothing_is_copied(five_docs, tmp_path):
    private = tmp_path / "private.txt"
    private.write_text("a secret of the board's machine")
    submitted = shutil.copytree(five_docs, tmp_path / "submitted")
    (submitted / "notes.txt").symlink_to(private)
    board = Board(tmp_path / "board.sqlite")
    with pytest.raises(SubmissionError, match=r"symbolic link\(s\) notes\.txt; submit plain files only"):
        submit(load_submission(submission(tmp_path, results=str(submitted))), board)
    assert board.entries() == [] and not (tmp_path / "results").exists()


def pickle_beside_a_decoy(tiny_checkpoint: Path, folder: Path) -> Path:
    """A checkpoint folder whose real weights are a pickle, with a decoy safetensors file."""
    shutil.copytree(tiny_checkpoint, folder)
    (folder / "model.safetensors").rename(folder / "decoy.safetensors")
    (folder / "pytorch_model.bin").write_bytes(b"pickle bytes that would run code")
    return folder


def test_05_06_pickle_weights_are_refused_before_anything_loads_them(tiny_checkpoint, tmp_path):
    from plumbing.checkpoints import CheckpointError

    folder = pickle_beside_a_decoy(tiny_checkpoint, tmp_path / "decoy")
    # Refused up front, so neither transformers' unpickling nor a stale request cache is reached.
    with pytest.raises(CheckpointError, match=r"decoy: pickle weight file\(s\) pytorch_model\.bin; only safetensors"):
        run_eval(EvalRequest(model=str(folder), tasks=["fin_fpb"], limit=2, chat_template="off"))


def test_07_merge_never_deletes_what_a_user_put_in_its_output_folder(tiny_checkpoint, tmp_path):
    from merges.recipe import parse_merge_recipe
    from merges.run import merge_recipe
    from tests.conftest import perturbed_copy
    from training.recipe import RecipeError

    models = [perturbed_copy(tiny_checkpoint, tmp_path / f"ft{i}", seed=i) for i in range(2)]
    recipe = parse_merge_recipe({"name": "ta", "method": "task_arithmetic", "base_model": str(tiny_checkpoint),
                                 "models": [{"model": str(m), "weight": 0.5} for m in models],
                                 "output_dir": str(tmp_path / "merges")})
    mine = tmp_path / "merges" / "ta" / "my-notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("keep me")
    with pytest.raises(RecipeError, match=r"merges/ta exists and is not a finished finharness merge"):
        merge_recipe(recipe)
    assert mine.read_text() == "keep me"


@pytest.mark.parametrize("flag, value, message", [
    ("--num_fewshot", "-1", r"--num_fewshot must be 0 or more, not -1"),  # 08
    ("--limit", "nan", r"--limit must be a positive, finite number, not nan"),  # 20
    ("--limit", "inf", r"--limit must be a positive, finite number, not inf"),  # 21
    ("--limit", "1.5", r"--limit 1.5: a count of documents must be a whole number"),  # round 3: scored 1 doc
])
def test_08_20_21_eval_refuses_bad_counts_before_loading_a_model(flag, value, message, capsys):
    from finharness.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--model", "/nowhere/never-loaded", flag, value])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_08_a_negative_shot_count_in_submitted_results_is_refused(five_docs, tmp_path):
    forged = shutil.copytree(five_docs, tmp_path / "forged")
    data = json.loads(results_file(forged).read_text())
    data["n-shot"]["fin_fpb"] = -1
    results_file(forged).write_text(json.dumps(data))
    with pytest.raises(SubmissionError, match=r"n-shot holds a negative count -1"):
        submit(load_submission(submission(tmp_path, results=str(forged))), Board(tmp_path / "board.sqlite"))


def test_16_an_infinite_epoch_count_is_refused_before_a_run_folder_exists(tiny_checkpoint, tmp_path):
    from training.recipe import RecipeError, parse_recipe

    with pytest.raises(RecipeError, match=r"training\.epochs"):
        parse_recipe({"name": "r", "base_model": str(tiny_checkpoint), "output_dir": str(tmp_path / "runs"),
                      "tasks": [{"name": "fin_fpb", "samples": 4}], "training": {"epochs": float("inf")}})
    assert not (tmp_path / "runs").exists()


def test_19_a_relative_checkpoint_is_the_submission_files_not_the_working_directorys(tmp_path, monkeypatch):
    (tmp_path / "subs").mkdir()
    path = submission(tmp_path / "subs", checkpoint="../../etc")
    monkeypatch.chdir("/")  # from here, ../../etc would be /etc
    assert load_submission(path).checkpoint == str((tmp_path / "subs" / "../../etc").resolve())
    # An embedded model's name is a name, not a path.
    assert load_submission(submission(tmp_path / "subs", checkpoint="gemma3-270m")).checkpoint == "gemma3-270m"


def test_22_24_the_package_states_what_it_needs():
    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"  # the pinned transformers and lm-eval need 3.11
    assert not any(dep.startswith("trl") for dep in project["dependencies"])  # only a benchmark uses TRL
    assert any(dep.startswith("trl") for dep in project["optional-dependencies"]["bench"])


def _pins(name: str) -> dict[str, str]:
    from packaging.utils import canonicalize_name

    lines = (Path(__file__).parents[1] / name).read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in lines]
    return {canonicalize_name(p.split("==")[0]): p.split("==")[1] for p in pins if "==" in p}


@pytest.mark.parametrize("constraints,extras", [("constraints.txt", ("test", "bench")),
                                                ("constraints-vllm.txt", ("test", "bench", "vllm"))])
def test_23_each_tested_point_lies_inside_the_declared_ranges(constraints, extras):
    """pyproject.toml declares ranges; each constraints file is a point the suite passed on
    (CPU; and the set `finharness[vllm]` resolves to: vLLM 0.33 needs torch 2.14 and
    transformers <5.21). Every direct dependency is pinned, and every pin is in range."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    deps = [Requirement(d) for d in project["dependencies"]]
    deps += [Requirement(d) for e in extras for d in project["optional-dependencies"][e]]
    pins = _pins(constraints)
    for req in deps:
        name = canonicalize_name(req.name)
        assert name in pins, f"{constraints} does not pin {req.name}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{constraints}: {req.name}=={pins[name]} " \
                                                                      f"is outside pyproject's {req.specifier}"


def test_23_vllm_extra_needs_the_other_end_of_the_ranges():
    cpu, gpu = _pins("constraints.txt"), _pins("constraints-vllm.txt")
    assert (cpu["torch"], cpu["transformers"]) == ("2.13.0", "5.23.0")
    assert (gpu["torch"], gpu["transformers"], gpu["vllm"]) == ("2.14.0", "5.20.2", "0.33.0")
    install = (Path(__file__).parents[1] / "install.sh").read_text()
    assert "constraints.txt" in install and "constraints-vllm.txt" in install and "--vllm" in install


def test_25_written_files_follow_the_umask(tmp_path):
    import os

    from plumbing.atomic import write_atomic

    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "page.html", "<p>board</p>")
    finally:
        os.umask(old)
    assert (tmp_path / "page.html").stat().st_mode & 0o777 == 0o644


# --- user tasks: validate names the file, the field, the line --------------------------

from tests.test_validation import ALL_SPLITS, GOOD_BODY, ROWS, write_task  # noqa: E402


@pytest.mark.parametrize("metric", ["f1_macroo", "recall"])  # 09: a typo; 11: a metric the task never makes
def test_09_11_a_metric_the_task_does_not_produce_is_named(tmp_path, metric):
    from fin_tasks.common.validate import TaskYamlError, validate_file

    body = GOOD_BODY + f"metric_list:\n  - metric: acc\n    aggregation: mean\n  - metric: {metric}\n    aggregation: mean\n"
    with pytest.raises(TaskYamlError, match=rf"fin_demo\.yaml: field metric_list names \['{metric}'\], which its "
                                            r"process_results \(process_results_mc_both\) does not produce"):
        validate_file(write_task(tmp_path, body, ALL_SPLITS))


def test_12_a_yml_file_is_named_not_skipped(tmp_path):
    from fin_tasks.common.validate import validate_paths

    path = write_task(tmp_path, GOOD_BODY, ALL_SPLITS)
    path.rename(path.with_suffix(".yml"))
    _, errors = validate_paths([tmp_path])
    assert errors == [f"{tmp_path / 'fin_demo.yml'}: lm-eval only reads task files ending in .yaml; "
                      "rename it to fin_demo.yaml"]


def test_13_an_empty_text_is_refused_naming_the_row(tmp_path):
    from fin_tasks.common.validate import TaskYamlError, validate_file

    rows = {**ALL_SPLITS, "validation": ROWS[:1] + [{"id": "x", "text": "  \n", "label": "up"}]}
    with pytest.raises(TaskYamlError, match=r"data/validation\.jsonl:2: field 'text' is empty"):
        validate_file(write_task(tmp_path, GOOD_BODY, rows))


def test_13_the_packaged_data_has_no_empty_text():
    """FinCausal shipped 4 empty sentences; the build script now drops them after its shuffle."""
    from fin_tasks import TASKS_DIR
    from fin_tasks.common.data import read_jsonl

    for path in sorted(TASKS_DIR.glob("*/data/*.jsonl")):
        assert all(row["text"].strip() for row in read_jsonl(path)), path


def test_14_a_null_text_is_refused_naming_the_row(tmp_path):
    from fin_tasks.common.validate import TaskYamlError, validate_file

    rows = {**ALL_SPLITS, "test": ROWS[:2] + [{"id": "x", "text": None, "label": "up"}]}
    with pytest.raises(TaskYamlError, match=r"data/test\.jsonl:3: field\(s\) \['text'\] are null"):
        validate_file(write_task(tmp_path, GOOD_BODY, rows))


def test_15_non_utf8_data_names_file_line_and_byte(tmp_path):
    from fin_tasks.common.validate import TaskYamlError, validate_file

    path = write_task(tmp_path, GOOD_BODY, ALL_SPLITS)
    test = tmp_path / "data" / "test.jsonl"
    test.write_bytes(test.read_bytes() + '{"id": "z", "text": "caf\u00e9", "label": "up"}\n'.encode("latin-1"))
    with pytest.raises(TaskYamlError, match=r"data/test\.jsonl:7: not UTF-8 text \(byte 0xe9 at column 25\)"):
        validate_file(path)


def test_17_a_weight_given_to_slerp_is_refused_not_dropped(tiny_checkpoint, tmp_path):
    from merges.recipe import parse_merge_recipe
    from merges.run import merge_recipe
    from training.recipe import RecipeError

    recipe = {"name": "s", "method": "slerp", "base_model": str(tiny_checkpoint), "parameters": {"t": 0.5},
              "models": [{"model": str(tiny_checkpoint), "weight": 0.3}], "output_dir": str(tmp_path / "out")}
    with pytest.raises(RecipeError, match=r"models\.0 .*: method slerp takes no weight \(slerp's mix is parameters\.t\)"):
        merge_recipe(parse_merge_recipe(recipe))
    assert not (tmp_path / "out").exists()


def test_18_a_checkpoint_without_tokenizer_files_names_the_folder(tiny_checkpoint, tmp_path):
    from plumbing.checkpoints import CheckpointError

    folder = shutil.copytree(tiny_checkpoint, tmp_path / "no-tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(CheckpointError, match=r"no-tokenizer has no tokenizer files \(none of tokenizer\.json"):
        run_eval(EvalRequest(model=str(folder), tasks=["fin_fpb"], limit=2, chat_template="off"))


def test_serving_a_board_that_does_not_exist_says_so(tmp_path, capsys):
    # Round three: `leaderboard serve --board` on a missing path served "0 entries" without a word.
    from finharness.main import main

    missing = tmp_path / "nope" / "board.sqlite"
    assert main(["leaderboard", "serve", "--board", str(missing)]) == 2
    assert f"leaderboard serve: no board at {missing}" in capsys.readouterr().err
    assert not missing.exists()
