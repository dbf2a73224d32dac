"""The document/task progress bar serves whole documents per chunk and keeps request order."""
from dataclasses import dataclass

from harness.progress import by_documents


@dataclass
class FakeRequest:
    task_name: str
    doc_id: int
    label: str


def test_chunks_hold_whole_documents_and_answers_come_back_in_request_order(capsys):
    # Requests of one document need not be adjacent (lm-eval orders them by task, doc, label).
    requests = [FakeRequest(task, doc, label) for task in ("fin_fpb", "fin_fomc")
                for label in ("a", "b", "c") for doc in range(5)]
    chunks = []

    def run(chunk):
        chunks.append(chunk)
        return [f"{r.task_name}/{r.doc_id}/{r.label}" for r in chunk]

    answers = by_documents(requests, run, "loglikelihood", docs_per_chunk=3)
    assert answers == [f"{r.task_name}/{r.doc_id}/{r.label}" for r in requests]
    assert [len({(r.task_name, r.doc_id) for r in c}) for c in chunks] == [3, 3, 3, 1]
    assert all(len(c) == 3 * len({(r.task_name, r.doc_id) for r in c}) for c in chunks)  # no doc split
    bar = capsys.readouterr().err
    assert "docs (loglikelihood)" in bar and "10/10" in bar and "tasks 2/2" in bar


def test_a_document_counts_once_its_last_request_is_answered_in_any_order(capsys):
    from harness.progress import DocProgress

    requests = [FakeRequest("fin_fpb", 0, "a"), FakeRequest("fin_fomc", 0, "a"),
                FakeRequest("fin_fpb", 0, "b"), FakeRequest("fin_fpb", 1, "a")]
    progress = DocProgress(requests, "loglikelihood")
    for i, docs_done in ((3, 1), (0, 1), (2, 2), (1, 3)):  # batches finish longest first, not in order
        progress.answered(i)
        assert progress.bar.n == docs_done
    assert progress._tasks_done() == "tasks 2/2"
    progress.close()


def test_the_default_backend_shows_documents_and_tasks(tmp_path, capsys):
    from harness.evaluate import EvalRequest, run_eval
    from tests.helpers.checkpoints import build_tiny_checkpoint

    model = build_tiny_checkpoint(tmp_path / "tiny")
    run_eval(EvalRequest(model=str(model), tasks=["fin_fpb", "fin_fomc"], limit=3, use_cache=False))
    bar = capsys.readouterr().err
    assert "docs (loglikelihood)" in bar and "6/6" in bar and "tasks 2/2" in bar
