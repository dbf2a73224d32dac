"""Cost before work: a run without --limit over thousands of documents says what it will cost."""
from harness.speed import cost_note, measured, record, work_kind

SCORED = work_kind(["multiple_choice"], None)  # "loglikelihood, 0-shot"


def test_a_measured_speed_is_kept_per_model_and_device_and_turns_documents_into_time(tmp_path, monkeypatch):
    monkeypatch.setenv("FINHARNESS_LM_CACHE", str(tmp_path))
    assert measured("abc", "hf-shared-prefix", "float32", "cpu", SCORED) is None
    record("abc", "hf-shared-prefix", "float32", "cpu", SCORED, docs=400, seconds=50)
    record("abc", "hf-shared-prefix", "float32", "cpu", SCORED, docs=5, seconds=1)  # too few to be a speed
    assert measured("abc", "hf-shared-prefix", "float32", "cpu", SCORED) == 8.0
    assert measured("abc", "hf-shared-prefix", "float32", "cuda", SCORED) is None


def test_a_speed_is_kept_per_kind_of_work(tmp_path, monkeypatch):
    """A 3-shot generative run is not estimated from a 0-shot scored run's speed (5x too fast)."""
    monkeypatch.setenv("FINHARNESS_LM_CACHE", str(tmp_path))
    generate = work_kind(["generate_until", "multiple_choice"], 3)
    assert (SCORED, generate) == ("loglikelihood, 0-shot", "generate, 3-shot")
    record("abc", "hf-shared-prefix", "float32", "cpu", SCORED, docs=400, seconds=50)
    assert measured("abc", "hf-shared-prefix", "float32", "cpu", generate) is None
    assert "no speed measured for this model on this machine yet on the same kind of work (generate, 3-shot)" in \
        cost_note(3000, 2, None, generate)
    record("abc", "hf-shared-prefix", "float32", "cpu", generate, docs=40, seconds=100)
    assert measured("abc", "hf-shared-prefix", "float32", "cpu", generate) == 0.4
    assert measured("abc", "hf-shared-prefix", "float32", "cpu", SCORED) == 8.0
    note = cost_note(16_000, 8, 8.0)
    assert note.startswith("no --limit: scoring all 16,000 test documents of 8 task(s); about 33 min at the 8.0 docs/s")
    assert "about 2.2 h" in cost_note(64_000, 8, 8.0)
    assert "--limit N scores a seeded slice" in note
    assert "no speed measured for this model on this machine yet" in cost_note(3000, 2, None)
    assert cost_note(1500, 2, 8.0) is None  # a small run just runs


def test_eval_without_limit_says_how_many_documents_before_scoring(tiny_checkpoint, tmp_path, monkeypatch, caplog):
    """The first run of the model measures its speed; the second, without --limit, names the cost."""
    import logging

    from harness.evaluate import EvalRequest, run_eval
    from harness.speed import LARGE_RUN
    from plumbing.checkpoints import model_fingerprint

    monkeypatch.setenv("FINHARNESS_LM_CACHE", str(tmp_path / "cache"))
    run_eval(EvalRequest(model=str(tiny_checkpoint), tasks=["fin_fpb"], limit=30, chat_template="off"))
    rate = measured(model_fingerprint([tiny_checkpoint]), "hf-shared-prefix", "float32", "cpu", SCORED)
    assert rate and rate > 0
    import harness.evaluate as evaluate

    # What the run passes to the note: FPB's 970 test documents, one task, this model's speed.
    monkeypatch.setattr(evaluate, "cost_note", lambda docs, tasks, r, work: f"COST {docs} {tasks} {r == rate} {work}")
    with caplog.at_level(logging.WARNING, logger="finharness"):
        run_eval(EvalRequest(model=str(tiny_checkpoint), tasks=["fin_fpb"], limit=None, chat_template="off",
                             use_cache=False, batch_size=64))
    assert "COST 970 1 True loglikelihood, 0-shot" in caplog.text
    assert LARGE_RUN == 2000  # the real threshold: FPB alone runs without a word
