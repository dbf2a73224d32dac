"""What a run will cost before it starts: this machine's measured scoring speed per model.

Every ``finharness eval`` that computed its answers (no request cache to read them from)
records its documents per second under the model's content fingerprint, backend, dtype,
device and kind of work (generation or label scoring, and the shots: a 3-shot generative
run is several times slower than a 0-shot scored one), in ``speed.json`` in the request
cache's folder (``~/.cache/finharness/lm_cache`` by default). A run without ``--limit`` over
thousands of documents then says how many it will score and, where this model's speed was
measured here on that kind of work, about how long that takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from harness.lm_cache import cache_root
from plumbing.atomic import write_atomic

LARGE_RUN = 2000  # documents: above this, a run without --limit says what it will cost


def speed_file() -> Path:
    return cache_root() / "speed.json"


def work_kind(output_types: Iterable[str], shots: int | None) -> str:
    """What a speed was measured on: generating answers costs many times scoring labels, and
    each few-shot example lengthens every prompt, so a speed is kept per kind of work."""
    kind = "generate" if "generate_until" in set(output_types) else "loglikelihood"
    return f"{kind}, {shots or 0}-shot"


def _key(fingerprint: str, backend: str, dtype: str, device: str, work: str) -> str:
    return f"{fingerprint}|{backend}|{dtype}|{device}|{work}"


def _read() -> dict:
    try:
        data = json.loads(speed_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(fingerprint: str, backend: str, dtype: str, device: str, work: str, docs: int, seconds: float) -> None:
    """Keep this run's documents per second (a run of at least 20 documents, answers computed)."""
    if docs < 20 or seconds <= 0:
        return
    data = _read()
    data[_key(fingerprint, backend, dtype, device, work)] = {
        "docs_per_second": docs / seconds, "docs": docs,
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    write_atomic(speed_file(), json.dumps(data, indent=2, sort_keys=True))


def measured(fingerprint: str, backend: str, dtype: str, device: str, work: str) -> float | None:
    found = _read().get(_key(fingerprint, backend, dtype, device, work))
    return float(found["docs_per_second"]) if isinstance(found, dict) and "docs_per_second" in found else None


def cost_note(docs: int, tasks: int, rate: float | None, work: str = "") -> str | None:
    """The warning a run without --limit prints before a large evaluation; None for a small one."""
    if docs <= LARGE_RUN:
        return None
    on = f" on the same kind of work ({work})" if work else ""
    if rate:
        seconds = docs / rate
        when = f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"
        speed = f"about {when} at the {rate:.1f} docs/s this model scored here before{on}"
    else:
        speed = (f"no speed measured for this model on this machine yet{on} (any run of 20+ documents of that "
                 "kind records one)")
    return (f"no --limit: scoring all {docs:,} test documents of {tasks} task(s); {speed}. "
            f"--limit N scores a seeded slice of N documents per task")
