"""colibri-store on SQLite vs raw sqlite3, same schema, SQL shape and pragmas.

Figures (issue 3): enqueue one per transaction (>= 0.6x), batch enqueue (>= 0.7x),
claim + complete one per transaction with audit (>= 0.6x raw claim + ack without
audit), get by id (>= 0.4x).
"""

from __future__ import annotations

import random

from _bench import ACK_SQL, CLAIM_SQL, INSERT_SQL, NOW, rate, raw_sqlite, report, tmpdir

from colibri_store import Store

N = 3000
BATCH = 5000


def fresh(tag: str) -> tuple[Store, object]:
    path = tmpdir() / f"{tag}.sqlite"
    store = Store.open(f"sqlite:///{path}", actor="bench")
    return store, raw_sqlite(path)


def main() -> None:
    print(f"colibri-store SQLite benchmarks (median of repeats; N={N}, batch={BATCH})")

    # ---- enqueue, one task per transaction
    store, raw = fresh("enqueue")

    def raw_enqueue() -> int:
        for i in range(N):
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(INSERT_SQL, (f"task {i}", NOW, NOW))
            raw.execute("COMMIT")
        return N

    def store_enqueue() -> int:
        for i in range(N):
            store.create_task(f"task {i}")
        return N

    report(
        "enqueue, one task per transaction",
        "raw insert",
        rate(raw_enqueue),
        rate(store_enqueue),
        ">= 0.6x",
    )
    store.close()

    # ---- batch enqueue
    store, raw = fresh("batch")

    def raw_batch() -> int:
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(INSERT_SQL, [(f"task {i}", NOW, NOW) for i in range(BATCH)])
        raw.execute("COMMIT")
        return BATCH

    def store_batch() -> int:
        store.create_tasks([{"title": f"task {i}"} for i in range(BATCH)])
        return BATCH

    report(
        "batch enqueue (create_tasks)",
        "raw executemany",
        rate(raw_batch),
        rate(store_batch),
        ">= 0.7x",
    )
    store.close()

    # ---- claim + complete, one task per transaction
    store, raw = fresh("claim")
    agent = store.register_agent("bench")

    def raw_claim_ack() -> int:
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(INSERT_SQL, [(f"t{i}", NOW, NOW) for i in range(N)])
        raw.execute("COMMIT")
        done = 0
        while True:
            raw.execute("BEGIN IMMEDIATE")
            row = raw.execute(CLAIM_SQL, (agent.id, NOW, NOW)).fetchall()
            raw.execute("COMMIT")
            if not row:
                return done
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(ACK_SQL, (NOW, NOW, row[0][0], row[0][1]))
            raw.execute("COMMIT")
            done += 1

    def store_claim_complete() -> int:
        store.create_tasks([{"title": f"t{i}"} for i in range(N)])
        done = 0
        while (task := store.claim_next(agent.id, start=True)) is not None:
            store.complete(task.id, task.claim_epoch)
            done += 1
        return done

    report(
        "claim + complete (audit) vs raw claim + ack (no audit)",
        "raw",
        rate(raw_claim_ack),
        rate(store_claim_complete),
        ">= 0.6x",
    )

    # ---- get by id
    ids = [t.id for t in store.list_tasks(limit=N)]
    rng = random.Random(1)
    picks = [rng.choice(ids) for _ in range(20_000)]

    def raw_get() -> int:
        for i in picks:
            raw.execute("SELECT * FROM tasks WHERE id = ?", (i,)).fetchone()
        return len(picks)

    def store_get() -> int:
        for i in picks:
            store.get_task(i)
        return len(picks)

    report("get by id", "raw SELECT", rate(raw_get), rate(store_get), ">= 0.4x")
    store.close()


if __name__ == "__main__":
    main()
