"""Real processes against one store: no double claims, nothing lost, crashes lose no commit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from colibri_store import Store, TaskStatus

WORKERS = Path(__file__).with_name("workers.py")
PROCESSES = 4


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(WORKERS.parent)}
    return subprocess.Popen(
        [sys.executable, str(WORKERS), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def drain_together(url: str, command: str, batch: str, go: Path, total: int) -> list[dict]:
    """PROCESSES workers of ``command`` released together on one board of ``total`` tasks.

    Checks what every storm must end with: no worker errors ("database is locked"
    included), no task claimed twice, none lost. Returns each worker's report.
    """
    procs = [_spawn(command, url, f"agent-{i}", batch, str(go)) for i in range(PROCESSES)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.touch()  # released together, or the first one may drain the board alone
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert [e for r in results for e in r["errors"]] == []
    claimed = [tid for r in results for tid in r["claimed"]]
    assert len(claimed) == len(set(claimed)), "a task was claimed twice"
    assert sorted(claimed) == list(range(1, total + 1)), "a task was lost"
    return results


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 10], ids=["one-by-one", "batches-of-10"])
def test_four_processes_drain_the_board(
    db_url: str, backend: str, batch: int, tmp_path: Path
) -> None:
    total = 2000 if backend == "sqlite" else 800
    with Store.open(db_url) as store:
        store.create_tasks([{"title": f"t{i}"} for i in range(total)])
    results = drain_together(db_url, "drain", str(batch), tmp_path / "go", total)
    assert sum(1 for r in results if r["claimed"]) >= 2, "the work was not shared"
    with Store.open(db_url) as store:
        counts = store.counts()
        assert counts[TaskStatus.DONE] == total
        assert sum(counts.values()) == total
        report = store.verify_chain()
        assert report.ok, report.problem
        # one batch create, one claim and one complete per task, one register per agent
        assert report.events == 1 + 2 * total + PROCESSES
        assert all(t.claim_epoch == 1 for t in store.list_tasks(limit=50))


@pytest.mark.slow
def test_a_writer_killed_mid_run_loses_no_committed_write(db_url: str) -> None:
    proc = _spawn("writer", db_url)
    committed: list[int] = []
    assert proc.stdout is not None
    try:
        while len(committed) < 300:
            line = proc.stdout.readline()
            if not line:
                break
            committed.append(int(line))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(committed) == 300, proc.stderr.read() if proc.stderr else ""
    with Store.open(db_url) as store:
        present = {t.id for t in store.list_tasks()}
        assert set(committed) <= present
        report = store.verify_chain()
        assert report.ok, report.problem
        # Each transaction is wholly there or wholly absent: a task killed between its
        # claim and its completion is started (with its claim's audit event), never
        # half-written. At most the last task can be in that state.
        in_flight = [t for t in store.list_tasks() if t.status is TaskStatus.STARTED]
        assert len(in_flight) <= 1
        for task in store.list_tasks():
            assert task.status in (TaskStatus.QUEUED, TaskStatus.STARTED, TaskStatus.DONE)
        claims = {e.subject for e in store.audit_events() if e.verb == "claim"}
        assert all(f"task:{t.id}" in claims for t in in_flight)
        if store.backend == "sqlite":
            assert store._cursor().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
