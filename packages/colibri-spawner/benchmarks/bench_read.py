"""Reading one line of many megabytes: ``read_lines`` vs a plain read of the file.

Baseline: ``open(...).read()`` of the whole log plus one ``rfind`` of its last
``\\n``. Result: ``read_lines(path, 0)`` of the same log, one 256 MiB line. Medians of
interleaved repeats; target ratio <= 6. A line end is searched for in each new chunk
only: searching the whole buffer after each chunk was quadratic (about 30x here).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from colibri_spawner import read_lines

REPEATS = 5
LINE = 256 << 20


def bare(path: Path) -> float:
    start = time.perf_counter()
    data = path.read_bytes()
    end = data.rfind(b"\n")
    elapsed = time.perf_counter() - start
    assert end == LINE
    return elapsed


def ours(path: Path) -> float:
    start = time.perf_counter()
    chunk = read_lines(path, 0)
    elapsed = time.perf_counter() - start
    assert len(chunk.lines) == 1 and chunk.offset == LINE + 1
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.jsonl"
        path.write_bytes(b"x" * LINE + b"\n")
        bare(path)  # warm the page cache
        base: list[float] = []
        result: list[float] = []
        for _ in range(REPEATS):
            base.append(bare(path))
            result.append(ours(path))
    b, o = statistics.median(base), statistics.median(result)
    print(f"one {LINE >> 20} MiB line from a session log")
    print(f"  baseline  read_bytes + rfind : {b * 1000:8.1f} ms (median of {REPEATS})")
    print(f"  result    read_lines(path, 0): {o * 1000:8.1f} ms")
    print(f"  ratio result/baseline        : {o / b:8.2f}x   (target <= 6x)")


if __name__ == "__main__":
    main()
