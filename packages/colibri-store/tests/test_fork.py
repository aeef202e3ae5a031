"""A Store used across fork(): parent and children each use connections of their own.

Before the fix, a child used its parent's connection: on PostgreSQL two processes
talked over one socket at once (``cannot exit pipeline mode while busy``, then a hang),
and a child's exit could close the parent's session. The scenario runs in a process
of its own (``workers.py forked``), bounded by a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

WORKERS = Path(__file__).with_name("workers.py")
PER_PROCESS = 150


def test_parent_and_forked_children_write_at_once_and_the_parent_goes_on(db_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(WORKERS.parent)}
    try:
        run = subprocess.run(
            [sys.executable, str(WORKERS), "forked", db_url, str(PER_PROCESS)],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the forked processes hung: {exc.stderr!r}") from None
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["errors"] == [], run.stderr
    assert report["children"] == [0, 0], run.stderr
    expected = {"before the fork", "after the children"} | {
        f"{who} {i}" for who in ("parent", "child0", "child1") for i in range(PER_PROCESS)
    }
    assert report["titles"] == sorted(expected)  # no write lost, none twice
    assert report["done"] == 2
    # One event per create, per agent registered, per claim and per completion.
    assert report["events"] == len(expected) + 2 + 2 * 2
    assert report["chain_ok"] is True
