"""arXiv 2411.02476's prompt formats as task variants: the Alpaca template for base models and
"sentence: ... label:" for instruct models, scored by log-likelihood or generated."""
from __future__ import annotations

import pytest

from fin_tasks.index import task_manager
from fin_tasks.common.data import TaskDataError, load
from fin_tasks.index import roles
from tests.helpers.checkpoints import build_tiny_checkpoint
from tests.helpers.train_runs import CHATML
from training.examples import render_example

FAMILIES = ["fpb", "fiqa_sa", "tfns", "headlines", "finred", "fomc", "finarg_auc", "fincausal"]
ALPACA = ("Below is an instruction that describes a task, paired with an input that provides further context. "
          "Write a response that appropriately completes the request.\n\n### Instruction:\n{}\n\n### Input:\n{}"
          "\n\n### Response:\n")
FPB_INSTRUCTION = ("Analyze the sentiment of this statement extracted from a financial news article. "
                   "Provide your answer as either negative, positive, or neutral.")


@pytest.fixture(scope="module")
def manager():
    return task_manager()


@pytest.fixture(scope="module")
def tasks(manager):
    names = [f"{p}fin_{f}" for f in ("fpb", "finred") for p in ("", "alpaca_", "label_", "generative_label_")]
    return manager.load(names)["tasks"]


def test_every_family_has_both_formats_scored_and_generated_with_its_role(manager):
    found = roles(manager.task_index)
    for family in FAMILIES:
        for variant in ("alpaca_", "label_", "generative_alpaca_", "generative_label_"):
            name = f"{variant}fin_{family}"
            assert found[name] == found[f"fin_{family}"], name
    # fin_* stays FinBen's eight tasks: the variants do not answer to it.
    assert manager.match_tasks(["fin_*"]) == sorted(f"fin_{f}" for f in FAMILIES)


def test_the_formats_lay_out_the_same_instruction_and_input(tasks):
    doc = tasks["fin_fpb"].test_docs()[0]
    finben = tasks["fin_fpb"].doc_to_text(doc)
    assert finben == f"{FPB_INSTRUCTION}\nText: {doc['text']}\nAnswer:"  # FinBen's prompt, unchanged
    assert tasks["alpaca_fin_fpb"].doc_to_text(doc) == ALPACA.format(FPB_INSTRUCTION, doc["text"])
    assert tasks["alpaca_fin_fpb"].config.target_delimiter == ""  # the answer starts the response
    assert tasks["label_fin_fpb"].doc_to_text(doc) == f"{FPB_INSTRUCTION}\nsentence: {doc['text']}"
    assert tasks["label_fin_fpb"].doc_to_prefix(doc) == "label:"
    # FinRED's input carries its entities, and its instruction its 29 relations, in every format.
    red = tasks["alpaca_fin_finred"].test_docs()[0]
    text = tasks["alpaca_fin_finred"].doc_to_text(red)
    assert f"### Input:\n{red['text']}\nHead: {red['head']}\nTail: {red['tail']}\n\n### Response:\n" in text
    assert "'product/material produced'" in text and "'creator'" in text


def test_label_format_requests_open_the_assistant_turn_with_label(tasks, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(build_tiny_checkpoint(tmp_path / "m", chat_template=CHATML))
    task = tasks["label_fin_fpb"]
    doc = task.test_docs()[0]
    requests = task.construct_requests(doc, task.fewshot_context(
        doc, 0, apply_chat_template=True, chat_template=lambda m, add_generation_prompt=True:
        tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=add_generation_prompt,
                                      continue_final_message=not add_generation_prompt),
        gen_prefix=task.doc_to_prefix(doc)))
    context, continuation = requests[0].arguments
    assert context.endswith("<|im_start|>assistant\nlabel:") and continuation == " negative"


def test_training_in_the_label_format_completes_the_turn_it_opened(tasks, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(build_tiny_checkpoint(tmp_path / "m", chat_template=CHATML))
    task = tasks["label_fin_fpb"]
    docs = task.training_docs()
    prompt, completion = render_example(task, docs[0], [docs[1]], "instruct", tokenizer)
    gold = docs[0]["label"]
    assert prompt.endswith("<|im_start|>assistant\nlabel:") and completion == f" {gold}<|im_end|>\n"
    assert f"<|im_start|>assistant\nlabel: {docs[1]['label']}<|im_end|>" in prompt  # the demonstration's answer too
    prompt, completion = render_example(tasks["alpaca_fin_fpb"], docs[0], [], "base", tokenizer)
    assert prompt.endswith("### Response:\n") and completion.startswith(gold)


def test_generated_label_answers_are_parsed_after_the_prefix(tasks):
    task = tasks["generative_label_fin_fpb"]
    doc = next(d for d in task.test_docs() if d["label"] == "positive")
    assert task.process_results(doc, [" positive"])["acc"] == 1.0
    assert task.process_results(doc, [" Positive."])["acc"] == 1.0
    assert task.process_results(doc, [" unclear"])["missing"] == 1.0


def test_a_prompt_spec_naming_an_unknown_part_or_field_is_an_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.jsonl").write_text('{"text": "Shares rose.", "label": "up"}\n')
    source = str(tmp_path / "task.yaml")
    with pytest.raises(TaskDataError, match="prompt takes instruction and input, not \\['output'\\]"):
        load(labels=["up", "down"], config_source=source, prompt={"instruction": "x", "output": "y"})
    with pytest.raises(TaskDataError, match="'headline' is undefined"):
        load(labels=["up", "down"], config_source=source, prompt={"instruction": "x", "input": "{{headline}}"})
    ok = load(labels=["up", "down"], config_source=source, prompt={"instruction": "Say {{ choices | join('/') }}",
                                                                   "input": "{{text}}"})
    assert ok["test"][0]["instruction"] == "Say up/down" and ok["test"][0]["input"] == "Shares rose."
