"""A raw batch-drain worker: the engine's own ceiling for 4 processes vs 1.

``python raw_drain.py KIND TARGET GO_FILE`` claims up to 100 queued tasks in one
statement and acks them in one transaction, until the board is empty, with no audit
trail, no validation and no Task values. It prints "ready", waits for ``GO_FILE``,
then prints ``{"n": ..., "started": ..., "ended": ...}``.

KIND is one of:

- ``sqlite``: raw sqlite3 with the store's pragmas, ``BEGIN IMMEDIATE`` and the
  busy timeout (what a plain SQLite program does);
- ``sqlite-flock``: the same, with writers queued on the store's writers' ``flock``
  (``<db>-writer.lock``), so it shows what SQLite allows with the store's ordering;
- ``postgresql``: raw psycopg, the candidates in a CTE with ``FOR UPDATE SKIP
  LOCKED``, autocommit claims and one transaction of acks. TARGET is
  ``socket_dir|user|schema``;
- ``postgresql-one``: the same one task at a time, claim and ack each its own
  (autocommit) transaction, as the store's one-task figure does.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

NOW = "2026-11-23T12:00:00.000000Z"
BATCH = 100
SQLITE_CLAIM = (
    "UPDATE tasks SET status = 'started', agent_id = 1, claim_epoch = claim_epoch + 1, "
    "lease_expires_at = ?, updated_at = ?, started_at = ? WHERE id IN (SELECT id FROM tasks "
    f"WHERE status = 'queued' ORDER BY priority DESC, id LIMIT {BATCH}) AND status = 'queued' "
    "RETURNING id, claim_epoch"
)
SQLITE_ACK = (
    "UPDATE tasks SET status = 'done', finished_at = ?, updated_at = ? "
    "WHERE id = ? AND claim_epoch = ? AND status = 'started'"
)
PG_CLAIM = (
    "WITH c AS (SELECT id FROM tasks WHERE status = 'queued' ORDER BY priority DESC, id "
    "LIMIT {n} FOR UPDATE SKIP LOCKED) UPDATE tasks t SET status = 'started', "
    "agent_id = 1, claim_epoch = t.claim_epoch + 1, lease_expires_at = %s, updated_at = %s, "
    "started_at = %s FROM c WHERE t.id = c.id RETURNING t.id, t.claim_epoch"
)
PG_ACK = SQLITE_ACK.replace("?", "%s")


def sqlite_worker(path: str, flock: bool) -> tuple[Callable[[], list[Any]], Callable[..., None]]:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    for pragma in ("busy_timeout = 30000", "journal_mode = WAL", "synchronous = NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("PRAGMA foreign_keys = ON")
    lock = os.open(path + "-writer.lock", os.O_RDWR | os.O_CREAT, 0o600) if flock else None

    def txn(body: Callable[[], Any]) -> Any:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            out = body()
            conn.execute("COMMIT")
            return out
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def claim() -> list[Any]:
        return txn(lambda: conn.execute(SQLITE_CLAIM, (NOW, NOW, NOW)).fetchall())

    def ack(rows: list[Any]) -> None:
        txn(lambda: conn.executemany(SQLITE_ACK, [(NOW, NOW, i, e) for i, e in rows]))

    return claim, ack


def postgresql_worker(
    target: str, batch: int
) -> tuple[Callable[[], list[Any]], Callable[..., None]]:
    import psycopg

    host, user, schema = target.split("|")
    conn = psycopg.connect(
        host=host, user=user, dbname="postgres", autocommit=True, options=f"-csearch_path={schema}"
    )
    claim_sql = PG_CLAIM.format(n=batch)

    def claim() -> list[Any]:
        return conn.execute(claim_sql, (NOW, NOW, NOW)).fetchall()

    def ack(rows: list[Any]) -> None:
        if len(rows) == 1:  # one task per transaction: the ack is its own statement
            conn.execute(PG_ACK, (NOW, NOW, *rows[0]))
            return
        with conn.transaction():
            conn.cursor().executemany(PG_ACK, [(NOW, NOW, i, e) for i, e in rows])

    return claim, ack


def main() -> None:
    kind, target, go = sys.argv[1:4]
    if kind in ("postgresql", "postgresql-one"):
        claim, ack = postgresql_worker(target, BATCH if kind == "postgresql" else 1)
    elif kind in ("sqlite", "sqlite-flock"):
        claim, ack = sqlite_worker(target, flock=kind == "sqlite-flock")
    else:
        raise SystemExit(f"raw_drain: unknown kind {kind!r}")
    print("ready", flush=True)
    deadline = time.monotonic() + 120
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.001)
    started, n = time.time(), 0
    while rows := claim():
        ack(rows)
        n += len(rows)
    print(json.dumps({"n": n, "started": started, "ended": time.time()}))


if __name__ == "__main__":
    main()
