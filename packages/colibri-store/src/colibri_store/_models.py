"""Public values: status enums and frozen records read from the store."""

from __future__ import annotations

import enum
from typing import Any

import attrs


class TaskStatus(enum.StrEnum):
    """A task's status; mirrors the CHECK constraint on ``tasks.status``."""

    QUEUED = "queued"
    CLAIMED = "claimed"
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"


class AgentStatus(enum.StrEnum):
    """An agent's presence."""

    ACTIVE = "active"
    IDLE = "idle"
    OFFLINE = "offline"


class TenantStatus(enum.StrEnum):
    """A tenant's lifecycle: provisioned -> active -> stopped -> destroyed."""

    PROVISIONED = "provisioned"
    ACTIVE = "active"
    STOPPED = "stopped"
    DESTROYED = "destroyed"


@attrs.frozen
class Usage:
    """Tokens and cost of a run; cost in micro-dollars (integers, like the original)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_micros: int = 0


@attrs.frozen
class Task:
    """One task on the board. ``claim_epoch`` is the fencing token of the current claim."""

    id: int
    title: str
    description: str | None
    status: TaskStatus
    agent_id: int | None
    required_capabilities: tuple[str, ...]
    priority: int
    attempts: int
    max_attempts: int
    claim_epoch: int
    lease_expires_at: str | None
    session_id: str | None
    result: Any
    last_error: str | None
    usage: Usage
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    depends_on: tuple[int, ...] = ()
    dedupe_key: str | None = None
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    not_before: str | None = None
    lease_seconds: float | None = None


@attrs.frozen
class Agent:
    """An agent that claims work; ``capabilities`` is what it can do."""

    id: int
    name: str
    capabilities: tuple[str, ...]
    status: AgentStatus
    host: str | None
    last_seen: str | None
    max_tasks: int | None
    created_at: str


@attrs.frozen
class Skill:
    """A named skill in the catalogue."""

    id: int
    name: str
    description: str | None
    category: str | None
    created_at: str


@attrs.frozen
class Tenant:
    """A tenant: its jail root and its Vaultwarden collection."""

    tenant_id: str
    jail_root_path: str
    collection_id: str
    status: TenantStatus
    created_at: str
    updated_at: str


@attrs.frozen
class AuditEvent:
    """One link of the hash-chained audit log."""

    seq: int
    at: str
    actor: str
    verb: str
    subject: str
    payload: Any
    prev_hash: str
    hash: str


@attrs.frozen
class ChainReport:
    """What ``verify_chain`` found. ``ok`` is False at the first bad link, ``problem`` says why."""

    ok: bool
    events: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


@attrs.frozen
class InclusionProof:
    """An RFC 6962-style Merkle audit path proving one event is in the log of ``tree_size``.

    Check it without the database with :func:`colibri_store.verify_inclusion`.
    """

    seq: int
    leaf_index: int
    tree_size: int
    event_hash: str
    path: tuple[str, ...]
    root: str


@attrs.frozen
class BatchOutcome:
    """Per-item result of a batch operation: which items were applied, which refused and why."""

    applied: tuple[int, ...]
    refused: tuple[tuple[int, str], ...]
