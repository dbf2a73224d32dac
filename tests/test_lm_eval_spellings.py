"""`finharness eval` accepts what an lm-eval user types: patterns, backend names, typed
model_args, the chat/tracking flags, Hub ids; and the renamed tasks keep their old names."""
import json
import logging
import re
from pathlib import Path

import pytest

from finharness.main import main
from plumbing.checkpoints import CheckpointError, resolve_checkpoint
from tests.helpers.checkpoints import build_tiny_checkpoint
from tests.helpers.tasks import write_results

CHAT = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"


def results_of(folder: Path) -> dict:
    return json.loads(next(folder.rglob("results_*.json")).read_text())


@pytest.fixture
def captured(monkeypatch):
    """Every keyword simple_evaluate receives; the evaluation itself runs for real."""
    import lm_eval

    calls = []
    real = lm_eval.simple_evaluate

    def spy(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(lm_eval, "simple_evaluate", spy)
    return calls


def test_a_pattern_expands_with_lm_evals_matcher(tiny_checkpoint, tmp_path, capsys):
    assert main(["eval", "-m", str(tiny_checkpoint), "-t", "fin_fp*", "--limit", "2", "--chat_template", "off",
                 "-o", str(tmp_path / "r")]) == 0
    assert set(results_of(tmp_path / "r")["results"]) == {"fin_fpb"}  # not its generative twin


def test_a_name_that_matches_nothing_lists_the_nearest(tiny_checkpoint, capsys):
    assert main(["eval", "-m", str(tiny_checkpoint), "-t", "fin_fbp"]) == 2
    assert "no task, group or tag matches 'fin_fbp' (did you mean: fin_fpb" in capsys.readouterr().err


def test_model_hf_with_pretrained_in_model_args_as_lm_eval_users_type_it(tiny_checkpoint, tmp_path, captured):
    assert main(["eval", "--model", "hf", "--model_args", f"pretrained={tiny_checkpoint},max_length=64",
                 "-t", "fin_fpb", "--limit", "2", "--chat_template", "off", "-o", str(tmp_path / "r")]) == 0
    call = captured[0]
    assert call["model"] == "hf"
    assert call["model_args"]["pretrained"] == str(Path(tiny_checkpoint).resolve())
    assert call["model_args"]["max_length"] == 64  # typed by lm-eval's parser, not the string "64"
    assert results_of(tmp_path / "r")["finharness"]["backend"] == "hf"


def test_a_backend_name_without_a_checkpoint_says_what_to_do(capsys):
    assert main(["eval", "--model", "hf", "-t", "fin_fpb"]) == 2
    err = capsys.readouterr().err
    assert "--model hf names lm-eval's 'hf' backend, but no checkpoint was given" in err
    assert "--model_args pretrained=" in err


def test_parallelize_false_is_false(tiny_checkpoint, tmp_path, captured):
    assert main(["eval", "-m", str(tiny_checkpoint), "--backend", "hf", "--model_args", "parallelize=False",
                 "-t", "fin_fpb", "--limit", "1", "--chat_template", "off"]) == 0
    assert captured[0]["model_args"]["parallelize"] is False


def test_chat_and_generation_flags_pass_through(tmp_path, captured):
    model = build_tiny_checkpoint(tmp_path / "chat", chat_template=CHAT)
    assert main(["eval", "-m", str(model), "-t", "generative_fin_fpb", "--limit", "1", "--num_fewshot", "1",
                 "--apply_chat_template", "--system_instruction", "You are terse.", "--fewshot_as_multiturn", "false",
                 "--gen_kwargs", "max_gen_toks=3", "--log_samples", "-o", str(tmp_path / "r")]) == 0
    call = captured[0]
    assert call["apply_chat_template"] is True and call["fewshot_as_multiturn"] is False
    assert call["system_instruction"] == "You are terse." and call["gen_kwargs"] == {"max_gen_toks": 3}
    sample = json.loads(next((tmp_path / "r").rglob("samples_generative_fin_fpb_*.jsonl")).read_text().splitlines()[0])
    prompt = sample["arguments"]["gen_args_0"]["arg_0"]
    assert prompt.startswith("<system>You are terse.")


def test_wandb_and_hub_logging_go_through_lm_evals_own_loggers(tiny_checkpoint, tmp_path, monkeypatch):
    import lm_eval.loggers

    seen = {}

    class FakeWandb:
        def __init__(self, init_args, config_args):
            seen["init"], seen["config"] = init_args, config_args
            self.run = self

        def post_init(self, results):
            seen["results"] = sorted(results["results"])

        def log_eval_result(self):
            seen["logged"] = True

        def log_eval_samples(self, samples):
            seen["samples"] = sorted(samples)

        def finish(self):
            seen["finished"] = True

    class SpyTracker(lm_eval.loggers.EvaluationTracker):
        def __init__(self, **kwargs):
            seen["tracker"] = kwargs
            super().__init__(**kwargs)

    monkeypatch.setattr(lm_eval.loggers, "WandbLogger", FakeWandb)
    monkeypatch.setattr(lm_eval.loggers, "EvaluationTracker", SpyTracker)
    assert main(["eval", "-m", str(tiny_checkpoint), "-t", "fin_fpb", "--limit", "1", "--chat_template", "off",
                 "--wandb_args", "project=fin,job_type=eval", "--hf_hub_log_args", "hub_results_org=acme",
                 "-o", str(tmp_path / "r")]) == 0
    assert seen["init"] == {"project": "fin", "job_type": "eval"}
    assert seen["results"] == ["fin_fpb"] and seen["samples"] == ["fin_fpb"]
    assert seen["logged"] and seen["finished"]
    assert seen["tracker"]["hub_results_org"] == "acme" and seen["tracker"]["output_path"] == str(tmp_path / "r")


def test_a_hub_id_offline_is_a_clear_error(capsys):
    # The shape org/name is also a local folder's (runs/headlines-lora): the folder is named first.
    assert main(["eval", "-m", "acme/fin-model", "-t", "fin_fpb"]) == 2
    err = capsys.readouterr().err
    assert "'acme/fin-model': no such folder (" in err
    assert "if it is a Hugging Face Hub id instead, this run is offline: add --online" in err


def test_a_hub_id_online_downloads_safetensors_only_at_its_revision(tiny_checkpoint, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, allow_patterns))
        return str(tiny_checkpoint)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    assert resolve_checkpoint("acme/fin-model@v1.2") == Path(tiny_checkpoint).resolve()
    assert resolve_checkpoint("acme/fin-model", revision="abc123") == Path(tiny_checkpoint).resolve()
    assert [(r, v) for r, v, _ in calls] == [("acme/fin-model", "v1.2"), ("acme/fin-model", "abc123")]
    patterns = calls[0][2]
    assert "*.safetensors" in patterns and not any(p.endswith((".bin", ".py", ".pt")) for p in patterns)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="no such folder .*Hub id instead, this run is offline"):
        resolve_checkpoint("acme/fin-model")


def test_old_generative_names_still_run_with_a_deprecation_line(tiny_checkpoint, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="finharness"):
        assert main(["eval", "-m", str(tiny_checkpoint), "-t", "fin_fpb_gen", "--limit", "1",
                     "--chat_template", "off", "-o", str(tmp_path / "r")]) == 0
    assert set(results_of(tmp_path / "r")["results"]) == {"generative_fin_fpb"}
    assert "fin_fpb_gen is deprecated: it is now generative_fin_fpb" in caplog.text


def test_forgetting_reports_the_retention_panel_on_each_tasks_own_metric(tmp_path, capsys):
    def write(folder, scores):
        write_results(folder, {t: v for t, v in scores.items() if t != "gen_summary_xlsum"})
        path = next(folder.glob("results_*.json"))
        data = json.loads(path.read_text())
        data["results"]["gen_summary_xlsum"] = {"rougeL,none": scores["gen_summary_xlsum"]}
        data["configs"] = {"gen_summary_xlsum": {"metric_list": [{"metric": "rougeL"}, {"metric": "rouge1"}]}}
        path.write_text(json.dumps(data))
        return folder

    tuned = write(tmp_path / "t", {"fin_fpb": 0.9, "gen_sentiment_sst2_mc": 0.6, "gen_summary_xlsum": 0.10})
    base = write(tmp_path / "b", {"fin_fpb": 0.5, "gen_sentiment_sst2_mc": 0.8, "gen_summary_xlsum": 0.20})
    assert main(["forgetting", str(tuned), str(base)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\| gen_summary_xlsum +\| retention +\| rougeL +\| +\| +0\.1000 \| +0\.2000 \| +-0\.1000 \|", out)
    # mean(0.6 - 0.8, 0.10 - 0.20) = -0.15
    assert re.search(r"\| retention +\| +2 \| +0\.3500 \| +0\.5000 \| +-0\.1500 \|", out)


def test_outside_a_git_checkout_the_run_prints_no_git_error(tiny_checkpoint, tmp_path, monkeypatch, capfd):
    """lm-eval's commit probe runs `git describe`; outside a checkout git said "fatal: not a git
    repository" in the middle of the run's output. The probe's answer is kept, its stderr is not."""
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "-m", str(tiny_checkpoint), "-t", "fin_fpb", "--limit", "2", "--chat_template", "off",
                 "-o", str(tmp_path / "out")]) == 0
    assert "not a git repository" not in capfd.readouterr().err
