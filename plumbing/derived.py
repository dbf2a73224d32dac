"""Arrays derived from data, kept on disk by the content they were derived from.

Every process that trains, loads a task or checks contamination fingerprints the same texts
(the packaged suite's test documents: 3 s on 2 cores) and flags the same few-shot and training
rows. Their inputs are files nobody edits in between, so the result is written once under
``FINHARNESS_HOME/derived/`` and read back by every later process. The key is a hash of the
inputs' own content and of the source of the code that derives from them, never a file date,
so an edited dataset or a changed normalization gets a new entry and an old entry cannot be
read for it. A file that cannot be read is computed again and replaced; a folder that cannot
be written costs the recomputation only.
"""
from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from plumbing.atomic import write_atomic
from plumbing.checkpoints import finharness_home

log = logging.getLogger(__name__)


def derived_dir() -> Path:
    return finharness_home() / "derived"


def content_key(parts: Iterable[str | bytes]) -> str:
    """sha256 over the parts, each length-prefixed (so ("ab", "c") and ("a", "bc") differ)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def source_of(*files: str | Path) -> list[bytes]:
    """The bytes of the modules that derive a value: part of its key, so changed code recomputes."""
    return [Path(f).read_bytes() for f in files]


def remembered_arrays(kind: str, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``compute()`` (named arrays), or the arrays an earlier process stored under ``kind`` and ``key``."""
    path = derived_dir() / f"{kind}-{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except FileNotFoundError:
        pass
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # a damaged file: derive again and replace it
        log.debug("recomputing %s: %s", path, err)
    arrays = compute()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        write_atomic(path, buffer.getvalue())
    except OSError as err:  # a read-only home: the value is still right, only not kept
        log.debug("not keeping %s: %s", path, err)
    return arrays
