"""Issue 7: batch completions, unique tasks, concurrency keys, backoff, aging, wake-ups."""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import FakeClock
from test_concurrency import _spawn, drain_together

from colibri_store import BatchOutcome, Conflict, InvalidInput, Store, StoreError, TaskStatus


def _tables(store: Store) -> dict:
    return store.export_json()["tables"]


# ---------------------------------------------------------------- batches


def test_complete_many_judges_each_item(store: Store) -> None:
    a = store.register_agent("a")
    ids = store.create_tasks([{"title": f"t{i}"} for i in range(4)])
    claimed = {t.id: t for t in store.claim_batch(a.id, 4)}
    for tid in ids[:3]:
        store.start(tid, claimed[tid].claim_epoch)
    events_before = len(store.audit_events())
    outcome = store.complete_many(
        [
            (ids[0], claimed[ids[0]].claim_epoch),
            (ids[1], claimed[ids[1]].claim_epoch, {"answer": 42}),
            (ids[2], claimed[ids[2]].claim_epoch + 7),  # stale
            (ids[3], claimed[ids[3]].claim_epoch),  # claimed, not started
        ]
    )
    assert isinstance(outcome, BatchOutcome)
    assert outcome.applied == (ids[0], ids[1])
    reasons = dict(outcome.refused)
    assert "stale" in reasons[ids[2]]
    assert "is claimed: cannot complete" in reasons[ids[3]]
    assert store.get_task(ids[1]).result == {"answer": 42}
    assert store.get_task(ids[2]).status is TaskStatus.STARTED
    assert len(store.audit_events()) == events_before + 2


def test_fail_many(store: Store) -> None:
    a = store.register_agent("a")
    store.create_tasks([{"title": "x"}, {"title": "y"}])
    got = store.claim_batch(a.id, 2)
    outcome = store.fail_many([(got[0].id, got[0].claim_epoch, "boom"), (got[1].id, 99)])
    assert outcome.applied == (got[0].id,)
    assert store.get_task(got[0].id).last_error == "boom"
    assert [r[0] for r in outcome.refused] == [got[1].id]


@pytest.mark.parametrize(
    ("items", "match"),
    [
        ([], "is empty"),
        ([(1, 1), (1, 1)], "appears twice"),
        ([(1,)], r"must be \(task_id, epoch\)"),
        (["ab"], r"must be \(task_id, epoch\)"),
        ([(0, 1)], "task_id"),
        ([(1, -1)], "epoch"),
        ([(i, 1) for i in range(1, 1002)], "the limit is 1000"),
        ("12", "must be a list"),
    ],
)
def test_bad_batches_change_nothing(store: Store, items: object, match: str) -> None:
    a = store.register_agent("a")
    store.create_task("t")
    store.claim_next(a.id, start=True)
    before = _tables(store)
    with pytest.raises(InvalidInput, match=match):
        store.complete_many(items)  # type: ignore[arg-type]
    assert _tables(store) == before


def test_extend_lease_and_per_task_leases(store: Store, clock: FakeClock) -> None:
    a = store.register_agent("a")
    long = store.create_task("long", lease_seconds=3600)
    c = store.claim(long.id, a.id)
    assert c.lease_expires_at == (clock.now + timedelta(seconds=3600)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    e = store.extend_lease(long.id, c.claim_epoch, 7200)
    assert e.lease_expires_at > c.lease_expires_at
    with pytest.raises(InvalidInput, match="lease_seconds"):
        store.extend_lease(long.id, c.claim_epoch, -1)
    with pytest.raises(InvalidInput, match="lease_seconds"):
        store.create_task("bad", lease_seconds=0)


# ---------------------------------------------------------------- unique tasks


def test_dedupe_key_returns_the_open_task(store: Store) -> None:
    a = store.register_agent("a")
    first = store.create_task("intake", dedupe_key="pr-42")
    again = store.create_task("intake (retried)", dedupe_key="pr-42")
    assert again.id == first.id and again.title == "intake"
    assert store.create_tasks([{"title": "x", "dedupe_key": "pr-42"}]) == [first.id]
    c = store.claim_next(a.id, start=True)
    assert store.create_task("still open", dedupe_key="pr-42").id == first.id
    store.complete(c.id, c.claim_epoch)
    fresh = store.create_task("after done", dedupe_key="pr-42")
    assert fresh.id != first.id
    assert len(store.list_tasks()) == 2


def test_a_dedupe_hit_returns_the_open_task_with_its_dependencies(store: Store) -> None:
    up = [store.create_task("up 1"), store.create_task("up 2")]
    first = store.create_task("intake", depends_on=[u.id for u in up], dedupe_key="k")
    again = store.create_task("intake (retried)", dedupe_key="k")
    assert again == store.get_task(first.id) == first
    assert again.depends_on == (up[0].id, up[1].id)


@pytest.mark.slow
def test_dedupe_race_eight_processes_make_one_task(db_url: str, tmp_path: Path) -> None:
    Store.open(db_url).close()
    go = tmp_path / "go"
    procs = [_spawn("dedupe", db_url, "nightly-2026-11-23", str(go)) for _ in range(8)]
    for proc in procs:  # every process has opened the store before any creates
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.touch()
    ids = set()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        ids.add(int(out))
    assert len(ids) == 1
    with Store.open(db_url) as store:
        assert len(store.list_tasks()) == 1
        assert store.verify_chain().ok


# ---------------------------------------------------------------- concurrency keys


def test_concurrency_key_limits_running_tasks(store: Store) -> None:
    a = store.register_agent("a")
    ids = store.create_tasks(
        [{"title": f"repo {i}", "concurrency_key": "repo:colibri"} for i in range(4)]
        + [{"title": "two at a time", "concurrency_key": "pool", "concurrency_limit": 2}] * 3
    )
    got = store.claim_batch(a.id, 10, start=True)
    by_key: dict[str, int] = {}
    for t in got:
        by_key[t.concurrency_key or ""] = by_key.get(t.concurrency_key or "", 0) + 1
    assert by_key == {"repo:colibri": 1, "pool": 2}
    assert store.list_tasks(status="queued", limit=100)[0].id == ids[1]
    first = next(t for t in got if t.concurrency_key == "repo:colibri")
    store.complete(first.id, first.claim_epoch)
    nxt = store.claim_next(a.id)
    assert nxt is not None and nxt.concurrency_key == "repo:colibri"
    with pytest.raises(InvalidInput, match="needs a concurrency_key"):
        store.create_task("x", concurrency_limit=2)


@pytest.mark.slow
def test_concurrency_key_race_never_exceeds_the_limit(db_url: str) -> None:
    with Store.open(db_url) as store:
        store.create_tasks([{"title": f"t{i}", "concurrency_key": "repo"} for i in range(60)])
    procs = [_spawn("keyed", db_url, f"w{i}", "2") for i in range(4)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert max(r["most"] for r in results) == 1
    assert sum(r["done"] for r in results) == 60
    with Store.open(db_url) as store:
        assert store.counts()[TaskStatus.DONE] == 60
        assert store.verify_chain().ok


# ---------------------------------------------------------------- scheduling


def test_backoff_after_failed_attempts(db_url: str) -> None:
    clock = FakeClock()
    with Store.open(
        db_url, clock=clock, retry_backoff=10, retry_backoff_cap=25, retry_jitter=0.1
    ) as store:
        a = store.register_agent("a")
        task = store.create_task("flaky", max_attempts=5)
        delays = []
        for _ in range(3):
            c = store.claim(task.id, a.id)
            r = store.release(task.id, c.claim_epoch)
            assert r.status is TaskStatus.QUEUED
            assert store.claim_next(a.id) is None  # not due yet
            due = (r.not_before, clock.now)
            delays.append(due)
            # jump to just past the due time
            while store.get_task(task.id).not_before > clock.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"):
                clock.advance(1)
        seconds = []
        for not_before, at in delays:
            from datetime import UTC, datetime

            moment = datetime.strptime(not_before, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            seconds.append((moment - at).total_seconds())
        assert 9 <= seconds[0] <= 11
        assert 18 <= seconds[1] <= 22
        assert 22.5 <= seconds[2] <= 27.5  # capped at 25 +-10 %
    with Store.open(db_url, clock=clock, retry_backoff=0) as store:
        t = store.create_task("no backoff")
        a = store.register_agent("b")
        c = store.claim(t.id, a.id)
        store.release(t.id, c.claim_epoch)
        assert store.claim(t.id, a.id).id == t.id


def test_not_before_delays_a_task(store: Store, clock: FakeClock) -> None:
    a = store.register_agent("a")
    later = store.create_task("later", not_before=clock.now + timedelta(seconds=30), priority=9)
    now = store.create_task("now")
    got = store.claim_next(a.id)
    assert got is not None and got.id == now.id
    assert store.claim_next(a.id) is None
    clock.advance(31)
    got = store.claim_next(a.id)
    assert got is not None and got.id == later.id
    with pytest.raises(InvalidInput, match="not_before"):
        store.create_task("x", not_before="tomorrow")  # type: ignore[arg-type]


def test_low_priority_does_not_starve(db_url: str) -> None:
    """One claim in fifo_every takes the oldest ready task whatever its priority."""
    with Store.open(db_url, fifo_every=5) as store:
        a = store.register_agent("a")
        low = store.create_task("low and old", priority=-100)
        store.create_tasks([{"title": f"urgent {i}", "priority": 100} for i in range(50)])
        order = []
        for _ in range(5):
            t = store.claim_next(a.id, start=True)
            assert t is not None
            order.append(t.id)
            store.complete(t.id, t.claim_epoch)
        assert low.id in order
    with Store.open(db_url, fifo_every=0) as store:
        a = store.register_agent("b")
        store.create_task("low again", priority=-100)
        claimed = [store.claim_next(a.id) for _ in range(10)]
        assert all(t is not None and t.priority == 100 for t in claimed)


# ---------------------------------------------------------------- wake-ups


def test_wait_for_work_returns_at_once_when_work_is_ready(store: Store) -> None:
    store.create_task("ready")
    assert store.wait_for_work(5) is True


def test_wait_for_work_times_out_without_work(store: Store) -> None:
    assert store.wait_for_work(0.2) is False
    with pytest.raises(InvalidInput, match="timeout"):
        store.wait_for_work(-1)


def test_wait_for_work_wakes_on_another_connections_insert(db_url: str) -> None:
    waiter = Store.open(db_url)
    other = Store.open(db_url)
    try:
        result: list[bool] = []
        thread = threading.Thread(target=lambda: result.append(waiter.wait_for_work(30)))
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive()  # nothing to do yet: it waits
        other.create_task("wake up")
        thread.join(timeout=30)
        assert result == [True]
    finally:
        waiter.close()
        other.close()


def test_wait_for_work_wakes_when_a_scheduled_task_is_due(db_url: str) -> None:
    from datetime import UTC, datetime

    with Store.open(db_url) as store:
        store.create_task("soon", not_before=datetime.now(UTC) + timedelta(seconds=0.5))
        assert store.wait_for_work(30) is True


def test_close_wakes_a_waiting_thread_with_a_store_error(db_url: str) -> None:
    store = Store.open(db_url)
    got: list[object] = []

    def wait() -> None:
        try:
            got.append(store.wait_for_work(30))
        except StoreError as exc:
            got.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()  # nothing to do: it waits
    started = time.monotonic()
    store.close()
    assert time.monotonic() - started < 3.0  # it did not sit out the 30 s wait
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(got) == 1 and isinstance(got[0], StoreError), got
    assert "closed while waiting" in str(got[0])
    # The waiter left on its own before its connection closed: no driver error under it.
    assert got[0].__cause__ is None, got[0].__cause__
    with pytest.raises(StoreError, match="closed"):
        store.wait_for_work(1)


def test_a_waiter_that_outlives_close_still_gets_a_store_error(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If close() stops waiting (its bound, shrunk to nothing here) and closes the
    connection under a thread still inside wait_for_work, that thread raises
    StoreError, never the driver's closed-connection error."""
    from colibri_store import _store

    closed = threading.Event()

    def stuck(conn: object, budget: float, *rest: object) -> bool:
        closed.wait(10)  # held here past close(), as a thread starved of the GIL
        conn.execute("SELECT 1")  # type: ignore[attr-defined]  # closed under it: raises
        return True

    monkeypatch.setattr(_store, "_CLOSE_WAIT", 0.0)
    monkeypatch.setattr(_store, "_watch_data_version", stuck)
    monkeypatch.setattr(_store, "_watch_notifies", stuck)
    store = Store.open(db_url)
    got: list[BaseException] = []

    def wait() -> None:
        try:
            store.wait_for_work(30)
        except BaseException as exc:  # the test looks at whatever escaped
            got.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()
    store.close()
    closed.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(got) == 1 and type(got[0]) is StoreError, got
    assert "closed while waiting" in str(got[0])
    assert got[0].__cause__ is not None  # the driver's error, kept as the cause


# ---------------------------------------------------------------- crashes


@pytest.mark.slow
def test_a_batch_is_all_or_nothing_across_a_crash(db_url: str) -> None:
    size = 500
    proc = _spawn("batch_writer", db_url, str(size))
    firsts = []
    assert proc.stdout is not None
    try:
        while len(firsts) < 5:
            line = proc.stdout.readline()
            if not line:
                break
            firsts.append(int(line))
        time.sleep(0.05)  # kill it mid-batch, most likely
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(firsts) == 5
    with Store.open(db_url) as store:
        all_tasks = store.list_tasks()
        assert len(all_tasks) % size == 0  # whole batches only
        assert {t.id for t in all_tasks} >= {f + k for f in firsts for k in range(size)}
        events = [e for e in store.audit_events() if e.verb == "create_batch"]
        assert len(events) * size == len(all_tasks)
        assert store.verify_chain().ok


@pytest.mark.slow
@pytest.mark.parametrize("batch", [10, 100])
def test_four_processes_drain_in_batches(
    db_url: str, backend: str, batch: int, tmp_path: Path
) -> None:
    total = 3000 if backend == "sqlite" else 1200
    with Store.open(db_url) as store:
        store.create_tasks([{"title": f"t{i}"} for i in range(total)])
    drain_together(db_url, "drain_batches", str(batch), tmp_path / "go", total)
    with Store.open(db_url) as store:
        assert store.counts()[TaskStatus.DONE] == total
        report = store.verify_chain()
        assert report.ok, report.problem
        assert report.events == 1 + 2 * total + 4


def test_batch_outcome_is_public() -> None:
    import colibri_store

    assert "BatchOutcome" in colibri_store.__all__


def test_retry_refuses_to_open_a_second_task_with_the_same_dedupe_key(store: Store) -> None:
    a = store.register_agent("a")
    first = store.create_task("nightly", dedupe_key="nightly")
    c = store.claim_next(a.id)
    assert c is not None
    store.fail(first.id, c.claim_epoch, error="boom")
    second = store.create_task("nightly again", dedupe_key="nightly")
    assert second.id != first.id
    before = store.export_json()
    with pytest.raises(Conflict, match=f"task {second.id} with the same dedupe key"):
        store.retry(first.id)
    assert store.export_json() == before
