"""Submissions, verified results, the board's store and its export: refused with the file and
field named, the board left as it was."""
import json
import shutil
import sqlite3

import pytest
import yaml

from evidence.result_files import results_file
from leaderboard.render import render_html
from leaderboard.store import Board
from leaderboard.submission import SubmissionError, load_submission
from leaderboard.submit import submit
from tests.bad_input.forgery import cherry_picked, submission


def test_cherry_picked_rows_are_refused(five_docs, tmp_path):
    forged = cherry_picked(five_docs, tmp_path, lambda data: data["finharness"]["slice"].update(limit=2))
    board = Board(tmp_path / "board.sqlite")
    with pytest.raises(ValueError, match=r"a stratified slice of 2 \(seed 1234\) selects 2 documents of fin_fpb, "
                                         r"but the log holds 2 rows \(missing doc_id"):
        submit(load_submission(submission(tmp_path, results=str(forged))), board)
    assert board.entries() == []


def test_cherry_picked_rows_of_a_first_n_run_are_refused(first_five, tmp_path):
    forged = cherry_picked(first_five, tmp_path, lambda data: data["config"].update(limit=2.0))
    board = Board(tmp_path / "board.sqlite")
    with pytest.raises(ValueError, match=r"limit 2 selects documents 0-1 of fin_fpb, but the log holds 2 rows "
                                         r"\(missing doc_id 1; doc_id 3 not selected\)"):
        submit(load_submission(submission(tmp_path, results=str(forged))), board)
    assert board.entries() == []


def test_a_partial_run_cannot_pass_as_the_whole_test_split(five_docs, tmp_path):
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
    assert (settings["limit"], settings["sample"], settings["seed"]) == (5, "stratified", 1234)
    assert entry_id == board.entries()[0].id


def test_a_negative_shot_count_in_submitted_results_is_refused(five_docs, tmp_path):
    forged = shutil.copytree(five_docs, tmp_path / "forged")
    data = json.loads(results_file(forged).read_text())
    data["n-shot"]["fin_fpb"] = -1
    results_file(forged).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"n-shot\.fin_fpb is -1, not a whole number of examples"):
        submit(load_submission(submission(tmp_path, results=str(forged))), Board(tmp_path / "board.sqlite"))


def _edit(source, tmp_path, edit):
    forged = shutil.copytree(source, tmp_path / "forged")
    data = json.loads(results_file(forged).read_text())
    edit(data)
    results_file(forged).write_text(json.dumps(data))
    return forged


@pytest.mark.parametrize("edit, message", [
    # BD1: one field edited: the three statements of the count disagree.
    (lambda d: d["n-shot"].update(fin_fpb=0), r"the few-shot counts disagree \(n-shot\.fin_fpb=0, "
                                              r"configs\.fin_fpb\.num_fewshot=3, finharness\.num_fewshot=3\)"),
    (lambda d: d["n-shot"].update(fin_fpb="3"), r"n-shot\.fin_fpb is '3', not a whole number of examples"),
    # Every statement edited alike: the prompts themselves still hold three examples.
    (lambda d: (d["n-shot"].update(fin_fpb=0), d["configs"]["fin_fpb"].update(num_fewshot=0),
                d["finharness"].update(num_fewshot=0)),
     r"doc \d+'s logged prompt holds 3 example\(s\) from fin_fpb's few-shot pool, but the results state 0"),
])
def test_a_forged_shot_count_cannot_enter_the_board_as_another_setting(three_shots, tmp_path, edit, message):
    board = Board(tmp_path / "board.sqlite")
    with pytest.raises(ValueError, match=message):
        submit(load_submission(submission(tmp_path, results=str(_edit(three_shots, tmp_path, edit)))), board)
    assert board.entries() == []


def test_honest_few_shot_results_enter_with_the_count_their_prompts_show(three_shots, five_docs, tmp_path):
    board = Board(tmp_path / "board.sqlite")
    submit(load_submission(submission(tmp_path, model="three", results=str(three_shots))), board)
    submit(load_submission(submission(tmp_path, model="zero", results=str(five_docs))), board)
    assert {e.model: e.settings["num_fewshot"] for e in board.entries()} == {"three": 3, "zero": 0}


def test_zero_shot_results_that_hide_examples_in_their_prompts_are_refused(five_docs, three_shots, tmp_path):
    """The converse forgery: a 3-shot run's prompts under a 0-shot run's statements."""
    from evidence.result_files import samples_file

    forged = shutil.copytree(five_docs, tmp_path / "forged")
    three = {json.loads(line)["doc_id"]: json.loads(line)["arguments"]
             for line in samples_file(three_shots, "fin_fpb").read_text().splitlines()}
    log = samples_file(forged, "fin_fpb")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    log.write_text("".join(json.dumps({**r, "arguments": three[r["doc_id"]]}) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"holds 3 example\(s\) from fin_fpb's few-shot pool, but the results state 0"):
        submit(load_submission(submission(tmp_path, results=str(forged))), Board(tmp_path / "board.sqlite"))


def test_a_script_link_as_recipe_is_refused_and_never_rendered_as_a_link(five_docs, tmp_path):
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


def test_a_symlink_in_a_submitted_folder_is_refused_and_nothing_is_copied(five_docs, tmp_path):
    private = tmp_path / "private.txt"
    private.write_text("a secret of the board's machine")
    submitted = shutil.copytree(five_docs, tmp_path / "submitted")
    (submitted / "notes.txt").symlink_to(private)
    board = Board(tmp_path / "board.sqlite")
    with pytest.raises(SubmissionError, match=r"symbolic link\(s\) notes\.txt; submit plain files only"):
        submit(load_submission(submission(tmp_path, results=str(submitted))), board)
    assert board.entries() == [] and not (tmp_path / "results").exists()


def test_a_relative_checkpoint_is_the_submission_files_not_the_working_directorys(tmp_path, monkeypatch):
    (tmp_path / "subs").mkdir()
    path = submission(tmp_path / "subs", checkpoint="../../etc")
    monkeypatch.chdir("/")  # from here, ../../etc would be /etc
    assert load_submission(path).checkpoint == str((tmp_path / "subs" / "../../etc").resolve())
    # An embedded model's name is a name, not a path.
    assert load_submission(submission(tmp_path / "subs", checkpoint="gemma3-270m")).checkpoint == "gemma3-270m"


# --- recipe: only a finharness recipe, from the submission's folder or recipes/ ---------------

MERGE = {"name": "ta", "method": "task_arithmetic", "base_model": "smollm2-135m-instruct",
         "models": [{"model": "runs/fpb-lora", "weight": 0.5}]}


def put(folder, text: str) -> str:
    (folder / "r.yaml").write_text(text)
    return "r.yaml"


def link(folder, target) -> str:
    (folder / "r.yaml").symlink_to(target)
    return "r.yaml"


@pytest.mark.parametrize("make, message", [
    (lambda d, key: "/etc/hostname", r"/etc/hostname is outside .* a recipe must live beside the submission"),
    (lambda d, key: link(d, key), r"r\.yaml is a symbolic link"),
    (lambda d, key: put(d, "name: x\nmethod: task_arithmetic\n"),
     r"r\.yaml is not a finharness recipe\n  as a merge recipe: .*models: required key is missing"),
    (lambda d, key: put(d, key.read_text()), r"r\.yaml is not a finharness recipe"),
    (lambda d, key: put(d, "# pad\n" * 20000 + yaml.safe_dump(MERGE)), r"r\.yaml is 1\d{5} bytes; a recipe is under 64 KiB"),
])
def test_a_recipe_that_is_not_a_recipe_here_is_refused_and_nothing_is_stored(five_docs, tmp_path, make, message):
    folder = tmp_path / "sub"
    folder.mkdir()
    key = tmp_path / "id_rsa"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n")
    board = Board(tmp_path / "board.sqlite")
    with pytest.raises(SubmissionError, match=message):
        submit(load_submission(submission(folder, results=str(five_docs), recipe=make(folder, key))), board)
    assert board.entries() == []


def test_a_recipe_is_stored_parsed_and_re_serialized(five_docs, tmp_path):
    (tmp_path / "r.yaml").write_text("# my notes, not stored\n" + yaml.safe_dump(MERGE))
    board = Board(tmp_path / "board.sqlite")
    submit(load_submission(submission(tmp_path, results=str(five_docs), recipe="r.yaml")), board)
    stored = yaml.safe_load(board.entries()[0].recipe_text)
    assert stored["models"] == [{"model": "runs/fpb-lora", "weight": 0.5, "density": None}]
    assert stored["dtype"] == "float32" and "my notes" not in board.entries()[0].recipe_text


# --- one definition per task name on a board ----------------------------------------------

def test_a_user_task_redefined_under_a_pinned_name_is_refused_naming_the_file(five_docs, tmp_path):
    """Two submitters' own `fin_earnings_tone`: the second copy's gold labels differ. The first
    accepted definition pins the name; the second is refused, naming the file that differs."""
    from leaderboard.store import TaskRedefined

    honest = {"fin_earnings_tone": {"yaml": "/a/fin_earnings_tone.yaml",
                                    "files": {"fin_earnings_tone.yaml": "aa" * 32, "data/test.jsonl": "bb" * 32}}}
    forged = {"fin_earnings_tone": {"yaml": "/b/fin_earnings_tone.yaml",
                                    "files": {"fin_earnings_tone.yaml": "aa" * 32, "data/test.jsonl": "cc" * 32}}}
    board = Board(tmp_path / "board.sqlite")

    def entry(model, external):
        return dict(model=model, revision="r", precision="float32", weight_type="original", chat_template=False,
                    settings=json.dumps({"model": model}), model_type="pretrained", base_model=None, recipe=None,
                    recipe_text=None, results_path="-", scores={}, docs={}, metadata={"external_tasks": external})

    first = board.add(entry("first", honest))
    with pytest.raises(TaskRedefined, match=rf"task fin_earnings_tone: .* pinned its definition at entry {first}, "
                                            r"and this submission's files differ: data/test\.jsonl \(sha256 cccccccc"):
        board.check_new(entry("second", forged))
    with pytest.raises(TaskRedefined):  # and again inside add's transaction, for a racing submitter
        board.add(entry("second", forged))
    assert [e.model for e in board.entries()] == ["first"]
    board.add(entry("third", honest))  # the same files are welcome


def test_the_same_forgery_through_submit_is_refused(tmp_path):
    """End to end: the README's held-out task scored twice, the second time with every test label
    rewritten; the board keeps the first definition."""
    from finharness.main import main
    from tests.helpers.checkpoints import build_tiny_checkpoint
    from tests.helpers.tasks import HELD_OUT_TASK as TASK, readme_files

    model = build_tiny_checkpoint(tmp_path / "model")
    boards = tmp_path / "board.sqlite"
    for who, relabel in (("alice", False), ("mallory", True)):
        root = tmp_path / who
        folder = root / "my_tasks" / TASK
        (folder / "data").mkdir(parents=True)
        for path, body in readme_files().items():
            if path.startswith("my_tasks/"):
                (root / path).write_text(body)
        from fin_tasks import TASKS_DIR
        shutil.copy(TASKS_DIR / "_multiple_choice_yaml", folder)
        test = folder / "data" / "test.jsonl"
        if relabel:
            rows = [json.loads(line) for line in test.read_text().splitlines()]
            test.write_text("".join(json.dumps({**r, "label": "positive"}) + "\n" for r in rows))
        assert main(["eval", "-m", str(model), "--include_path", str(root / "my_tasks"), "-t", TASK,
                     "--chat_template", "off", "-o", str(root / "results")]) == 0
        sub = submission(root, model=who, results="results", include_paths=["my_tasks"])
        code = main(["leaderboard", "submit", str(sub), "--board", str(boards)])
        assert code == (2 if relabel else 0)
    assert [e.model for e in Board(boards).entries()] == ["alice"]


def test_a_user_folder_cannot_replace_a_packaged_task(tmp_path):
    """Packaged tasks are pinned by the package: a user's fin_fpb.yaml is named, never scored."""
    from fin_tasks import TASKS_DIR
    from fin_tasks.common.validate import validate_paths

    mine = tmp_path / "mine" / "fin_fpb"
    shutil.copytree(TASKS_DIR / "fpb", mine)
    for template in TASKS_DIR.glob("_*yaml"):
        shutil.copy(template, tmp_path / "mine")
    _, errors = validate_paths([TASKS_DIR, tmp_path / "mine"], with_data=False)
    assert any(f"{mine / 'fin_fpb.yaml'}: name 'fin_fpb' is already defined in " in e for e in errors), errors


# --- export writes only inside its folder -------------------------------------------------

def _entry(board: Board, model: str) -> int:
    return board.add(dict(model=model, revision="r", precision="float32", weight_type="original", chat_template=False,
                          settings="{}", model_type="pretrained", base_model=None, recipe=None, recipe_text=None,
                          results_path="-", scores={"fin_fpb": {"acc": 0.5}}, docs={"fin_fpb": 5}, metadata={}))


def test_export_names_are_single_safe_folders(tmp_path):
    from leaderboard.export import export, safe_name

    assert [safe_name(n) for n in ("..", ".", "a/../b", "org/name", "x\\y")] == ["__", "_", "a__..__b", "org__name", "x__y"]
    board = Board(tmp_path / "board.sqlite")
    _entry(board, "..")
    export(board.entries(), tmp_path / "out")
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert "out/results/__/results_1.json" in written
    assert all(p.startswith("out/") or p.startswith("board.sqlite") for p in written), written


def test_export_never_writes_through_a_link_or_into_a_file(tmp_path):
    from leaderboard.export import export

    board = Board(tmp_path / "board.sqlite")
    _entry(board, "m")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "results").symlink_to(elsewhere)
    with pytest.raises(ValueError, match=r"out/results is a symbolic link; export writes only inside"):
        export(board.entries(), out)
    assert list(elsewhere.iterdir()) == []
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ValueError, match=r"file is a file, not a folder"):
        export(board.entries(), tmp_path / "file")
    assert (tmp_path / "file").read_text() == "mine"


def test_a_model_name_that_reads_as_mathtext_renders_as_text(five_docs, tmp_path):
    """V5: one name holding `$\\frac{$` stopped `leaderboard render` for the whole board."""
    board = Board(tmp_path / "board.sqlite")
    submit(load_submission(submission(tmp_path, model="m $\\frac{$ x", results=str(five_docs))), board)
    html = render_html(board.entries())
    assert "m $\\frac{$ x" in html


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["results"]["fin_fpb"].update({"acc,none": 10 ** 400}), r"results\.fin_fpb\.acc,none is '1000"),  # BD5
    (lambda d: d["results"]["fin_fpb"].update({"acc,none": "0.9"}), r"results\.fin_fpb\.acc,none is '0\.9', not a "
                                                                     r"finite number"),  # BD6
    (lambda d: d["finharness"]["slice"].update(seed=-5), r"finharness\.slice\.seed is -5, not a whole number in "
                                                         r"\[0, 2\*\*32\)"),  # BD8
])
def test_a_results_file_with_an_unreadable_value_is_named(five_docs, tmp_path, edit, message):
    board = Board(tmp_path / "board.sqlite")
    with pytest.raises(ValueError, match=message):
        submit(load_submission(submission(tmp_path, results=str(_edit(five_docs, tmp_path, edit)))), board)
    assert board.entries() == []


def test_a_deeply_nested_results_file_is_named_not_a_recursion_error(five_docs, tmp_path):  # BD11
    forged = shutil.copytree(five_docs, tmp_path / "forged")
    results_file(forged).write_text('{"results": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ValueError, match=r"not an lm-eval results file \(RecursionError"):
        submit(load_submission(submission(tmp_path, results=str(forged))), Board(tmp_path / "board.sqlite"))


@pytest.mark.parametrize("field, value", [("model", "gpt\u202eevil"), ("model", "ok\x1b[2Kforged"),
                                          ("revision", "abc\x07")])
def test_a_name_that_would_rewrite_the_terminal_or_reorder_the_page_is_refused(five_docs, tmp_path, field, value):
    """BD12: ANSI escapes and bidi overrides in a model name or revision reached `show` raw."""
    with pytest.raises(SubmissionError, match=rf"`{field}` holds control or bidi-override characters"):
        load_submission(submission(tmp_path, results=str(five_docs), **{field: value}))


def test_show_escapes_what_an_older_board_holds(tmp_path):
    from leaderboard.table import show

    board = Board(tmp_path / "board.sqlite")
    _entry(board, "gpt\u202eevil\x1b[2K")
    table = show(board.entries())
    assert "\u202e" not in table and "\x1b" not in table and "gpt\\u202eevil\\x1b[2K" in table


def test_show_on_a_folder_says_it_is_a_folder(tmp_path, capsys):  # BD17
    from finharness.main import main

    assert main(["leaderboard", "show", "--board", str(tmp_path)]) == 2
    assert f"{tmp_path}: a folder, not a board file" in capsys.readouterr().err


# --- cases of this round's own (beyond the probe's list) ------------------------------------

def test_a_pipe_named_like_a_results_file_is_refused_before_it_is_read(five_docs, tmp_path):
    """A FIFO named results_x.json would block the board's read forever."""
    import os

    submitted = shutil.copytree(five_docs, tmp_path / "submitted")
    os.mkfifo(next(submitted.rglob("results_*.json")).with_name("results_2099-01-01T00-00-00.json"))
    with pytest.raises(SubmissionError, match=r"is not a plain file \(a pipe, socket or device\)"):
        submit(load_submission(submission(tmp_path, results=str(submitted))), Board(tmp_path / "board.sqlite"))


@pytest.mark.parametrize("field, value, message", [
    ("limit", float("inf"), r"limit: Input should be a finite number"),
    ("seed", -5, r"seed: Input should be greater than or equal to 0"),
    ("model", "m" * 201, r"model: String should have at most 200 characters"),
    ("notes", "n" * 10_001, r"notes: String should have at most 10000 characters"),
])
def test_submission_fields_out_of_range_are_named(five_docs, tmp_path, field, value, message):
    with pytest.raises(SubmissionError, match=message):
        load_submission(submission(tmp_path, results=str(five_docs), **{field: value}))


def test_an_alias_bomb_in_a_submission_file_is_refused_before_it_expands(tmp_path):
    from tests.helpers.tasks import alias_bomb

    path = tmp_path / "submission.yaml"
    path.write_text(alias_bomb() + "model: *a9\n")
    with pytest.raises(SubmissionError, match=r"its YAML aliases expand to more than 100,000 nodes"):
        load_submission(path)


def test_an_include_path_that_is_not_a_task_folder_is_refused_without_walking_it(five_docs, tmp_path):
    """include_paths: ['/'] made the board walk the whole filesystem."""
    from fin_tasks import sandbox

    big = tmp_path / "big"
    big.mkdir()
    for i in range(12):
        (big / f"f{i}").write_text("")
    sandbox.MAX_FOLDER_FILES, old = 10, sandbox.MAX_FOLDER_FILES
    try:
        with pytest.raises(SubmissionError, match=r"big: holds more than 10 files: not a task folder"):
            submit(load_submission(submission(tmp_path, results=str(five_docs), include_paths=["big"])),
                   Board(tmp_path / "board.sqlite"))
    finally:
        sandbox.MAX_FOLDER_FILES = old


@pytest.mark.parametrize("trick", ["link", "data_dir"])
def test_a_task_folder_reading_files_outside_itself_is_refused_by_the_board(five_docs, tmp_path, trick):
    """A link in the folder, or a data_dir elsewhere, would read the board machine's files into its logs."""
    from tests.helpers.tasks import ALL_SPLITS, GOOD_BODY, write_task

    secret = tmp_path / "secret"
    secret.mkdir()
    folder = tmp_path / "tasks" / "fin_demo"
    if trick == "link":
        write_task(folder, GOOD_BODY, ALL_SPLITS)
        (folder / "data" / "notes.txt").symlink_to(secret)
        message = r"notes\.txt: a link"
    else:
        write_task(folder, GOOD_BODY.replace("dataset_kwargs:\n", f"dataset_kwargs:\n  data_dir: {secret}\n"))
        message = r"dataset_kwargs\.data_dir .* reads data outside the task's folder"
    with pytest.raises(SubmissionError, match=message):
        submit(load_submission(submission(tmp_path, results=str(five_docs), include_paths=["tasks"])),
               Board(tmp_path / "board.sqlite"))
