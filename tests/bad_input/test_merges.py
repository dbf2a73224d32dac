"""Merge recipes and the merges they would write: refused before anything is kept, and
nothing a user put in the output folder is ever deleted."""
import pytest

from merges.recipe import parse_merge_recipe
from merges.run import merge_recipe
from plumbing.folders import is_finished
from plumbing.recipes import RecipeError
from tests.helpers.checkpoints import perturbed_copy


def test_merge_never_deletes_what_a_user_put_in_its_output_folder(tiny_checkpoint, tmp_path):
    models = [perturbed_copy(tiny_checkpoint, tmp_path / f"ft{i}", seed=i) for i in range(2)]
    recipe = parse_merge_recipe({"name": "ta", "method": "task_arithmetic", "base_model": str(tiny_checkpoint),
                                 "models": [{"model": str(m), "weight": 0.5} for m in models],
                                 "output_dir": str(tmp_path / "merges")})
    mine = tmp_path / "merges" / "ta" / "my-notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("keep me")
    with pytest.raises(RecipeError, match=r"merges/ta exists and is not a finished finharness merge"):
        merge_recipe(recipe)
    assert mine.read_text() == "keep me"


def test_a_weight_given_to_slerp_is_refused_not_dropped(tiny_checkpoint, tmp_path):
    recipe = {"name": "s", "method": "slerp", "base_model": str(tiny_checkpoint), "parameters": {"t": 0.5},
              "models": [{"model": str(tiny_checkpoint), "weight": 0.3}], "output_dir": str(tmp_path / "out")}
    with pytest.raises(RecipeError, match=r"models\.0 .*: method slerp takes no weight \(slerp's mix is parameters\.t\)"):
        merge_recipe(parse_merge_recipe(recipe))
    assert not (tmp_path / "out").exists()


def test_a_merge_that_writes_non_finite_weights_is_not_kept(tiny_checkpoint, tmp_path):
    """A parent holding a NaN (a diverged fine-tune) makes every merge of it non-finite: refused,
    naming the tensor, with no folder that looks finished."""
    import torch
    from safetensors.torch import load_file, save_file

    good = perturbed_copy(tiny_checkpoint, tmp_path / "good", seed=1)
    bad = perturbed_copy(tiny_checkpoint, tmp_path / "bad", seed=2)
    weights = load_file(bad / "model.safetensors")
    name = next(k for k in sorted(weights) if k.endswith("mlp.down_proj.weight"))
    weights[name][0, 0] = float("nan")
    save_file(weights, bad / "model.safetensors", metadata={"format": "pt"})
    recipe = parse_merge_recipe({"name": "ta", "method": "linear",
                                 "models": [{"model": str(good), "weight": 0.5}, {"model": str(bad), "weight": 0.5}],
                                 "output_dir": str(tmp_path / "merges")})
    with pytest.raises(RecipeError, match=rf"merges/ta: the merge wrote \d+ non-finite value\(s\) in tensor {name}"):
        merge_recipe(recipe)
    folder = tmp_path / "merges" / "ta"
    assert not is_finished(folder, "merge") and not folder.exists()
    assert torch.isnan(load_file(bad / "model.safetensors")[name]).any()  # the inputs are untouched
