"""lm-eval runs finharness tasks end to end on a tiny random model, offline."""
import json
import subprocess
import sys

import pytest

from fin_tasks.common.metrics import f1_macro, mcc
from finharness.main import main
from harness.evaluate import EvalRequest, run_eval

CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def outcome(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    return run_eval(EvalRequest(
        model=str(tiny_checkpoint), tasks=["fin_fpb", "generative_fin_fpb"], limit=6,
        batch_size=4, output_path=out,
    )), out


def test_multiple_choice_and_generative_tasks_score(outcome):
    result, _ = outcome
    scores = result.results["results"]
    assert set(scores) == {"fin_fpb", "generative_fin_fpb"}
    for name in scores:
        assert result.results["n-samples"][name]["effective"] == 6
        for metric in ("acc", "f1_macro", "f1_weighted"):
            assert 0.0 <= scores[name][f"{metric},none"] <= 1.0
        assert -1.0 <= scores[name]["mcc,none"] <= 1.0
    assert 0.0 <= scores["generative_fin_fpb"]["missing,none"] <= 1.0
    assert "missing,none" not in scores["fin_fpb"]


def test_scores_follow_from_the_logged_samples(outcome):
    result, out = outcome
    for name in ("fin_fpb", "generative_fin_fpb"):
        [path] = out.rglob(f"samples_{name}_20*.jsonl")  # date follows the name
        samples = [json.loads(line) for line in path.read_text().splitlines()]
        pairs = [tuple(s["f1_macro"]) for s in samples]
        assert [g for g, _ in pairs] == [s["doc"]["gold"] for s in samples]
        scores = result.results["results"][name]
        assert scores["acc,none"] == pytest.approx(sum(s["acc"] for s in samples) / len(samples))
        assert scores["f1_macro,none"] == pytest.approx(f1_macro(pairs))
        assert scores["mcc,none"] == pytest.approx(mcc(pairs))
        if name.startswith("generative_"):
            # A missing answer is predicted as -1 and is never right.
            for s, (gold, pred) in zip(samples, pairs):
                assert s["missing"] == float(pred == -1)
                assert s["acc"] == float(pred == gold)
    [results_file] = out.rglob("results_*.json")
    assert json.loads(results_file.read_text())["results"]["fin_fpb"]["acc,none"] == result.results["results"]["fin_fpb"]["acc,none"]


def test_chat_template_is_applied_for_instruct_checkpoints(tmp_path):
    from tests.helpers.checkpoints import build_tiny_checkpoint

    chat_model = build_tiny_checkpoint(tmp_path / "chat", chat_template=CHAT)

    def first_prompt(mode: str) -> str:
        result = run_eval(EvalRequest(
            model=str(chat_model), tasks=["fin_fomc"], limit=1, log_samples=True, chat_template=mode,
        ))
        return result.results["samples"]["fin_fomc"][0]["arguments"][0][0]  # (context, continuation)

    assert first_prompt("auto").startswith("<|user|>Examine the excerpt")  # template found -> used
    assert first_prompt("off").startswith("Examine the excerpt")


def test_finharness_eval_prints_a_table(tiny_checkpoint, capsys):
    assert main(["eval", "-m", str(tiny_checkpoint), "-t", "finharness_unseen", "--limit", "2", "--batch_size", "2"]) == 0
    out = capsys.readouterr().out
    for row in ("fin_finarg_auc", "fin_fincausal", "finharness_unseen"):
        assert f"| {row}" in out
    assert "| task" in out and "f1_macro" in out and "docs/s" in out


def test_plain_lm_eval_finds_the_tasks_through_include_path(tiny_checkpoint, tmp_path):
    include = subprocess.run(
        [sys.executable, "-m", "fin_tasks"], check=True, capture_output=True, text=True
    ).stdout.strip()
    cmd = [
        sys.executable, "-m", "lm_eval", "--model", "hf",
        "--model_args", f"pretrained={tiny_checkpoint},dtype=float32",
        "--include_path", include, "--tasks", "fin_*,generative_fin_*", "--limit", "1",
        "--device", "cpu", "--output_path", str(tmp_path),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    [results_file] = tmp_path.rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]
    assert len(results) == 16 and "fin_ma" not in results  # 8 datasets x (multiple choice, generative)
    assert "f1_macro,none" in results["fin_fiqa_sa"] and "missing,none" in results["generative_fin_tfns"]


def test_few_shot_examples_show_label_words_from_the_validation_split(tiny_checkpoint):
    result = run_eval(EvalRequest(
        model=str(tiny_checkpoint), tasks=["generative_fin_fpb"], limit=1, num_fewshot=2, log_samples=True,
    ))
    prompt = result.results["samples"]["generative_fin_fpb"][0]["arguments"][0][0]
    examples = prompt.split("\n\n")
    assert len(examples) == 3 and examples[-1].endswith("Answer:")
    for shot in examples[:2]:
        assert shot.rsplit("Answer: ", 1)[1] in {"negative", "neutral", "positive"}
