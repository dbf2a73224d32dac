"""`finharness merge` on tiny random models: MergeKit parity, formulas, seeds, errors."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from merges import run as merge_run
from merges.recipe import parse_merge_recipe
from merges.run import merge_recipe, plan
from plumbing.folders import read_manifest
from plumbing.recipes import RecipeError
from tests.helpers.checkpoints import build_tiny_checkpoint, perturbed_copy
from training.recipe import parse_recipe
from training.run import train_recipe


def state(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for file in sorted(folder.glob("*.safetensors")):
        out.update(load_file(file))
    return out


@pytest.fixture(scope="module")
def lora_runs(tiny_checkpoint, tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("runs")
    return [train_recipe(parse_recipe({
        "name": task, "base_model": str(tiny_checkpoint), "output_dir": str(out),
        "tasks": [{"name": task, "samples": 16}], "lora": {"r": 4, "alpha": 8},
        "training": {"lr": 5e-2, "epochs": 1, "batch_size": 8},
    })) for task in ("fin_fpb", "fin_fomc", "fin_headlines")]


@pytest.fixture(scope="module")
def full_models(tiny_checkpoint, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("full")
    return [perturbed_copy(tiny_checkpoint, root / f"ft{i}", seed=i) for i in range(3)]


def recipe_for(method: str, base: Path | None, models: list[Path], out: Path, **extra) -> dict:
    params = {"weight": 0.5} if method not in {"slerp", "model_stock"} else {}
    if method in {"ties", "dare_ties", "dare_linear", "breadcrumbs", "della"}:
        params["density"] = 0.5
    recipe = {"name": method, "method": method, "models": [{"model": str(m), **params} for m in models],
              "seed": 7, "output_dir": str(out)}
    if base is not None:
        recipe["base_model"] = str(base)
    recipe.update(extra)
    return recipe


def mergekit_yaml_cli(config: Path, out: Path, seed: int) -> dict[str, torch.Tensor]:
    """``mergekit-yaml CONFIG OUT --random-seed SEED``: the console script's own click command,
    run in this process (a new process would add ~4 s of imports per merge)."""
    from mergekit.scripts.run_yaml import main as mergekit_yaml

    mergekit_yaml.main([str(config), str(out), "--random-seed", str(seed), "--quiet"], standalone_mode=False)
    return state(out)


# --- parity with mergekit-yaml -----------------------------------------------------------

@pytest.mark.parametrize("method", ["task_arithmetic", "ties", "dare_ties", "dare_linear"])
def test_lora_space_merge_equals_mergekit_yaml(method, tiny_checkpoint, lora_runs, tmp_path):
    [folder] = merge_recipe(parse_merge_recipe(recipe_for(method, tiny_checkpoint, lora_runs, tmp_path)))
    assert read_manifest(folder, "merge").data["route"] == "lora-space"
    ours = state(folder)
    theirs = mergekit_yaml_cli(folder / "mergekit.yaml", tmp_path / "cli", seed=7)
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert torch.equal(ours[name], theirs[name]), name
    assert any(not torch.equal(ours[n], state(tiny_checkpoint)[n]) for n in ours)  # it did change something
    # and MergeKit on the full run checkpoints (fast_path: off) agrees too
    recipe = recipe_for(method, tiny_checkpoint, lora_runs, tmp_path / "full", fast_path="off")
    [full] = merge_recipe(parse_merge_recipe(recipe))
    assert read_manifest(full, "merge").data["route"] == "mergekit"
    assert all(torch.equal(ours[n], t) for n, t in state(full).items())


@pytest.mark.parametrize("method, with_base, n_models", [
    ("linear", False, 3), ("slerp", True, 1), ("breadcrumbs", True, 3), ("della", True, 3), ("model_stock", True, 3),
])
def test_other_methods_run_mergekit_and_match_the_cli(method, with_base, n_models, tiny_checkpoint, full_models, tmp_path):
    extra = {"parameters": {"t": 0.3}} if method == "slerp" else {}
    recipe = recipe_for(method, tiny_checkpoint if with_base else None, full_models[:n_models], tmp_path, **extra)
    [folder] = merge_recipe(parse_merge_recipe(recipe))
    assert read_manifest(folder, "merge").data["route"] == "mergekit"
    ours, theirs = state(folder), mergekit_yaml_cli(folder / "mergekit.yaml", tmp_path / "cli", seed=7)
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert torch.equal(ours[name], theirs[name]), name


def test_slerp_says_it_falls_back(tiny_checkpoint, lora_runs, tmp_path, caplog):
    recipe = recipe_for("slerp", tiny_checkpoint, lora_runs[:1], tmp_path, parameters={"t": 0.5})
    with caplog.at_level(logging.INFO, logger="finharness"):
        merge_recipe(parse_merge_recipe(recipe))
    assert "full-model MergeKit merge (slerp is not computed from task vectors alone" in caplog.text


# --- the formulas, by hand ---------------------------------------------------------------

def test_task_arithmetic_is_the_weighted_sum_of_task_vectors(tiny_checkpoint, full_models, tmp_path):
    weights = [0.5, 0.25, -0.25]
    recipe = recipe_for("task_arithmetic", tiny_checkpoint, full_models, tmp_path)
    recipe["models"] = [{"model": str(m), "weight": w} for m, w in zip(full_models, weights)]
    [folder] = merge_recipe(parse_merge_recipe(recipe))
    base, merged = state(tiny_checkpoint), state(folder)
    fine = [state(m) for m in full_models]
    for name, b in base.items():
        expected = b + sum(w * (f[name] - b) for w, f in zip(weights, fine))
        assert torch.allclose(merged[name], expected, atol=1e-6), name
    # Its card is a Hub model card: merge relation, MergeKit tags, the configuration in the text.
    from huggingface_hub import ModelCard

    card = ModelCard.load(folder / "README.md")
    assert card.data.get("base_model_relation") is None  # local inputs only: no Hub id to relate to
    assert {"merge", "mergekit", "task_arithmetic"} <= set(card.data.tags) and "merge_method: task_arithmetic" in card.text


def test_ties_trims_elects_signs_and_averages_agreeing_deltas(tiny_checkpoint, full_models, tmp_path):
    density, weights = 0.4, [1.0, 0.5, 0.8]
    recipe = recipe_for("ties", tiny_checkpoint, full_models, tmp_path)
    recipe["models"] = [{"model": str(m), "weight": w, "density": density} for m, w in zip(full_models, weights)]
    [folder] = merge_recipe(parse_merge_recipe(recipe))
    base, merged = state(tiny_checkpoint), state(folder)
    fine = [state(m) for m in full_models]
    for name, b in base.items():
        trimmed = []
        for f in fine:
            delta = (f[name] - b).flatten()
            keep = torch.zeros_like(delta)
            keep[delta.abs().argsort(descending=True)[: max(1, int(density * delta.numel()))]] = 1
            trimmed.append((delta * keep).reshape(b.shape))
        weighted = torch.stack([w * t for w, t in zip(weights, trimmed)])
        sign = torch.where(weighted.sum(0) >= 0, 1.0, -1.0)
        agree = (weighted.sign() == sign).float()
        divisor = (torch.tensor(weights).view(-1, *[1] * b.dim()) * agree).sum(0)
        divisor[divisor == 0] = 1
        expected = b + (weighted * agree).sum(0) / divisor
        assert torch.allclose(merged[name], expected, atol=1e-6), name


# --- seeds, sweeps, bytes ----------------------------------------------------------------

def test_dare_is_reproducible_with_a_seed_and_varies_without(tiny_checkpoint, lora_runs, tmp_path):
    def merged(seed: int, where: str):
        recipe = recipe_for("dare_ties", tiny_checkpoint, lora_runs, tmp_path / where, seed=seed)
        return state(merge_recipe(parse_merge_recipe(recipe))[0])

    a, b, c = merged(1, "a"), merged(1, "b"), merged(2, "c")
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)


def test_a_sweep_writes_one_yaml_and_checkpoint_per_point(tiny_checkpoint, lora_runs, tmp_path):
    recipe = recipe_for("task_arithmetic", tiny_checkpoint, lora_runs[:2], tmp_path,
                        sweep={"method": ["task_arithmetic", "ties"], "weight": [0.3, 0.6]})
    first = [item.yaml_text for item in plan(parse_merge_recipe(recipe))]
    assert first == [item.yaml_text for item in plan(parse_merge_recipe(recipe))]  # byte-stable
    folders = merge_recipe(parse_merge_recipe(recipe))
    assert [f.name for f in folders] == ["task_arithmetic-w0.3", "task_arithmetic-w0.6", "ties-w0.3", "ties-w0.6"]
    for folder, text in zip(folders, first):
        assert (folder / "mergekit.yaml").read_text() == text and (folder / "model.safetensors").is_file()
    assert json.loads((tmp_path / "task_arithmetic" / "sweep.json").read_text())["points"] == [str(f) for f in folders]
    assert "weight: 0.6" in (folders[1] / "mergekit.yaml").read_text()


# --- bad input -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def odd_models(tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("odd")
    config = LlamaConfig.from_pretrained(tiny_checkpoint)
    config.num_hidden_layers = 3
    LlamaForCausalLM(config).save_pretrained(root / "deeper")
    AutoTokenizer.from_pretrained(tiny_checkpoint).save_pretrained(root / "deeper")
    other_vocab = build_tiny_checkpoint(root / "vocab")
    tok = AutoTokenizer.from_pretrained(other_vocab)
    tok.add_tokens(["<extra>"])
    tok.save_pretrained(other_vocab)
    pickle = root / "pickle"
    pickle.mkdir()
    (pickle / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
    (pickle / "pytorch_model.bin").write_bytes(b"not allowed")
    return {"deeper": root / "deeper", "vocab": other_vocab, "pickle": pickle}


@pytest.mark.parametrize("change, message", [
    (lambda r, odd: r["models"].append({"model": str(odd["deeper"]), "weight": 0.5}), r"deeper.*architecture differs.*num_hidden_layers: 3 vs 2"),
    (lambda r, odd: r["models"].append({"model": str(odd["vocab"]), "weight": 0.5}), r"vocab.*tokenizer vocabulary differs"),
    (lambda r, odd: r["models"].append({"model": str(odd["pickle"]), "weight": 0.5}), r"pickle.*no .safetensors weights"),
    (lambda r, odd: r["models"].append({"model": "/nowhere/run", "weight": 0.5}), r"'/nowhere/run'.*does not exist"),
    (lambda r, odd: r["models"][0].update(weight=1.5), r"models.0 \(.*\): weight 1.5 is outside \[-1, 1\]"),
    (lambda r, odd: r["models"][1].update(density=0.0), r"models.1 \(.*\): density 0.0 is outside \(0, 1\]"),
    (lambda r, odd: r.pop("base_model"), r"base_model: method ties needs a base model and none is given"),
    (lambda r, odd: r.update(parameters={"lamda": 0.5}), r"parameters: unknown \['lamda'\]"),
])
def test_bad_merges_are_refused_before_anything_is_written(change, message, tiny_checkpoint, full_models, odd_models, tmp_path):
    recipe = recipe_for("ties", tiny_checkpoint, full_models[:2], tmp_path / "out")
    change(recipe, odd_models)
    with pytest.raises(RecipeError, match=message):
        merge_recipe(parse_merge_recipe(recipe))
    assert not (tmp_path / "out").exists()


def test_an_interrupted_merge_leaves_nothing_that_looks_finished(tiny_checkpoint, lora_runs, tmp_path, monkeypatch):
    def die(config, point, paths, out):
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(merge_run, "merge_in_lora_space", die)
    recipe = parse_merge_recipe(recipe_for("task_arithmetic", tiny_checkpoint, lora_runs, tmp_path))
    with pytest.raises(KeyboardInterrupt):
        merge_recipe(recipe)
    assert list(tmp_path.iterdir()) == []  # neither the merge folder nor its .partial


# --- choosing a sweep point on validation ------------------------------------------------

def test_sweep_point_is_chosen_on_development_rows_never_a_test_document(tiny_checkpoint, full_models, tmp_path):
    from evidence.measures import read_scores
    from evidence.result_files import samples_file
    from merges.select import select_point

    recipe = recipe_for("task_arithmetic", tiny_checkpoint, full_models[:2], tmp_path,
                        sweep={"weight": [0.2, 1.0]})
    folders = merge_recipe(parse_merge_recipe(recipe))
    selection = select_point(folders, ["fin_fpb", "fin_fomc"], metric="acc", limit=4)

    # Every point was scored on the tasks' validation rows that repeat no test document.
    from fin_tasks.common.decontamination import POOL_MARK

    validation = [json.loads(line) for line in
                  (Path(__file__).parents[1] / "fin_tasks/tasks/fpb/data/validation.jsonl").open()]
    for folder in folders:
        out = folder.parent / "development" / folder.name
        rows = [json.loads(line) for line in samples_file(out, "fin_fpb").read_text().splitlines()]
        assert len(rows) == 4 and all(r["doc"]["text"] == validation[r["doc_id"]]["text"] for r in rows)
        assert not any(r["doc"].get(POOL_MARK) for r in rows)
    # The best point is the one with the highest task-mean score there, and it is recorded.
    means = {Path(p["folder"]): p["mean acc"] for p in selection["points"]}
    assert selection["best"] == str(max(means, key=means.get))
    for folder in folders:
        scores = read_scores(folder.parent / "development" / folder.name, "acc")
        assert means[folder] == pytest.approx((scores["fin_fpb"] + scores["fin_fomc"]) / 2)
    assert json.loads((folders[0].parent / "selection.json").read_text())["split"] == "development"
    # The sweep's curve: validation score against the swept weight, the chosen point circled.
    assert sorted(p["weight"] for p in selection["points"]) == [0.2, 1.0]
    svg = (folders[0].parent / "sweep.svg").read_text()
    assert ">weight<" in svg and ">chosen<" in svg and ">development mean acc<" in svg
    assert (folders[0].parent / "sweep.png").stat().st_size > 1000


def test_validation_split_is_refused_for_a_task_without_one(tiny_checkpoint):
    from harness.evaluate import EvalRequest, run_eval

    with pytest.raises(ValueError, match="task gen_sentiment_sst2_mc has no validation split"):
        run_eval(EvalRequest(model=str(tiny_checkpoint), tasks=["gen_sentiment_sst2_mc"], limit=1, split="validation"))


# --- the method table: MergeKit's registry plus finharness's policy ---------------------------

def test_the_method_table_reads_what_each_method_takes_from_mergekit(capsys):
    from mergekit.merge_methods import registry

    from finharness.main import main
    from merges.methods import POLICY, methods

    table = methods()
    assert list(table) == list(POLICY)
    for name, row in table.items():
        spec = registry.get(name).spec
        assert row.pretty_name == spec.pretty_name
        assert set(row.model_parameters) | set(row.shared_parameters) == {p.name for p in spec.parameters}
    assert table["task_arithmetic"].required_model_parameters == ("weight",)
    assert not table["linear"].needs_base and table["slerp"].required_shared_parameters == ("t",)
    assert (table["slerp"].min_models, table["slerp"].max_models) == (1, 1)
    assert (table["model_stock"].min_models, table["model_stock"].max_models) == (2, None)
    assert {n for n, r in table.items() if r.random} == {"dare_ties", "dare_linear"}
    assert main(["merge", "--methods"]) == 0
    out = capsys.readouterr().out
    assert all(f"| {name} " in out for name in POLICY)


def test_a_method_mergekit_ships_is_one_row(monkeypatch):
    from merges import methods as table
    from merges.methods import Policy

    monkeypatch.setitem(table.POLICY, "breadcrumbs_ties", Policy(density_required=True))
    table.methods.cache_clear()
    try:
        row = table.lookup("breadcrumbs_ties")
        assert row.needs_base and row.required_model_parameters == ("weight",) and "gamma" in row.model_parameters
    finally:
        table.methods.cache_clear()


@pytest.mark.parametrize("method, models, message", [
    ("slerp", 2, r"models: slerp takes exactly 1 model\(s\) besides the base, got 2"),
    ("model_stock", 1, r"models: model_stock takes at least 2 model\(s\) besides the base, got 1"),
    ("dare_ties", 1, r"models.0 \(a\): method dare_ties needs a density"),
    ("slerp", 1, r"parameters.t: method slerp needs it"),
])
def test_points_are_checked_against_their_methods_row(method, models, message):
    from merges.recipe import MergeModel, MergePoint, check_point

    weight = None if method in ("slerp", "model_stock") else 0.5
    point = MergePoint(label="", base_model="base", method=method, parameters={}, dtype="float32", seed=0,
                       fast_path="on", models=[MergeModel(model=m, weight=weight) for m in "ab"[:models]])
    with pytest.raises(RecipeError, match=message):
        check_point(point)


def test_weights_that_cancel_are_refused_where_mergekit_divides_by_their_sum(tiny_checkpoint, full_models, tmp_path):
    # Round three: a linear merge of +0.5 / -0.5 printed "merged" and wrote NaN in every tensor.
    recipe = recipe_for("linear", None, full_models[:2], tmp_path)
    recipe["models"][0]["weight"], recipe["models"][1]["weight"] = 0.5, -0.5
    with pytest.raises(RecipeError, match=r"the weights \[0.5, -0.5\] sum to 0 and linear normalizes by their sum"):
        plan(parse_merge_recipe(recipe))
    assert not any(tmp_path.rglob("*.safetensors"))
    # Without normalization the same weights are a plain (if odd) difference, and allowed.
    plan(parse_merge_recipe({**recipe, "parameters": {"normalize": False}}))
    # M3: nearly cancelling weights are refused too: normalized, 0.5 / -0.4999 is 10,000x each.
    recipe["models"][1]["weight"] = -0.4999
    with pytest.raises(RecipeError, match=r"sum to 0.0001 and linear normalizes by their sum, so every merged "
                                          r"tensor would be scaled up 9,999 times"):
        plan(parse_merge_recipe(recipe))


def test_a_sweep_does_not_repeat_a_merge_for_a_parameter_its_method_ignores():
    """The shipped TIES/DARE sweep crosses three methods with three weights and two densities;
    task_arithmetic takes no density, so it gets three points, not six copies of three merges."""
    from merges.recipe import expand, load_merge_recipe

    points = expand(load_merge_recipe(Path(__file__).resolve().parents[1] / "recipes" / "merges" / "ties_dare_sweep.yaml"))
    labels = [p.label for p in points]
    assert len(labels) == len(set(labels)) == 3 + 6 + 6
    assert [lb for lb in labels if lb.startswith("task_arithmetic")] == [
        "task_arithmetic-w0.25", "task_arithmetic-w0.5", "task_arithmetic-w1"]
    assert "ties-w0.5-d0.3" in labels and "dare_ties-w1-d0.6" in labels
