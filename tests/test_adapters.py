"""Base + adapter and base + delta checkpoints score exactly as the merged model does."""
import json

import pytest
import torch

from finharness.main import build_parser
from harness.evaluate import EvalRequest, backend_model_args, run_eval
from plumbing.checkpoints import CheckpointError, resolve_model
from tests.helpers.checkpoints import build_tiny_checkpoint


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    """A base model, a LoRA adapter on it (random B, so it changes answers), and the merge."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("adapters")
    base = build_tiny_checkpoint(root / "base")
    torch.manual_seed(1)
    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    peft_model.save_pretrained(root / "adapter", safe_serialization=True)
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(root / "merged", safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(root / "merged")
    # Delta weights as lm-eval applies them: base + delta = merged.
    base_sd = AutoModelForCausalLM.from_pretrained(base).state_dict()
    delta = AutoModelForCausalLM.from_pretrained(base)
    delta.load_state_dict({k: v - base_sd[k] for k, v in merged.state_dict().items()})
    delta.save_pretrained(root / "delta", safe_serialization=True)
    return base, root / "adapter", root / "merged", root / "delta"


def loglikelihoods(outcome, task="fin_fpb"):
    return [float(resp[0]) for s in outcome.results["samples"][task] for resp in s["filtered_resps"]]


def score(model, **kw):
    return run_eval(EvalRequest(model=str(model), tasks=["fin_fpb"], limit=4, batch_size=4,
                                log_samples=True, use_cache=False, **kw))


def test_a_training_runs_adapter_folder_is_scored_on_its_base(trio):
    base, adapter, merged, _ = trio
    resolved = resolve_model(str(adapter))  # the base comes from adapter_config.json
    assert (resolved.weight_type, resolved.checkpoint, resolved.extra) == ("adapter", base.resolve(), adapter.resolve())

    with_adapter, plain_merge, bare = score(adapter), score(merged), score(base)
    assert loglikelihoods(with_adapter) == pytest.approx(loglikelihoods(plain_merge), abs=1e-4)
    assert loglikelihoods(with_adapter) != pytest.approx(loglikelihoods(bare), abs=1e-4)
    assert with_adapter.results["finharness"]["weight_type"] == "adapter"
    # The adapter is part of what the cache and the leaderboard key on.
    assert with_adapter.results["finharness"]["revision"] != bare.results["finharness"]["revision"]


def test_delta_weights_are_added_to_the_named_base(trio):
    base, _, merged, delta = trio
    with_delta = score(delta, base_model=str(base), weight_type="delta")
    assert loglikelihoods(with_delta) == pytest.approx(loglikelihoods(score(merged)), abs=1e-4)


def test_adapter_and_delta_mistakes_are_named(trio, tmp_path):
    base, adapter, merged, delta = trio
    with pytest.raises(CheckpointError, match="need --base_model"):
        resolve_model(str(delta), weight_type="delta")
    with pytest.raises(CheckpointError, match="is for adapters and deltas"):
        resolve_model(str(merged), base_model=str(base))
    other = build_tiny_checkpoint(tmp_path / "wide")
    config = json.loads((other / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="num_hidden_layers: 2 vs base 3"):
        resolve_model(str(delta), base_model=str(other), weight_type="delta")
    pickled = tmp_path / "pickled_adapter"
    pickled.mkdir()
    (pickled / "adapter_config.json").write_text((adapter / "adapter_config.json").read_text())
    (pickled / "adapter_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match="no adapter_model.safetensors"):
        resolve_model(str(pickled))


def parse_model_args(text: str) -> dict:
    """``--model_args TEXT`` as `finharness eval` parses it (lm-eval's own argparse action)."""
    return build_parser().parse_args(["eval", "-m", "x", "--model_args", text]).model_args


def test_scale_out_flags_reach_lm_eval_as_its_own_model_args(trio, capsys):
    base, adapter, _, delta = trio
    resolved = resolve_model(str(adapter))
    vllm = EvalRequest(model=str(adapter), backend="vllm", dtype="bfloat16",
                       model_args=parse_model_args("tensor_parallel_size=2,data_parallel_size=4"))
    assert backend_model_args(vllm, resolved) == {
        "pretrained": str(base.resolve()), "lora_local_path": str(adapter.resolve()), "dtype": "bfloat16",
        "tensor_parallel_size": 2, "data_parallel_size": 4, "trust_remote_code": False,
    }
    # lm-eval's own parser types the values, as `lm_eval --model_args` does.
    assert parse_model_args("max_length=64,parallelize=False,revision=main") == {
        "max_length": 64, "parallelize": False, "revision": "main"}
    hf = EvalRequest(model=str(adapter), backend="hf", model_args={"parallelize": "True"})
    assert backend_model_args(hf, resolved)["peft"] == str(adapter.resolve())
    with pytest.raises(ValueError, match="may not set trust_remote_code"):
        backend_model_args(EvalRequest(model="x", model_args={"trust_remote_code": "True"}), resolved)
    with pytest.raises(CheckpointError, match="cannot apply delta"):
        backend_model_args(EvalRequest(model="x", backend="vllm"), resolve_model(str(delta), str(base), "delta"))
    with pytest.raises(SystemExit):  # argparse's usage error, exit 2
        parse_model_args("parallelize")
    assert "expected `key=value`, got 'parallelize'" in capsys.readouterr().err
