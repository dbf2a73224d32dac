"""finharness reaches into lm-eval's state in one module (harness/lm_eval_adapters.py), and an
lm-eval upgrade that changes a symbol an adapter relies on fails here, naming both."""
import re
from pathlib import Path

import lm_eval

import harness.lm_eval_adapters as adapters
from harness.lm_eval_adapters import ADAPTED, LM_EVAL_VERSION, source_digest

REPO = Path(__file__).resolve().parents[1]


def test_the_adapters_were_written_against_the_installed_lm_eval():
    assert lm_eval.__version__ == LM_EVAL_VERSION, (
        f"lm-eval {lm_eval.__version__} is installed; harness/lm_eval_adapters.py was written against "
        f"{LM_EVAL_VERSION}: re-read every adapter, then update LM_EVAL_VERSION and the digests")


def test_no_symbol_an_adapter_relies_on_has_changed():
    changed = [f"{symbol} (read by {adapter}): source sha256 {source_digest(symbol)}, adapter written for {digest}"
               for symbol, (adapter, digest) in ADAPTED.items() if source_digest(symbol) != digest]
    assert changed == []


def test_every_adapter_named_exists():
    import fin_tasks.sandbox

    for adapter, _ in ADAPTED.values():
        owner, name = (fin_tasks.sandbox, adapter.rsplit(".", 1)[1]) if "." in adapter else (adapters, adapter)
        assert callable(getattr(owner, name)), adapter


def test_lm_eval_state_is_assigned_in_the_adapters_module_only():
    """An assignment into an lm-eval module, or over a task manager's ``load``, anywhere else
    in the shipped code would be a patch nobody lists."""
    pattern = re.compile(r"^\s*(lm_eval|evaluator|lm_utils)\.[\w.]+ = |\bmanager\.load = |model_name_sanitized = ",
                         re.M)
    owners = sorted(str(p.relative_to(REPO)) for package in ("plumbing", "fin_tasks", "evidence", "harness", "training",
                                                              "merges", "leaderboard", "study", "finharness")
                    for p in (REPO / package).rglob("*.py") if pattern.search(p.read_text()))
    assert owners == ["fin_tasks/sandbox.py", "harness/lm_eval_adapters.py"]


def test_adapting_the_evaluator_keeps_lm_eval_values_and_runs_its_probe_once(monkeypatch):
    import lm_eval.evaluator as evaluator
    from lm_eval.loggers import utils

    calls = []
    monkeypatch.setattr(utils, "add_env_info", lambda storage: (calls.append(1), storage.update(torch="x"))[0])
    monkeypatch.setattr(adapters, "_ENVIRONMENTS", {})
    monkeypatch.setattr(evaluator, "add_env_info", evaluator.add_env_info)
    monkeypatch.setattr(evaluator, "get_git_commit_hash", evaluator.get_git_commit_hash)
    adapters.adapt_evaluator()
    first, second = {}, {}
    evaluator.add_env_info(first)
    evaluator.add_env_info(second)
    assert first == second == {"torch": "x"} and calls == [1]
    assert evaluator.get_git_commit_hash() == utils.get_git_commit_hash()
