"""A re-run serves finished requests from the checkpoint's own cache, never another model's."""
import shutil

import pytest

from harness.backend.shared_prefix_lm import SharedPrefixLM
from harness.evaluate import EvalRequest, run_eval
from harness.lm_cache import cache_path
from harness.lm_eval_adapters import write_without_waiting
from plumbing.checkpoints import checkpoint_fingerprint, model_fingerprint
from tests.helpers.checkpoints import build_tiny_checkpoint


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """Counts the loglikelihood requests that reach the model (cache misses), on an empty cache."""
    monkeypatch.setenv("FINHARNESS_LM_CACHE", str(tmp_path / "lm_cache"))
    calls = []
    real = SharedPrefixLM.loglikelihood

    def loglikelihood(self, requests, *args, **kwargs):
        calls.append(len(requests))
        return real(self, requests, *args, **kwargs)

    monkeypatch.setattr(SharedPrefixLM, "loglikelihood", loglikelihood)
    return calls


def flip_bit(checkpoint, byte):
    """New weights at the same path: one bit of one weight near the end of the file."""
    weights = checkpoint / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[byte] ^= 1
    weights.write_bytes(bytes(data))


def scores(outcome, task):
    return {k: v for k, v in outcome.results["results"][task].items() if k != "alias"}


def test_a_rerun_only_computes_the_tasks_it_had_not_finished(tmp_path, counted):
    model = build_tiny_checkpoint(tmp_path / "tiny")
    first = run_eval(EvalRequest(model=str(model), tasks=["fin_fpb"], limit=4, batch_size=4))
    assert counted == [12]  # 4 docs x 3 labels
    # As after a kill once fin_fpb was done: the re-run asks the model only for fin_fomc.
    second = run_eval(EvalRequest(model=str(model), tasks=["fin_fpb", "fin_fomc"], limit=4, batch_size=4))
    assert counted == [12, 12]
    assert scores(second, "fin_fpb") == scores(first, "fin_fpb")
    run_eval(EvalRequest(model=str(model), tasks=["fin_fpb", "fin_fomc"], limit=4, batch_size=4))
    assert counted == [12, 12]  # nothing left to compute: the model is not called
    run_eval(EvalRequest(model=str(model), tasks=["fin_fpb"], limit=4, batch_size=4, use_cache=False))
    assert counted == [12, 12, 12]


def test_the_cache_is_keyed_by_the_checkpoints_bytes(tmp_path, counted):
    a = build_tiny_checkpoint(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    assert checkpoint_fingerprint(a) == checkpoint_fingerprint(b)
    assert cache_path(model_fingerprint([a]), "hf", "float32") != cache_path(model_fingerprint([a]), "hf", "bfloat16")
    # A truncating max_length changes answers: its own cache. Where the model runs does not.
    plain = cache_path(model_fingerprint([a]), "hf", "float32")
    assert cache_path(model_fingerprint([a]), "hf", "float32", {"max_length": 64}) != plain
    assert cache_path(model_fingerprint([a]), "hf", "float32", {"parallelize": True}) == plain
    # Same path, new weights (a re-written merge): a new cache, so the model is asked again.
    run_eval(EvalRequest(model=str(a), tasks=["fin_fpb"], limit=2, batch_size=2))
    before = checkpoint_fingerprint(a)
    flip_bit(a, -1)
    assert checkpoint_fingerprint(a) != before
    run_eval(EvalRequest(model=str(a), tasks=["fin_fpb"], limit=2, batch_size=2))
    assert counted == [6, 6]


def test_a_truncating_max_length_never_serves_its_answers_to_a_full_length_run(tmp_path, counted):
    """Found by running the suite in another order: the cache was keyed by weights, backend
    and dtype only, so answers computed with contexts cut to 24 tokens came back for a run
    without the cut."""
    model = build_tiny_checkpoint(tmp_path / "tiny")
    cut = run_eval(EvalRequest(model=str(model), tasks=["fin_fpb"], limit=3, model_args={"max_length": 24},
                               log_samples=True))
    full = run_eval(EvalRequest(model=str(model), tasks=["fin_fpb"], limit=3, log_samples=True))
    fresh = run_eval(EvalRequest(model=str(model), tasks=["fin_fpb"], limit=3, log_samples=True, use_cache=False))
    assert counted == [9, 9, 9]  # the full-length run asked the model, not the cache

    def lls(outcome):
        return [float(r[0][0]) for s in outcome.results["samples"]["fin_fpb"] for r in s["resps"]]

    assert lls(full) == lls(fresh)
    assert lls(cut) != lls(fresh)



def test_answers_are_written_without_waiting_and_each_lands_on_disk(tmp_path):
    """The backend's cache writes queue each answer without a blocking commit; SQLite commits
    each one as its writer thread runs it, so another process sees them before lm-eval's
    closing commit (a killed run keeps them)."""
    import sqlite3
    import time

    from lm_eval.api.model import LM, CachingLM, hash_args

    class Stub(LM):
        def loglikelihood(self, requests): ...
        def loglikelihood_rolling(self, requests): ...
        def generate_until(self, requests): ...

    def on_disk() -> int:
        with sqlite3.connect(tmp_path / "cache.db") as other:
            return other.execute("SELECT COUNT(*) FROM unnamed").fetchone()[0]

    stub = Stub()
    caching = CachingLM(stub, str(tmp_path / "cache.db"))
    write_without_waiting(stub.cache_hook)
    waits = []
    real_commit = caching.dbdict.commit
    caching.dbdict.commit = lambda *a, **k: (waits.append(1), real_commit(*a, **k))[1]
    for i in range(50):
        stub.cache_hook.add_partial("loglikelihood", (f"context {i}", " yes"), (-1.0 * i, True))
    assert waits == []  # no write waited for a commit
    deadline = time.monotonic() + 10
    while on_disk() < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert on_disk() == 50  # committed by SQLite as they ran, before any closing commit
    assert caching.dbdict[hash_args("loglikelihood", ("context 7", " yes"))] == (-7.0, True)
    caching.dbdict.close()
