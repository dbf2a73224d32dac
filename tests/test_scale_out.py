"""Two processes on CPU (torchrun, gloo), as a multi-GPU user launches them: one run folder,
one manifest and one results file, and the same per-document answers as one process."""
from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evidence.result_files import samples_file

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun ships with torch")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_processes(args: list[str], tmp_path: Path,
                  script: list[str] = ("-m", "finharness")) -> subprocess.CompletedProcess:
    # PYTHONFAULTHANDLER: a rank that aborts (SIGABRT in a C++ thread) prints every Python
    # thread's stack, so a failure says where the rank was.
    env = {**os.environ, "FINHARNESS_LM_CACHE": str(tmp_path / "cache-2"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO), "PYTHONFAULTHANDLER": "1"}
    return subprocess.run(["torchrun", "--nproc_per_node", "2", "--master_port", str(free_port()), *script, *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def why(done: subprocess.CompletedProcess) -> str:
    """A failed launch's tails: the steps it reached (stdout) and the ranks' errors and stacks."""
    return f"stdout ends:\n{done.stdout[-1500:]}\nstderr ends:\n{done.stderr[-8000:]}"


def adapter_weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run / "adapter" / "adapter_model.safetensors")


@pytest.mark.slow
def test_two_training_processes_match_one_process_at_the_same_global_batch_and_resume_a_killed_rank(
        tiny_checkpoint, tmp_path):
    from training.run_folder import read_log

    def recipe(name: str, grad_accum: int) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "name": name, "base_model": str(tiny_checkpoint), "output_dir": str(tmp_path / "runs"),
            "tasks": [{"name": "fin_fpb", "samples": 16}], "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
            "training": {"lr": 5e-3, "epochs": 1, "batch_size": 4, "grad_accum": grad_accum, "logging_steps": 1,
                         "save_steps": 1}}))
        return path

    done = two_processes(["train", str(recipe("ddp", 1))], tmp_path)
    assert done.returncode == 0, why(done)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddp"]  # no second folder, no partial left
    manifest = json.loads((tmp_path / "runs" / "ddp" / "finharness.json").read_text())["data"]
    # 16 examples, 4 per process per step, 2 processes: 2 optimizer steps of 8 (one process: 4 of 4).
    assert (manifest["world_size"], manifest["steps"]) == (2, 2)
    assert done.stdout.count("finished:") == 1  # one voice

    # One process with the same global batch (2 micro-batches of 4 accumulated) takes the same
    # micro-batches in the same order: the same losses and the same weights, up to float sums.
    from finharness.main import main

    assert main(["train", str(recipe("one", 2))]) == 0  # in this process: the one-process run needs no launcher
    losses = [[row["loss"] for row in read_log(tmp_path / "runs" / name)] for name in ("ddp", "one")]
    assert len(losses[0]) == len(losses[1]) == 2
    assert max(abs(a - b) for a, b in zip(*losses)) < 1e-4, losses
    ddp, single = adapter_weights(tmp_path / "runs" / "ddp"), adapter_weights(tmp_path / "runs" / "one")
    assert max(float((ddp[k] - single[k]).abs().max()) for k in ddp) < 1e-5

    # kill -9 of the main process right after its step-1 checkpoint; torchrun stops the other
    # rank. --resume under the same launch finishes with the uninterrupted run's weights.
    killed = recipe("killed", 1)
    crash = two_processes(["1", "train", str(killed)], tmp_path, script=["tests/helpers/killed_after_checkpoint.py"])
    assert crash.returncode != 0 and not (tmp_path / "runs" / "killed").exists(), crash.stderr[-3000:]
    assert (tmp_path / "runs" / "killed.partial" / "checkpoints" / "step-000001").is_dir(), crash.stderr[-3000:]
    resumed = two_processes(["train", str(killed), "--resume"], tmp_path)
    assert resumed.returncode == 0, why(resumed)
    assert "resuming after step 1" in resumed.stdout + resumed.stderr
    after = adapter_weights(tmp_path / "runs" / "killed")
    assert max(float((after[k] - ddp[k]).abs().max()) for k in ddp) < 1e-6


@pytest.mark.slow
def test_two_scoring_processes_give_one_process_answers_and_one_results_file(tiny_checkpoint, tmp_path):
    from harness.evaluate import EvalRequest, run_eval

    args = ["eval", "-m", str(tiny_checkpoint), "-t", "fin_fpb,generative_fin_fpb", "--limit", "16",
            "--chat_template", "off", "--gen_kwargs", "max_gen_toks=4"]
    done = two_processes([*args, "-o", str(tmp_path / "two")], tmp_path)
    assert done.returncode == 0, why(done)
    # The run says what the processes did: each scored half of each task's documents.
    assert "2 processes scored, each its share of the documents (rank 0: 16, rank 1: 16)" in done.stdout
    run_eval(EvalRequest(model=str(tiny_checkpoint), tasks=["fin_fpb", "generative_fin_fpb"], limit=16,
                         chat_template="off", use_cache=False, output_path=tmp_path / "one",
                         gen_kwargs={"max_gen_toks": 4}))

    def answers(folder: Path) -> dict[tuple[str, int], list]:
        """Per document: the label log-likelihoods, or the generated text."""
        out = {}
        for task in ("fin_fpb", "generative_fin_fpb"):
            for r in map(json.loads, samples_file(folder, task).read_text().splitlines()):
                out[task, r["doc_id"]] = [x[0] if isinstance(x[0], str) else float(x[0][0]) for x in r["resps"]]
        return out

    def same(a: dict, b: dict) -> bool:
        """The same documents, the same generations, log-likelihoods within float noise (the ranks
        batch other documents together than one process does)."""
        return a.keys() == b.keys() and all(
            x == y if isinstance(x, str) else abs(x - y) < 1e-4 for k in a for x, y in zip(a[k], b[k], strict=True))

    assert len(list((tmp_path / "two").rglob("results_*.json"))) == 1
    assert same(answers(tmp_path / "two"), answers(tmp_path / "one")) and len(answers(tmp_path / "one")) == 32

    # The request cache under two ranks: one file per rank, each holding its own half of the
    # documents (8 x 3 labels + 8 generations), none lost or written twice; a second run reads
    # every answer.
    def cached(db: Path) -> list[str]:
        with sqlite3.connect(db) as conn:
            return [key for (key,) in conn.execute("SELECT key FROM unnamed")]

    ranks = sorted((tmp_path / "cache-2").rglob("*_rank*.db"))
    assert [db.name.rsplit("_", 1)[1] for db in ranks] == ["rank0.db", "rank1.db"]
    keys = [cached(db) for db in ranks]
    assert [len(k) for k in keys] == [32, 32] and not set(keys[0]) & set(keys[1])
    again = two_processes([*args, "-o", str(tmp_path / "again")], tmp_path)
    assert again.returncode == 0, why(again)
    assert same(answers(tmp_path / "again"), answers(tmp_path / "one"))
    assert [cached(db) for db in ranks] == keys


def test_the_shipped_accelerate_configs_parse_as_accelerate_reads_them():
    """recipes/accelerate/: DDP, FSDP and DeepSpeed ZeRO-2 for multi-GPU training. accelerate
    refuses an unknown top-level key itself; each nested key must be one `accelerate launch` takes."""
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    options = {action.dest for action in launch_command_parser()._actions}
    found = {}
    for path in sorted((REPO / "recipes" / "accelerate").glob("*.yaml")):
        config = ClusterConfig.from_yaml_file(str(path))
        found[path.name] = config.distributed_type.value
        nested = {**(config.fsdp_config or {}), **(config.deepspeed_config or {})}
        assert set(nested) <= options, f"{path.name}: {sorted(set(nested) - options)} is not an accelerate option"
    assert found == {"ddp_4gpu.yaml": "MULTI_GPU", "fsdp_4gpu.yaml": "FSDP", "deepspeed_zero2_4gpu.yaml": "DEEPSPEED"}


@pytest.mark.slow
def test_a_study_under_two_processes_trains_and_scores_on_both_and_writes_each_folder_once(tmp_path):
    """`torchrun -m finharness study run`: training and scoring on every rank, merges/deviations/
    tables/board on rank 0; the vanilla model's answers are one process's."""
    from study.run import run_study
    from tests.helpers.checkpoints import build_tiny_checkpoint

    base = build_tiny_checkpoint(tmp_path / "base")
    folder = tmp_path / "study"
    shutil.copytree(REPO / "recipes/studies/ft-generalization", folder)
    (folder / "claims.yaml").unlink()  # its claims name runs this small copy drops

    def edit(name: str, change) -> None:
        data = yaml.safe_load((folder / name).read_text())
        change(data)
        (folder / name).write_text(yaml.safe_dump(data, sort_keys=False))

    edit("study.yaml", lambda d: d.update(models=[{"label": "base", "model": str(base), "prompt_format": "base"}],
                                          leaderboard=False, deviation={"per_task": 4}, table={"kind": "views",
                                                                                              "resamples": 20}))
    edit("train.yaml", lambda d: (d.pop("seeds"), d["training"].update(max_length=256, batch_size=2,
                                                                       precision="fp32"),
                                  d.update(runs=[{"name": "amazon", "tasks": [{"name": "gen_sentiment_amazon",
                                                                               "split": "train_2000",
                                                                               "samples": 8}]}])))
    edit("eval.yaml", lambda d: d.update(sets=[{"name": "sentiment", "tasks": ["gen_sentiment_amazon_mc"],
                                                "limit": 8, "few_shot": 2}]))

    done = two_processes(["study", "run", str(folder), "--output_path", str(tmp_path / "two")], tmp_path)
    assert done.returncode == 0, why(done)
    log = done.stdout + done.stderr
    root = tmp_path / "two" / "ft-generalization"
    run = json.loads((root / "runs" / "base-amazon" / "finharness.json").read_text())["data"]
    assert run["world_size"] == 2  # DDP: both processes trained the one run
    assert (root / "deviation" / "base--amazon.json").is_file() and (root / "tables.json").is_file()
    evals = sorted(p for p in (root / "evals").rglob("finharness.json"))
    assert len(evals) == 4  # vanilla and fine-tuned, zero- and few-shot: each folder once, complete
    assert not [p for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".partial")]
    assert log.count("[1/") == 2 and log.count("tables.md / tables.json: done") == 1  # one voice

    # The vanilla model's per-document answers are those of a one-process study (the trained
    # model is not: DDP doubles the global batch, as accelerate's users expect).
    one = Path(run_study(folder, output_dir=tmp_path / "one").root)

    def logliks(study_root: Path, setting: str) -> list[list[float]]:
        rows = map(json.loads, samples_file(study_root / "evals" / "base" / f"{setting}-set0",
                                            "gen_sentiment_amazon_mc").read_text().splitlines())
        return [[float(x[0][0]) for x in r["resps"]] for r in sorted(rows, key=lambda r: r["doc_id"])]

    for setting in ("zero-shot", "few-shot"):
        two_answers, one_answers = logliks(root, setting), logliks(one, setting)
        assert len(two_answers) == 8
        assert max(abs(x - y) for a, b in zip(two_answers, one_answers) for x, y in zip(a, b)) < 1e-4


def test_a_launched_rank_ends_with_its_code_and_its_output_flushed_but_no_interpreter_teardown(tmp_path):
    """Under a launcher (WORLD_SIZE > 1) a rank that finished skips the interpreter's teardown,
    where torch.distributed's C++ destructors could abort a finished run; without one, nothing changes."""
    script = ("import atexit, sys; from plumbing.ranks import exit_launched_rank\n"
              "atexit.register(lambda: print('teardown ran'))\n"
              "print('scored', end=''); sys.stderr.write('logged'); exit_launched_rank(3); sys.exit(5)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    launched = subprocess.run([sys.executable, "-c", script], env={**env, "WORLD_SIZE": "2"},
                              capture_output=True, text=True, timeout=120)
    assert (launched.returncode, launched.stdout, launched.stderr) == (3, "scored", "logged")
    alone = subprocess.run([sys.executable, "-c", script], env={k: v for k, v in env.items() if k != "WORLD_SIZE"},
                           capture_output=True, text=True, timeout=120)
    assert (alone.returncode, alone.stdout) == (5, "scoredteardown ran\n")
