"""Does claim cost grow with the board? (issue 3)

- drain rate (claim + complete) with 20k tasks queued vs 2k queued: >= 0.9x
- claim + complete with 1M finished tasks in the table vs an empty table: >= 0.7x

Each measures the same number of claims; the ratio is big-board rate / small-board rate.
"""

from __future__ import annotations

import statistics
import time

from _bench import NOW, raw_sqlite, tmpdir

from colibri_store import Store

MEASURE = 2000
REPEATS = 3


def drain_rate(store: Store, agent_id: int, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        task = store.claim_next(agent_id, start=True)
        assert task is not None
        store.complete(task.id, task.claim_epoch)
    return count / (time.perf_counter() - start)


def board(queued: int, finished: int) -> tuple[Store, int]:
    path = tmpdir() / "board.sqlite"
    Store.open(f"sqlite:///{path}").close()
    if finished:
        raw = raw_sqlite(path)
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(
            "INSERT INTO tasks (title, status, created_at, updated_at, claim_epoch, finished_at) "
            "VALUES (?, 'done', ?, ?, 1, ?)",
            ((f"old {i}", NOW, NOW, NOW) for i in range(finished)),
        )
        raw.execute("COMMIT")
        raw.close()
    store = Store.open(f"sqlite:///{path}", actor="bench")
    agent = store.register_agent("bench")
    for start in range(0, queued, 10_000):
        store.create_tasks([{"title": f"t{i}"} for i in range(start, min(queued, start + 10_000))])
    return store, agent.id


def ratio(big: tuple[int, int], small: tuple[int, int]) -> tuple[float, float]:
    big_rates, small_rates = [], []
    for _ in range(REPEATS):
        for shape, out in ((small, small_rates), (big, big_rates)):
            store, agent = board(*shape)
            out.append(drain_rate(store, agent, MEASURE))
            store.close()
    return statistics.median(small_rates), statistics.median(big_rates)


def main() -> None:
    print(f"colibri-store SQLite scaling (claim + complete of {MEASURE} tasks, medians)")
    small, big = ratio((20_000, 0), (2_000, 0))
    print(
        f"drain rate, 20k queued vs 2k queued          2k: {small:8,.0f}/s   20k: {big:8,.0f}/s"
        f"   ratio {big / small:5.2f}x   (target >= 0.9x)"
    )
    empty, full = ratio((MEASURE, 1_000_000), (MEASURE, 0))
    print(
        f"claim with 1M finished tasks vs empty table  empty: {empty:8,.0f}/s   1M: {full:8,.0f}/s"
        f"   ratio {full / empty:5.2f}x   (target >= 0.7x)"
    )


if __name__ == "__main__":
    main()
