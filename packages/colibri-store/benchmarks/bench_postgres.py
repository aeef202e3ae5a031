"""colibri-store on PostgreSQL vs raw psycopg, same server, settings and schema (issue 3).

Figure: claim + complete, one task per transaction, audit events included, against
raw psycopg claiming with ``FOR UPDATE SKIP LOCKED`` and acking, one statement per
transaction, no audit (target >= 0.6x). Also the cost of serialising the audit chain
with 4 worker processes: the same drain with and without the chain-head lock is not
separable, so it reports 4 processes vs 1.

The server is a throwaway cluster started from the server binaries, fsync ON (the
default), Unix socket only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import NOW, Measured, Timer, compare, report
from pgserver import PgServer, find_bindir

from colibri_store import Store

N = 1000
WORKERS_SCRIPT = Path(__file__).resolve().parents[1] / "tests" / "workers.py"

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

        # 4 worker processes vs 1 draining the same number of tasks through the store:
        # every transaction serialises on the audit chain head at its end.
        rates = {}
        for workers in (1, 4):
            url = server.url(server.new_schema())
            with Store.open(url) as s:
                s.create_tasks([{"title": f"t{i}"} for i in range(4 * N)])
            env = {**os.environ, "PYTHONPATH": str(WORKERS_SCRIPT.parent)}
            go = Path(tempfile.mkdtemp(prefix="colibri-bench-")) / "go"
            procs = [
                subprocess.Popen(
                    [sys.executable, str(WORKERS_SCRIPT), "drain", url, f"w{i}", "1", str(go)],
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                )
                for i in range(workers)
            ]
            for p in procs:  # interpreter start-up is not part of the figure
                assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            start = time.perf_counter()
            go.touch()
            claimed = 0
            for p in procs:
                out, _ = p.communicate(timeout=600)
                claimed += len(json.loads(out)["claimed"])
            rates[workers] = claimed / (time.perf_counter() - start)
        print(
            f"{'4 processes vs 1, one task per transaction':<52} 1 process: {rates[1]:>8,.0f}/s"
            f"   4 processes: {rates[4]:>8,.0f}/s   ratio {rates[4] / rates[1]:5.2f}x"
            "   (cost of the serialised chain: reported, no target)"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
