"""The test PostgreSQL cluster does not outlive a killed test run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pgserver import find_bindir

HERE = Path(__file__).parent

START_AND_HANG = """
import sys, time
from pgserver import PgServer, find_bindir
server = PgServer(find_bindir())
server.start()
print(server.root, flush=True)
time.sleep(600)  # killed before this ends: stop() never runs
"""


def _postmaster_running(root: Path) -> bool:
    pid_file = root / "data" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, run as the postgres user
        return True
    return True


def test_a_killed_starter_leaves_no_cluster_running() -> None:
    if find_bindir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found")
    starter = subprocess.Popen(
        [sys.executable, "-c", START_AND_HANG],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE)},
    )
    try:
        assert starter.stdout is not None
        root = Path(starter.stdout.readline().strip())
        assert _postmaster_running(root)
    finally:
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=30)
    deadline = time.monotonic() + 60
    while (_postmaster_running(root) or root.exists()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _postmaster_running(root), "the cluster outlived the process that started it"
    assert not root.exists()
