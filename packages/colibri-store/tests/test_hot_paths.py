"""The hot paths build their results from less than a full read; they must agree with one.

Also the SQLite writers' lock: a file beside the database that orders Colibri's
writers, within the busy timeout, changing nothing when it times out.
"""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import FakeClock, make_url

from colibri_store import InvalidInput, NotFound, Store, StoreError, Task, Usage


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"description": "d", "priority": -7, "max_attempts": 9, "session_id": "s1"},
        {"required_capabilities": ["zfs", "freebsd"], "dedupe_key": "k1"},
        {"concurrency_key": "repo", "concurrency_limit": 2, "lease_seconds": 5},
        {"not_before": datetime(2030, 1, 1, tzinfo=UTC), "title": 'quote " and é'},
    ],
)
def test_create_task_returns_what_get_task_reads(store: Store, options: dict) -> None:
    title = options.pop("title", "plain title")
    dep = store.create_task("dependency")
    created = store.create_task(title, depends_on=[dep.id], **options)
    assert created == store.get_task(created.id)
    plain = store.create_task(title, **options | {"dedupe_key": None})
    assert plain == store.get_task(plain.id)
    assert store.verify_chain().ok


def test_claim_and_complete_return_what_get_task_reads(store: Store) -> None:
    agent = store.register_agent("a")
    store.create_task("one")
    store.create_task("two", lease_seconds=30)
    for _ in range(2):
        claimed = store.claim_next(agent.id, start=True)
        assert claimed is not None
        assert claimed == store.get_task(claimed.id)
        done = store.complete(claimed.id, claimed.claim_epoch, usage=Usage(1, 2, 3, 4, 5))
        assert done == store.get_task(claimed.id)
    assert [e.verb for e in store.audit_events()][-4:] == ["claim", "complete"] * 2
    assert store.verify_chain().ok


def test_batch_claims_match_reads_and_audit_each_task(store: Store) -> None:
    agent = store.register_agent("a")
    store.create_tasks([{"title": f"t{i}", "priority": i % 3} for i in range(30)])
    claimed = store.claim_batch(agent.id, 25)
    assert [store.get_task(t.id) for t in claimed] == claimed
    assert [(t.priority, t.id) for t in claimed] == sorted(
        ((t.priority, t.id) for t in claimed), key=lambda p: (-p[0], p[1])
    )
    events = [e for e in store.audit_events() if e.verb == "claim"]
    assert [(e.subject, e.payload["epoch"]) for e in events] == [
        (f"task:{t.id}", t.claim_epoch) for t in claimed
    ]
    leases = [e.payload["lease_expires_at"] for e in events]
    assert leases == [t.lease_expires_at for t in claimed]
    assert store.verify_chain().ok


def test_every_returned_task_carries_its_dependencies(store: Store, clock: FakeClock) -> None:
    """Claims and moves return Task values equal to a read, dependencies included."""
    agent = store.register_agent("a")
    ups = [store.create_task(f"up {i}") for i in range(3)]
    for up in ups:
        t = store.claim(up.id, agent.id, start=True)
        store.complete(t.id, t.claim_epoch)
    dep_ids = [u.id for u in ups]
    # Plain, keyed and per-lease tasks (the last two take the general claim path).
    made = [
        store.create_task("a", depends_on=dep_ids[:2]),
        store.create_task("b", depends_on=dep_ids, concurrency_key="k"),
        store.create_task("c", depends_on=dep_ids[1:], lease_seconds=30),
        store.create_task("d", depends_on=dep_ids[:1]),
    ]
    store.create_task("no deps")
    by_id = store.create_task("e", depends_on=dep_ids, priority=-5)  # claimed by id below

    def same(task: Task | None) -> Task:
        assert task is not None
        read = store.get_task(task.id)
        assert task == read
        return task

    wanted = {t.id: t.depends_on for t in made}
    assert all(wanted.values())
    batch = [same(t) for t in store.claim_batch(agent.id, 3)]
    assert {t.id: t.depends_on for t in batch} == {t.id: wanted[t.id] for t in batch}
    one = same(store.claim_next(agent.id))
    assert one.depends_on == made[3].depends_on
    picked = same(store.claim(by_id.id, agent.id))
    assert picked.depends_on == tuple(dep_ids)
    started = same(store.start(picked.id, picked.claim_epoch))
    same(store.heartbeat(started.id, started.claim_epoch))
    same(store.extend_lease(started.id, started.claim_epoch, 120))
    same(store.complete(started.id, started.claim_epoch))
    failed = same(store.fail(batch[0].id, batch[0].claim_epoch, error="x"))
    same(store.retry(failed.id))
    same(store.release(batch[1].id, batch[1].claim_epoch))
    clock.advance(3600)
    expired = store.expire_leases()
    assert expired and all(t == store.get_task(t.id) for t in expired)
    assert any(t.depends_on for t in expired)
    assert store.verify_chain().ok


def test_the_first_event_of_an_empty_chain_starts_at_genesis(store: Store) -> None:
    # The hot statements return the chain head; on an empty chain it is NULL.
    task = store.create_task("first")
    [event] = store.audit_events()
    assert (event.seq, event.prev_hash) == (1, "0" * 64)
    assert event.subject == f"task:{task.id}"
    assert store.verify_chain().ok


def _lock_file(tmp_path: Path) -> Path:
    return tmp_path / "colibri.sqlite-writer.lock"


def test_writers_lock_file_is_private_and_beside_the_database(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'colibri.sqlite'}") as store:
        store.create_task("x")
        mode = stat.S_IMODE(os.stat(_lock_file(tmp_path)).st_mode)
    assert mode & 0o077 == 0, oct(mode)


def test_a_held_writers_lock_times_out_with_a_clear_error_and_changes_nothing(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'colibri.sqlite'}"
    with Store.open(url, busy_timeout=0.3) as store:
        store.create_task("before")
        before = store.export_json()
        # Another writer (here: an open file of our own) holds the lock.
        fd = os.open(_lock_file(tmp_path), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with pytest.raises(StoreError, match=r"busy_timeout"):
                store.create_task("blocked")
        finally:
            os.close(fd)
        assert store.export_json() == before
        store.create_task("after")  # the lock is free again
        assert [t.title for t in store.list_tasks()] == ["before", "after"]


def _lock_is_free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops our lock, if we got it
    return True


def test_the_writers_lock_is_held_only_inside_a_write_even_when_it_fails(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'colibri.sqlite'}"
    with Store.open(url) as store:
        store.create_task("x")
        lock = _lock_file(tmp_path)
        assert _lock_is_free(lock)
        seen: list[bool] = []
        with store._write():
            # Checked from another thread, as another writer would see it.
            probe = threading.Thread(target=lambda: seen.append(_lock_is_free(lock)))
            probe.start()
            probe.join(10)
        assert seen == [False]
        assert _lock_is_free(lock)
        with pytest.raises(StoreError):
            store.claim_next(9999)  # an unknown agent: the write fails and rolls back
        assert _lock_is_free(lock)
        with pytest.raises(StoreError):
            store.create_task("x", depends_on=[12345])
        assert _lock_is_free(lock)
        agent = store.register_agent("a")
        task = store.claim_next(agent.id, start=True)
        assert task is not None
        assert _lock_is_free(lock)
        for refused in (store.complete, store.fail):
            with pytest.raises(StoreError):
                refused(task.id, task.claim_epoch + 1)  # a stale epoch: refused
            assert _lock_is_free(lock)


def test_a_clock_in_another_zone_is_stored_as_utc(tmp_path: Path) -> None:
    zone = datetime(2026, 11, 23, 14, 0, 0, 5, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    url = f"sqlite:///{tmp_path / 'colibri.sqlite'}"
    with Store.open(url, clock=lambda: zone) as store:
        assert store.create_task("x").created_at == "2026-11-23T14:00:00.000005Z"


def test_a_failing_clock_leaves_no_transaction_or_lock_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'colibri.sqlite'}"
    broken = {"now": True}

    def clock() -> datetime:
        if broken["now"]:
            raise RuntimeError("clock broke")
        return datetime(2026, 11, 23, tzinfo=UTC)

    with Store.open(url, clock=clock) as store:
        with pytest.raises(RuntimeError, match="clock broke"):
            store.create_task("x")
        assert _lock_is_free(_lock_file(tmp_path))
        broken["now"] = False
        assert store.create_task("y").title == "y"  # no transaction was left open
        assert [t.title for t in store.list_tasks()] == ["y"]


class _ClockBroke(Exception):
    pass


@pytest.mark.parametrize("fault", ["raises", "naive"])
@pytest.mark.parametrize("step", ["create", "claim", "complete", "fail"])
def test_a_bad_clock_leaves_every_hot_write_undone(tmp_path: Path, step: str, fault: str) -> None:
    # A clock that raises, or returns a time without a zone: the write is refused
    # whole, with no transaction or writers' lock left behind.
    url = f"sqlite:///{tmp_path / 'colibri.sqlite'}"
    bad = {"on": False}

    def clock() -> datetime:
        moment = datetime(2026, 11, 23, 12, 0, 0)
        if not bad["on"]:
            return moment.replace(tzinfo=UTC)
        if fault == "raises":
            raise _ClockBroke("clock broke")
        return moment

    with Store.open(url, clock=clock) as store:
        agent = store.register_agent("a")
        assert store.claim_next(agent.id) is None  # the first claim sweeps; later ones need not
        store.create_task("t")
        task = store.claim_next(agent.id, start=True) if step in ("complete", "fail") else None
        before = store.export_json()
        bad["on"] = True
        expected = _ClockBroke if fault == "raises" else InvalidInput
        with pytest.raises(expected):
            if step == "create":
                store.create_task("x")
            elif step == "claim":
                store.claim_next(agent.id, start=True)
            else:
                assert task is not None
                getattr(store, step)(task.id, task.claim_epoch)
        assert store.export_json() == before
        assert _lock_is_free(_lock_file(tmp_path))
        bad["on"] = False
        assert store.create_task("after").title == "after"  # no transaction was left open
        assert store.verify_chain().ok


def test_claims_for_an_unknown_agent_are_not_found_and_change_nothing(store: Store) -> None:
    store.register_agent("known")
    store.create_tasks([{"title": "a"}, {"title": "b"}])
    before = store.export_json()
    for claim in (lambda: store.claim_next(4242), lambda: store.claim_batch(4242, 5)):
        with pytest.raises(NotFound, match="no agent with id 4242"):
            claim()
    assert store.export_json() == before


# The plain create on SQLite chains on from the head its connection remembers, when
# nothing was written since; these interleave it with every other kind of writer.


def _seqs_run_one_by_one(store: Store) -> None:
    seqs = [e.seq for e in store.audit_events()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert store.verify_chain().ok


def test_plain_creates_chain_on_after_another_store_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'colibri.sqlite'}"
    with Store.open(url, actor="one") as one, Store.open(url, actor="two") as two:
        for i in range(20):
            one.create_task(f"one {i}")
            if i % 3 == 0:
                two.create_task(f"two {i}")
            if i % 5 == 0:
                two.register_agent(f"agent {i}")
        _seqs_run_one_by_one(one)
        assert len(one.audit_events()) == 20 + 7 + 4


def test_plain_creates_chain_on_after_other_writes_of_the_same_store(store: Store) -> None:
    agent = store.register_agent("a")
    store.create_task("plain")
    store.create_task("with options", priority=5)
    store.create_task("plain again")
    store.create_tasks([{"title": "batch 1"}, {"title": "batch 2"}])
    store.create_task("after the batch")
    task = store.claim_next(agent.id, start=True)
    assert task is not None
    store.create_task("after the claim")
    store.complete(task.id, task.claim_epoch)
    store.create_task("after the complete")
    _seqs_run_one_by_one(store)


def test_plain_creates_from_many_threads_chain_one_by_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'colibri.sqlite'}"
    with Store.open(url) as store:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(40):
                    store.create_task(f"thread {n} task {i}")
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert len(store.list_tasks(limit=1000)) == 160
        _seqs_run_one_by_one(store)


def test_a_plain_create_that_fails_before_commit_leaves_the_next_one_chained_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from colibri_store import _audit

    url = f"sqlite:///{tmp_path / 'colibri.sqlite'}"
    with Store.open(url) as store:
        store.create_task("first")
        real = _audit.chain_one
        calls = {"n": 0}

        def once_broken(*args: object) -> object:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("broken between the insert and its event")
            return real(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(_audit, "chain_one", once_broken)
        with pytest.raises(RuntimeError, match="broken between"):
            store.create_task("lost")
        store.create_task("second")
        assert [t.title for t in store.list_tasks()] == ["first", "second"]
        _seqs_run_one_by_one(store)


def test_a_stale_remembered_head_is_refused_not_forked(tmp_path: Path) -> None:
    # The safety net under the remembered head: were it ever stale, the next seq is
    # taken, so the create is refused whole instead of forking the chain.
    url = f"sqlite:///{tmp_path / 'colibri.sqlite'}"
    with Store.open(url) as store:
        store.create_task("first")
        store.create_task("second")
        version, changes, _seq, _hash = store._local.head
        first = store.audit_events()[0]
        store._local.head = (version, changes, first.seq, first.hash)  # as if stale
        before = store.export_json()
        with pytest.raises(StoreError, match="refused"):
            store.create_task("third")
        assert store.export_json() == before
        store._local.head = None
        store.create_task("third")
        _seqs_run_one_by_one(store)


def test_empty_claims_count_toward_fifo_every_on_both_backends(
    backend: str, tmp_path: Path
) -> None:
    # Every claim made counts toward the oldest-first slot, whichever path serves it
    # (found by review: SQLite's lean claim counted only claims that found a task).
    with Store.open(make_url(backend, tmp_path), clock=FakeClock(), fifo_every=2) as store:
        agent = store.register_agent("a")
        assert store.claim_next(agent.id) is None  # claim 1 (it sweeps)
        assert store.claim_next(agent.id) is None  # claim 2: nothing ready
        store.create_task("old")
        store.create_task("urgent", priority=5)
        got = store.claim_next(agent.id)  # claim 3: not an oldest-first slot
        assert got is not None
        assert got.title == "urgent"
        got = store.claim_next(agent.id)  # claim 4: the oldest-first slot
        assert got is not None
        assert got.title == "old"


def test_threads_past_an_expired_slow_claimer_entry_all_claim(tmp_path: Path) -> None:
    # An agent with max_tasks takes the general path for a while; when that ends,
    # several threads may look at once (found by review: the second raised KeyError).
    with Store.open(f"sqlite:///{tmp_path / 'colibri.sqlite'}") as store:
        agent = store.register_agent("a", max_tasks=5)
        store.claim_next(agent.id)  # it sweeps
        store.claim_next(agent.id)  # sees max_tasks: the general path, for a while
        assert agent.id in store._slow_claimers
        barrier = threading.Barrier(2, timeout=10)

        class BothLook(dict):  # type: ignore[type-arg]
            def __contains__(self, key: object) -> bool:
                found = super().__contains__(key)
                barrier.wait()  # both threads have looked before either goes on
                return found

        store._slow_claimers = BothLook({agent.id: 0.0})  # expired: due a fast try
        store.create_tasks([{"title": "t1"}, {"title": "t2"}])
        errors: list[BaseException] = []
        claimed: list[Task | None] = []

        def work() -> None:
            try:
                claimed.append(store.claim_next(agent.id))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert sorted(t.title for t in claimed if t is not None) == ["t1", "t2"]
