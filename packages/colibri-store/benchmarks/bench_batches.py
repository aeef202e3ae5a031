"""Batch drains and wake-ups (issue 7), each against a same-run baseline.

- SQLite drain, claim_batch(100) + complete_many, audit included, vs raw sqlite3
  one-task claim + ack (target >= 3x)
- PostgreSQL drain, the same, vs raw psycopg one-task SKIP LOCKED claim + ack, same
  server and settings (target >= 5x)
- 4 processes draining in batches vs 1 process (targets >= 1x SQLite, >= 2x PostgreSQL),
  each beside the same figure for raw workers (``raw_drain.py``: the same claim and ack
  with no audit, no validation, no Task values), which is what the engine itself allows
  on this machine
- create -> a waiting wait_for_work returns: p50 and p99 on both backends (reported)
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

from _bench import (
    ACK_SQL,
    CLAIM_SQL,
    INSERT_SQL,
    NOW,
    compare,
    raw_processes_drain,
    raw_sqlite,
    report,
    scaling,
    store_processes_drain,
    tmpdir,
)
from bench_postgres import RAW_ACK, RAW_CLAIM, RAW_INSERT, raw_pg_board
from pgserver import PgServer, find_bindir

from colibri_store import Store

N = 4000
PROCESS_TASKS = 20_000
BATCH = 100


def store_batch_drain(store: Store, agent_id: int, n: int) -> int:
    store.create_tasks([{"title": f"t{i}"} for i in range(n)])
    done = 0
    while tasks := store.claim_batch(agent_id, BATCH, start=True):
        outcome = store.complete_many([(t.id, t.claim_epoch) for t in tasks])
        done += len(outcome.applied)
    return done


def processes_drain(url: str, workers: int, total: int) -> float:
    """Tasks per second of ``workers`` processes draining one board in batches."""
    with Store.open(url) as s:
        s.create_tasks([{"title": f"t{i}"} for i in range(total)])
    return store_processes_drain(url, "drain_batches", BATCH, workers, total)


def raw_sqlite_board(path: Path, total: int) -> str:
    """A SQLite file with the store's schema, one agent and ``total`` queued tasks."""
    Store.open(f"sqlite:///{path}").close()
    conn = raw_sqlite(path)
    conn.execute("INSERT INTO agents (name, created_at) VALUES ('raw', ?)", (NOW,))
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(INSERT_SQL, [(f"t{i}", NOW, NOW) for i in range(total)])
    conn.execute("COMMIT")
    conn.close()
    return str(path)


def wake_latency(url: str, samples: int = 40) -> tuple[float, float]:
    """Milliseconds from create_task's return to a waiting wait_for_work's return."""
    waiter = Store.open(url)
    producer = Store.open(url)
    agent = waiter.register_agent("waiter")
    latencies = []

    def wait(ready: threading.Event, woke: list[float]) -> None:
        ready.set()
        if waiter.wait_for_work(10):
            woke.append(time.perf_counter())

    try:
        for i in range(samples):
            woke: list[float] = []
            ready = threading.Event()
            thread = threading.Thread(target=wait, args=(ready, woke))
            thread.start()
            ready.wait()
            time.sleep(0.02)  # let it block
            producer.create_task(f"wake {i}")
            created = time.perf_counter()
            thread.join(timeout=15)
            assert woke, "wait_for_work did not wake"
            latencies.append(max(0.0, woke[0] - created) * 1000)
            task = waiter.claim_next(agent.id, start=True)
            assert task is not None
            waiter.complete(task.id, task.claim_epoch)
    finally:
        waiter.close()
        producer.close()
    latencies.sort()
    return statistics.median(latencies), latencies[int(0.99 * (len(latencies) - 1))]


def sqlite_figures() -> None:
    path = tmpdir() / "batch.sqlite"
    store = Store.open(f"sqlite:///{path}", actor="bench")
    agent = store.register_agent("bench")
    raw_path = path.with_name("raw.sqlite")
    Store.open(f"sqlite:///{raw_path}").close()
    raw = raw_sqlite(raw_path)
    raw.execute("INSERT INTO agents (name, created_at) VALUES ('bench', ?)", (NOW,))

    def raw_one_by_one() -> int:
        n = N // 4  # the one-task baseline is slow; fewer tasks, same rate
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(INSERT_SQL, [(f"t{i}", NOW, NOW) for i in range(n)])
        raw.execute("COMMIT")
        done = 0
        while True:
            raw.execute("BEGIN IMMEDIATE")
            row = raw.execute(CLAIM_SQL, (1, NOW, NOW)).fetchall()
            raw.execute("COMMIT")
            if not row:
                return done
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(ACK_SQL, (NOW, NOW, row[0][0], row[0][1]))
            raw.execute("COMMIT")
            done += 1

    report(
        f"SQLite drain claim_batch({BATCH}) + complete_many",
        "raw one-task",
        *compare(raw_one_by_one, lambda: store_batch_drain(store, agent.id, N), repeats=3),
        ">= 3x",
    )
    store.close()
    # What SQLite itself allows on this machine: the same drain by raw workers, with
    # the plain busy handler and with the store's writers' flock.
    for kind, label in (("sqlite", "busy handler"), ("sqlite-flock", "writers' flock")):
        scaling(
            f"raw sqlite3 4 vs 1, batches, {label}",
            "engine reference",
            lambda w, kind=kind: raw_processes_drain(
                kind, raw_sqlite_board(tmpdir() / "raw.sqlite", PROCESS_TASKS), w, PROCESS_TASKS
            ),
        )
    scaling(
        f"SQLite 4 processes vs 1, batches of {BATCH}",
        "target >= 1x",
        lambda w: processes_drain(f"sqlite:///{tmpdir() / 'p.sqlite'}", w, PROCESS_TASKS),
    )
    p50, p99 = wake_latency(f"sqlite:///{tmpdir() / 'wake.sqlite'}")
    print(f"{'SQLite create -> wait_for_work returns':<52} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")


def postgres_figures() -> None:
    import psycopg

    bindir = find_bindir()
    if bindir is None:
        print("PostgreSQL figures skipped: server binaries not found")
        return
    server = PgServer(bindir, fsync=True)
    server.start()
    try:
        store = Store.open(server.url(server.new_schema()), actor="bench")
        agent = store.register_agent("bench")
        raw_schema = server.new_schema()
        Store.open(server.url(raw_schema)).close()
        raw = psycopg.connect(
            host=str(server.sock),
            user=server.user,
            dbname="postgres",
            autocommit=True,
            options=f"-csearch_path={raw_schema}",
        )
        raw.execute("INSERT INTO agents (name, created_at) VALUES ('bench', %s)", (NOW,))

        def raw_one_by_one() -> int:
            n = N // 8
            with raw.transaction():
                raw.cursor().executemany(RAW_INSERT, [(f"t{i}", NOW, NOW) for i in range(n)])
            done = 0
            while (row := raw.execute(RAW_CLAIM, (1, NOW, NOW)).fetchone()) is not None:
                raw.execute(RAW_ACK, (NOW, NOW, row[0], row[1]))
                done += 1
            return done

        report(
            f"PostgreSQL drain claim_batch({BATCH}) + complete_many",
            "raw one-task",
            *compare(raw_one_by_one, lambda: store_batch_drain(store, agent.id, N), repeats=3),
            ">= 5x",
        )
        store.close()
        raw.close()
        total = PROCESS_TASKS // 2

        def raw_board(workers: int) -> float:
            target = raw_pg_board(server, total)
            return raw_processes_drain("postgresql", target, workers, total)

        scaling("raw psycopg 4 vs 1, batches", "engine reference", raw_board)
        scaling(
            f"PostgreSQL 4 processes vs 1, batches of {BATCH}",
            "target >= 2x",
            lambda w: processes_drain(server.url(server.new_schema()), w, total),
        )
        p50, p99 = wake_latency(server.url(server.new_schema()))
        label = "PostgreSQL create -> wait_for_work returns"
        print(f"{label:<52} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
    finally:
        server.stop()


def main() -> None:
    print(f"colibri-store batch and wake-up benchmarks (N={N}, batch={BATCH})")
    sqlite_figures()
    postgres_figures()


if __name__ == "__main__":
    main()
