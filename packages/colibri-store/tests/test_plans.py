"""The claim statements use their indexes: no sort of the queue, no walk of finished tasks.

Speed belongs in benchmarks, but a plan is structure: these fail when a statement or
an index changes so that a claim costs O(queued) or O(finished) instead of O(log n).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from colibri_store import Store

PARAMS = {
    "new_status": "started",
    "agent_id": 1,
    "lease": "2026-01-01T00:00:00.000000Z",
    "now": "2026-01-01T00:00:00.000000Z",
    "started_at": None,
    "error": None,
}


def _board(url: str) -> Store:
    store = Store.open(url)
    agent = store.register_agent("a")
    store.create_tasks([{"title": f"t{i}"} for i in range(3000)])
    for _ in range(100):
        task = store.claim_next(agent.id, start=True)
        assert task is not None
        store.complete(task.id, task.claim_epoch)
    return store


@pytest.mark.parametrize("name", ["claim_batch", "claim_batch_uncapped"])
@pytest.mark.parametrize("size", [1, 100, -1, -100], ids=["one", "batch", "oldest", "oldest-batch"])
def test_sqlite_claims_neither_sort_nor_scan(tmp_path: Path, size: int, name: str) -> None:
    store = _board(f"sqlite:///{tmp_path / 'plan.sqlite'}")
    try:
        q = store._sized_statement(name, size)
        plan = [
            row[3] for row in store._cursor().execute("EXPLAIN QUERY PLAN " + q.sql, q.args(PARAMS))
        ]
        assert not any("TEMP B-TREE" in step for step in plan), plan
        assert not any(step.startswith("SCAN tasks") for step in plan), plan
    finally:
        store.close()


@pytest.mark.parametrize("size", [1, 100, -1], ids=["one", "batch", "oldest"])
def test_postgres_claims_do_not_sort_the_queue(pg_url: str, size: int) -> None:
    store = _board(pg_url)
    try:
        q = store._sized_statement("claim_batch", size)
        conn = store._conn()
        with conn.transaction(force_rollback=True):
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + q.sql, q.args(PARAMS)))
        # The candidates come in index order (no Sort). The outer UPDATE may still hash
        # join a small table: that is the cost model's choice at this size, not a sort.
        assert "Sort" not in plan, plan
        candidates = plan.split("CTE candidates", 1)[1].split("->  Hash", 1)[0]
        assert "Seq Scan on tasks" not in candidates, plan
    finally:
        store.close()
