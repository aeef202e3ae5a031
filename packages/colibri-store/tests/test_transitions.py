"""Every (status, action) pair: the store allows exactly what the transition table allows.

The store enforces transitions in SQL guards; ``_transitions.TASK_ACTIONS`` is the
table DESIGN.md gives. This test holds the two together (the model of h2's
state-machine tests: every state against every input).
"""

from __future__ import annotations

import pytest

from colibri_store import InvalidTransition, Store, TaskStatus
from colibri_store._transitions import TASK_ACTIONS, task_action_allowed


def _task_in(store: Store, status: TaskStatus) -> tuple[int, int]:
    agent = store.register_agent("a")
    store.register_agent("b")  # the other claimant, registered before the snapshot
    task = store.create_task("t", max_attempts=5)
    if status is TaskStatus.QUEUED:
        return task.id, 0
    claimed = store.claim(task.id, agent.id)
    if status is TaskStatus.CLAIMED:
        return task.id, claimed.claim_epoch
    if status is TaskStatus.FAILED:
        store.fail(task.id, claimed.claim_epoch)
        return task.id, claimed.claim_epoch
    store.start(task.id, claimed.claim_epoch)
    if status is TaskStatus.DONE:
        store.complete(task.id, claimed.claim_epoch)
    return task.id, claimed.claim_epoch


def _act(store: Store, action: str, task_id: int, epoch: int) -> None:
    if action == "claim":
        store.claim(task_id, next(a.id for a in store.list_agents() if a.name == "b"))
    elif action == "retry":
        store.retry(task_id)
    elif action == "expire":
        store.expire_leases(limit=10)  # acts only on claimed/started tasks
    else:
        getattr(store, action)(task_id, epoch)


@pytest.mark.parametrize("status", list(TaskStatus), ids=lambda s: s.value)
@pytest.mark.parametrize("action", [a for a in TASK_ACTIONS if a != "expire"])
def test_store_follows_the_transition_table(store: Store, status: TaskStatus, action: str) -> None:
    task_id, epoch = _task_in(store, status)
    assert store.get_task(task_id).status is status
    before = store.export_json()
    allowed = task_action_allowed(status, action)
    if allowed:
        _act(store, action, task_id, epoch)
        after = store.get_task(task_id).status
        _, target = TASK_ACTIONS[action]
        if action == "heartbeat":
            assert after is status
        else:
            assert after is target
    else:
        with pytest.raises(Exception) as info:
            _act(store, action, task_id, epoch)
        # claim answers "not claimable" (a Conflict, as the original's wire did);
        # every other refused move is an InvalidTransition naming the status.
        assert isinstance(info.value, InvalidTransition) or action == "claim"
        assert status.value in str(info.value)
        assert store.export_json() == before
