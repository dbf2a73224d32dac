"""hf-shared-prefix returns the log-likelihoods lm-eval's hf backend returns, request by request."""
import random

import pytest
import torch
from lm_eval.models.huggingface import HFLM

from harness.evaluate import EvalRequest, run_eval
from harness.backend.shared_prefix_lm import SharedPrefixLM, build_rows

TOL = 1e-4  # float32


@pytest.fixture(scope="module")
def backends(tiny_checkpoint):
    args = dict(pretrained=str(tiny_checkpoint), device="cpu", dtype="float32", batch_size=4, max_length=64)
    return HFLM(**args), SharedPrefixLM(**args)


def random_requests(vocab: int, seed: int = 0):
    rng = random.Random(seed)
    reqs = []
    for d in range(14):
        # Contexts up to 90 tokens: some exceed the 64-token window and are truncated.
        ctx = [rng.randrange(vocab) for _ in range(rng.randrange(1, 90))]
        for k in range(rng.randrange(1, 7)):
            cont = [rng.randrange(vocab) for _ in range(rng.randrange(1, 6))]
            reqs.append(((f"doc{d}", f"choice{k}"), ctx, cont))
    reqs.append(reqs[3])  # an exact duplicate
    return reqs


def greedy_requests(lm: HFLM, n_docs: int = 4):
    """Continuations that are the model's own greedy tokens, so is_greedy is True."""
    reqs = []
    for d in range(n_docs):
        ctx = [(7 * d + i) % lm.model.config.vocab_size for i in range(10 + d)]
        with torch.no_grad():
            out = lm.model.generate(torch.tensor([ctx]), max_new_tokens=3, do_sample=False)
        greedy = out[0, len(ctx):].tolist()
        reqs.append(((f"g{d}", "greedy"), ctx, greedy))
        reqs.append(((f"g{d}", "other"), ctx, [(greedy[0] + 1) % lm.model.config.vocab_size, greedy[1]]))
    return reqs


def assert_same(expected, got):
    assert len(expected) == len(got)
    for (ll_a, greedy_a), (ll_b, greedy_b) in zip(expected, got):
        assert ll_b == pytest.approx(ll_a, abs=TOL)
        assert greedy_a == greedy_b


def test_multi_token_shared_and_truncated_contexts_match_hf(backends):
    hf, fast = backends
    reqs = random_requests(hf.model.config.vocab_size) + greedy_requests(hf)
    expected = hf._loglikelihood_tokens(reqs, disable_tqdm=True)
    got = fast._loglikelihood_tokens(reqs, disable_tqdm=True)
    assert_same(expected, got)
    assert any(g for _, g in expected), "the greedy flag is exercised"
    assert any(len(c) + len(k) > 65 for _, c, k in reqs), "truncation is exercised"


def test_rows_group_by_the_context_hf_actually_feeds():
    reqs = [(None, [1, 2, 3], [4]), (None, [1, 2, 3], [5, 6]), (None, [1, 2, 3], [4]), (None, [9], [8])]
    rows, leftover = build_rows(reqs, max_length=64)
    assert leftover == []
    assert [r.context for r in rows] == [(1, 2, 3), (9,)]
    assert rows[0].continuations == [(4,), (5, 6)] and rows[0].requests[(4,)] == [0, 2]
    assert rows[0].length == 3 + 0 + 1  # one-token continuations add nothing to the row
    # Window of 3: [1,2,3]+[5,6] is cut from the left to [2,3,5,6] minus the last token.
    rows, _ = build_rows(reqs[:2], max_length=3)
    assert sorted(r.context for r in rows) == [(1, 2, 3), (2, 3)]


def test_rows_wider_than_a_sliding_window_are_scored_alone_as_hf_scores_them(backends, monkeypatch):
    """Each such row runs on its own through the model's attention, with only its answer
    positions projected onto the vocabulary (hf's full-width log-softmax took over 24 GB on a
    2-shot Yelp set with Gemma-3's vocabulary)."""
    hf, fast = backends
    monkeypatch.setattr(SharedPrefixLM, "_sliding_window", lambda self: 20)
    reqs = random_requests(hf.model.config.vocab_size, seed=1)
    assert_same(hf._loglikelihood_tokens(reqs, disable_tqdm=True), fast._loglikelihood_tokens(reqs, disable_tqdm=True))


def test_continuation_longer_than_the_window_fails_as_in_hf(backends):
    hf, fast = backends
    too_long = [(None, [1, 2], list(range(3, 70)))]
    with pytest.raises(AssertionError):
        hf._loglikelihood_tokens(too_long, disable_tqdm=True)
    with pytest.raises(AssertionError):
        fast._loglikelihood_tokens(too_long, disable_tqdm=True)


def _per_sample_loglikelihoods(model: str, backend: str, tasks: list[str], limit: int):
    out = run_eval(EvalRequest(model=model, tasks=tasks, limit=limit, log_samples=True, backend=backend))
    lls = {
        (task, s["doc_id"]): [float(r[0][0]) for r in s["resps"]]
        for task, samples in out.results["samples"].items() for s in samples
        if not task.startswith("generative_")  # generations are compared through the metrics
    }
    return out.results["results"], lls


def test_mixed_task_run_gives_identical_metrics(tiny_checkpoint):
    tasks = ["fin_fpb", "fin_fomc", "fin_finred", "generative_fin_fpb"]
    base, base_lls = _per_sample_loglikelihoods(str(tiny_checkpoint), "hf", tasks, 3)
    fast, fast_lls = _per_sample_loglikelihoods(str(tiny_checkpoint), "hf-shared-prefix", tasks, 3)
    assert base == fast
    assert base_lls.keys() == fast_lls.keys()
    for key, lls in base_lls.items():
        assert fast_lls[key] == pytest.approx(lls, abs=TOL)


def test_embedded_model_parity_on_multi_token_labels():
    """SmolLM2-135M-Instruct with its real tokenizer and chat template, where FOMC's labels span
    several tokens (the tiny model's tests above cover FinRED's 29 labels; benchmarks/
    bench_shared_prefix.py checks every task of the suite on this model)."""
    from transformers import AutoTokenizer

    from plumbing.checkpoints import resolve_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint("smollm2-135m-instruct"))
    assert max(len(tokenizer(" " + label).input_ids) for label in ("dovish", "hawkish", "neutral")) > 1
    base, base_lls = _per_sample_loglikelihoods("smollm2-135m-instruct", "hf", ["fin_fomc"], 3)
    fast, fast_lls = _per_sample_loglikelihoods("smollm2-135m-instruct", "hf-shared-prefix", ["fin_fomc"], 3)
    assert base == fast
    assert base_lls.keys() == fast_lls.keys()
    for key, lls in base_lls.items():
        assert fast_lls[key] == pytest.approx(lls, abs=TOL)
