"""Regression tests for defects a review found (each failed before its fix)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_schema import ORIGINAL_DDL, _raw_exec

from colibri_store import (
    AtCapacity,
    Conflict,
    DependencyCycle,
    InvalidInput,
    Store,
    TaskStatus,
)


def _together(url: str, n: int, work) -> list[object]:
    """Run ``work(store, i)`` in n threads, each with its own Store, released together."""
    stores = [Store.open(url) for _ in range(n)]
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = work(stores[i], i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in stores:
        s.close()
    return results


@pytest.mark.slow
def test_max_tasks_holds_under_concurrent_claims(db_url: str) -> None:
    with Store.open(db_url) as store:
        agent = store.register_agent("one-at-a-time", max_tasks=1)
        store.create_tasks([{"title": f"t{i}"} for i in range(60)])
    for _ in range(5):
        results = _together(db_url, 6, lambda s, i: s.claim_next(agent.id, start=True))
        claimed = [r for r in results if r is not None and not isinstance(r, Exception)]
        assert all(isinstance(r, AtCapacity) for r in results if isinstance(r, Exception))
        assert len(claimed) <= 1
        with Store.open(db_url) as store:
            running = store.list_tasks(status="started")
            assert len(running) <= 1
            for task in running:
                store.complete(task.id, task.claim_epoch)


@pytest.mark.slow
def test_concurrent_opposite_dependencies_never_both_commit(db_url: str) -> None:
    with Store.open(db_url) as store:
        pairs = [(store.create_task("a").id, store.create_task("b").id) for _ in range(10)]
    for a, b in pairs:
        results = _together(
            db_url, 2, lambda s, i, a=a, b=b: s.add_dependency(*((a, b) if i == 0 else (b, a)))
        )
        assert sum(isinstance(r, DependencyCycle) for r in results) == 1, results
    with Store.open(db_url) as store:
        for a, b in pairs:
            assert not (b in store.get_task(a).depends_on and a in store.get_task(b).depends_on)


@pytest.mark.slow
def test_create_tasks_dedupe_race_gives_one_task_per_key(db_url: str) -> None:
    Store.open(db_url).close()
    keys = [f"k{i}" for i in range(10)]
    results = _together(
        db_url, 6, lambda s, i: s.create_tasks([{"title": k, "dedupe_key": k} for k in keys])
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({tuple(r) for r in results}) == 1  # every caller got the same ids
    with Store.open(db_url) as store:
        assert len(store.list_tasks()) == len(keys)


def test_no_lost_wake_up_between_look_and_wait(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiter = Store.open(db_url)
    other = Store.open(db_url)
    try:
        real = waiter._ready_now
        calls = {"n": 0}

        def look() -> bool:
            calls["n"] += 1
            if calls["n"] == 1:
                other.create_task("arrives while we look")  # after the look, before the wait
                return False
            return real()

        monkeypatch.setattr(waiter, "_ready_now", look)
        assert waiter.wait_for_work(5) is True
    finally:
        waiter.close()
        other.close()


def test_wait_for_work_ignores_tasks_held_back_by_their_key(store: Store) -> None:
    a = store.register_agent("a")
    store.create_tasks(
        [{"title": "x", "concurrency_key": "k"}, {"title": "y", "concurrency_key": "k"}]
    )
    assert store.claim_next(a.id, start=True) is not None
    assert store.wait_for_work(0.2) is False


def test_adopted_claimed_task_without_lease_expires(db_url: str) -> None:
    _raw_exec(
        db_url,
        [
            *ORIGINAL_DDL,
            "INSERT INTO agents (name, created_at) VALUES ('old', '2025-01-01')",
            "INSERT INTO tasks (agent_id, status, title, created_at, updated_at) "
            "VALUES (1, 'started', 'stuck', '2025-01-01', '2025-01-01')",
        ],
    )
    with Store.open(db_url, retry_backoff=0) as store:
        [expired] = store.expire_leases()
        assert expired.status is TaskStatus.QUEUED


def test_object_capabilities_cover_nothing_on_every_backend(db_url: str) -> None:
    _raw_exec(
        db_url,
        [
            *ORIGINAL_DDL,
            "INSERT INTO agents (name, capabilities, created_at) "
            "VALUES ('obj', '{\"k\": \"rust\"}', '2025-01-01')",
        ],
    )
    with Store.open(db_url) as store:
        store.create_task("needs rust", required_capabilities=["rust"])
        assert store.claim_next(1) is None


def test_batch_ids_after_an_adopted_autoincrement_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'auto.sqlite'}"
    _raw_exec(
        url,
        [
            *ORIGINAL_DDL,
            "INSERT INTO tasks (status, title, created_at, updated_at) "
            "VALUES ('done', 'a', 'x', 'x')",
            "INSERT INTO tasks (status, title, created_at, updated_at) "
            "VALUES ('done', 'b', 'x', 'x')",
            "DELETE FROM tasks WHERE id = 2",
        ],
    )
    with Store.open(url) as store:
        ids = store.create_tasks([{"title": "c"}, {"title": "d"}])
        assert ids == [3, 4]
        assert [t.title for t in store.list_tasks()] == ["a", "c", "d"]


def test_status_to_the_same_value_appends_no_event(store: Store) -> None:
    a = store.register_agent("a")
    before = len(store.audit_events())
    store.set_agent_status(a.id, "idle")
    assert len(store.audit_events()) == before
    store.set_agent_status(a.id, "offline")
    assert len(store.audit_events()) == before + 1


def test_claim_refusals_name_the_real_reason(store: Store, clock) -> None:
    a = store.register_agent("a")
    later = store.create_task("later", not_before=clock.now + timedelta(hours=1))
    with pytest.raises(Conflict, match="not claimable before"):
        store.claim(later.id, a.id)
    k1 = store.create_task("k1", concurrency_key="repo")
    k2 = store.create_task("k2", concurrency_key="repo")
    store.claim(k1.id, a.id)
    with pytest.raises(Conflict, match="concurrency key 'repo' are running"):
        store.claim(k2.id, a.id)


def test_capacity_surplus_leaves_no_trace(store: Store, clock) -> None:
    a = store.register_agent("a", max_tasks=1)
    ids = store.create_tasks([{"title": f"t{i}"} for i in range(3)])
    before = {i: store.get_task(i) for i in ids[1:]}
    clock.advance(5)
    got = store.claim_batch(a.id, 3)
    assert [t.id for t in got] == ids[:1]
    assert {i: store.get_task(i) for i in ids[1:]} == before


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.create_task("bad \ud800 title"), "title"),
        (lambda s: s.register_agent("\ud800"), "name"),
        (lambda s: s.expire_leases("2020-01-01"), "now"),
        (lambda s: s.create_task("x", not_before=datetime(999, 1, 1, tzinfo=UTC)), "not_before"),
        (lambda s: s.create_task("x", not_before=datetime(2030, 1, 1)), "not_before"),
        (lambda s: s.audit_events(after=None), "after"),
        (lambda s: s.list_tasks(after_id="x"), "after_id"),
        (lambda s: s.complete_many([(1, 2**31)]), "epoch"),
        (lambda s: s.get_task(2**31), "task_id"),
    ],
)
def test_bad_inputs_are_typed(store: Store, call, field: str) -> None:
    before = store.export_json()
    with pytest.raises(InvalidInput) as info:
        call(store)
    assert field in info.value.field
    assert store.export_json() == before


def test_a_finished_thread_gives_its_connection_back(db_url: str) -> None:
    import gc

    with Store.open(db_url) as store:
        for _ in range(20):
            thread = threading.Thread(target=store.counts)
            thread.start()
            thread.join(timeout=30)
        gc.collect()
        assert sum(f.alive for f in store._finalizers) <= 1
        if store.backend == "postgresql":
            conn = store._conn()
            count = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend'"
            ).fetchone()[0]
            assert count < 10


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("tasks", "required_capabilities", "x,y"),
        ("tasks", "priority", "high"),
        ("tasks", "status", "running"),
        ("agents", "capabilities", "not json"),
        ("audit_events", "actor", "mallory"),  # breaks the chain
    ],
)
def test_import_refuses_bad_values(
    db_url: str, tmp_path: Path, table: str, column: str, value: str
) -> None:
    from conftest import make_url

    with Store.open(db_url) as src:
        a = src.register_agent("a", ["x"])
        src.create_task("t", required_capabilities=["x"])
        assert a.id == 1
        doc = src.export_json()
    doc["tables"][table][0][column] = value
    (tmp_path / "dst").mkdir()
    with Store.open(
        make_url("sqlite" if db_url.startswith("sqlite") else "postgresql", tmp_path / "dst")
    ) as dst:
        with pytest.raises(InvalidInput, match=f"tables.{table}"):
            dst.import_json(doc)
        assert dst.export_json()["tables"]["tasks"] == []
