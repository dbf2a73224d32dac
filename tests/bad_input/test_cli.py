"""The command line's own arguments, and errors that surface as one line naming the path or
port (exit code 2), never a traceback."""
import socket
from contextlib import nullcontext

import pytest

from finharness.main import main
from leaderboard.store import Board


@pytest.mark.parametrize("flag, value, message", [
    ("--num_fewshot", "-1", r"--num_fewshot must be 0 or more, not -1"),
    ("--limit", "nan", r"--limit must be a positive, finite number, not nan"),
    ("--limit", "inf", r"--limit must be a positive, finite number, not inf"),
    ("--limit", "1.5", r"--limit 1.5: a count of documents must be a whole number"),  # it scored 1 document
])
def test_eval_refuses_bad_counts_before_loading_a_model(flag, value, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--model", "/nowhere/never-loaded", flag, value])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_serving_a_board_that_does_not_exist_says_so(tmp_path, capsys):
    missing = tmp_path / "nope" / "board.sqlite"
    assert main(["leaderboard", "serve", "--board", str(missing)]) == 2
    assert f"leaderboard serve: no board at {missing}" in capsys.readouterr().err
    assert not missing.exists()


def test_serving_on_a_busy_port_names_the_port(tmp_path, capsys):
    pytest.importorskip("gradio")
    board = Board(tmp_path / "board.sqlite")
    board.entries()
    board.add(dict(model="m", revision="r", precision="float32", weight_type="original", chat_template=False,
                   settings="{}", model_type="pretrained", base_model=None, recipe=None, recipe_text=None,
                   results_path="-", scores={}, docs={}, metadata={}))
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert main(["leaderboard", "serve", "--board", str(board.path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"leaderboard serve: cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


def test_exporting_into_a_file_names_it_and_leaves_it(tmp_path, capsys):
    board = Board(tmp_path / "board.sqlite")
    board.entries()
    target = tmp_path / "taken"
    target.write_text("mine")
    assert main(["leaderboard", "export", str(target), "--board", str(board.path)]) == 2
    assert f"leaderboard export: {target} is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "mine"


def test_a_request_word_outside_its_vocabulary_is_refused_where_the_request_is_made():
    from harness.evaluate import EvalRequest

    assert EvalRequest("m").split == "test"
    for field, word in (("split", "train"), ("dtype", "fp16"), ("weight_type", "lora"), ("backend", "hf2"),
                        ("sample", "head"), ("chat_template", "yes")):
        with pytest.raises(ValueError, match=rf"{field} must be one of .*; not '{word}'"):
            EvalRequest("m", **{field: word})


@pytest.mark.parametrize("args, message", [
    (["--seed", "-5"], "--seed must be in [0, 2**32), not -5"),
    (["-t", ""], "--tasks '': no task named"),
])
def test_eval_arguments_are_named_before_any_model_loads(args, message, capsys):
    from finharness.main import main

    with pytest.raises(SystemExit) if args[0] == "--seed" else nullcontext():
        code = main(["eval", "-m", "nowhere", *args])
        assert code == 2
    assert message in capsys.readouterr().err


def test_an_output_path_that_is_a_file_is_named_before_scoring(tiny_checkpoint, tmp_path, capsys):
    """It used to fail after every document was scored ("Could not save sample results")."""
    from finharness.main import main

    target = tmp_path / "results"
    target.write_text("mine")
    assert main(["eval", "-m", str(tiny_checkpoint), "-t", "fin_fpb", "--limit", "2", "--chat_template", "off",
                 "-o", str(target)]) == 2
    assert f"--output_path {target} is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "mine"
