"""Hypothesis stateful test: the task lifecycle against a simple model, on both backends."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import attrs
import pytest
from conftest import FakeClock, make_url
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from colibri_store import Conflict, InvalidTransition, StaleEpoch, Store, TaskStatus

LEASE = 60.0


@attrs.define
class M:
    """The model of one task."""

    priority: int
    needs_x: bool
    max_attempts: int
    dedupe_key: str | None = None
    status: str = "queued"
    epoch: int = 0
    attempts: int = 0
    agent: int | None = None
    lease_until: float | None = None


class TaskLifecycle(RuleBasedStateMachine):
    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="colibri-stateful-"))
        self.clock = FakeClock()
        self.t = 0.0
        # Backoff and oldest-first slots have their own tests; the model orders by priority.
        self.store = Store.open(
            make_url(self.backend, self.tmp),
            clock=self.clock,
            lease_seconds=LEASE,
            retry_backoff=0,
            fifo_every=0,
        )
        self.model: dict[int, M] = {}
        self.agents: dict[int, bool] = {}  # agent id -> has capability x

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @initialize()
    def agents_exist(self) -> None:
        self.agents[self.store.register_agent("plain").id] = False
        self.agents[self.store.register_agent("with-x", ["x"]).id] = True

    def _expire_model(self, limit: int | None = None) -> None:
        overdue = sorted(
            (m.lease_until, tid)
            for tid, m in self.model.items()
            if m.status in ("claimed", "started")
            and m.lease_until is not None
            and m.lease_until < self.t
        )
        for _, tid in overdue[:limit]:
            self._requeue(self.model[tid])

    @staticmethod
    def _requeue(m: M) -> None:
        m.attempts += 1
        m.status = "failed" if m.attempts >= m.max_attempts else "queued"
        m.agent = None
        m.lease_until = None

    @rule(priority=st.integers(0, 3), needs_x=st.booleans(), max_attempts=st.integers(1, 3))
    def create(self, priority: int, needs_x: bool, max_attempts: int) -> None:
        caps = ["x"] if needs_x else []
        task = self.store.create_task(
            "t", required_capabilities=caps, priority=priority, max_attempts=max_attempts
        )
        self.model[task.id] = M(priority, needs_x, max_attempts)

    @rule(key=st.sampled_from(["k1", "k2"]), priority=st.integers(0, 3))
    def create_with_dedupe_key(self, key: str, priority: int) -> None:
        open_ = [
            tid
            for tid, m in self.model.items()
            if m.dedupe_key == key and m.status in ("queued", "claimed", "started")
        ]
        task = self.store.create_task("d", priority=priority, dedupe_key=key)
        if open_:
            assert [task.id] == open_  # the open task, not a new one
        else:
            assert task.id not in self.model
            self.model[task.id] = M(priority, False, 3, dedupe_key=key)

    @rule(which=st.integers(0, 1), start=st.booleans(), n=st.integers(1, 4))
    def claim_batch(self, which: int, start: bool, n: int) -> None:
        agent_id = sorted(self.agents)[which]
        self._expire_model(16)
        candidates = sorted(
            (-m.priority, tid)
            for tid, m in self.model.items()
            if m.status == "queued" and (self.agents[agent_id] or not m.needs_x)
        )
        got = self.store.claim_batch(agent_id, n, start=start)
        expected = [tid for _, tid in candidates[:n]]
        assert [t.id for t in got] == expected
        for task in got:
            m = self.model[task.id]
            m.status = "started" if start else "claimed"
            m.epoch += 1
            m.agent = agent_id
            m.lease_until = self.t + LEASE
            assert task.claim_epoch == m.epoch

    @precondition(lambda self: self.model)
    @rule(data=st.data(), action=st.sampled_from(["complete", "fail"]))
    def batch_finish(self, data: st.DataObject, action: str) -> None:
        chosen = data.draw(
            st.lists(st.sampled_from(sorted(self.model)), min_size=1, max_size=4, unique=True)
        )
        stale = data.draw(st.lists(st.booleans(), min_size=len(chosen), max_size=len(chosen)))
        items = []
        for tid, is_stale in zip(chosen, stale, strict=True):
            m = self.model[tid]
            items.append((tid, m.epoch + 1 if is_stale else m.epoch))
        outcome = getattr(self.store, f"{action}_many")(items)
        allowed = ("started",) if action == "complete" else ("claimed", "started")
        expected_applied = [
            tid
            for tid, epoch in items
            if epoch == self.model[tid].epoch and self.model[tid].status in allowed
        ]
        assert list(outcome.applied) == expected_applied
        assert sorted(r[0] for r in outcome.refused) == sorted(
            tid for tid, _ in items if tid not in expected_applied
        )
        for tid in expected_applied:
            m = self.model[tid]
            if action == "complete":
                m.status, m.lease_until = "done", None
            else:
                m.status, m.lease_until = "failed", None
                m.attempts += 1

    def _pick(self, data: st.DataObject) -> int:
        return data.draw(st.sampled_from(sorted(self.model)))

    @precondition(lambda self: self.model)
    @rule(
        data=st.data(),
        action=st.sampled_from(["start", "heartbeat", "complete", "fail", "release"]),
        stale=st.booleans(),
    )
    def fenced(self, data: st.DataObject, action: str, stale: bool) -> None:
        tid = self._pick(data)
        m = self.model[tid]
        epoch = m.epoch - 1 if stale and m.epoch > 0 else m.epoch
        allowed = {
            "start": ("claimed",),
            "heartbeat": ("claimed", "started"),
            "complete": ("started",),
            "fail": ("claimed", "started"),
            "release": ("claimed", "started"),
        }[action]
        try:
            getattr(self.store, action)(tid, epoch)
        except StaleEpoch:
            assert epoch != m.epoch
            return
        except InvalidTransition:
            assert epoch == m.epoch and m.status not in allowed
            return
        assert epoch == m.epoch and m.status in allowed
        if action == "start":
            m.status, m.lease_until = "started", self.t + LEASE
        elif action == "heartbeat":
            m.lease_until = self.t + LEASE
        elif action == "complete":
            m.status, m.lease_until = "done", None
        elif action == "fail":
            m.status, m.lease_until = "failed", None
            m.attempts += 1
        elif action == "release":
            self._requeue(m)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        tid = self._pick(data)
        m = self.model[tid]
        held = m.dedupe_key is not None and any(
            other.dedupe_key == m.dedupe_key and other.status in ("queued", "claimed", "started")
            for other_id, other in self.model.items()
            if other_id != tid
        )
        try:
            self.store.retry(tid)
        except InvalidTransition:
            assert m.status != "failed"
            return
        except Conflict as exc:
            assert m.status == "failed" and held, exc
            return
        assert m.status == "failed" and not held
        m.status, m.attempts, m.agent = "queued", 0, None

    @rule(seconds=st.sampled_from([1.0, 30.0, 61.0]))
    def time_passes_and_leases_expire(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.t += seconds
        self._expire_model()
        self.store.expire_leases()

    @invariant()
    def store_matches_model(self) -> None:
        tasks = {t.id: t for t in self.store.list_tasks()}
        assert set(tasks) == set(self.model)
        for tid, m in self.model.items():
            t = tasks[tid]
            assert (t.status.value, t.claim_epoch, t.attempts) == (m.status, m.epoch, m.attempts), (
                tid
            )
            if m.status in ("claimed", "started"):
                assert t.agent_id == m.agent
            # Finished exactly when done or failed, however it got there.
            assert (t.finished_at is not None) == (m.status in ("done", "failed")), tid
        counts = self.store.counts()
        assert sum(counts.values()) == len(self.model)
        assert self.store.verify_chain().ok
        assert counts[TaskStatus.DONE] == sum(m.status == "done" for m in self.model.values())


class PostgresTaskLifecycle(TaskLifecycle):
    backend = "postgresql"


TestTaskLifecycleSQLite = TaskLifecycle.TestCase
TestTaskLifecycleSQLite.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)


@pytest.mark.postgres
def test_task_lifecycle_postgresql() -> None:
    from conftest import _postgres

    _postgres()  # skips with the reason when PostgreSQL is unavailable
    runner = PostgresTaskLifecycle.TestCase()
    runner.settings = settings(max_examples=20, stateful_step_count=25, deadline=None)
    runner.runTest()
