"""--dtype bfloat16-checked: bfloat16's speed where it cannot change an answer, float32's answers everywhere."""
import random

import pytest
import torch
from lm_eval.api.instance import Instance

from harness.backend import precision_check
from harness.backend.precision_check import Scored, close_calls
from harness.backend.shared_prefix_lm import SharedPrefixLM
from evidence.records import RunRecord
from harness.evaluate import EvalRequest, backend_model_args, run_eval
from plumbing.checkpoints import resolve_model
from tests.helpers.records import undeclared


def scored(doc: int, *tokens: int, chars: int = 4) -> list[Scored]:
    return [Scored(doc=("task", doc), tokens=n, chars=chars) for n in tokens]


def test_a_document_is_re_scored_when_its_margin_is_within_the_error():
    requests = scored(0, 1, 1) + scored(1, 1, 1) + scored(2, 1) + scored(3, 2, 2)
    scores = [-1.0, -3.0,   # ahead by 2.0 > 2 x (0.1 + 0.1): kept
              -1.0, -1.3,   # ahead by 0.3: re-scored
              -1.0,         # one request: its value is the metric, re-scored
              -1.0, -1.7]   # ahead by 0.7 but two tokens each: 2 x (0.2 + 0.2) = 0.8, re-scored
    docs = precision_check.documents(requests)
    assert close_calls(requests, scores, docs, {"task": 0.1}) == {("task", 1), ("task", 2), ("task", 3)}
    assert close_calls(requests, scores, docs, {}) == set(docs)  # no bound measured: every document


def test_acc_norm_answers_are_protected_too():
    """Ahead by 1.0 in log-likelihood, but per character (acc_norm) the two labels are 0.02 apart."""
    requests = [Scored(("task", 0), tokens=1, chars=10), Scored(("task", 0), tokens=1, chars=50)]
    scores = [-10.0, -11.0]  # per character: -1.0 and -0.22
    docs = precision_check.documents(requests)
    assert close_calls(requests, scores, docs, {"task": 0.1}) == set()
    scores = [-10.0, -49.0]  # per character: -1.0 and -0.98
    assert close_calls(requests, scores, docs, {"task": 0.1}) == {("task", 0)}


@pytest.fixture(scope="module")
def documents():
    """60 multiple-choice documents of random tokens over two tasks, 2-4 labels of 1-3 tokens."""
    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "up", "down", "neutral", "hawkish", "dovish"]
    out = []
    for d in range(60):
        task = "fin_a" if d % 2 else "fin_b"
        context = " ".join(rng.choice(words) for _ in range(rng.randrange(5, 30)))
        labels = rng.sample(words, rng.randrange(2, 5))
        out += [Instance("loglikelihood", {}, (context, " " + label), idx, (task, d, 1))
                for idx, label in enumerate(labels)]
    return out


def answers(lls: list[tuple[float, bool]], requests) -> dict:
    by_doc: dict = {}
    for request, (ll, _) in zip(requests, lls):
        by_doc.setdefault((request.task_name, request.doc_id), []).append((ll, request.idx))
    return {doc: max(choices)[1] for doc, choices in by_doc.items()}


def test_checked_bfloat16_answers_every_document_as_float32_does(tiny_checkpoint, documents):
    args = dict(pretrained=str(tiny_checkpoint), device="cpu", batch_size=4, max_length=128)
    exact = SharedPrefixLM(**args, dtype="float32").loglikelihood(documents, disable_tqdm=True)
    checked_lm = SharedPrefixLM(**args, dtype="float32", checked_bfloat16=True)
    assert checked_lm.model.dtype == torch.bfloat16  # the fast copy scores; float32 is kept beside it
    checked = checked_lm.loglikelihood(documents, disable_tqdm=True)
    assert answers(checked, documents) == answers(exact, documents)
    report = {c.task: c for c in checked_lm.checked}
    assert sorted(report) == ["fin_a", "fin_b"]
    for found in report.values():
        assert found.documents == 30 and found.probed == precision_check.PROBES
        assert found.probed <= found.rescored < found.documents  # some documents kept bfloat16's scores
        assert 0 < found.largest_gap < 0.05  # bfloat16 weights, float32 softmax over the scored positions
    # A document answered in float32 reports float32's log-likelihoods; the others bfloat16's.
    in_float32 = {(task, d) for task, found in report.items() for d in found.float32_docs}
    for request, got, want in zip(documents, checked, exact):
        exactly = (request.task_name, request.doc_id) in in_float32
        assert got[0] == pytest.approx(want[0], abs=1e-4 if exactly else 0.05)


def test_the_check_measures_the_error_it_faces(tiny_checkpoint, documents):
    """A fast copy 200 times further from float32 than bfloat16 is (noise on every weight): used
    unchecked it flips answers; checked, its larger gap is measured and every answer is float32's."""
    args = dict(pretrained=str(tiny_checkpoint), device="cpu", batch_size=4, max_length=128)
    exact = SharedPrefixLM(**args, dtype="float32").loglikelihood(documents, disable_tqdm=True)
    checked_lm = SharedPrefixLM(**args, dtype="float32", checked_bfloat16=True)
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for weight in checked_lm.model.parameters():
            weight.add_((torch.randn(weight.shape, generator=noise) * weight.float().abs().mean()).to(weight.dtype))
    unchecked = SharedPrefixLM(**args, dtype="float32")
    unchecked._model, unchecked.softmax_dtype = checked_lm.model, torch.float32  # the same copy, no check
    assert answers(unchecked.loglikelihood(documents, disable_tqdm=True), documents) != answers(exact, documents)
    assert answers(checked_lm.loglikelihood(documents, disable_tqdm=True), documents) == answers(exact, documents)
    assert all(found.largest_gap > 0.5 for found in checked_lm.checked)


def test_the_run_record_says_which_documents_were_answered_in_float32(tiny_checkpoint):
    tasks = ["fin_fpb", "fin_fomc"]
    exact = run_eval(EvalRequest(model=str(tiny_checkpoint), tasks=tasks, limit=20, use_cache=False))
    checked = run_eval(EvalRequest(model=str(tiny_checkpoint), tasks=tasks, limit=20, use_cache=False,
                                   dtype="bfloat16-checked"))
    assert checked.results["results"] == exact.results["results"]  # every accuracy, F1 and MCC
    record = checked.results["finharness"]
    assert record["dtype"] == "bfloat16-checked" and undeclared(record, RunRecord) == []
    assert sorted(record["precision_check"]) == sorted(tasks)
    for found in record["precision_check"].values():
        assert found["documents"] == 20 and len(found["float32_docs"]) == found["rescored"]


def test_only_a_backend_that_checks_bfloat16_takes_it(tiny_checkpoint):
    model = resolve_model(str(tiny_checkpoint))
    args = backend_model_args(EvalRequest(model=str(tiny_checkpoint), dtype="bfloat16-checked"), model)
    assert args["dtype"] == "float32" and args["checked_bfloat16"] is True
    with pytest.raises(ValueError, match="bfloat16-checked needs a backend that checks it .*not hf"):
        backend_model_args(EvalRequest(model=str(tiny_checkpoint), dtype="bfloat16-checked", backend="hf"), model)
