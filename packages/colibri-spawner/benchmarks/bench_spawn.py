"""Spawn to first event line: the spawner (shim, session log) vs a bare Popen.

Baseline: ``subprocess.Popen`` of the same argv with a stdout pipe, timed until its
first line is read. Result: ``Spawner.spawn`` of the same argv (own process group,
supervising shim, append-only session log) timed until ``wait_lines`` returns the
first line. Medians of interleaved repeats; target ratio <= 1.3.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from colibri_spawner import AgentSpec, Spawner

REPEATS = 21


def _agent() -> str:
    local = Path(sys.executable).parent / "colibri-test-agent"
    found = str(local) if local.exists() else shutil.which("colibri-test-agent")
    if not found:
        raise SystemExit("colibri-test-agent is not installed in this environment")
    return found


def bare(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    assert line.startswith(b'{"type":"session"')
    proc.stdout.read()
    proc.wait(30)
    return elapsed


def spawned(spawner: Spawner, argv: list[str], n: int, cwd: str) -> tuple[float, float]:
    spec = AgentSpec(argv=argv, session_id=f"bench-{n}", cwd=cwd)
    start = time.perf_counter()
    handle = spawner.spawn(spec)
    returned = time.perf_counter() - start
    chunk = handle.wait_lines(0, 30)
    elapsed = time.perf_counter() - start
    assert chunk.lines[0].startswith(b'{"type":"session"')
    handle.wait(30)
    return elapsed, returned


def main() -> None:
    argv = [_agent(), "--count", "1"]
    with tempfile.TemporaryDirectory() as tmp:
        spawner = Spawner(Path(tmp) / "data")
        base: list[float] = []
        ours: list[float] = []
        returns: list[float] = []
        bare(argv)  # warm the page cache
        for n in range(REPEATS):
            base.append(bare(argv))
            elapsed, returned = spawned(spawner, argv, n, tmp)
            ours.append(elapsed)
            returns.append(returned)
    b, o = statistics.median(base), statistics.median(ours)
    print("spawn to first event line, local colibri-test-agent")
    print(f"  baseline  bare Popen + readline : {b * 1000:8.2f} ms (median of {REPEATS})")
    print(f"  result    Spawner.spawn + line  : {o * 1000:8.2f} ms")
    print(f"  (spawn() itself returned after  : {statistics.median(returns) * 1000:8.2f} ms)")
    paired = statistics.median(x / y for x, y in zip(ours, base, strict=True))
    print(f"  ratio result/baseline           : {o / b:8.2f}x   (target <= 1.3x)")
    print(
        f"  median of paired ratios         : {paired:8.2f}x   (each run vs the bare run before it)"
    )


if __name__ == "__main__":
    main()
