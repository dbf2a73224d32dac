"""The house stays a house: imports run one way, down the floors, and never in a loop.

Read from the shipped code's own import statements (those inside functions too), so a new
upward import or cycle fails here the day it is written. docs/architecture.md draws it.
"""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Lower floors never import higher ones; packages on one floor never import each other.
FLOORS = {
    "plumbing": 0,      # recipe loading, atomic writes, checkpoints, the Hub switch
    "fin_tasks": 1,     # the task suite and its index
    "evidence": 2,      # reading what lm-eval wrote: result files, baselines, measures, statistics, contamination
    "training": 2,      # LoRA / FTICL runs
    "harness": 3,       # running models: lm-eval runs, backends, the request cache (records: evidence)
    "merges": 4,        # MergeKit merges (choosing a point scores it: harness)
    "leaderboard": 5,   # verified submissions (scoring one: harness; its recipe: training, merges)
    "study": 6,         # the papers' studies: train, merge, score, tabulate, submit
    "finharness": 7,    # the command line
}


def imports() -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    graph: dict[str, set[str]] = {}
    for package in FLOORS:
        for path in sorted((REPO / package).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            found = graph.setdefault(module, set())
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                else:
                    continue
                found |= {n for n in names if n.split(".")[0] in FLOORS}
    modules = set(graph)
    # "from pkg import name" names a module only when pkg.name is one.
    return {m: {n for n in targets if n in modules} for m, targets in graph.items()}


def test_every_shipped_package_has_a_floor():
    shipped = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}
    assert shipped - {"tests", "benchmarks"} == set(FLOORS)


def test_imports_only_go_down():
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in imports().items() for target in targets
        if (a := module.split(".")[0]) != (b := target.split(".")[0]) and FLOORS[b] >= FLOORS[a]
    )
    assert upward == []


def test_no_import_cycle():
    graph = imports()
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt == node or nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue  # a package and its own modules
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]) if nxt in path else f"{node} -> {nxt}")
            elif state.get(nxt) is None:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_architecture_compatibility_is_defined_once():
    """Adapters, deltas, board submissions and merges compare the same config fields
    (plumbing.checkpoints.ARCH_KEYS); a second list of them elsewhere would drift."""
    owners = sorted(str(path.relative_to(REPO)) for package in FLOORS for path in (REPO / package).rglob("*.py")
                    if '"num_key_value_heads"' in path.read_text())
    assert owners == ["plumbing/checkpoints.py"]


def test_the_small_vocabularies_are_defined_once():
    """Slice methods and rules, the default seeds, the scoring dtypes, weight types, backends,
    chat-template modes, the default task list, label priors, lineage states, prompt formats,
    training methods, study row kinds and board model types live in plumbing/vocabulary.py."""
    import re

    spelled = {"slice methods": r'"stratified", "random", "first"', "default seed": r"\b1234\b",
               "dtypes": r'"float32", "bfloat16", "float16"|bfloat16 = "bfloat16"',
               "weight types": r'"original", "adapter", "delta"|adapter = "adapter"',
               "chat-template modes": r'"auto", "on", "off"',
               "default tasks": r'\["finharness_all"\]|\("finharness_all",\)',
               "slice rules": r'"prior", "floor"', "label priors": r'"train", "slice"', "lineage": r'"known", "unknown"',
               "prompt formats": r'"base", "instruct"', "training methods": r'"lora", "full_finetune"',
               "row kinds": r'"vanilla", "single", "multi", "merged"', "model types": r'"pretrained", "instruct"',
               "default training seed": r"seed: int = 42\b|TRAINING_SEED = 42\b"}
    for what, pattern in spelled.items():
        owners = sorted(str(path.relative_to(REPO)) for package in FLOORS for path in (REPO / package).rglob("*.py")
                        if re.search(pattern, path.read_text()))
        assert owners == ["plumbing/vocabulary.py"], (what, owners)
    backends = sorted(str(path.relative_to(REPO)) for package in FLOORS for path in (REPO / package).rglob("*.py")
                      if re.search(r'"hf-shared-prefix": |"hf-shared-prefix", "hf"', path.read_text()))
    assert backends == ["harness/backends.py"]  # the registry


def test_no_str_field_lists_its_choices_in_a_comment():
    """A field whose comment lists its words (``kind: str  # a | b``) is a vocabulary: it gets a
    ``Literal`` (plumbing/vocabulary.py when packages share it), which pydantic and
    ``check_choices`` enforce where the value is made."""
    import re

    pattern = re.compile(r"^\s+\w+: str( \| None)?( = [^#\n]*)?\s+#\s*[\w\"'-]+ \| [\w\"'-]+", re.M)
    found = sorted(f"{path.relative_to(REPO)}: {m.group(0).strip()}" for package in FLOORS
                   for path in (REPO / package).rglob("*.py") for m in pattern.finditer(path.read_text()))
    assert found == []


def test_jsonl_lines_and_lm_eval_output_names_are_parsed_in_one_place_each():
    """Task data, per-sample logs and training logs are read by plumbing/jsonl.py (errors name
    file:line); lm-eval's results/samples file names are matched by evidence/result_files.py."""
    import re

    def owners(pattern: str) -> list[str]:
        return sorted(str(path.relative_to(REPO)) for package in FLOORS for path in (REPO / package).rglob("*.py")
                      if re.search(pattern, path.read_text()))

    assert owners(r"json\.loads\((line|raw)\b|readline\(\)") == ["plumbing/jsonl.py"]
    assert owners(r"glob\(\s*f?[\"']results_") == []  # result_files.newest finds them



def test_no_line_of_shipped_code_is_over_120_characters():
    wide = [f"{path.relative_to(REPO)}:{number}" for package in (*FLOORS, "benchmarks")
            for path in sorted((REPO / package).rglob("*.py"))
            for number, line in enumerate(path.read_text().splitlines(), 1) if len(line) > 120]
    assert wide == []


def test_test_modules_share_helpers_only_through_tests_helpers():
    """A test module imports no other test module (nor conftest): shared builders live in tests/helpers/."""
    import re

    borrowing = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("*.py")
                       if re.search(r"^\s*from tests\.(conftest|(\w+\.)*test_\w+) import", p.read_text(), re.M))
    assert borrowing == []
