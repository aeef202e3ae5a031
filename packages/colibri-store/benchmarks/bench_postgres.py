"""colibri-store on PostgreSQL vs raw psycopg, same server, settings and schema (issue 3).

Figure: claim + complete, one task per transaction, audit events included, against
raw psycopg claiming with ``FOR UPDATE SKIP LOCKED`` and acking, one statement per
transaction, no audit (target >= 0.6x). Also the cost of serialising the audit chain
with 4 worker processes: 4 processes vs 1 through the store, beside the same figure
for raw psycopg workers (``raw_drain.py postgresql-one``), and the quotient of the two.

The server is a throwaway cluster started from the server binaries, fsync ON (the
default), Unix socket only.
"""

from __future__ import annotations

from _bench import (
    NOW,
    Measured,
    Timer,
    compare,
    raw_processes_drain,
    report,
    scaling,
    store_processes_drain,
)
from pgserver import PgServer, find_bindir

from colibri_store import Store

N = 1000

RAW_INSERT = (
    "INSERT INTO tasks (title, status, created_at, updated_at) VALUES (%s, 'queued', %s, %s)"
)
RAW_CLAIM = (
    "UPDATE tasks SET status = 'started', agent_id = %s, claim_epoch = claim_epoch + 1, "
    "lease_expires_at = %s, updated_at = %s WHERE id = (SELECT id FROM tasks "
    "WHERE status = 'queued' ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "RETURNING id, claim_epoch"
)
RAW_ACK = (
    "UPDATE tasks SET status = 'done', finished_at = %s, updated_at = %s "
    "WHERE id = %s AND claim_epoch = %s AND status = 'started'"
)


def raw_pg_board(server: PgServer, total: int) -> str:
    """A schema with the store's tables, one agent and ``total`` queued tasks, for
    ``raw_drain.py``; returns its TARGET (``socket_dir|user|schema``)."""
    import psycopg

    schema = server.new_schema()
    Store.open(server.url(schema)).close()
    with psycopg.connect(
        host=str(server.sock),
        user=server.user,
        dbname="postgres",
        autocommit=True,
        options=f"-csearch_path={schema}",
    ) as conn:
        conn.execute("INSERT INTO agents (name, created_at) VALUES ('raw', %s)", (NOW,))
        with conn.transaction():
            conn.cursor().executemany(RAW_INSERT, [(f"t{i}", NOW, NOW) for i in range(total)])
    return f"{server.sock}|{server.user}|{schema}"


def main() -> None:
    import psycopg

    bindir = find_bindir()
    if bindir is None:
        print("bench_postgres: skipped: PostgreSQL server binaries not found")
        return
    server = PgServer(bindir, fsync=True)
    server.start()
    try:
        store_url = server.url(server.new_schema())
        raw_schema = server.new_schema()
        Store.open(server.url(raw_schema)).close()  # same schema for the baseline
        store = Store.open(store_url, actor="bench")
        agent = store.register_agent("bench")
        raw = psycopg.connect(
            host=str(server.sock),
            user=server.user,
            dbname="postgres",
            autocommit=True,
            options=f"-csearch_path={raw_schema}",
        )
        raw.execute("INSERT INTO agents (name, created_at) VALUES ('bench', %s)", (NOW,))
        print(
            f"colibri-store PostgreSQL benchmarks (fsync on; N={N}; medians of alternated repeats)"
        )

        timer = Timer()

        def raw_claim_ack(loop_only: bool) -> Measured:
            with raw.transaction():
                raw.cursor().executemany(RAW_INSERT, [(f"t{i}", NOW, NOW) for i in range(N)])
            timer.start()
            done = 0
            while True:
                row = raw.execute(RAW_CLAIM, (1, NOW, NOW)).fetchone()
                if row is None:
                    return timer.done(done) if loop_only else done
                raw.execute(RAW_ACK, (NOW, NOW, row[0], row[1]))
                done += 1

        def store_claim_complete(loop_only: bool) -> Measured:
            store.create_tasks([{"title": f"t{i}"} for i in range(N)])
            timer.start()
            done = 0
            while (task := store.claim_next(agent.id, start=True)) is not None:
                store.complete(task.id, task.claim_epoch)
                done += 1
            return timer.done(done) if loop_only else done

        # As on SQLite: the figure times the claims and completions, the second line
        # the enqueue of their tasks too.
        report(
            "claim + complete (audit) vs raw SKIP LOCKED claim + ack",
            "raw psycopg",
            *compare(lambda: raw_claim_ack(True), lambda: store_claim_complete(True), repeats=3),
            ">= 0.6x",
        )
        report(
            "  the same, with the enqueue of its tasks timed",
            "raw psycopg",
            *compare(lambda: raw_claim_ack(False), lambda: store_claim_complete(False), repeats=3),
            "(reference)",
        )
        store.close()
        raw.close()

        # 4 worker processes vs 1 draining the same number of tasks, one per transaction:
        # through the store, every transaction serialises on the audit chain head at its
        # end (through its commit's WAL flush); raw psycopg workers doing the same claim
        # and ack with no chain show what the engine itself allows here.
        total = 4 * N

        def store_board(workers: int) -> float:
            url = server.url(server.new_schema())
            with Store.open(url) as s:
                s.create_tasks([{"title": f"t{i}"} for i in range(total)])
            return store_processes_drain(url, "drain", 1, workers, total)

        def raw_board(workers: int) -> float:
            target = raw_pg_board(server, total)
            return raw_processes_drain("postgresql-one", target, workers, total)

        raw_ratio = scaling(
            "raw psycopg 4 vs 1, one task per transaction", "engine reference", raw_board
        )
        store_ratio = scaling(
            "4 processes vs 1, one task per transaction", "reported, no target", store_board
        )
        print(
            f"{'  cost of the serialised chain with 4 processes':<52} store/raw scaling "
            f"{store_ratio / raw_ratio:5.2f}x"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
