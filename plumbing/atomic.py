"""Atomic writes: a reader sees the old file or the new one, never half of it."""
from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write beside the target and rename: readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would (the umask's).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def weight_write_errors(where: Path) -> Iterator[None]:
    """safetensors reports a full disk (or any I/O failure) as its own ``SafetensorError``
    ("Error while serializing: I/O error: No space left on device (os error 28)"), which no
    caller expects as an ``OSError``: it is raised here as the ``OSError`` it is, naming where
    the weights were being written, so a command says one line and exits, keeping nothing half-written."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - only safetensors' own I/O error is translated
        if type(err).__name__ != "SafetensorError" or "I/O error" not in str(err):
            raise
        code = errno.ENOSPC if "os error 28" in str(err) or "No space left" in str(err) else errno.EIO
        raise OSError(code, f"{os.strerror(code)} while writing weights under {where} ({err})") from None
