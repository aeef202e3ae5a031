"""Tasks: creation, validation, claims, fencing, leases, dependencies, usage."""

from __future__ import annotations

import attrs
import pytest

from colibri_store import (
    AtCapacity,
    Conflict,
    DependencyCycle,
    InvalidInput,
    InvalidTransition,
    NotFound,
    StaleEpoch,
    Store,
    TaskStatus,
    Usage,
)


def _snapshot(store: Store) -> dict:
    doc = store.export_json()
    return doc["tables"]


def test_create_and_get(store: Store) -> None:
    task = store.create_task(
        "fix zfs snapshot", "details", required_capabilities=["zfs", "freebsd"]
    )
    assert task.status is TaskStatus.QUEUED
    assert task.required_capabilities == ("freebsd", "zfs")
    assert task.claim_epoch == 0 and task.attempts == 0 and task.max_attempts == 3
    assert store.get_task(task.id) == task
    assert store.list_tasks() == [task]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": None}, "title"),
        ({"title": 42}, "title"),
        ({"title": "ok", "description": "x" * 100_001}, "description"),
        ({"title": "ok", "required_capabilities": {"zfs": True}}, "required_capabilities"),
        ({"title": "ok", "required_capabilities": "zfs"}, "required_capabilities"),
        ({"title": "ok", "required_capabilities": ["zfs", 3]}, "required_capabilities"),
        ({"title": "ok", "required_capabilities": [""]}, "required_capabilities"),
        ({"title": "ok", "priority": "high"}, "priority"),
        ({"title": "ok", "priority": True}, "priority"),
        ({"title": "ok", "max_attempts": 0}, "max_attempts"),
        ({"title": "ok", "depends_on": "12"}, "depends_on"),
        ({"title": "ok", "depends_on": [0]}, "depends_on"),
        ({"title": "a\x00b"}, "title"),
    ],
)
def test_bad_task_input_is_refused_and_changes_nothing(
    store: Store, kwargs: dict, field: str
) -> None:
    before = _snapshot(store)
    kwargs = dict(kwargs)
    title = kwargs.pop("title")
    with pytest.raises(InvalidInput) as info:
        store.create_task(title, **kwargs)
    assert info.value.field == field
    assert field in str(info.value)
    assert _snapshot(store) == before


def test_unknown_dependency_is_refused_and_changes_nothing(store: Store) -> None:
    before = _snapshot(store)
    with pytest.raises(NotFound, match="no task with id 999"):
        store.create_task("t", depends_on=[999])
    assert _snapshot(store) == before


def test_unknown_status_filter(store: Store) -> None:
    with pytest.raises(InvalidInput, match="unknown value 'running'"):
        store.list_tasks(status="running")


def test_unknown_ids(store: Store) -> None:
    agent = store.register_agent("a")
    with pytest.raises(NotFound):
        store.get_task(12345)
    with pytest.raises(NotFound):
        store.claim(12345, agent.id)
    with pytest.raises(NotFound, match="agent"):
        store.claim_next(777)
    with pytest.raises(NotFound):
        store.start(12345, 1)
    with pytest.raises(NotFound):
        store.retry(12345)


def test_full_lifecycle_with_usage(store: Store) -> None:
    agent = store.register_agent("worker", ["py"])
    task = store.create_task("t", required_capabilities=["py"])
    claimed = store.claim(task.id, agent.id)
    assert claimed.status is TaskStatus.CLAIMED
    assert claimed.agent_id == agent.id and claimed.claim_epoch == 1
    assert claimed.lease_expires_at is not None
    started = store.start(task.id, claimed.claim_epoch)
    assert started.status is TaskStatus.STARTED and started.started_at is not None
    usage = Usage(
        input_tokens=10,
        output_tokens=5,
        cache_read_tokens=2,
        cache_write_tokens=1,
        cost_micros=1234,
    )
    done = store.complete(task.id, started.claim_epoch, result={"answer": [1, 2]}, usage=usage)
    assert done.status is TaskStatus.DONE
    assert done.result == {"answer": [1, 2]}
    assert done.usage == usage
    assert done.finished_at is not None and done.lease_expires_at is None
    with pytest.raises(InvalidTransition, match="is done: cannot fail"):
        store.fail(task.id, done.claim_epoch, error="late")


def test_claim_has_exactly_one_winner_and_loser_gets_conflict(store: Store) -> None:
    a = store.register_agent("a")
    b = store.register_agent("b")
    task = store.create_task("t")
    store.claim(task.id, a.id)
    with pytest.raises(Conflict, match=r"not claimable: it is claimed by agent"):
        store.claim(task.id, b.id)


def test_claim_next_order_is_priority_then_age(store: Store) -> None:
    agent = store.register_agent("a")
    low = store.create_task("low", priority=0)
    high1 = store.create_task("high1", priority=5)
    high2 = store.create_task("high2", priority=5)
    mid = store.create_task("mid", priority=1)
    order = []
    while (t := store.claim_next(agent.id)) is not None:
        order.append(t.id)
    assert order == [high1.id, high2.id, mid.id, low.id]


def test_claim_next_requires_covering_every_capability(store: Store) -> None:
    partial = store.register_agent("partial", ["freebsd"])
    full = store.register_agent("full", ["freebsd", "zfs", "extra"])
    task = store.create_task("t", required_capabilities=["freebsd", "zfs"])
    anyone = store.create_task("anyone")
    # The original routed partial matches; ours never does.
    got = store.claim_next(partial.id)
    assert got is not None and got.id == anyone.id
    assert store.claim_next(partial.id) is None
    with pytest.raises(Conflict, match=r"lacks capabilities \['zfs'\]"):
        store.claim(task.id, partial.id)
    got = store.claim_next(full.id)
    assert got is not None and got.id == task.id


def test_dependencies_gate_readiness(store: Store) -> None:
    agent = store.register_agent("a")
    first = store.create_task("first")
    second = store.create_task("second", depends_on=[first.id])
    assert [t.id for t in store.list_tasks(ready=True)] == [first.id]
    assert [t.id for t in store.list_tasks(ready=False)] == [second.id]
    with pytest.raises(Conflict, match="open dependencies"):
        store.claim(second.id, agent.id)
    t = store.claim_next(agent.id, start=True)
    assert t is not None and t.id == first.id
    assert store.claim_next(agent.id) is None
    store.complete(t.id, t.claim_epoch)
    t2 = store.claim_next(agent.id)
    assert t2 is not None and t2.id == second.id
    assert store.get_task(second.id).depends_on == (first.id,)


def test_dependency_cycles_are_refused(store: Store) -> None:
    a = store.create_task("a")
    b = store.create_task("b", depends_on=[a.id])
    c = store.create_task("c", depends_on=[b.id])
    before = _snapshot(store)
    with pytest.raises(DependencyCycle) as info:
        store.add_dependency(a.id, c.id)
    assert info.value.path == [a.id, c.id, b.id, a.id]
    with pytest.raises(DependencyCycle):
        store.add_dependency(a.id, a.id)
    assert _snapshot(store) == before
    store.add_dependency(c.id, a.id)  # not a cycle: c -> a already implied
    assert set(store.get_task(c.id).depends_on) == {a.id, b.id}


def test_stale_epoch_is_refused_after_the_lease_is_broken(store: Store, clock) -> None:
    a = store.register_agent("a")
    b = store.register_agent("b")
    task = store.create_task("t")
    old = store.claim(task.id, a.id, lease_seconds=10)
    clock.advance(11)
    expired = store.expire_leases()
    assert [t.id for t in expired] == [task.id]
    requeued = store.get_task(task.id)
    assert requeued.status is TaskStatus.QUEUED and requeued.not_before is not None
    clock.advance(2)  # past the retry backoff (1 s +-10 % after a first failed attempt)
    new = store.claim(task.id, b.id)
    assert new.claim_epoch == old.claim_epoch + 1
    before = _snapshot(store)
    for op in (store.start, store.heartbeat, store.complete, store.fail, store.release):
        with pytest.raises(StaleEpoch) as info:
            op(task.id, old.claim_epoch)
        assert info.value.current == new.claim_epoch
    assert _snapshot(store) == before
    store.start(task.id, new.claim_epoch)


def test_claims_rescue_overdue_leases_without_a_sweeper(store: Store, clock) -> None:
    a = store.register_agent("a")
    task = store.create_task("t")
    store.claim(task.id, a.id, lease_seconds=5)
    clock.advance(6)
    # This claim expires the overdue lease itself; the task then backs off for ~1 s.
    assert store.claim_next(a.id) is None
    assert store.get_task(task.id).status is TaskStatus.QUEUED
    clock.advance(2)
    again = store.claim_next(a.id)
    assert again is not None and again.id == task.id and again.claim_epoch == 2
    assert again.attempts == 1


def test_heartbeat_extends_the_lease(store: Store, clock) -> None:
    a = store.register_agent("a")
    task = store.create_task("t")
    c = store.claim(task.id, a.id, lease_seconds=10)
    clock.advance(8)
    hb = store.heartbeat(task.id, c.claim_epoch, lease_seconds=10)
    assert hb.lease_expires_at > c.lease_expires_at
    clock.advance(8)
    assert store.expire_leases() == []
    clock.advance(3)
    assert [t.id for t in store.expire_leases()] == [task.id]


def test_release_counts_attempts_and_fails_at_max(store: Store, clock) -> None:
    a = store.register_agent("a")
    task = store.create_task("t", max_attempts=2)
    c = store.claim(task.id, a.id)
    r = store.release(task.id, c.claim_epoch, error="tool crashed")
    assert r.status is TaskStatus.QUEUED and r.attempts == 1 and r.agent_id is None
    assert r.finished_at is None
    assert r.last_error == "tool crashed"
    clock.advance(2)
    c = store.claim(task.id, a.id)
    r = store.release(task.id, c.claim_epoch)
    assert r.status is TaskStatus.FAILED and r.attempts == 2
    # Failed for good, so finished: the same as a task failed by fail().
    assert r.finished_at == r.updated_at and r.finished_at is not None
    assert store.get_task(task.id).finished_at == r.finished_at
    q = store.retry(task.id)
    assert q.status is TaskStatus.QUEUED and q.attempts == 0 and q.finished_at is None


@pytest.mark.parametrize(
    ("max_attempts", "status"), [(1, TaskStatus.FAILED), (2, TaskStatus.QUEUED)]
)
def test_lease_expiry_fails_at_max_attempts(
    store: Store, clock, max_attempts: int, status: TaskStatus
) -> None:
    a = store.register_agent("a")
    task = store.create_task("t", max_attempts=max_attempts)
    store.claim(task.id, a.id, lease_seconds=1)
    clock.advance(2)
    [expired] = store.expire_leases()
    assert expired.status is status and expired.last_error == "lease expired"
    # Finished only when failed for good; a requeued task is not.
    finished = expired.updated_at if status is TaskStatus.FAILED else None
    assert expired.finished_at == finished
    assert store.get_task(task.id).finished_at == finished


def test_illegal_transitions(store: Store) -> None:
    a = store.register_agent("a")
    task = store.create_task("t")
    with pytest.raises(InvalidTransition, match="is queued: cannot start"):
        store.start(task.id, 0)
    with pytest.raises(InvalidTransition, match="is queued: cannot retry"):
        store.retry(task.id)
    c = store.claim(task.id, a.id)
    with pytest.raises(InvalidTransition, match="is claimed: cannot complete"):
        store.complete(task.id, c.claim_epoch)
    f = store.fail(task.id, c.claim_epoch, error="boom")
    assert f.status is TaskStatus.FAILED and f.last_error == "boom"
    with pytest.raises(InvalidTransition):
        store.release(task.id, c.claim_epoch)


def test_max_tasks_caps_an_agent(store: Store) -> None:
    a = store.register_agent("a", max_tasks=2)
    for i in range(4):
        store.create_task(f"t{i}")
    got = store.claim_batch(a.id, 10)
    assert len(got) == 2
    with pytest.raises(AtCapacity):
        store.claim_next(a.id)
    store.start(got[0].id, got[0].claim_epoch)
    store.complete(got[0].id, got[0].claim_epoch)
    assert store.claim_next(a.id) is not None


def test_claim_batch_bounds(store: Store) -> None:
    a = store.register_agent("a")
    for n in (0, 1001, -1):
        with pytest.raises(InvalidInput, match="n: must be between 1 and 1000"):
            store.claim_batch(a.id, n)
    ids = store.create_tasks([{"title": f"t{i}"} for i in range(7)])
    got = store.claim_batch(a.id, 5)
    assert [t.id for t in got] == ids[:5]
    assert len({t.claim_epoch for t in got}) == 1  # each task's first claim


def test_create_tasks_is_all_or_nothing(store: Store) -> None:
    before = _snapshot(store)
    with pytest.raises(InvalidInput, match=r"items\[1\].title"):
        store.create_tasks([{"title": "ok"}, {"title": ""}])
    with pytest.raises(InvalidInput, match="is empty"):
        store.create_tasks([])
    with pytest.raises(InvalidInput, match="unknown keys"):
        store.create_tasks([{"title": "x", "colour": "red"}])
    assert _snapshot(store) == before


def test_bad_lease_and_usage(store: Store) -> None:
    a = store.register_agent("a")
    task = store.create_task("t")
    with pytest.raises(InvalidInput, match="lease_seconds"):
        store.claim(task.id, a.id, lease_seconds=-5)
    c = store.claim(task.id, a.id, start=True)
    with pytest.raises(InvalidInput, match="usage"):
        store.complete(task.id, c.claim_epoch, usage={"input_tokens": -1})
    with pytest.raises(InvalidInput, match="result"):
        store.complete(task.id, c.claim_epoch, result={1, 2})
    assert store.get_task(task.id).status is TaskStatus.STARTED


def test_list_filters(store: Store) -> None:
    a = store.register_agent("a")
    zfs = store.create_task("z", required_capabilities=["zfs"])
    store.create_task("p", required_capabilities=["zfs_"])
    other = store.create_task("o")
    assert [t.id for t in store.list_tasks(capability="zfs")] == [zfs.id]
    store.claim(other.id, a.id)
    assert [t.id for t in store.list_tasks(status=TaskStatus.CLAIMED)] == [other.id]
    assert [t.id for t in store.list_tasks(agent_id=a.id)] == [other.id]
    assert len(store.list_tasks(limit=2)) == 2
    counts = store.counts()
    assert counts[TaskStatus.QUEUED] == 2 and counts[TaskStatus.CLAIMED] == 1
    assert sum(counts.values()) == 3


def test_bulk_fast_path_matches_create_task(store: Store) -> None:
    [bulk_id] = store.create_tasks([{"title": "same"}])
    single = store.create_task("same")
    bulk = store.get_task(bulk_id)
    assert attrs.evolve(bulk, id=single.id) == single
    for bad in ("", " ", "x" * 501, "a\x00b", 7):
        with pytest.raises(InvalidInput, match="title"):
            store.create_tasks([{"title": bad}])


def test_bulk_batches_keep_every_argument(store: Store) -> None:
    """A batch mixing title-only items with full ones keeps each item's own values."""
    ids = store.create_tasks(
        [{"title": "plain"}, {"title": "urgent", "priority": 7, "max_attempts": 5}]
    )
    plain, urgent = (store.get_task(i) for i in ids)
    assert (plain.priority, plain.max_attempts) == (0, 3)
    assert (urgent.priority, urgent.max_attempts) == (7, 5)
