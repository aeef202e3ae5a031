"""Shared helpers for the store benchmarks: timing, raw baselines, a throwaway PostgreSQL.

Every figure is the median of several repeats, printed beside its same-run raw
baseline and the ratio (higher is better for rates). Absolute numbers drift by
±30 % between runs on these machines; only the ratios are meaningful.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

REPEATS = 5
SCALING_REPEATS = 3
WORKERS_SCRIPT = Path(__file__).resolve().parents[1] / "tests" / "workers.py"
RAW_SCRIPT = Path(__file__).resolve().parent / "raw_drain.py"
Measured = int | tuple[int, float]


def rate(fn: Callable[[], int], repeats: int = REPEATS) -> float:
    """Median operations per second of ``fn`` (which returns how many operations it did)."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = fn()
        samples.append(n / (time.perf_counter() - start))
    return statistics.median(samples)


def compare(
    baseline_fn: Callable[[], Measured], store_fn: Callable[[], Measured], repeats: int = REPEATS
) -> tuple[float, float]:
    """Median rates of both, measured alternately so machine noise hits both alike.

    Each function returns how many operations it did, timed from its call to its
    return; or ``(operations, seconds)`` when it timed only part of its work itself
    (its set-up left out).
    """
    base, mine = [], []
    for _ in range(repeats):
        for fn, out in ((baseline_fn, base), (store_fn, mine)):
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
            n, seconds = result if isinstance(result, tuple) else (result, elapsed)
            out.append(n / seconds)
    return statistics.median(base), statistics.median(mine)


class Timer:
    """Seconds since the last ``start()``: for figures whose set-up is not timed."""

    def __init__(self) -> None:
        self.started = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()

    def done(self, n: int) -> tuple[int, float]:
        return n, time.perf_counter() - self.started


def report(name: str, baseline_name: str, baseline: float, result: float, target: str) -> None:
    ratio = result / baseline
    print(
        f"{name:<52} baseline {baseline_name}: {baseline:>10,.0f}/s   store: {result:>10,.0f}/s"
        f"   ratio {ratio:5.2f}x   (target {target})",
        flush=True,
    )


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="colibri-bench-"))


def raw_sqlite(path: Path | str) -> sqlite3.Connection:
    """A raw sqlite3 connection with the store's pragmas, autocommit (we BEGIN ourselves)."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


NOW = "2026-11-23T12:00:00.000000Z"
INSERT_SQL = (
    "INSERT INTO tasks (title, description, status, created_at, updated_at, "
    "required_capabilities, priority, max_attempts, session_id) "
    "VALUES (?, NULL, 'queued', ?, ?, '[]', 0, 3, NULL)"
)
CLAIM_SQL = (
    "UPDATE tasks SET status = 'started', agent_id = ?, claim_epoch = claim_epoch + 1, "
    "lease_expires_at = ?, updated_at = ? WHERE id = (SELECT id FROM tasks "
    "WHERE status = 'queued' ORDER BY priority DESC, id LIMIT 1) AND status = 'queued' "
    "RETURNING id, claim_epoch"
)
ACK_SQL = (
    "UPDATE tasks SET status = 'done', finished_at = ?, updated_at = ? "
    "WHERE id = ? AND claim_epoch = ? AND status = 'started'"
)


def run_workers(commands: list[list[str]], total: int) -> float:
    """Start the workers, release them together, and return the tasks per second of
    their drains (from the first start to the last end); every task must be drained."""
    env = {**os.environ, "PYTHONPATH": str(WORKERS_SCRIPT.parent)}
    go = tmpdir() / "go"
    procs = [
        subprocess.Popen([*argv, str(go)], stdout=subprocess.PIPE, text=True, env=env)
        for argv in commands
    ]
    for p in procs:  # interpreter start-up is not part of the figure
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    go.touch()
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        results.append(json.loads(out))
    drained = sum(r["n"] if "n" in r else len(r["claimed"]) for r in results)
    assert drained == total, (drained, total)
    return total / (max(r["ended"] for r in results) - min(r["started"] for r in results))


def store_processes_drain(url: str, mode: str, batch: int, workers: int, total: int) -> float:
    """Tasks per second of ``workers`` store workers (``tests/workers.py MODE``) on the
    board at ``url``, which already holds ``total`` queued tasks."""
    argv = [sys.executable, str(WORKERS_SCRIPT), mode, url]
    return run_workers([[*argv, f"w{i}", str(batch)] for i in range(workers)], total)


def raw_processes_drain(kind: str, target: str, workers: int, total: int) -> float:
    """The same drain by raw workers (``raw_drain.py``): no audit, no validation."""
    return run_workers([[sys.executable, str(RAW_SCRIPT), kind, target]] * workers, total)


def scaling(name: str, target: str, one_four: Callable[[int], float]) -> float:
    """Print and return 4-process vs 1-process throughput, medians of alternated runs."""
    ones, fours = [], []
    for _ in range(SCALING_REPEATS):
        ones.append(one_four(1))
        fours.append(one_four(4))
    one, four = statistics.median(ones), statistics.median(fours)
    print(
        f"{name:<52} 1: {one:>10,.0f}/s   4: {four:>10,.0f}/s   ratio {four / one:5.2f}x"
        f"   ({target})",
        flush=True,
    )
    return four / one
