"""The extension points docs/architecture.md names ("Adding a ...") exist and work as written."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = (REPO / "docs" / "architecture.md").read_text()


def adding_sections() -> dict[str, str]:
    return dict(re.findall(r"^### (Adding a [^\n]+)\n(.*?)(?=^#{2,3} |\Z)", ARCHITECTURE, re.M | re.S))


def test_the_architecture_doc_has_the_three_adding_sections():
    assert {"Adding a scoring backend", "Adding a merge method MergeKit lacks",
            "Adding a claim kind"} <= set(adding_sections())


@pytest.mark.parametrize("section", sorted(adding_sections()))
def test_every_file_and_symbol_a_section_names_exists(section):
    """Each `path/file.py` named exists, and each `path/file.py: symbol` is defined in it."""
    text = adding_sections()[section]
    named = re.findall(r"`([\w/]+\.(?:py|toml|md|yaml))(?:: ?(\w+))?`", text)
    assert named, section
    for path, symbol in named:
        source = REPO / path
        assert source.is_file(), f"{section}: {path} does not exist"
        if symbol:
            assert re.search(rf"^\s*(def |class |async def )?{symbol}\b", source.read_text(), re.M), \
                f"{section}: {path} defines no {symbol}"


def test_a_backend_is_one_registry_line_and_a_request_for_an_unknown_one_is_refused():
    from harness.backends import BACKENDS, REGISTRY, backend_help
    from harness.evaluate import EvalRequest

    assert BACKENDS == tuple(REGISTRY) and all(name in backend_help() for name in REGISTRY)
    with pytest.raises(ValueError, match="backend must be one of hf-shared-prefix, hf, vllm"):
        EvalRequest(model="m", backend="mlx")


def test_a_merge_method_defined_in_the_extra_home_becomes_a_row_mergekit_accepts(monkeypatch):
    import torch
    from mergekit.merge_methods.base import BasePolicy, InputContract, TensorGroup
    from mergekit.merge_methods.easy_define import merge_method

    import merges.extra_methods as extra
    import merges.methods as methods
    from merges.mergekit_yaml import validate

    @merge_method(name="finharness_test_mean", pretty_name="Mean of task vectors", reference_url="",
                  contract=InputContract(base=BasePolicy.REQUIRED, min_inputs=2))
    def mean_of_deltas(group: TensorGroup, scale: float = 1.0) -> torch.Tensor:
        base = group.base.tensor
        return base + scale * torch.stack([t.tensor - base for t in group.non_base]).mean(0)

    monkeypatch.setattr(extra, "EXTRA", [mean_of_deltas])
    monkeypatch.setitem(methods.POLICY, "finharness_test_mean", methods.Policy(note="a test's method"))
    methods.methods.cache_clear()
    try:
        row = methods.lookup("finharness_test_mean")
        assert row.needs_base and row.shared_parameters == ("scale",) and row.shared_defaults == {"scale": 1.0}
        config = validate({"merge_method": "finharness_test_mean", "base_model": "base",
                           "models": [{"model": "a"}, {"model": "b"}], "parameters": {"scale": 0.5}})
        assert config.merge_method == "finharness_test_mean"
    finally:
        from mergekit.merge_methods import registry

        registry._METHODS.pop("finharness_test_mean", None)  # the registry is process-wide
        methods.methods.cache_clear()


def test_a_table_layout_is_one_class_and_one_registry_entry():
    """study.yaml's ``table.kind`` words are the registry's: a third layout is a TableKind subclass
    and one entry, not a new branch in each place the tables are made."""
    from typing import get_args

    from study.spec import TableSpec
    from study.table_parts import TableKind
    from study.tables import TABLE_KINDS

    assert set(TABLE_KINDS) == set(get_args(TableSpec.model_fields["kind"].annotation))
    assert all(isinstance(kind, TableKind) for kind in TABLE_KINDS.values())
    tables = (REPO / "study" / "tables.py").read_text()
    assert "table.kind ==" not in tables and 'kind == "seen_unseen"' not in tables
