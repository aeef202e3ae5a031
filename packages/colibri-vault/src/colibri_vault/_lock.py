"""One bw sequence at a time per appdata dir, across threads and processes.

``flock`` locks belong to an open file description, so each acquisition opens the
lock file anew: two threads of one process exclude each other exactly like two
processes do. The lock goes when the fd closes, even if the process dies.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from colibri_vault.errors import LockTimeout, VaultConfigError

LOCK_NAME: Final = ".colibri-vault.lock"
_POLL: Final = 0.05


@contextmanager
def appdata_lock(appdata_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the exclusive lock of ``appdata_dir`` (waiting up to ``timeout`` seconds)."""
    path = appdata_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise VaultConfigError(
            "appdata_dir", f"cannot open the lock file {path}: {exc.strerror}"
        ) from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(str(path), timeout) from None
                time.sleep(_POLL)
        yield
    finally:
        os.close(fd)
