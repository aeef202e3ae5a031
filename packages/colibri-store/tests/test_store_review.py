"""Regression tests for defects found in the store review (each failed before its fix)."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import FakeClock, make_url

from colibri_store import AtCapacity, InvalidInput, Store, TaskStatus
from colibri_store._store import _PG_AUDIT_LOCK


def _backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


def _three_task_document(db_url: str) -> dict[str, Any]:
    with Store.open(db_url, actor="src") as src:
        agent = src.register_agent("a", ["x"])
        assert agent.id == 1
        for title in ("one", "two", "three"):
            src.create_task(title)
        src.register_skill("zfs")
        return src.export_json()


def _refused_and_empty(db_url: str, tmp_path: Path, doc: dict[str, Any], match: str) -> None:
    (tmp_path / "dst").mkdir()
    with Store.open(make_url(_backend(db_url), tmp_path / "dst")) as dst:
        with pytest.raises(InvalidInput, match=match):
            dst.import_json(doc)
        assert all(rows == [] for rows in dst.export_json()["tables"].values())


@pytest.mark.parametrize(
    ("table", "column"),
    [("tasks", "id"), ("agents", "id"), ("skills", "id"), ("tasks", "agent_id")],
)
def test_import_refuses_id_zero(db_url: str, tmp_path: Path, table: str, column: str) -> None:
    """An imported task with id 0 was claimable by claim_next, but get_task, start,
    complete and release refuse id 0 (and list_tasks skips it): it was stuck for good."""
    doc = copy.deepcopy(_three_task_document(db_url))
    doc["tables"][table][0][column] = 0
    _refused_and_empty(db_url, tmp_path, doc, rf"tables\.{table}\[0\]\.{column}")


@pytest.mark.parametrize(
    "edges",
    [[(1, 1)], [(1, 2), (2, 1)], [(1, 2), (2, 3), (3, 1)]],
    ids=["self", "two", "three"],
)
def test_import_refuses_dependency_cycles(
    db_url: str, tmp_path: Path, edges: list[tuple[int, int]]
) -> None:
    """add_dependency refuses cycles; an import planted them, and the tasks in a
    cycle could never become ready."""
    doc = copy.deepcopy(_three_task_document(db_url))
    doc["tables"]["task_dependencies"] = [{"task_id": t, "depends_on": d} for t, d in edges]
    _refused_and_empty(db_url, tmp_path, doc, "dependency cycle")


def test_import_takes_a_diamond_of_dependencies(db_url: str, tmp_path: Path) -> None:
    """Shared upstreams are no cycle."""
    doc = copy.deepcopy(_three_task_document(db_url))
    doc["tables"]["task_dependencies"] = [
        {"task_id": 3, "depends_on": 1},
        {"task_id": 3, "depends_on": 2},
        {"task_id": 2, "depends_on": 1},
    ]
    (tmp_path / "dst").mkdir()
    with Store.open(make_url(_backend(db_url), tmp_path / "dst")) as dst:
        dst.import_json(doc)
        assert dst.get_task(3).depends_on == (1, 2)
        assert [t.id for t in dst.list_tasks(ready=True)] == [1]


_END = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def test_expiry_whose_backoff_ends_after_9999_is_refused_typed(store: Store) -> None:
    """expire_leases(now=...) near datetime.max raised OverflowError (no StoreError)."""
    agent = store.register_agent("a")
    store.create_task("t", max_attempts=5)
    held = store.claim_next(agent.id)
    assert held is not None
    seq = len(store.audit_events())
    with pytest.raises(InvalidInput, match="now"):
        store.expire_leases(now=_END)
    assert store.get_task(held.id) == held
    assert len(store.audit_events()) == seq


def test_a_lease_ending_after_9999_is_refused_typed(db_url: str) -> None:
    """A claim, heartbeat or extend_lease whose lease ends past datetime.max raised
    OverflowError; it is now InvalidInput, and nothing changes."""
    clock = FakeClock()
    with Store.open(db_url, clock=clock, actor="test", lease_seconds=60) as store:
        agent = store.register_agent("a")
        task = store.create_task("t")
        held = store.claim(task.id, agent.id)
        clock.now = _END - timedelta(days=1)
        seq = len(store.audit_events())
        with pytest.raises(InvalidInput, match="lease_seconds"):
            store.extend_lease(held.id, held.claim_epoch, 366 * 86400)
        with pytest.raises(InvalidInput, match="lease_seconds"):
            store.heartbeat(held.id, held.claim_epoch, lease_seconds=2 * 86400)
        assert store.get_task(held.id) == held
        assert len(store.audit_events()) == seq
        store.complete(held.id, store.start(held.id, held.claim_epoch).claim_epoch)
        other = store.create_task("other")
        clock.now = _END
        seq = len(store.audit_events())
        for claim in (
            lambda: store.claim_next(agent.id),
            lambda: store.claim_batch(agent.id, 5),
            lambda: store.claim(other.id, agent.id),
        ):
            with pytest.raises(InvalidInput, match="lease_seconds"):
                claim()
        assert store.get_task(other.id) == other
        assert len(store.audit_events()) == seq


def _advisory_waiters(url: sa.URL) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        n = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).scalar_one()
    engine.dispose()
    return int(n)


def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):  # 10 s at most
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_key_limit_holds_when_a_concurrent_claim_of_a_higher_limit_commits_first(
    pg_url: str,
) -> None:
    """PostgreSQL: tasks sharing a key with different limits, claimed concurrently.

    Transaction A claims three tasks of key "k" with limit 10; transaction B, whose
    claim statement cannot see A's uncommitted claims, claims three of limit 1. A
    commits first; B then counts six active tasks, a surplus of five for its three.
    The give-back sliced its batch with a negative start (``mine[3 - 5:]``) and
    returned only two, so a limit-1 task ran beside three others. Now all three go
    back, as a claim made after A's commit would have found.
    """
    a_store = Store.open(pg_url, actor="a", lease_seconds=60)
    b_store = Store.open(pg_url, actor="b", lease_seconds=60)
    engine = sa.create_engine(a_store._engine.url, poolclass=sa.pool.NullPool)
    holder = engine.raw_connection()
    try:
        a = a_store.register_agent("a").id
        b = b_store.register_agent("b").id
        wide = [
            a_store.create_task(f"wide {i}", concurrency_key="k", concurrency_limit=10, priority=5)
            for i in range(3)
        ]
        narrow = [
            a_store.create_task(f"narrow {i}", concurrency_key="k", concurrency_limit=1)
            for i in range(3)
        ]
        # Hold the audit chain's lock: A settles its key (taking the key's lock) and
        # then waits here, uncommitted, with its three rows locked.
        cur = holder.cursor()
        cur.execute(f"SELECT pg_advisory_lock({_PG_AUDIT_LOCK})")
        got: dict[str, Any] = {}

        def claim(name: str, store: Store, agent: int) -> None:
            try:
                got[name] = store.claim_batch(agent, 3)
            except BaseException as exc:
                got[name] = exc

        ta = threading.Thread(target=claim, args=("a", a_store, a))
        ta.start()
        _until(lambda: _advisory_waiters(engine.url) == 1, "A to wait for the chain lock")
        # B's claim skips A's locked rows and sees none of A's claims; its settling
        # then waits for the key's lock, which A holds until it commits.
        tb = threading.Thread(target=claim, args=("b", b_store, b))
        tb.start()
        _until(lambda: _advisory_waiters(engine.url) == 2, "B to wait for the key lock")
        cur.execute(f"SELECT pg_advisory_unlock({_PG_AUDIT_LOCK})")
        ta.join(10)
        tb.join(10)
        assert not ta.is_alive() and not tb.is_alive()
        assert [t.id for t in got["a"]] == [t.id for t in wide]
        assert got["b"] == []
        for task in narrow:
            assert a_store.get_task(task.id).status is TaskStatus.QUEUED
        assert a_store.counts()[TaskStatus.CLAIMED] == 3
        assert a_store.verify_chain().ok
    finally:
        holder.close()
        engine.dispose()
        a_store.close()
        b_store.close()


def test_a_claim_refused_at_capacity_does_not_postpone_the_lease_sweep(store, clock):
    # A full agent's claim sweeps overdue leases, then is refused (AtCapacity) and rolls
    # back, sweep included. The next claim must sweep again, not take the rolled-back
    # sweep as done and leave the overdue task held for another second.
    full = store.register_agent("full", max_tasks=1)
    other = store.register_agent("other")
    store.create_task("held by full")
    store.create_task("overdue")
    assert store.claim_next(full.id, lease_seconds=7200) is not None  # outlives the wait
    overdue = store.claim_next(other.id)
    assert overdue is not None and overdue.title == "overdue"
    store.create_task("ready")
    clock.advance(3600)  # past the 60 s lease, and past the sweep interval
    with pytest.raises(AtCapacity):
        store.claim_next(full.id)  # swept "overdue", claimed "ready": over max_tasks
    assert store.get_task(overdue.id).status is TaskStatus.CLAIMED  # all rolled back
    claimed = store.claim_next(other.id)
    assert claimed is not None and claimed.title == "ready"  # "overdue" backs off first
    assert store.get_task(overdue.id).status is TaskStatus.QUEUED
