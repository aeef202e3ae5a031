"""Errors raised by colibri-store.

Every error is a ``StoreError``; catch that one root to handle them all::

    StoreError
    ├── InvalidInput (also ValueError)        a bad argument; nothing was changed
    │   └── DependencyCycle                   the dependency would close a cycle
    ├── NotFound (also LookupError)           no such task, agent, skill or tenant
    ├── Conflict                              the operation lost to the database's state
    │   ├── StaleEpoch                        a fencing epoch from an older claim
    │   ├── AlreadyExists                     a UNIQUE name or path is taken
    │   └── AtCapacity                        the agent holds max_tasks tasks already
    ├── InvalidTransition                     the state machine forbids this move
    └── SchemaError                           the database cannot be used by this code
        └── SchemaTooNew                      the database is at a revision we do not know

Leaves carry the objects involved (``kind``, ``key``, ``current``, ``requested``...)
so callers need not parse messages. A failed operation never leaves a partial write.
"""

from __future__ import annotations

from typing import Any


class StoreError(Exception):
    """Root of every error colibri-store raises."""


class InvalidInput(StoreError, ValueError):
    """An argument is malformed; ``field`` names it. Nothing was changed."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class DependencyCycle(InvalidInput):
    """Adding the dependency would make a task (transitively) depend on itself."""

    def __init__(self, task_id: int, depends_on: int, path: list[int]) -> None:
        self.task_id = task_id
        self.depends_on = depends_on
        self.path = path
        chain = " -> ".join(str(p) for p in path)
        super().__init__(
            "depends_on",
            f"task {task_id} cannot depend on task {depends_on}: cycle {chain}",
        )


class NotFound(StoreError, LookupError):
    """No row of ``kind`` has ``key``."""

    def __init__(self, kind: str, key: Any) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"no {kind} with id {key!r}")


class Conflict(StoreError):
    """The database's current state does not allow the operation."""


class StaleEpoch(Conflict):
    """The caller's claim epoch is older than the task's: its lease was broken."""

    def __init__(self, task_id: int, given: int, current: int) -> None:
        self.task_id = task_id
        self.given = given
        self.current = current
        super().__init__(
            f"task {task_id}: claim epoch {given} is stale (current epoch {current}); "
            "the lease was broken and the task belongs to a newer claim"
        )


class AlreadyExists(Conflict):
    """A value that must be unique (``field``) is already taken."""

    def __init__(self, kind: str, field: str, value: Any) -> None:
        self.kind = kind
        self.field = field
        self.value = value
        super().__init__(f"a {kind} with {field} {value!r} already exists")


class AtCapacity(Conflict):
    """The agent already holds as many claimed or started tasks as its max_tasks."""

    def __init__(self, agent_id: int, max_tasks: int) -> None:
        self.agent_id = agent_id
        self.max_tasks = max_tasks
        super().__init__(f"agent {agent_id} already holds its max_tasks={max_tasks} tasks")


class InvalidTransition(StoreError):
    """The state machine of ``kind`` has no move from ``current`` by ``action``."""

    def __init__(self, kind: str, key: Any, current: str, action: str) -> None:
        self.kind = kind
        self.key = key
        self.current = current
        self.action = action
        super().__init__(f"{kind} {key!r} is {current}: cannot {action}")


class SchemaError(StoreError):
    """The database's schema cannot be used by this version of colibri-store."""


class SchemaTooNew(SchemaError):
    """The database was migrated by a newer colibri-store than this one."""

    def __init__(self, revision: str, known_head: str) -> None:
        self.revision = revision
        self.known_head = known_head
        super().__init__(
            f"the database is at schema revision {revision!r}, which this colibri-store "
            f"does not know (its newest is {known_head!r}); it was written by a newer "
            "colibri-store: upgrade colibri-store, or open another database"
        )
