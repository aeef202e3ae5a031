"""Per-agent overhead of the supervising shim: resident memory and start-up time.

Baseline for memory: a bare ``python -I -S`` interpreter sleeping (the smallest a
Python shim could be). Result: the RSS of real shims supervising ``/bin/sleep``.
Start-up: how long ``spawn()`` takes to return (agent exec'd, shim holding its lock),
and until the shim's own interpreter has installed its signal handlers (seen in
/proc). That second figure includes the deliberate deferral: the interpreter starts
after the agent's first output or 0.1 s, and ``/bin/sleep`` prints nothing. Baseline:
``python -I -S -c pass``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from colibri_spawner import AgentSpec, Spawner

AGENTS = 8


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def supervising(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (10 - 1)))  # SIGUSR1 handler set
    return False


def bare_start() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> None:
    if not Path("/proc/self/status").exists():
        raise SystemExit("this benchmark reads /proc (Linux)")
    base_proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", "import time; time.sleep(30)"])
    time.sleep(0.5)
    base_rss = rss_kib(base_proc.pid)
    base_proc.kill()
    base_proc.wait(10)
    with tempfile.TemporaryDirectory() as tmp:
        spawner = Spawner(Path(tmp) / "data")
        handles = []
        starts: list[float] = []
        returns: list[float] = []
        for n in range(AGENTS):
            spec = AgentSpec(argv=("/bin/sleep", "60"), session_id=f"shim-{n}", cwd=tmp)
            t0 = time.perf_counter()
            handle = spawner.spawn(spec)
            returns.append(time.perf_counter() - t0)
            shim_pid = int(handle._json("state.json")["shim_pid"])  # type: ignore[index]
            deadline = time.monotonic() + 30
            while not supervising(shim_pid) and time.monotonic() < deadline:
                time.sleep(0.0005)
            starts.append(time.perf_counter() - t0)
            handles.append((handle, shim_pid))
        time.sleep(0.5)
        rss = [rss_kib(pid) for _, pid in handles]
        agent_rss = [rss_kib(h.pid) for h, _ in handles if h.pid]
        for handle, _ in handles:
            handle.stop(grace=5)
    bare = statistics.median(bare_start() for _ in range(11))
    s = statistics.median(starts)
    r = statistics.median(rss)
    print(f"shim overhead per agent ({AGENTS} agents running /bin/sleep)")
    print(f"  RSS baseline  bare python -I -S sleeping : {base_rss:8d} KiB")
    print(f"  RSS result    one shim                   : {r:8.0f} KiB "
          f"(agent /bin/sleep: {statistics.median(agent_rss):.0f} KiB)")  # fmt: skip
    print(f"  RSS ratio                                : {r / base_rss:8.2f}x")
    print(f"  start baseline  python -I -S -c pass     : {bare * 1000:8.2f} ms")
    ret = statistics.median(returns)
    print(f"  start result    spawn() returned         : {ret * 1000:8.2f} ms")
    print(f"  start ratio                              : {ret / bare:8.2f}x")
    print(f"  shim interpreter supervising after       : {s * 1000:8.2f} ms "
          "(incl. the 100 ms deferral for a silent agent)")  # fmt: skip
    print(f"  (pid {os.getpid()} spawned and stopped {AGENTS} agents)")


if __name__ == "__main__":
    main()
