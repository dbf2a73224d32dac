"""What the package declares (Python, extras, tested pins) and how it writes files."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_the_package_states_what_it_needs():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"  # the pinned transformers and lm-eval need 3.11
    assert not any(dep.startswith("trl") for dep in project["dependencies"])  # only a benchmark uses TRL
    assert any(dep.startswith("trl") for dep in project["optional-dependencies"]["bench"])


def _pins(name: str) -> dict[str, str]:
    from packaging.utils import canonicalize_name

    lines = (REPO / name).read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in lines]
    return {canonicalize_name(p.split("==")[0]): p.split("==")[1] for p in pins if "==" in p}


@pytest.mark.parametrize("constraints,extras", [("constraints.txt", ("test", "bench")),
                                                ("constraints-vllm.txt", ("test", "bench", "vllm"))])
def test_each_tested_point_lies_inside_the_declared_ranges(constraints, extras):
    """pyproject.toml declares ranges; each constraints file is a point the suite passed on
    (CPU; and the set `finharness[vllm]` resolves to: vLLM 0.33 needs torch 2.14 and
    transformers <5.21). Every direct dependency is pinned, and every pin is in range."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = [Requirement(d) for d in project["dependencies"]]
    deps += [Requirement(d) for e in extras for d in project["optional-dependencies"][e]]
    pins = _pins(constraints)
    for req in deps:
        name = canonicalize_name(req.name)
        assert name in pins, f"{constraints} does not pin {req.name}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{constraints}: {req.name}=={pins[name]} " \
                                                                      f"is outside pyproject's {req.specifier}"


def test_vllm_extra_needs_the_other_end_of_the_ranges():
    cpu, gpu = _pins("constraints.txt"), _pins("constraints-vllm.txt")
    assert (cpu["torch"], cpu["transformers"]) == ("2.13.0", "5.23.0")
    assert (gpu["torch"], gpu["transformers"], gpu["vllm"]) == ("2.14.0", "5.20.2", "0.33.0")
    install = (REPO / "install.sh").read_text()
    assert "constraints.txt" in install and "constraints-vllm.txt" in install and "--vllm" in install


def test_written_files_follow_the_umask(tmp_path):
    import os

    from plumbing.atomic import write_atomic

    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "page.html", "<p>board</p>")
    finally:
        os.umask(old)
    assert (tmp_path / "page.html").stat().st_mode & 0o777 == 0o644
