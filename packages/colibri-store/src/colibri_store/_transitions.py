"""The state machines, as tables (pure; the store enforces them in SQL too)."""

from __future__ import annotations

from colibri_store._models import TaskStatus, TenantStatus

Q, C, S, D, F = (
    TaskStatus.QUEUED,
    TaskStatus.CLAIMED,
    TaskStatus.STARTED,
    TaskStatus.DONE,
    TaskStatus.FAILED,
)

#: action -> (statuses it may start from, status it leads to). ``release`` and
#: ``expire`` lead to queued, or to failed once max_attempts is reached.
TASK_ACTIONS: dict[str, tuple[frozenset[TaskStatus], TaskStatus]] = {
    "claim": (frozenset({Q}), C),
    "start": (frozenset({C}), S),
    "heartbeat": (frozenset({C, S}), S),  # keeps the status it has
    "complete": (frozenset({S}), D),
    "fail": (frozenset({C, S}), F),
    "release": (frozenset({C, S}), Q),
    "expire": (frozenset({C, S}), Q),
    "retry": (frozenset({F}), Q),
}

TENANT_MOVES: dict[TenantStatus, frozenset[TenantStatus]] = {
    TenantStatus.PROVISIONED: frozenset({TenantStatus.ACTIVE}),
    TenantStatus.ACTIVE: frozenset({TenantStatus.STOPPED}),
    TenantStatus.STOPPED: frozenset({TenantStatus.ACTIVE, TenantStatus.DESTROYED}),
    TenantStatus.DESTROYED: frozenset(),
}


def task_action_allowed(current: TaskStatus, action: str) -> bool:
    """Whether ``action`` may be applied to a task in ``current``."""
    sources, _ = TASK_ACTIONS[action]
    return current in sources


def tenant_move_allowed(current: TenantStatus, new: TenantStatus) -> bool:
    """Whether a tenant may move from ``current`` to ``new``."""
    return new in TENANT_MOVES[current]
