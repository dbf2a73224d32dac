"""What a packed per-sample row keeps: everything the tables read, nothing else."""
from study.pack import compact_row


def test_a_generation_row_keeps_the_input_and_reference_its_lead_baseline_reads():
    """Without them a rebuilt table had no lead baseline, so a generation gate that the run read
    'at floor' read 'clears' from the packed logs (Study A's confirmatory pack, 2026-12-08)."""
    row = {"doc_id": 3, "doc": {"id": "t-3", "input": "A tweet. More text.", "answer": "x", "output": "who?"},
           "target": "who?", "rougeL": 0.2, "rouge1": 0.2, "rouge2": 0.0, "bleu": 0.1,
           "arguments": {"gen_args_0": {"arg_0": "a long prompt"}}, "resps": [["an answer"]]}
    packed = compact_row(row)
    assert packed["doc"] == {"input": "A tweet. More text.", "output": "who?"}
    assert "arguments" not in packed and "resps" not in packed and packed["rougeL"] == 0.2


def test_a_multiple_choice_row_keeps_its_labels_and_log_likelihoods_only():
    row = {"doc_id": 1, "doc": {"text": "Profit rose.", "choices": ["up", "down"], "gold": 0},
           "target": 0, "acc": 1.0, "filtered_resps": [[-0.5, False], [-2.0, False]],
           "resps": [[[-0.5, False]], [[-2.0, False]]], "arguments": {}}
    packed = compact_row(row)
    assert packed["doc"] == {"choices": ["up", "down"]}
    assert packed["filtered_resps"] == [[-0.5, False], [-2.0, False]] and "resps" not in packed
