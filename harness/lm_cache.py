"""One lm-eval request cache per checkpoint, so an interrupted run resumes.

lm-eval's ``use_cache`` keys each answer by the request alone (``hash_args(kind, args)``),
not by the model (lm-eval issue #4063), so one shared cache would serve model A's answers
to model B. Here the cache file lives under a fingerprint of the checkpoint's bytes
(weights, config, tokenizer, chat template) plus the backend and dtype, so a re-written
checkpoint at the same path gets a fresh cache. Both backends record each answer as it is
computed (``cache_hook.add_partial``, each committed as SQLite runs it), so a killed run
keeps what it had finished and the re-run only computes the rest.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plumbing.checkpoints import finharness_home


def cache_root() -> Path:
    return Path(os.environ.get("FINHARNESS_LM_CACHE", finharness_home() / "lm_cache"))


# Model args that cannot change an answer: where the model runs, not what it computes.
PLACEMENT_ARGS = {"pretrained", "peft", "delta", "trust_remote_code", "parallelize", "device_map",
                  "max_memory_per_gpu", "max_cpu_memory", "offload_folder", "prefix_reuse"}


def cache_path(fingerprint: str, backend: str, dtype: str, model_args: Mapping[str, Any] | None = None) -> Path:
    """The ``use_cache`` prefix for lm-eval (it appends ``_rank<N>.db``), from
    :func:`plumbing.checkpoints.model_fingerprint`.

    lm-eval keys a cached answer by the request alone, so every backend argument that can
    change an answer (``max_length`` truncates contexts, ``revision`` picks other weights)
    is part of the file's name; weights and adapters are in the fingerprint.
    """
    deciding = {k: v for k, v in (model_args or {}).items() if k not in PLACEMENT_ARGS}
    name = f"{backend}-{dtype}"
    if deciding:
        digest = hashlib.sha256(json.dumps(deciding, sort_keys=True, default=str).encode()).hexdigest()[:12]
        name += f"-{digest}"
    return cache_root() / fingerprint / name


def quarantine_broken(cache: str | Path) -> list[str]:
    """Every ``<cache>_rank<N>.db`` that SQLite cannot read whole (truncated, overwritten, not a
    database) is moved aside to ``<name>.broken-<pid>`` so this run rebuilds it from the model;
    returns one line per file moved. Without this, every later eval of the checkpoint failed
    on a traceback naming no file until the file was deleted by hand."""
    import sqlite3

    moved = []
    for db in sorted(Path(cache).parent.glob(f"{Path(cache).name}_rank*.db")):
        connection = None
        try:
            connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            ok = connection.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        except sqlite3.DatabaseError:
            ok = False
        finally:
            if connection is not None:
                connection.close()
        if not ok:
            aside = db.with_name(f"{db.name}.broken-{os.getpid()}")
            db.rename(aside)
            moved.append(f"request cache {db} is damaged (not a whole SQLite database): moved to {aside}; "
                         "this run computes its answers again")
    return moved
