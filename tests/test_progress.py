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
