"""PostgreSQL's one-round-trip claim and server-side audit appends match the slow path.

The fast claim (``_claim_batch_fast_pg``) and the multi-event append
(``_append_audit_pg``) compute events and hashes on the server. These tests run the
same operations twice, once with the fast claim and once forced onto the slow path,
on stores with the same clock and actor, and require byte-identical chains; and they
check the fallbacks (max_tasks, concurrency keys, per-task leases, the sweep).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import FakeClock, make_url
from test_concurrency import drain_together

from colibri_store import AtCapacity, NotFound, Store, TaskStatus
from colibri_store._audit import event_hash


class _FastSpy:
    """Counts how often the fast claim applied and how often it fell back."""

    def __init__(self, store: Store, *, disable: bool = False) -> None:
        self.applied = 0
        self.fell_back = 0
        inner = store._claim_batch_fast_pg

        def spy(*args: Any, **kwargs: Any) -> Any:
            got = None if disable else inner(*args, **kwargs)
            if got is None:
                self.fell_back += 1
            else:
                self.applied += 1
            return got

        store._claim_batch_fast_pg = spy  # type: ignore[method-assign]


@pytest.fixture
def pg_pair(tmp_path: Path) -> Iterator[tuple[Store, Store, FakeClock]]:
    """Two PostgreSQL stores on fresh schemas, one clock, one actor."""
    clock = FakeClock()
    fast = Store.open(make_url("postgresql", tmp_path), clock=clock, actor="t", lease_seconds=60)
    slow = Store.open(make_url("postgresql", tmp_path), clock=clock, actor="t", lease_seconds=60)
    try:
        yield fast, slow, clock
    finally:
        fast.close()
        slow.close()


def _raw_events(store: Store) -> list[tuple[Any, ...]]:
    """The audit rows exactly as stored (payload text, not parsed)."""
    engine = sa.create_engine(store._engine.url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT seq, at, actor, verb, subject, payload, prev_hash, hash "
            "FROM audit_events ORDER BY seq"
        ).fetchall()
    engine.dispose()
    return [tuple(r) for r in rows]


def _check_hashes(rows: list[tuple[Any, ...]]) -> None:
    prev = "0" * 64
    for seq, at, actor, verb, subject, payload, prev_hash, digest in rows:
        assert prev_hash == prev
        assert digest == event_hash(prev, seq, at, actor, verb, subject, payload)
        prev = digest


def _run_both(
    pair: tuple[Store, Store, FakeClock], script: Callable[[Store], object]
) -> tuple[_FastSpy, list[tuple[Any, ...]]]:
    fast, slow, clock = pair
    spy = _FastSpy(fast)
    _FastSpy(slow, disable=True)
    start = clock.now
    results = []
    for store in (fast, slow):
        clock.now = start
        results.append(script(store))
    assert results[0] == results[1]
    rows = _raw_events(fast)
    assert rows == _raw_events(slow), "the fast path wrote other events than the slow path"
    _check_hashes(rows)
    assert fast.verify_chain().ok and slow.verify_chain().ok
    return spy, rows


def test_fast_claims_write_the_slow_paths_events_byte_for_byte(
    pg_pair: tuple[Store, Store, FakeClock],
) -> None:
    clock = pg_pair[2]

    def script(store: Store) -> object:
        agent = store.register_agent("a", ["x"])
        store.create_tasks(
            [{"title": f"t{i}", "priority": i % 3} for i in range(12)]
            + [{"title": "needs x", "required_capabilities": ["x"], "priority": 5}]
        )
        clock.advance(0.001)
        got = [store.claim_next(agent.id)]  # the first claim sweeps: slow path
        got.append(store.claim_next(agent.id, start=True))
        got += store.claim_batch(agent.id, 4)
        got += store.claim_batch(agent.id, 3, start=True, lease_seconds=5)
        outcome = store.complete_many([(t.id, t.claim_epoch) for t in got if t.started_at])
        got += store.claim_batch(agent.id, 10, start=True)  # the rest
        assert store.claim_next(agent.id) is None
        return [(t.id, t.claim_epoch, t.status, t.lease_expires_at) for t in got], outcome

    spy, rows = _run_both(pg_pair, script)
    assert spy.applied >= 4  # the fast path did the claims after the first
    claims = [r for r in rows if r[3] == "claim"]
    assert len(claims) == 13
    lease = claims[1][5]
    assert json.loads(lease)["agent_id"] == 1
    # The payload text is the canonical JSON that _audit_claims writes.
    expires = json.loads(lease)["lease_expires_at"]
    assert lease == f'{{"agent_id":1,"epoch":1,"lease_expires_at":"{expires}","started":true}}'
    assert claims[2][5] == f'{{"agent_id":1,"epoch":1,"lease_expires_at":"{expires}"}}'


def test_oldest_first_fast_claims_match_the_slow_path(tmp_path: Path) -> None:
    clock = FakeClock()
    stores = [
        Store.open(
            make_url("postgresql", tmp_path), clock=clock, actor="t", lease_seconds=60, fifo_every=2
        )
        for _ in range(2)
    ]
    try:

        def script(store: Store) -> object:
            agent = store.register_agent("a")
            store.create_tasks([{"title": f"t{i}", "priority": (7 * i) % 4} for i in range(20)])
            return [[(t.id, t.priority) for t in store.claim_batch(agent.id, 3)] for _ in range(6)]

        spy, _ = _run_both((stores[0], stores[1], clock), script)
        assert spy.applied >= 4
    finally:
        for store in stores:
            store.close()


def test_an_agent_with_max_tasks_takes_the_slow_path(
    pg_pair: tuple[Store, Store, FakeClock],
) -> None:
    def script(store: Store) -> object:
        agent = store.register_agent("capped", max_tasks=2)
        store.create_tasks([{"title": f"t{i}"} for i in range(5)])
        first = store.claim_batch(agent.id, 5)
        with pytest.raises(AtCapacity):
            store.claim_next(agent.id)
        store.complete_many([(t.id, t.claim_epoch) for t in first])  # claimed, not started
        return [t.id for t in first]

    spy, _ = _run_both(pg_pair, script)
    fast = pg_pair[0]
    assert spy.applied == 0
    assert fast.get_agent(1).max_tasks == 2


def test_an_agent_whose_max_tasks_is_lifted_claims_fast_again(pg_url: str) -> None:
    with Store.open(pg_url) as store:
        spy = _FastSpy(store)
        agent = store.register_agent("capped", max_tasks=10)
        store.create_tasks([{"title": f"t{i}"} for i in range(8)])
        store.claim_next(agent.id)  # the sweep: slow
        store.claim_next(agent.id)  # tried fast, fell back: the agent has max_tasks
        store.claim_next(agent.id)  # not tried fast again
        assert (spy.applied, spy.fell_back) == (0, 2)
        # Lifted here: this Store knows at once.
        store.register_agent("capped")
        assert store.claim_next(agent.id) is not None
        assert (spy.applied, spy.fell_back) == (1, 2)
        # Set and lifted by another process: tried fast again once the pause is over.
        with Store.open(pg_url) as other:
            other.register_agent("capped", max_tasks=10)
            store.claim_next(agent.id)  # falls back, pauses the fast attempts
            other.register_agent("capped")
        store.claim_next(agent.id)
        assert (spy.applied, spy.fell_back) == (1, 3)
        store._slow_claimers[agent.id] = 0.0  # the pause is over
        store.claim_next(agent.id)
        assert (spy.applied, spy.fell_back) == (2, 3)
        assert store.verify_chain().ok


def test_max_tasks_set_later_is_seen_by_the_fast_claim(
    pg_pair: tuple[Store, Store, FakeClock],
) -> None:
    def script(store: Store) -> object:
        agent = store.register_agent("a")
        store.create_tasks([{"title": f"t{i}"} for i in range(6)])
        store.claim_next(agent.id)  # slow (sweep)
        store.claim_next(agent.id)  # fast
        store.register_agent("a", max_tasks=3)
        got = store.claim_batch(agent.id, 5)  # the guard sees max_tasks: one fits
        with pytest.raises(AtCapacity):
            store.claim_next(agent.id)
        return [t.id for t in got]

    spy, _ = _run_both(pg_pair, script)
    assert spy.applied == 1 and spy.fell_back >= 2
    assert pg_pair[0].counts()[TaskStatus.CLAIMED] == 3


def test_concurrency_keys_and_task_leases_fall_back_to_the_slow_path(
    pg_pair: tuple[Store, Store, FakeClock],
) -> None:
    def script(store: Store) -> object:
        agent = store.register_agent("a")
        store.create_tasks([{"title": "plain", "priority": 9}])
        store.claim_next(agent.id)  # slow (sweep)
        store.create_tasks(
            [
                {"title": "k1", "concurrency_key": "k", "concurrency_limit": 1, "priority": 5},
                {"title": "k2", "concurrency_key": "k", "concurrency_limit": 1, "priority": 5},
                {"title": "own lease", "lease_seconds": 7, "priority": 3},
                {"title": "plain 2"},
            ]
        )
        keyed = store.claim_batch(agent.id, 2)  # both keyed: one is given back
        leased = store.claim_next(agent.id, start=True)
        plain = store.claim_next(agent.id)
        nothing = store.claim_next(agent.id)  # k2 waits for k1
        return [(t.title, t.lease_expires_at) for t in [*keyed, leased, plain]], nothing

    spy, _ = _run_both(pg_pair, script)
    fast = pg_pair[0]
    tasks = {t.title: t for t in fast.list_tasks()}
    assert tasks["k1"].status is TaskStatus.CLAIMED
    assert tasks["k2"].status is TaskStatus.QUEUED
    assert tasks["own lease"].lease_expires_at == "2026-11-23T12:00:07.000000Z"
    assert spy.applied == 2  # "plain 2" and the empty claim; the others fell back


def test_the_periodic_sweep_runs_on_the_slow_path(
    pg_pair: tuple[Store, Store, FakeClock],
) -> None:
    clock = pg_pair[2]

    def script(store: Store) -> object:
        agent = store.register_agent("a")
        store.create_tasks([{"title": f"t{i}"} for i in range(3)])
        first = store.claim_next(agent.id)
        clock.advance(61)  # its lease is over, and the sweep is due
        again = store.claim_next(agent.id)
        return first and first.id, again and (again.id, again.attempts)

    spy, rows = _run_both(pg_pair, script)
    assert [r[3] for r in rows][-3:] == ["claim", "expire", "claim"]
    assert spy.fell_back == 2


def test_a_missing_agent_claims_nothing_on_the_fast_path(
    pg_pair: tuple[Store, Store, FakeClock],
) -> None:
    # The fast claim falls back; the slow path's claim then trips the agents foreign
    # key before it reads the agent row, which the store reports as NotFound too.
    fast = pg_pair[0]
    agent = fast.register_agent("a")
    fast.create_task("t")
    assert fast.claim_next(agent.id) is not None
    fast.create_task("u")
    with pytest.raises(NotFound, match="no agent with id 999"):
        fast.claim_next(999)
    assert fast.counts()[TaskStatus.QUEUED] == 1
    assert fast.verify_chain().ok


def test_a_many_event_append_chains_on_the_server(pg_url: str) -> None:
    with Store.open(pg_url, actor='odd "actor" \u00e9\\') as store:
        agent = store.register_agent("a")
        store.create_tasks([{"title": f"t{i}"} for i in range(250)])
        tasks = store.claim_batch(agent.id, 250, start=True)
        results = [(t.id, t.claim_epoch, {"n": t.id, "s": "\u2603\n"}) for t in tasks]
        outcome = store.complete_many(results[:200])
        outcome2 = store.complete_many([(t.id, t.claim_epoch + 1) for t in tasks[200:]])
        assert len(outcome.applied) == 200 and len(outcome2.refused) == 50
        store.create_tasks([{"title": f"more {i}"} for i in range(5)])
        assert len(store.claim_batch(agent.id, 5)) == 5  # the fast claim, same actor
        rows = _raw_events(store)
    _check_hashes(rows)
    completes = [r for r in rows if r[3] == "complete"]
    assert [r[4] for r in completes] == [f"task:{t.id}" for t in tasks[:200]]
    assert completes[0][5] == '{"epoch":1}'
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))


HOSTILE_ACTORS = [
    'quote " and \\ backslash',
    "\\u0000 spelled out, and \x01\x1f\x7f controls",
    "emoji \U0001f600, \u2028 line separator, \ufeff BOM",
    '["json", {"looking": "title"}]',
    "tab\tnew\nline\rreturn",
    "é" * 200,
]


def test_a_many_event_append_keeps_hostile_text_byte_for_byte(pg_url: str) -> None:
    """Many-event appends pass their texts to the server as JSON arrays: whatever the
    actor holds, the stored events are the client's text and the server's hashes are
    exactly _audit.event_hash."""
    with Store.open(pg_url) as store:
        agent = store.register_agent("a")
        store.create_tasks([{"title": f"t{i}"} for i in range(300 * len(HOSTILE_ACTORS))])
        for actor in HOSTILE_ACTORS:
            with store.acting_as(actor):
                tasks = store.claim_batch(agent.id, 300, start=True)
                outcome = store.complete_many([(t.id, t.claim_epoch) for t in tasks])
            assert len(outcome.applied) == 300
        assert store.verify_chain().ok
        rows = _raw_events(store)
    _check_hashes(rows)
    completes = [r for r in rows if r[3] == "complete"]
    assert [r[2] for r in completes] == [a for a in HOSTILE_ACTORS for _ in range(300)]
    assert all(r[4].startswith("task:") and r[5].startswith('{"epoch":') for r in completes)


@pytest.mark.slow
@pytest.mark.parametrize("command, batch", [("drain", "1"), ("drain_batches", "7")])
def test_four_processes_claim_a_mixed_board_with_a_verifying_chain(
    pg_url: str, command: str, batch: str, tmp_path: Path
) -> None:
    """Plain tasks (fast claims) mixed with keyed and leased ones (slow claims)."""
    total = 600
    items: list[dict[str, Any]] = []
    for i in range(total):
        item: dict[str, Any] = {"title": f"t{i}", "priority": i % 4}
        if i % 10 == 3:
            item.update(concurrency_key=f"k{i % 3}", concurrency_limit=2)
        if i % 10 == 7:
            item["lease_seconds"] = 120
        items.append(item)
    with Store.open(pg_url) as store:
        store.create_tasks(items)
    drain_together(pg_url, command, batch, tmp_path / "go", total)
    with Store.open(pg_url) as store:
        assert store.counts()[TaskStatus.DONE] == total
        report = store.verify_chain()
        assert report.ok, report.problem
        assert report.events == 1 + 2 * total + 4
        events = store.audit_events()
    claims = [e for e in events if e.verb == "claim"]
    assert sorted(int(e.subject.split(":")[1]) for e in claims) == list(range(1, total + 1))
    assert {e.payload["epoch"] for e in claims} == {1}
