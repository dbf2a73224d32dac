"""Faults, each as it happens to a user: a kill -9 mid-evaluation, two evaluations sharing one
request cache, a board held by another writer, a disk that fills while a merge or a training
run writes its weights. Nothing half-written may look finished, and the next run recovers."""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from evidence.result_files import samples_file
from leaderboard.store import Board, BoardBusy
from plumbing.folders import is_finished
from tests.helpers.checkpoints import perturbed_copy

REPO = Path(__file__).resolve().parents[2]


def eval_command(model: Path, out: Path, limit: int) -> list[str]:
    return [sys.executable, "-m", "finharness", "eval", "-m", str(model), "-t", "fin_fpb", "--limit", str(limit),
            "--chat_template", "off", "--batch_size", "1", "-o", str(out)]


def answers(out: Path) -> dict[int, list]:
    rows = [json.loads(line) for line in samples_file(out, "fin_fpb").read_text().splitlines()]
    return {r["doc_id"]: [round(float(x[0][0]), 5) for x in r["resps"]] for r in rows}


def cached_rows(cache: Path) -> int:
    total = 0
    for db in cache.rglob("*.db"):
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                total += conn.execute("SELECT count(*) FROM unnamed").fetchone()[0]
        except sqlite3.Error:
            pass
    return total


@pytest.mark.slow
def test_a_killed_evaluation_resumes_from_its_cache_with_the_same_answers(tiny_checkpoint, tmp_path):
    env = {**os.environ, "FINHARNESS_LM_CACHE": str(tmp_path / "cache")}
    process = subprocess.Popen(eval_command(tiny_checkpoint, tmp_path / "killed", 400), cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while cached_rows(tmp_path / "cache") < 30 and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the evaluation ended before it could be killed"
    (db,) = (tmp_path / "cache").rglob("*.db")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    kept = cached_rows(tmp_path / "cache")
    assert 30 <= kept < 1200  # some answers were kept, not all (400 documents x 3 labels)
    assert not any((tmp_path / "killed").rglob("results_*.json"))  # nothing looks finished

    resumed = subprocess.run(eval_command(tiny_checkpoint, tmp_path / "killed", 400), cwd=REPO, env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # Only the documents the killed run had not answered reach the model again.
    computed = re.findall(r"docs \(loglikelihood\): 100%.*? (\d+)/\1 ", resumed.stderr)
    assert computed and int(computed[-1]) <= 400 - kept // 3, resumed.stderr[-2000:]
    # The same evaluation uninterrupted, in this process (no cache): the same answers.
    from harness.evaluate import EvalRequest, run_eval

    run_eval(EvalRequest(model=str(tiny_checkpoint), tasks=["fin_fpb"], limit=400, chat_template="off",
                         batch_size=1, use_cache=False, output_path=tmp_path / "fresh"))
    assert answers(tmp_path / "killed") == answers(tmp_path / "fresh")


def test_two_evaluations_sharing_one_cache_both_finish_with_the_same_answers(tiny_checkpoint, tmp_path):
    env = {**os.environ, "FINHARNESS_LM_CACHE": str(tmp_path / "cache")}
    runs = [subprocess.Popen(eval_command(tiny_checkpoint, tmp_path / name, 60), cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for name in ("a", "b")]
    outputs = [r.communicate(timeout=600)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [o[-2000:] for o in outputs]
    assert answers(tmp_path / "a") == answers(tmp_path / "b")
    assert cached_rows(tmp_path / "cache") == 180  # one answer per request (60 documents x 3 labels)


def _entry(model: str) -> dict:
    return dict(model=model, revision="r", precision="float32", weight_type="original", chat_template=False,
                settings="{}", model_type="pretrained", base_model=None, recipe=None, recipe_text=None,
                results_path="-", scores={"fin_fpb": {"acc": 0.5}}, docs={"fin_fpb": 5}, metadata={})


def test_a_board_held_by_another_writer_is_read_meanwhile_and_written_after(tmp_path):
    pytest.importorskip("gradio")
    from leaderboard.serve import LiveBoard

    board = Board(tmp_path / "board.sqlite")
    board.add(_entry("first"))
    other = sqlite3.connect(board.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another submitter, mid-transaction
    other.execute("INSERT INTO entries (model, revision, precision, weight_type, chat_template, settings, model_type, "
                  "submitted_at, results_path, scores, docs, metadata) "
                  "VALUES ('uncommitted', 'r', 'float32', 'original', 0, '{}', 'pretrained', 'now', '-', '{}', '{}', '{}')")
    # The served app reads what is committed, at once.
    assert [r["model"] for r in LiveBoard(board, "acc").rows] == ["first"]
    # A writer that cannot wait long enough is told so, and writes nothing.
    with pytest.raises(BoardBusy, match=r"another writer held the board for over 0\.3 s"):
        Board(board.path, timeout=0.3).add(_entry("impatient"))
    # A patient one lands once the other transaction ends.
    landed = []
    waiting = threading.Thread(target=lambda: landed.append(board.add(_entry("patient"))))
    waiting.start()
    time.sleep(1)
    assert landed == []
    other.execute("ROLLBACK")
    other.close()
    waiting.join(timeout=30)
    assert [e.model for e in board.entries()] == ["first", "patient"]


@pytest.fixture
def disk_fills(monkeypatch):
    """Make a weight writer run out of space half-way through its file, once."""
    def install(module, name: str) -> None:
        real = getattr(module, name)
        state = {"failed": False}

        def write(tensors, filename, *args, **kwargs):
            if state["failed"]:
                return real(tensors, filename, *args, **kwargs)
            state["failed"] = True
            real(tensors, filename, *args, **kwargs)
            size = os.path.getsize(filename)
            with open(filename, "r+b") as handle:
                handle.truncate(size // 2)
            # What safetensors raises on a real full disk (T8/M7: faking an OSError hid that).
            from safetensors import SafetensorError

            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

        monkeypatch.setattr(module, name, write)
    return install


def test_a_disk_that_fills_during_a_merge_leaves_nothing_finished(tiny_checkpoint, tmp_path, disk_fills, capsys):
    import safetensors.torch
    import yaml

    from finharness.main import main

    models = [perturbed_copy(tiny_checkpoint, tmp_path / f"ft{i}", seed=i) for i in range(2)]
    recipe = tmp_path / "ta.yaml"
    recipe.write_text(yaml.safe_dump({"name": "ta", "method": "task_arithmetic", "base_model": str(tiny_checkpoint),
                                      "models": [{"model": str(m), "weight": 0.5} for m in models],
                                      "output_dir": str(tmp_path / "merges")}))
    disk_fills(safetensors.torch, "save_file")
    assert main(["merge", str(recipe)]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    folder = tmp_path / "merges" / "ta"
    assert not folder.exists() and not is_finished(folder, "merge")
    assert list((tmp_path / "merges").iterdir()) == []  # no scratch folder left behind
    assert main(["merge", str(recipe)]) == 0  # space again: the same command finishes
    assert is_finished(folder, "merge")


def test_a_disk_that_fills_while_a_run_saves_its_weights_can_be_resumed(tiny_checkpoint, tmp_path, disk_fills):
    import transformers.modeling_utils

    from tests.helpers.train_runs import tiny_recipe
    from training.recipe import parse_recipe
    from training.run import train_recipe

    recipe = parse_recipe(tiny_recipe(tiny_checkpoint, tmp_path, tasks=[{"name": "fin_fpb", "samples": 8}],
                                      training={"epochs": 1, "batch_size": 4, "save_steps": 1}))
    disk_fills(transformers.modeling_utils, "safe_save_file")
    with pytest.raises(OSError, match="No space left on device"):
        train_recipe(recipe)
    final = tmp_path / "fpb-tiny"
    assert not final.exists() and not is_finished(final, "training_run")
    folder = train_recipe(recipe, resume=True)
    assert is_finished(folder, "training_run")
    assert json.loads((folder / "finharness.json").read_text())["data"]["steps"] == 2


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_a_damaged_request_cache_is_moved_aside_and_rebuilt(tiny_checkpoint, tmp_path, monkeypatch, caplog, damage):
    """E4: a truncated or overwritten cache .db gave sqlite tracebacks naming no file, and every
    later eval of the checkpoint failed until the file was deleted by hand."""
    import logging

    from harness.evaluate import EvalRequest, run_eval

    monkeypatch.setenv("FINHARNESS_LM_CACHE", str(tmp_path / "cache"))
    request = dict(model=str(tiny_checkpoint), tasks=["fin_fpb"], limit=8, chat_template="off")
    run_eval(EvalRequest(**request, output_path=tmp_path / "first"))
    (db,) = (tmp_path / "cache").rglob("*.db")
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"not a database at all " * 200)
    with caplog.at_level(logging.WARNING, logger="finharness"):
        run_eval(EvalRequest(**request, output_path=tmp_path / "second"))
    assert f"request cache {db} is damaged" in caplog.text
    assert list(db.parent.glob(f"{db.name}.broken-*")) and db.is_file()  # kept aside, and rebuilt
    assert answers(tmp_path / "second") == answers(tmp_path / "first")


def small_filesystem(path: Path, size: str) -> bool:
    """A real tmpfs of ``size`` at ``path`` where the machine lets this process mount one."""
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_merge_onto_a_really_full_disk_says_so_and_keeps_nothing(tiny_checkpoint, tmp_path, capsys):
    """T8/M7 on a real 128 KiB filesystem (the merged weights need 187 KB): one line, exit 1,
    nothing finished, no scratch folder left."""
    import yaml

    from finharness.main import main

    disk = tmp_path / "small"
    if not small_filesystem(disk, "128k"):
        pytest.skip("this machine does not let the tests mount a small tmpfs (the faked error is tested above)")
    try:
        models = [perturbed_copy(tiny_checkpoint, tmp_path / f"ft{i}", seed=i) for i in range(2)]
        recipe = tmp_path / "ta.yaml"
        recipe.write_text(yaml.safe_dump({"name": "ta", "method": "task_arithmetic", "base_model": str(tiny_checkpoint),
                                          "models": [{"model": str(m), "weight": 0.5} for m in models],
                                          "output_dir": str(disk / "merges")}))
        capsys.readouterr()
        assert main(["merge", str(recipe)]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err
        (line,) = [l for l in err.splitlines() if l.startswith("finharness: error:")]
        assert "No space left on device while writing weights under" in line, err
        assert not is_finished(disk / "merges" / "ta", "merge")
        assert list((disk / "merges").iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_board_on_a_full_disk_says_the_disk_is_full(tiny_checkpoint, tmp_path):
    """BD16: a board on a full disk read as "not a finharness board"."""
    disk = tmp_path / "small"
    if not small_filesystem(disk, "64k"):
        pytest.skip("this machine does not let the tests mount a small tmpfs")
    try:
        board = Board(disk / "board.sqlite")
        assert board.entries() == []  # a fresh board fits
        filler = disk / "filler"
        with pytest.raises(OSError):
            filler.write_bytes(b"\0" * (1 << 20))  # the disk is now full
        with pytest.raises(OSError, match=r"board\.sqlite: the disk is full"):
            for i in range(200):  # each entry grows the file until a page cannot be written
                board.add(dict(model=f"m{i}", revision="r" * 40, precision="float32", weight_type="original",
                               chat_template=False, settings="{}", model_type="pretrained", base_model=None,
                               recipe=None, recipe_text=None, results_path="-", scores={"fin_fpb": {"acc": 0.5}},
                               docs={"fin_fpb": 5}, metadata={"notes": "x" * 2000}))
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
