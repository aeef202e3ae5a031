"""The store: one class over SQLAlchemy Core, SQLite or PostgreSQL.

Design notes (why it looks like this):

* Statements are built once with SQLAlchemy Core, compiled for the engine's
  dialect at open, and run on one held driver connection per thread. That keeps
  Core's portability (RETURNING, ``FOR UPDATE SKIP LOCKED``, partial indexes)
  without paying its per-call overhead on the hot path.
* SQLite write transactions begin with ``BEGIN IMMEDIATE``: the write lock is
  taken up front, so concurrent writers queue on the busy timeout instead of
  failing with "database is locked" on a read-to-write upgrade.
* Before that, a SQLite writer takes an ``flock`` on a file beside the database
  (``<db>-writer.lock``), one open file per thread. SQLite's own busy handler sleeps
  up to 100 ms between tries, so writers of several processes leave the lock idle
  while they sleep; on the flock they queue and wake within a fraction of a
  millisecond. It only orders Colibri's writers: SQLite's locking still decides.
* Every mutation appends its audit events at the end of its own transaction. On
  PostgreSQL an advisory transaction lock serialises the append, so concurrent
  transactions cannot fork the chain; it is taken as late as possible.
* Status literals are written into the SQL, not bound, so the planners can use
  the partial indexes (``status = 'queued'``).
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import functools
import getpass
import json
import operator
import os
import random
import socket
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa

from colibri_store import _audit, _migrate
from colibri_store._location import ensure_parent_dir, resolve_url
from colibri_store._models import (
    Agent,
    AgentStatus,
    AuditEvent,
    BatchOutcome,
    ChainReport,
    InclusionProof,
    Skill,
    Task,
    TaskStatus,
    Tenant,
    TenantStatus,
    Usage,
)
from colibri_store._schema import (
    TABLES_IN_ORDER,
    agents,
    audit_events,
    skills,
    task_dependencies,
    tasks,
    tenants,
)
from colibri_store._transitions import tenant_move_allowed
from colibri_store.errors import (
    AlreadyExists,
    AtCapacity,
    Conflict,
    DependencyCycle,
    InvalidInput,
    InvalidTransition,
    NotFound,
    StaleEpoch,
    StoreError,
)

MAX_TITLE = 500
MAX_TEXT = 100_000
MAX_NAME = 200
MAX_CAPABILITIES = 64
_PG_ANALYZE_AFTER = 1000  # rows created in one batch that trigger ANALYZE on PostgreSQL
_PG_LOCK_CLASS = 0x636F6C69  # "coli": the first key of our two-key advisory locks
_PG_AUDIT_LOCK = 0x61756469  # "audi": serialises appends to the audit chain
_EXPIRE_ON_CLAIM = 16  # overdue leases a claim rescues first, so no sweeper is needed
_TASK_ARGS = frozenset(
    {
        "dedupe_key",
        "concurrency_key",
        "concurrency_limit",
        "not_before",
        "lease_seconds",
        "title",
        "description",
        "required_capabilities",
        "priority",
        "max_attempts",
        "depends_on",
        "session_id",
    }
)
_TITLE_ONLY = frozenset({"title"})
_PLAIN_TASK_ROW: dict[str, Any] = {
    "description": None,
    "caps": "[]",
    "priority": 0,
    "max_attempts": 3,
    "session_id": None,
    "dedupe_key": None,
    "concurrency_key": None,
    "concurrency_limit": None,
    "not_before": None,
    "task_lease_seconds": None,
}
_SWEEP_EVERY = timedelta(seconds=1)  # ...at most this often per Store, off the hot path
_NO_TIME = timedelta(0)
_MAX_BUSY_TIMEOUT = (2**31 - 1) // 1000
_MAX_WAIT = 366 * 86400  # wait_for_work's longest timeout: finite, never NaN
_WAIT_SLICE = 0.1  # PostgreSQL's wait_for_work looks whether close() was called this often
_CLOSE_WAIT = 10.0  # close() waits at most this long for threads in wait_for_work to leave
WORK_CHANNEL = "colibri_work"
EXPORT_FORMAT = "colibri-store-export"
EXPORT_VERSION = 1

_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("colibri_actor", default=None)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


_OWN_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"  # what format_time writes, for strptime


def format_time(moment: datetime, field: str = "time") -> str:
    """The store's timestamp form: fixed-width UTC ISO-8601 with microseconds."""
    if not isinstance(moment, datetime):
        raise InvalidInput(field, f"must be a timezone-aware datetime, not {type(moment).__name__}")
    if moment.tzinfo is UTC:
        utc = moment  # the common case, from the default clock
    elif moment.tzinfo is None:
        raise InvalidInput(field, "must be timezone-aware")
    else:
        try:
            utc = moment.astimezone(UTC)
        except OverflowError:
            raise InvalidInput(field, "is out of range") from None
    if not 1000 <= utc.year <= 9999:
        # Four-digit years keep the text form fixed-width, so it sorts as time does.
        raise InvalidInput(field, f"year {utc.year} is out of range 1000..9999")
    # isoformat is faster than strftime; its "+00:00" becomes "Z".
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"


# ---------------------------------------------------------------- validation


def _check_text(field: str, value: Any, *, limit: int, required: bool) -> str | None:
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidInput(field, "must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(field, "is not valid Unicode (a lone surrogate)") from None
    if required and not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > limit:
        raise InvalidInput(field, f"is {len(value)} characters long; the limit is {limit}")
    return value


def _plain_title(title: Any) -> bool:
    """A title ``_check_text`` would pass, known with the cheapest tests (hot paths)."""
    return (
        type(title) is str
        and 0 < len(title) <= MAX_TITLE
        and title.isascii()
        and "\x00" not in title
        and bool(title.strip())
    )


def _check_int(field: str, value: Any, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidInput(field, f"must be between {low} and {high}, not {value}")
    return value


MAX_INT4 = 2**31 - 1  # ids, epochs and token counts are 32-bit INTEGER on PostgreSQL


def _check_id(field: str, value: Any) -> int:
    return _check_int(field, value, low=1, high=MAX_INT4)


def check_capabilities(value: Any, field: str = "capabilities") -> tuple[str, ...]:
    """Capabilities must be an array of non-empty strings; returns them sorted, unique."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(
        value, Sequence | set | frozenset
    ):
        raise InvalidInput(
            field,
            f"must be an array of strings, not {type(value).__name__} "
            '(for example ["freebsd", "zfs"])',
        )
    items = list(value)
    if len(items) > MAX_CAPABILITIES:
        raise InvalidInput(field, f"has {len(items)} entries; the limit is {MAX_CAPABILITIES}")
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput(field, f"entries must be strings, not {type(item).__name__}")
        if not item.strip() or len(item) > MAX_NAME or "\x00" in item:
            raise InvalidInput(
                field, f"entry {item!r} must be 1 to {MAX_NAME} printable characters"
            )
        if not item.isascii():
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInput(
                    field, f"entry {item!r} is not valid Unicode (a lone surrogate)"
                ) from None
    return tuple(sorted(set(items)))


def _parse_enum(enum_type: Any, field: str, value: Any) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum_type)
        raise InvalidInput(field, f"unknown value {value!r}; expected one of {allowed}") from None


def _usage(value: Usage | Mapping[str, Any] | None) -> Usage:
    if value is None:
        return _NO_USAGE
    if isinstance(value, Mapping):
        unknown = set(value) - set(_usage_fields())
        if unknown:
            raise InvalidInput("usage", f"unknown keys {sorted(unknown, key=repr)}")
        value = Usage(**value)
    if not isinstance(value, Usage):
        raise InvalidInput("usage", f"must be a Usage or a mapping, not {type(value).__name__}")
    for name in _usage_fields():
        high = 2**62 if name == "cost_micros" else MAX_INT4
        _check_int(f"usage.{name}", getattr(value, name), low=0, high=high)
    return value


_NO_USAGE = Usage()
_NO_USAGE_PARAMS = attrs.asdict(_NO_USAGE)


def _usage_fields() -> tuple[str, ...]:
    return (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_micros",
    )


def _result_json(value: Any) -> str | None:
    if value is None:
        return None
    try:
        text = _audit.canonical_json(value)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput("result", f"must be JSON-serialisable text: {exc}") from None
    if len(text) > 10 * MAX_TEXT:
        raise InvalidInput("result", f"is {len(text)} bytes of JSON; the limit is {10 * MAX_TEXT}")
    return text


# ---------------------------------------------------------------- statements


def _tuple_getter(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """``params -> tuple of params[name]`` in ``names`` order, at C speed where it can."""
    if len(names) > 1:
        return operator.itemgetter(*names)
    if names:
        only = names[0]
        return lambda params: (params[only],)
    return lambda params: ()


class _Compiled:
    """A Core statement compiled once for one dialect, run on a DB-API cursor."""

    __slots__ = ("_get", "defaults", "names", "positional", "sql")

    def __init__(
        self, stmt: sa.ClauseElement, dialect: sa.Dialect, *, expand: bool = False
    ) -> None:
        # ``expand`` renders IN-lists as individual parameters (ad-hoc statements only).
        compiled: Any = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": expand})
        self.sql: str = compiled.string
        self.defaults: dict[str, Any] = dict(compiled.params)
        self.positional: bool = bool(compiled.positional)
        order = compiled.positiontup if compiled.positional else list(compiled.params)
        self.names: tuple[str, ...] = tuple(order or ())
        if self.positional:
            self._inline_constants(compiled.binds)
        # Fast path: a C-level getter when the caller supplies every parameter.
        self._get: Any = _tuple_getter(self.names)

    def _inline_constants(self, binds: Mapping[str, Any]) -> None:
        """Write the integers and NULLs Core bound itself (``claim_epoch + 1``, SQLite's
        ``OFFSET 0``, ``.values(lease_expires_at=None)``) into the SQL, so a caller's
        parameters alone fill the statement (the fast path)."""
        pieces = self.sql.split("?")
        if len(pieces) != len(self.names) + 1:
            return  # a "?" outside a parameter: leave the statement as it is
        sql, kept = [pieces[0]], []
        for name, piece in zip(self.names, pieces[1:], strict=True):
            value = self.defaults.get(name)
            bind = binds.get(name)
            if bind is not None and not bind.required and (value is None or type(value) is int):
                sql.append("NULL" if value is None else str(value))
            else:
                sql.append("?")
                kept.append(name)
            sql.append(piece)
        self.sql = "".join(sql)
        self.names = tuple(kept)

    def args(self, params: Mapping[str, Any]) -> Any:
        # Literals Core bound itself (``attempts + 1``, ``LIMIT 1``) keep their values.
        if self.positional:
            try:
                return self._get(params)
            except KeyError:
                pass
        d = self.defaults
        if self.positional:
            return tuple(params[n] if n in params else d[n] for n in self.names)
        return {n: params[n] if n in params else d[n] for n in self.names}


_TASK_COLS = list(tasks.c)
_TASK_INDEX = {c.name: i for i, c in enumerate(_TASK_COLS)}
_AGENT_COLS = list(agents.c)
_AUDIT_COLS = list(audit_events.c)
_B = sa.bindparam


def _lit(*statuses: str) -> Any:
    return sa.literal_column(", ".join(f"'{s}'" for s in statuses))


def _status_is(status: str) -> Any:
    return tasks.c.status == sa.literal_column(f"'{status}'")


def _status_in(*statuses: str) -> Any:
    return sa.text(f"tasks.status IN ({', '.join(repr(s) for s in statuses)})")


def _still_status(dialect_name: str, *statuses: str) -> Any:
    """Re-check the status in an UPDATE whose rows come by id.

    On SQLite the unary ``+`` keeps the planner on the rowid instead of walking the
    status index over every queued task.
    """
    listed = ", ".join(f"'{s}'" for s in statuses)
    column = "+tasks.status" if dialect_name == "sqlite" else "tasks.status"
    return sa.text(f"{column} IN ({listed})")


def _covers_sql(dialect_name: str) -> Any:
    # The agent covers a task when every required capability is among its own.
    if dialect_name == "sqlite":
        return sa.text(
            "(tasks.required_capabilities = '[]' OR NOT EXISTS ("
            "SELECT 1 FROM json_each(tasks.required_capabilities) AS need "
            "WHERE need.value NOT IN (SELECT value FROM json_each("
            "(SELECT capabilities FROM agents WHERE agents.id = :agent_id "
            "AND json_type(agents.capabilities) = 'array')))))"
        )
    return sa.text(
        "(tasks.required_capabilities = '[]' OR "
        "CAST((SELECT capabilities FROM agents WHERE agents.id = :agent_id) AS jsonb) "
        "@> CAST(tasks.required_capabilities AS jsonb))"
    )


def _lease_over(now: Any) -> Any:
    # A claimed or started row without a lease (adopted from the original, which had
    # none) counts as overdue, or it could never be rescued.
    return sa.or_(tasks.c.lease_expires_at < now, tasks.c.lease_expires_at.is_(None))


def _requires_sql(dialect_name: str) -> Any:
    # The task lists ``:cap`` among its required capabilities.
    if dialect_name == "sqlite":
        return sa.text(
            "EXISTS (SELECT 1 FROM json_each(tasks.required_capabilities) AS need "
            "WHERE need.value = :cap)"
        )
    return sa.text(
        "CAST(tasks.required_capabilities AS jsonb) @> jsonb_build_array(CAST(:cap AS text))"
    )


def _claimable(dialect_name: str) -> tuple[Any, ...]:
    """Conditions for a queued task to be claimable by the agent ``:agent_id`` now."""
    held = tasks.alias("held")
    under_limit = sa.or_(
        tasks.c.concurrency_key.is_(None),
        sa.select(sa.func.count())
        .select_from(held)
        .where(
            held.c.concurrency_key == tasks.c.concurrency_key,
            held.c.status.in_([sa.literal_column("'claimed'"), sa.literal_column("'started'")]),
        )
        .scalar_subquery()
        < tasks.c.concurrency_limit,
    )
    due = sa.or_(tasks.c.not_before.is_(None), tasks.c.not_before <= _B("now"))
    return (_covers_sql(dialect_name), _no_open_dependency(), due, under_limit)


def _no_open_dependency() -> Any:
    upstream = tasks.alias("upstream")
    return ~sa.exists(
        sa.select(sa.literal(1))
        .select_from(
            task_dependencies.join(upstream, upstream.c.id == task_dependencies.c.depends_on)
        )
        .where(task_dependencies.c.task_id == tasks.c.id, upstream.c.status != _lit("done"))
    )


def _build_statements(
    dialect: sa.Dialect,
) -> tuple[dict[str, _Compiled], dict[str, Callable[[int], Any]]]:
    pg = dialect.name == "postgresql"
    s: dict[str, Any] = {}
    # SQLite: the hot write statements also return the audit chain's head (seq, hash),
    # which saves the transaction a statement of its own before its audit append.
    # Under BEGIN IMMEDIATE no one else can move the head before that append.
    head: tuple[Any, ...] = ()
    if not pg:
        newest = sa.select(audit_events.c.seq, audit_events.c.hash).order_by(
            audit_events.c.seq.desc()
        )
        head = (
            newest.with_only_columns(audit_events.c.seq).limit(1).scalar_subquery(),
            newest.with_only_columns(audit_events.c.hash).limit(1).scalar_subquery(),
        )
    # Every statement that returns a task's row for a Task value also returns its
    # dependencies (see _task_returned): a probe of task_dependencies by task id.
    deps = _deps_csv(dialect.name)
    now: Any = _B("now")
    new_task = sa.insert(tasks).values(
        title=_B("title"),
        description=_B("description"),
        status=sa.literal_column("'queued'"),
        created_at=now,
        updated_at=now,
        required_capabilities=_B("caps"),
        priority=_B("priority"),
        max_attempts=_B("max_attempts"),
        session_id=_B("session_id"),
        dedupe_key=_B("dedupe_key"),
        concurrency_key=_B("concurrency_key"),
        concurrency_limit=_B("concurrency_limit"),
        not_before=_B("not_before"),
        lease_seconds=_B("task_lease_seconds"),
    )
    # Only the id comes back: the rest of a new task is what we sent and the schema's
    # defaults, and RETURNING every column costs a third of a SQLite insert.
    s["insert_task"] = new_task.returning(tasks.c.id, *head)
    # create_task with a title only (SQLite's fast path): _PLAIN_TASK_ROW's values are
    # written into the SQL, so only the title and the time are bound; no RETURNING
    # (the id is the rowid; SQLite buffers RETURNING rows in a table of their own).
    s["insert_plain_task"] = sa.insert(tasks).values(
        title=_B("title"),
        description=None,
        status=sa.literal_column("'queued'"),
        created_at=now,
        updated_at=now,
        required_capabilities=sa.literal_column("'[]'"),
        priority=0,
        max_attempts=3,
        session_id=None,
        dedupe_key=None,
        concurrency_key=None,
        concurrency_limit=None,
        not_before=None,
        lease_seconds=None,
    )
    s["open_by_dedupe_key"] = sa.select(*_TASK_COLS).where(
        tasks.c.dedupe_key == _B("dedupe_key"), _status_in("queued", "claimed", "started")
    )
    s["ready_exists"] = (
        sa.select(tasks.c.id)
        .where(_status_is("queued"), *_claimable(dialect.name)[1:])
        .limit(sa.literal_column("1"))
    )
    s["next_due"] = sa.select(sa.func.min(tasks.c.not_before)).where(
        _status_is("queued"), tasks.c.not_before > _B("now")
    )
    s["active_with_key"] = (
        sa.select(sa.func.count())
        .select_from(tasks)
        .where(tasks.c.concurrency_key == _B("key"), _status_in("claimed", "started"))
    )
    s["unclaim"] = (
        sa.update(tasks)
        .where(tasks.c.id == _B("id"), tasks.c.claim_epoch == _B("epoch"))
        .values(
            status=sa.literal_column("'queued'"),
            agent_id=None,
            claim_epoch=tasks.c.claim_epoch - 1,
            lease_expires_at=None,
            started_at=None,
        )
    )
    s["set_lease"] = (
        sa.update(tasks).where(tasks.c.id == _B("id")).values(lease_expires_at=_B("lease"))
    )
    s["set_not_before"] = (
        sa.update(tasks).where(tasks.c.id == _B("id")).values(not_before=_B("not_before"))
    )
    s["insert_task_many"] = new_task
    s["insert_task_ids"] = new_task.returning(tasks.c.id)
    s["insert_title_only"] = sa.insert(tasks).values(
        title=_B("title"),
        status=sa.literal_column("'queued'"),
        created_at=_B("created"),
        updated_at=_B("updated"),
    )
    s["get_task"] = sa.select(*_TASK_COLS).where(tasks.c.id == _B("id"))
    # The task and its dependencies in one round trip, for get_task.
    s["get_task_with_deps"] = sa.select(*_TASK_COLS, deps).where(tasks.c.id == _B("id"))
    s["task_deps"] = (
        sa.select(task_dependencies.c.depends_on)
        .where(task_dependencies.c.task_id == _B("id"))
        .order_by(task_dependencies.c.depends_on)
    )
    s["insert_dep"] = sa.insert(task_dependencies).values(
        task_id=_B("task_id"), depends_on=_B("dep")
    )
    s["get_agent"] = sa.select(*_AGENT_COLS).where(agents.c.id == _B("id"))
    s["get_agent_for_update"] = s["get_agent"].with_for_update()
    s["agent_active_count"] = (
        sa.select(sa.func.count())
        .select_from(tasks)
        .where(tasks.c.agent_id == _B("agent_id"), _status_in("claimed", "started"))
    )

    # Claim: candidates in a CTE (FOR UPDATE SKIP LOCKED on PostgreSQL), then one
    # UPDATE ... RETURNING that re-checks the status, at most :n rows.
    claim_values = {
        "status": _B("new_status"),
        "agent_id": _B("agent_id"),
        "claim_epoch": tasks.c.claim_epoch + 1,
        "lease_expires_at": _B("lease"),
        "updated_at": now,
        "started_at": _B("started_at"),
    }

    def claim_batch(n: int, *, uncapped_agent: bool = False) -> Any:
        # ``uncapped_agent``: claim only if the agent exists and has no max_tasks, so a
        # SQLite claim needs no read of the agent first (see Store.claim_batch).
        cand = _claim_candidates(dialect.name, n, tasks.c.id)
        if uncapped_agent:
            cand = cand.where(
                sa.exists().where(agents.c.id == _B("agent_id"), agents.c.max_tasks.is_(None))
            )
        if pg:
            cand = cand.with_for_update(skip_locked=True)
        cand_cte = cand.cte("candidates")
        # One task on SQLite: ``id = (scalar subquery)`` instead of ``IN``, which builds
        # an ephemeral table for the candidates (a seventh of the claim's time).
        picked = (
            tasks.c.id == sa.select(cand_cte.c.id).scalar_subquery()
            if not pg and abs(n) == 1
            else tasks.c.id.in_(sa.select(cand_cte.c.id))
        )
        return (
            sa.update(tasks)
            .where(picked, _still_status(dialect.name, "queued"))
            .values(**claim_values)
            .returning(*_TASK_COLS, deps, *head)
        )

    one = sa.select(tasks.c.id).where(
        tasks.c.id == _B("id"), _status_is("queued"), *_claimable(dialect.name)
    )
    s["claim_one"] = (
        sa.update(tasks)
        .where(tasks.c.id.in_(one), _still_status(dialect.name, "queued"))
        .values(**claim_values)
        .returning(*_TASK_COLS, deps)
    )

    guard = sa.and_(tasks.c.id == _B("id"), tasks.c.claim_epoch == _B("epoch"))
    s["start"] = (
        sa.update(tasks)
        .where(guard, _status_is("claimed"))
        .values(
            status=sa.literal_column("'started'"),
            started_at=now,
            updated_at=now,
            lease_expires_at=_B("lease"),
        )
        .returning(*_TASK_COLS, deps, *head)
    )
    s["heartbeat"] = (
        sa.update(tasks)
        .where(guard, _status_in("claimed", "started"))
        .values(lease_expires_at=_B("lease"), updated_at=now)
        .returning(*_TASK_COLS, deps, *head)
    )
    s["complete"] = (
        sa.update(tasks)
        .where(guard, _status_is("started"))
        .values(
            status=sa.literal_column("'done'"),
            lease_expires_at=None,
            result=_B("result"),
            input_tokens=_B("input_tokens"),
            output_tokens=_B("output_tokens"),
            cache_read_tokens=_B("cache_read_tokens"),
            cache_write_tokens=_B("cache_write_tokens"),
            cost_micros=_B("cost_micros"),
            finished_at=now,
            updated_at=now,
        )
        .returning(*_TASK_COLS, deps, *head)
    )
    s["fail"] = (
        sa.update(tasks)
        .where(guard, _status_in("claimed", "started"))
        .values(
            status=sa.literal_column("'failed'"),
            attempts=tasks.c.attempts + 1,
            lease_expires_at=None,
            last_error=_B("error"),
            finished_at=now,
            updated_at=now,
        )
        .returning(*_TASK_COLS, deps, *head)
    )
    out_of_attempts = tasks.c.attempts + 1 >= tasks.c.max_attempts
    requeue_values = {
        "status": sa.case(
            (out_of_attempts, sa.literal_column("'failed'")), else_=sa.literal_column("'queued'")
        ),
        "attempts": tasks.c.attempts + 1,
        "agent_id": None,
        "lease_expires_at": None,
        "last_error": _B("error"),
        # A task that fails here has finished, as one failed by fail() has.
        "finished_at": sa.case((out_of_attempts, now), else_=sa.null()),
        "updated_at": now,
    }
    s["release"] = (
        sa.update(tasks)
        .where(guard, _status_in("claimed", "started"))
        .values(**requeue_values)
        .returning(*_TASK_COLS, deps, *head)
    )

    def expire(limit: int) -> Any:
        overdue = (
            sa.select(tasks.c.id)
            .where(_status_in("claimed", "started"), _lease_over(now))
            .order_by(tasks.c.lease_expires_at)
            .limit(sa.literal_column(str(int(limit))))
        )
        if pg:
            overdue = overdue.with_for_update(skip_locked=True)
        overdue_cte = overdue.cte("overdue")
        return (
            sa.update(tasks)
            .where(
                tasks.c.id.in_(sa.select(overdue_cte.c.id)),
                _status_in("claimed", "started"),
                _lease_over(now),
            )
            .values(**requeue_values)
            .returning(*_TASK_COLS, deps)
        )

    s["retry"] = (
        sa.update(tasks)
        .where(tasks.c.id == _B("id"), _status_is("failed"))
        .values(
            status=sa.literal_column("'queued'"),
            attempts=0,
            agent_id=None,
            finished_at=None,
            updated_at=now,
        )
        .returning(*_TASK_COLS, deps)
    )
    if pg:
        # The chain hash computed by the server, exactly as _audit.event_hash does it.
        s["audit_append_pg"] = sa.text(
            "INSERT INTO audit_events (seq, at, actor, verb, subject, payload, prev_hash, hash) "
            "SELECT h.seq + 1, :at, :actor, :verb, :subject, :payload, h.hash, "
            "encode(sha256(convert_to(h.hash || :pre || (h.seq + 1)::text || :post, 'UTF8')), "
            "'hex') FROM (SELECT "
            "COALESCE((SELECT seq FROM audit_events ORDER BY seq DESC LIMIT 1), 0) AS seq, "
            "COALESCE((SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1), "
            f"'{_audit.GENESIS_HASH}') AS hash) AS h"
        )
    if pg:
        s["audit_append_pg_if_touched"] = sa.text(
            str(s["audit_append_pg"])
            + " WHERE EXISTS (SELECT 1 FROM tasks WHERE tasks.id = :task_id "
            "AND tasks.xmin = pg_current_xact_id()::xid)"
        )
    if pg:
        # complete and fail in one round trip: the chain lock (and for complete the
        # NOTIFY sent at COMMIT) ride in the fenced UPDATE's RETURNING, so they are taken
        # only when it changed a row, after that row's lock, and the audit insert that
        # follows reads the head under the lock, in its own statement and snapshot.
        chain_lock = sa.func.pg_advisory_xact_lock(sa.literal_column(str(_PG_AUDIT_LOCK)))
        notify = sa.func.pg_notify(sa.literal_column(f"'{WORK_CHANNEL}'"), sa.literal_column("''"))
        s["complete_locked_pg"] = s["complete"].returning(
            sa.cast(chain_lock, sa.Text), sa.cast(notify, sa.Text)
        )
        s["fail_locked_pg"] = s["fail"].returning(sa.cast(chain_lock, sa.Text))
    compiled = {name: _Compiled(stmt, dialect) for name, stmt in s.items()}
    sized: dict[str, Callable[[int], Any]] = {"claim_batch": claim_batch, "expire": expire}
    if pg:
        sized["claim_fast_pg"] = functools.partial(_claim_fast_pg, claim_values)
    else:
        sized["claim_batch_uncapped"] = functools.partial(claim_batch, uncapped_agent=True)
    return compiled, sized


def _claim_candidates(dialect_name: str, n: int, *columns: Any) -> Any:
    """The ready tasks a claim of ``n`` takes, best first (oldest first for a negative n).

    LIMIT is a literal, not a parameter: a prepared statement with an unknown limit
    gets a generic plan that may sort every queued row. The oldest-first order is the
    slot that keeps low priorities from starving.
    """
    order = (tasks.c.id,) if n < 0 else (tasks.c.priority.desc(), tasks.c.id)
    cand = (
        sa.select(*columns)
        .where(_status_is("queued"), *_claimable(dialect_name))
        .order_by(*order)
        .limit(sa.literal_column(str(abs(int(n)))))
    )
    if n < 0:
        # Start the walk by id at the oldest queued task (found in the partial index):
        # otherwise it would step over every finished task older than that.
        oldest = tasks.alias("oldest")
        cand = cand.where(
            tasks.c.id
            >= sa.select(sa.func.min(oldest.c.id))
            .where(oldest.c.status == sa.literal_column("'queued'"))
            .scalar_subquery()
        )
    return cand


def _deps_csv(dialect_name: str) -> Any:
    """A task's dependency ids as comma-separated text (NULL for none), as a column."""
    dep_id = task_dependencies.c.depends_on
    aggregate = (
        sa.func.string_agg(sa.cast(dep_id, sa.Text), sa.literal_column("','"))
        if dialect_name == "postgresql"
        else sa.func.group_concat(dep_id)
    )
    return (
        sa.select(aggregate)
        .where(task_dependencies.c.task_id == tasks.c.id)
        .scalar_subquery()
        .label("depends_on")
    )


def _claim_fast_pg(claim_values: Mapping[str, Any], n: int) -> Any:
    """PostgreSQL: claim_batch's statement for the one-round-trip claim.

    The same candidates as ``claim_batch(n)`` (same order, same SKIP LOCKED), but
    the UPDATE claims them only when the slow path has nothing to add: the agent
    exists with no max_tasks, and no candidate has a concurrency key or its own
    lease. Otherwise it claims nothing.

    The agent row is locked FOR UPDATE here (READ COMMITTED hands the locking clause
    the row's newest committed version, so a max_tasks set meanwhile is seen), and
    once the UPDATE has run to its end (the count), the chain lock is taken, so the
    audit insert that follows reads the head under it in its own snapshot.

    Columns: ``fast`` (False: claimed nothing, take the slow path), the agent's
    ``max_tasks``, the chain lock's (empty) value, then the claimed task; on every
    row, and on one row of NULL task columns when nothing was claimed.
    """
    cand = _claim_candidates(
        "postgresql", n, tasks.c.id, tasks.c.concurrency_key, tasks.c.lease_seconds
    )
    cand_cte = cand.with_for_update(skip_locked=True).cte("candidates")
    me = (
        sa.select(agents.c.max_tasks)
        .where(agents.c.id == _B("agent_id"))
        .with_for_update()
        .cte("claimant")
    )
    plain_agent = sa.exists().where(me.c.max_tasks.is_(None))
    needs_settling = sa.exists().where(
        sa.or_(cand_cte.c.concurrency_key.is_not(None), cand_cte.c.lease_seconds.is_not(None))
    )
    flag = sa.select(
        sa.and_(plain_agent, ~needs_settling).label("fast"),
        sa.select(me.c.max_tasks).scalar_subquery().label("max_tasks"),
    ).cte("fast")
    claimed = (
        sa.update(tasks)
        .where(
            tasks.c.id.in_(sa.select(cand_cte.c.id)),
            _still_status("postgresql", "queued"),
            sa.select(flag.c.fast).scalar_subquery(),
        )
        .values(**claim_values)
        .returning(*_TASK_COLS, _deps_csv("postgresql"))
        .cte("claimed")
    )
    claimed_count = sa.select(sa.func.count().label("n")).select_from(claimed).subquery("done")
    chain_lock = sa.func.pg_advisory_xact_lock(sa.literal_column(str(_PG_AUDIT_LOCK)))
    locked = (
        sa.select(sa.cast(chain_lock, sa.Text).label("locked"))
        .select_from(claimed_count)
        .where(claimed_count.c.n > 0)
        .cte("locked")
    )
    return sa.select(flag.c.fast, flag.c.max_tasks, locked.c.locked, *claimed.c).select_from(
        flag.outerjoin(locked, sa.true()).outerjoin(claimed, sa.true())
    )


# ---------------------------------------------------------------- the store


class _ThreadConnection:
    """Marks one thread's connection; its collection closes the connection."""

    __slots__ = ("__weakref__",)


# Every Store of this process, so that a child made by fork() can make each forget
# its parent's connections (Store._after_fork_in_child) before it uses any.
_open_stores: weakref.WeakSet[Store] = weakref.WeakSet()
# What children inherited and must neither use nor close (see _after_fork_in_child).
_inherited: list[Any] = []


def _after_fork_in_child() -> None:
    for store in list(_open_stores):
        store._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _close_quietly(pooled: Any, lock_fd: int | None = None) -> None:
    with contextlib.suppress(Exception):
        pooled.close()
    if lock_fd is not None:
        with contextlib.suppress(OSError):
            os.close(lock_fd)


class _Tx:
    """An open write transaction: a cursor plus the audit events to append at commit."""

    __slots__ = ("_conn", "_cur", "_stamp", "events", "head", "now", "store")

    def __init__(self, store: Store, cur: Any, now: datetime) -> None:
        self.store = store
        self._cur = cur
        # PostgreSQL runs the transaction in pipeline mode, where a cursor's fetch may
        # see an earlier statement's result: give every statement its own cursor there.
        self._conn = None if store._sqlite else cur.connection
        self.now = now
        self._stamp: str | None = None
        self.events: list[tuple[str, str, str]] = []  # (verb, subject, payload json)
        # SQLite: the chain head (seq, hash), when a statement of this transaction
        # returned it (both None for an empty chain); None: read it before appending.
        self.head: tuple[int | None, str | None] | None = None

    @property
    def cur(self) -> Any:
        """A cursor for the next statement (a fresh one on PostgreSQL)."""
        return self._cur if self._conn is None else self._conn.cursor()

    def stamp(self) -> str:
        """``now`` in the store's text form, formatted once per transaction."""
        if self._stamp is None:
            self._stamp = format_time(self.now)
        return self._stamp

    def set_now(self, now: datetime) -> None:
        format_time(now)  # validates: aware datetimes only
        self.now = now
        self._stamp = None

    def run_sized(self, name: str, size: int, params: Mapping[str, Any]) -> Any:
        """Run a statement whose LIMIT is the literal ``size``."""
        q = self.store._sized_statement(name, size)
        cur = self.cur
        cur.execute(q.sql, q.args(params))
        return cur

    def run(self, name: str, params: Mapping[str, Any]) -> Any:
        q = self.store._q[name]
        cur = self._cur if self._conn is None else self._conn.cursor()
        cur.execute(q.sql, q.args(params))
        return cur

    def notify(self) -> None:
        """Wake ``wait_for_work`` callers when this transaction commits (PostgreSQL NOTIFY)."""
        if self._conn is not None:
            self._conn.execute(f"SELECT pg_notify('{WORK_CHANNEL}', '')")

    def audit_json(self, verb: str, subject: str, payload_json: str) -> None:
        """Record an event whose payload is already canonical JSON (hot paths)."""
        self.events.append((verb, subject, payload_json))

    def audit(self, verb: str, subject: str, payload: Mapping[str, Any]) -> None:
        self.events.append((verb, subject, _audit.canonical_json(payload)))


class _SqliteOne:
    """``with _SqliteOne(store) as cur`` on SQLite: flock, BEGIN IMMEDIATE, the block,
    COMMIT. The hot one-event operations use it as it is (their blocks append their
    own audit row, ``_audit.chain_one``); ``_SqliteWrite`` adds a ``_Tx``.

    On any error the transaction rolls back and a database refusal (a constraint)
    becomes a Conflict; the writers' lock is released either way.
    """

    __slots__ = ("cur", "store")

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> Any:
        store = self.store
        self.cur = cur = store._cursor()
        store._lock_writers()
        try:
            store._begin_immediate(cur)
        except BaseException:
            store._unlock_writers()
            raise
        return cur

    def __exit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> None:
        cur = self.cur
        try:
            if exc is None:
                try:
                    cur.execute("COMMIT")
                    return
                except BaseException as failure:
                    _rolled_back(cur, failure)
                    raise
            _rolled_back(cur, exc)
        finally:
            self.store._unlock_writers()


class _SqliteWrite(_SqliteOne):
    """``with store._write() as tx`` on SQLite: ``_SqliteOne`` with a ``_Tx``, whose
    audit events are appended just before COMMIT (any failure: rolled back, as there)."""

    __slots__ = ("tx",)

    def __enter__(self) -> _Tx:
        cur = super().__enter__()
        try:
            self.tx = tx = _Tx(self.store, cur, self.store._now())  # the caller's clock
        except BaseException as exc:
            super().__exit__(type(exc), exc, None)  # roll back, release the lock
            raise
        return tx

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        tx = self.tx
        if exc is None and tx.events:
            try:
                tx.store._append_audit_sqlite(tx)
            except BaseException as failure:
                super().__exit__(type(failure), failure, None)
                raise
        super().__exit__(exc_type, exc, tb)


class Store:
    """A durable task board. Open with :meth:`Store.open`; see the package README."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        lease_seconds: float,
        actor: str,
        clock: Clock,
        sqlite_file: Path | None,
        backoff: tuple[float, float, float] = (1.0, 300.0, 0.1),
        fifo_every: int = 10,
        busy_timeout: float = 30.0,
    ) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._q, self._sized = _build_statements(engine.dialect)
        self._sized_cache: dict[tuple[str, int], _Compiled] = {}
        self._local = threading.local()
        self._connections: list[Any] = []
        self._finalizers: list[weakref.finalize[Any, Any]] = []
        self._lock = threading.Lock()
        self._closed = False
        self.lease_seconds = lease_seconds
        self._lease_delta = (lease_seconds, timedelta(seconds=lease_seconds))
        self.actor = actor
        self._clock = clock
        self.sqlite_file = sqlite_file
        self.schema_revision = ""
        self._last_sweep: datetime | None = None
        self.backoff_base, self.backoff_cap, self.backoff_jitter = backoff
        self.fifo_every = fifo_every
        self._claims = 0
        # Agents last seen with max_tasks -> time.monotonic() until which their claims
        # skip the fast attempt (it could only fall back).
        self._slow_claimers: dict[int, float] = {}
        self._rng = random.Random()
        self._waiter: Any = None
        self._waiting = 0  # threads inside wait_for_work, which close() wakes and awaits
        self._waiters_gone = threading.Condition(self._lock)
        self._busy_timeout = busy_timeout
        self._tasks_autoincrement: bool | None = None
        _open_stores.add(self)  # for _after_fork_in_child

    # ------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        lease_seconds: float = 300.0,
        busy_timeout: float = 30.0,
        actor: str | None = None,
        clock: Clock | None = None,
        retry_backoff: float = 1.0,
        retry_backoff_cap: float = 300.0,
        retry_jitter: float = 0.1,
        fifo_every: int = 10,
    ) -> Store:
        """Open (creating and migrating as needed) the store at ``url``.

        ``url`` is any SQLAlchemy URL (``sqlite:///path``,
        ``postgresql+psycopg://user@/db?host=/socket/dir``). Without one:
        ``COLIBRI_DB_URL``, then ``COLIBRI_DB_PATH``, then the platform default path.
        ``lease_seconds`` is the default claim lease; ``busy_timeout`` how long a
        SQLite writer waits for the lock; ``actor`` names who acts in the audit log
        (default ``user@host``); ``clock`` returns aware datetimes (tests inject one).
        A released or expired task waits ``retry_backoff * 2**(attempts-1)`` seconds
        (at most ``retry_backoff_cap``, spread by +-``retry_jitter``) before it is
        claimable again; 0 disables the backoff. One claim in ``fifo_every`` takes
        the oldest ready task whatever its priority, so low priorities never starve.
        """
        _check_lease(lease_seconds)
        for name, value in (
            ("retry_backoff", retry_backoff),
            ("retry_backoff_cap", retry_backoff_cap),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value <= _MAX_WAIT
            ):
                # A huge one crashed the first release (OverflowError); NaN is no delay.
                raise InvalidInput(
                    name, f"must be a number of seconds from 0 to {_MAX_WAIT}, not {value!r}"
                )
        if not (isinstance(retry_jitter, int | float) and 0 <= retry_jitter < 1):
            raise InvalidInput("retry_jitter", "must be a fraction in [0, 1)")
        _check_int("fifo_every", fifo_every, low=0, high=1_000_000)
        if actor:  # a falsy actor takes the default, as before
            _check_text("actor", actor, limit=MAX_NAME, required=True)
        if clock is not None and not callable(clock):
            raise InvalidInput("clock", f"must be a callable returning datetimes, not {clock!r}")
        if not (isinstance(busy_timeout, int | float) and 0 < busy_timeout <= _MAX_BUSY_TIMEOUT):
            # SQLite takes it as a C int of milliseconds.
            raise InvalidInput(
                "busy_timeout", f"must be a positive number of seconds, at most {_MAX_BUSY_TIMEOUT}"
            )
        resolved = resolve_url(url)
        try:
            parsed = sa.make_url(resolved)
        except sa.exc.ArgumentError as exc:
            raise InvalidInput("url", f"not a database URL: {exc}") from None
        sqlite_file: Path | None = None
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database in ("", ":memory:") or database.startswith("file:"):
                raise InvalidInput(
                    "url", "an in-memory SQLite store is not durable; give a file path"
                )
            _check_text("url", database, limit=4096, required=True)  # NUL, lone surrogates
            sqlite_file = Path(database).absolute()
            ensure_parent_dir(sqlite_file)
            engine = sa.create_engine(
                parsed.set(drivername="sqlite+pysqlite"),
                connect_args={"timeout": busy_timeout, "check_same_thread": False},
                poolclass=sa.pool.NullPool,
            )
            _install_sqlite_hooks(engine, busy_timeout)
        elif parsed.get_backend_name() == "postgresql":
            if parsed.drivername in ("postgresql", "postgres"):
                parsed = parsed.set(drivername="postgresql+psycopg")
            engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool)
        else:
            raise InvalidInput(
                "url",
                f"unsupported database {parsed.get_backend_name()!r}; use sqlite or postgresql",
            )
        store = cls(
            engine,
            lease_seconds=lease_seconds,
            actor=actor or _default_actor(),
            clock=clock or _utcnow,
            sqlite_file=sqlite_file,
            backoff=(float(retry_backoff), float(retry_backoff_cap), float(retry_jitter)),
            fifo_every=fifo_every,
            busy_timeout=float(busy_timeout),
        )
        try:
            store.schema_revision = _migrate.upgrade(engine, sqlite_file)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise StoreError(f"cannot open the database at {store.url}: {exc.orig}") from None
        except BaseException:
            engine.dispose()
            raise
        return store

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Close every connection this store opened.

        A thread inside ``wait_for_work`` is woken (it raises ``StoreError``) and
        has left before its connection closes. Other threads should have finished
        their calls: their connections are closed too.
        """
        with self._lock:
            self._closed = True
            # Waiters look at _closed every few milliseconds (PostgreSQL: every
            # _WAIT_SLICE); never close the waiter's connection under a waiting thread.
            # The bound is generous (a loaded machine can hold a thread off the GIL for
            # a long while); a waiter that outlives it still raises StoreError.
            self._waiters_gone.wait_for(lambda: self._waiting == 0, timeout=_CLOSE_WAIT)
            self._waiter = None  # its pooled wrapper is in _connections
            for conn in self._connections:
                _close_quietly(conn)
            self._connections.clear()
            for finalizer in self._finalizers:
                finalizer()  # closes that thread's connection now, once
            self._finalizers.clear()
        self._local = threading.local()
        self._engine.dispose()

    def _after_fork_in_child(self) -> None:
        """In a child made by ``fork()``: forget the parent's connections, unused and
        unclosed, and open the child's own on first use.

        Used by both processes, a PostgreSQL connection would interleave two
        conversations on one socket, and closing it (at the child's exit, say) would end
        the parent's session; a SQLite connection must not cross a fork (its locks are
        per process), and the writers' lock file descriptions are shared. So the
        parent's connections are kept referenced here, never closed; the child closes
        only its copies of the lock descriptors, which releases nothing of the
        parent's. Locks other threads held at the fork are made anew.
        """
        for finalizer in self._finalizers:
            detached = finalizer.detach()
            if detached is not None:
                _, _, (pooled, lock_fd), _ = detached
                _inherited.append(pooled)
                if lock_fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(lock_fd)
        _inherited.extend(self._connections)
        _inherited.append(self._local)
        self._finalizers = []
        self._connections = []
        self._waiter = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._waiting = 0
        self._waiters_gone = threading.Condition(self._lock)
        self._rng = random.Random()  # not the parent's jitter sequence
        self._engine.dispose(close=False)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.url}>"

    @contextlib.contextmanager
    def acting_as(self, actor: str) -> Iterator[None]:
        """Record ``actor`` as the actor of mutations made inside the block (this context)."""
        _check_text("actor", actor, limit=MAX_NAME, required=True)
        token = _actor.set(actor)
        try:
            yield
        finally:
            _actor.reset(token)

    # ------------------------------------------------------------ plumbing

    def _conn(self) -> Any:
        conn: Any = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("the store is closed")
            pooled = self._engine.raw_connection()
            conn = pooled.driver_connection
            if not self._sqlite:
                conn.autocommit = True  # we send BEGIN/COMMIT ourselves
            # The connection lives as long as the thread's local slot: when the thread
            # ends, the holder is collected and the connection closed (or at close()).
            holder = _ThreadConnection()
            lock_fd = self._open_writer_lock() if self._sqlite else None
            self._local.holder = holder
            self._local.conn = conn
            self._local.cur = conn.cursor()
            self._local.lock_fd = lock_fd
            # SQLite: (data_version, total_changes, seq, hash) after this connection's
            # last plain create: see _create_plain_sqlite.
            self._local.head = None
            with self._lock:
                self._finalizers = [f for f in self._finalizers if f.alive]
                self._finalizers.append(weakref.finalize(holder, _close_quietly, pooled, lock_fd))
        return conn

    def _open_writer_lock(self) -> int | None:
        """This thread's own open file of the writers' lock (flock is per open file)."""
        assert self.sqlite_file is not None
        path = self.sqlite_file.with_name(self.sqlite_file.name + "-writer.lock")
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return None  # a read-only directory, say: SQLite's busy handler alone orders writers

    def _lock_writers(self) -> None:
        """Queue on the writers' flock (see the module notes), within busy_timeout."""
        fd = self._local.lock_fd
        if fd is None:
            return
        pause, deadline = 0.00005, 0.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            except OSError:
                self._local.lock_fd = None  # no flock here (ENOLCK on some network file systems)
                os.close(fd)
                return
            now = time.monotonic()
            if not deadline:
                deadline = now + self._busy_timeout
            elif now > deadline:
                raise StoreError(
                    f"another Colibri writer held the database for {self._busy_timeout:g} s "
                    "(busy_timeout); is a process stuck holding a transaction?"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.001)

    def _unlock_writers(self) -> None:
        fd = self._local.lock_fd
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _cursor(self) -> Any:
        self._conn()
        return self._local.cur

    def _sized_statement(self, name: str, size: int) -> _Compiled:
        key = (name, size)
        q = self._sized_cache.get(key)
        if q is None:
            if len(self._sized_cache) > 4096:
                self._sized_cache.clear()
            q = _Compiled(self._sized[name](size), self._engine.dialect)
            if self._sqlite and name.startswith("claim_batch") and size < 0:
                q.sql = _pin_oldest_first_index(q.sql)
            self._sized_cache[key] = q
        return q

    def _now(self) -> datetime:
        return self._clock()

    def _write(self) -> contextlib.AbstractContextManager[_Tx]:
        """A write transaction; its audit events are appended just before COMMIT."""
        if self._sqlite:
            return _SqliteWrite(self)  # a plain class: the hot path on SQLite
        return self._write_pg()

    @contextlib.contextmanager
    def _write_pg(self) -> Iterator[_Tx]:
        cur = self._cursor()
        # Pipeline mode, so statements whose results we do not read (BEGIN, the chain
        # lock, the audit insert, COMMIT) share round trips with the others.
        try:
            with self._conn().pipeline():
                cur.execute("BEGIN")
                tx = _Tx(self, cur, self._now())
                yield tx
                if tx.events:
                    self._append_audit(tx)
                cur.execute("COMMIT")
        except BaseException as exc:
            _rolled_back(cur, exc)
            raise

    def _begin_immediate(self, cur: Any) -> None:
        """Take SQLite's write lock; the connection's busy handler waits for it."""
        try:
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            raise StoreError(
                f"the database stayed locked by another writer for {self._busy_timeout:g} s "
                "(busy_timeout); is a process stuck holding a transaction?"
            ) from None

    @contextlib.contextmanager
    def _read(self) -> Iterator[Any]:
        """A consistent multi-statement read (single statements need no transaction)."""
        cur = self._cursor()
        cur.execute("BEGIN" if self._sqlite else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield cur
        finally:
            with contextlib.suppress(Exception):
                cur.execute("COMMIT")

    def _fetch(self, name: str, params: Mapping[str, Any]) -> list[Any]:
        q = self._q[name]
        cur = self._cursor()
        cur.execute(q.sql, q.args(params))
        return list(cur.fetchall())

    def _exec_core(self, stmt: Any, cur: Any | None = None) -> list[Any]:
        """Run an ad-hoc Core statement (not on the hot path)."""
        compiled = _Compiled(stmt, self._engine.dialect, expand=True)
        cursor = cur if cur is not None else self._cursor()
        cursor.execute(compiled.sql, compiled.args(compiled.defaults))
        if isinstance(stmt, sa.Select | sa.TextClause) or getattr(stmt, "_returning", None):
            return list(cursor.fetchall())
        return []

    def _append_audit(self, tx: _Tx) -> None:
        if self._sqlite:
            self._append_audit_sqlite(tx)
        else:
            self._append_audit_pg(tx)

    def _append_audit_sqlite(self, tx: _Tx) -> None:
        # Under BEGIN IMMEDIATE no one else appends: read the head, chain on from it.
        cur = tx._cur
        if tx.head is None:
            found = cur.execute(_AUDIT_HEAD_SQL).fetchall()
            tx.head = found[0] if found else (None, None)
        seq, prev = tx.head
        if seq is None or prev is None:
            seq, prev = 0, _audit.GENESIS_HASH
        rows = _audit.chain(seq, prev, tx.stamp(), _actor.get() or self.actor, tx.events)
        if len(rows) == 1:
            cur.execute(_AUDIT_INSERT_ONE, rows[0])
            return
        step = _AUDIT_ROWS_PER_INSERT
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            cur.execute(_audit_insert_sql(len(chunk)), [v for r in chunk for v in r])

    def _append_audit_pg(self, tx: _Tx) -> None:
        """PostgreSQL: append the transaction's events with no round trip of ours.

        The chain lock, then one statement in which the server reads the head and
        chains every hash (exactly ``_audit.event_hash``), then COMMIT: all pipelined,
        so the lock is held for the server's work only, never for a client round trip.
        """
        at = tx.stamp()
        actor = _actor.get() or self.actor
        cur = tx.cur
        cur.execute(f"SELECT pg_advisory_xact_lock({_PG_AUDIT_LOCK})")
        parts = {"at": at, "actor": actor}
        if len(tx.events) == 1:
            verb, subject, payload = tx.events[0]
            pre, post = _audit.body_parts(at, actor, verb, subject, payload)
            tx.run(
                "audit_append_pg",
                {
                    **parts,
                    "verb": verb,
                    "subject": subject,
                    "payload": payload,
                    "pre": pre,
                    "post": post,
                },
            )
            return
        verbs, subjects, payloads, pres, posts = [], [], [], [], []
        for verb, subject, payload in tx.events:
            pre, post = _audit.body_parts(at, actor, verb, subject, payload)
            verbs.append(verb)
            subjects.append(subject)
            payloads.append(payload)
            pres.append(pre)
            posts.append(post)
        # JSON text parameters, each taken as jsonb once per statement (the cost is
        # linear in the events: measured up to 4000).
        tx.cur.execute(
            _PG_AUDIT_APPEND_MANY,
            {
                **parts,
                "n": len(verbs),
                "verb": _json_array(verbs),
                "subject": _json_array(subjects),
                "payload": _json_array(payloads),
                "pre": _json_array(pres),
                "post": _json_array(posts),
            },
        )

    def _lease_until(self, now: datetime, lease_seconds: float | None) -> str:
        try:
            if lease_seconds is None:
                seconds = self.lease_seconds
                if self._lease_delta[0] != seconds:  # lease_seconds is a public attribute
                    self._lease_delta = (seconds, timedelta(seconds=seconds))
                return format_time(now + self._lease_delta[1])
            return format_time(now + timedelta(seconds=_check_lease(lease_seconds)))
        except OverflowError:  # past datetime.max (year 9999): a typed refusal instead
            raise InvalidInput("lease_seconds", f"the lease from {now} ends after 9999") from None

    # ------------------------------------------------------------ tasks

    def create_task(
        self,
        title: str,
        description: str | None = None,
        *,
        required_capabilities: Iterable[str] = (),
        priority: int = 0,
        max_attempts: int = 3,
        depends_on: Iterable[int] = (),
        session_id: str | None = None,
        dedupe_key: str | None = None,
        concurrency_key: str | None = None,
        concurrency_limit: int | None = None,
        not_before: datetime | None = None,
        lease_seconds: float | None = None,
    ) -> Task:
        """Queue a new task and return it. Durable when this returns.

        ``required_capabilities``: what an agent must cover to claim it.
        ``priority``: higher is claimed first (then older first).
        ``max_attempts``: attempts before a released or expired task fails.
        ``depends_on``: ids of tasks that must be ``done`` before this one is ready.
        ``dedupe_key``: while a task with this key is queued, claimed or started,
        creating another returns that task instead (an idempotent intake).
        ``concurrency_key``/``concurrency_limit``: at most ``limit`` tasks sharing the
        key are claimed or started at once (default limit 1).
        ``not_before``: not claimable before this moment. ``lease_seconds``: this
        task's lease, instead of the store's default.
        """
        if (
            _plain_title(title)
            and description is None
            and required_capabilities == ()
            and priority == 0
            and type(priority) is int
            and max_attempts == 3
            and type(max_attempts) is int
            and depends_on == ()
            and session_id is None
            and dedupe_key is None
            and concurrency_key is None
            and concurrency_limit is None
            and not_before is None
            and lease_seconds is None
        ):
            # The common call, a title and defaults: the row needs no further checks.
            if self._sqlite:
                return self._create_plain_sqlite(title)
            with self._write() as tx:
                return self._insert_task(tx, {**_PLAIN_TASK_ROW, "title": title}, ())
        row = self._task_params(
            title,
            description,
            required_capabilities,
            priority,
            max_attempts,
            session_id,
            dedupe_key,
            concurrency_key,
            concurrency_limit,
            not_before,
            lease_seconds,
        )
        deps = self._check_dep_ids(depends_on)
        if row["dedupe_key"] is None:
            with self._write() as tx:
                return self._insert_task(tx, row, deps)
        for attempt in range(3):
            try:
                with self._write() as tx:
                    if row["dedupe_key"] is not None:
                        found = tx.run("open_by_dedupe_key", row).fetchall()
                        if found:
                            held = tx.run("task_deps", {"id": found[0][0]}).fetchall()
                            return _task(found[0], tuple(r[0] for r in held))
                    return self._insert_task(tx, row, deps)
            except Conflict:
                # Another process inserted the same dedupe key between our look and our
                # insert (PostgreSQL): look again, in a new transaction.
                if row["dedupe_key"] is None or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def create_tasks(self, items: Iterable[Mapping[str, Any]]) -> list[int]:
        """Queue many tasks in one transaction; each item takes ``create_task``'s arguments.

        All or nothing: one bad item refuses the whole batch. Returns the new ids in order.
        """
        if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
            raise InvalidInput("items", "must be a list of mappings of create_task arguments")
        prepared: list[tuple[dict[str, Any], tuple[int, ...]]] = []
        plain = _PLAIN_TASK_ROW
        title_only = True
        for index, item in enumerate(items):
            if type(item) is not dict and not isinstance(item, Mapping):
                raise InvalidInput(f"items[{index}]", "must be a mapping of create_task arguments")
            if item.keys() == _TITLE_ONLY:
                # The common bulk case: only a title; everything else takes its default.
                title = item["title"]
                if _plain_title(title):
                    prepared.append(({**plain, "title": title}, ()))
                    continue
            title_only = False
            if not item.keys() <= _TASK_ARGS:
                unknown = sorted(set(item) - _TASK_ARGS, key=repr)
                raise InvalidInput(f"items[{index}]", f"unknown keys {unknown}")
            try:
                row = self._task_params(
                    item.get("title"),
                    item.get("description"),
                    item.get("required_capabilities", ()),
                    item.get("priority", 0),
                    item.get("max_attempts", 3),
                    item.get("session_id"),
                    item.get("dedupe_key"),
                    item.get("concurrency_key"),
                    item.get("concurrency_limit"),
                    item.get("not_before"),
                    item.get("lease_seconds"),
                )
                deps = self._check_dep_ids(item.get("depends_on", ()))
            except InvalidInput as exc:
                raise InvalidInput(
                    f"items[{index}].{exc.field}", str(exc).split(": ", 1)[1]
                ) from None
            prepared.append((row, deps))
        if not prepared:
            raise InvalidInput("items", "is empty; give at least one task")
        deduped = any(row["dedupe_key"] is not None for row, _ in prepared)
        for attempt in range(3):
            try:
                with self._write() as tx:
                    if deduped:
                        ids = self._insert_tasks_deduped(tx, prepared)
                    else:
                        ids = self._insert_tasks(tx, prepared, title_only)
                break
            except Conflict:
                # Another writer opened a task with one of our dedupe keys between our
                # look and our insert (PostgreSQL): the whole batch looks again.
                if not deduped or attempt == 2:
                    raise
        if not self._sqlite and len(prepared) >= _PG_ANALYZE_AFTER:
            # A bulk load leaves the planner's row estimates stale until autovacuum
            # gets round to it; meanwhile it would sort every queued task per claim.
            self._cursor().execute("ANALYZE tasks")
        return ids

    def _insert_tasks_deduped(
        self, tx: _Tx, prepared: list[tuple[dict[str, Any], tuple[int, ...]]]
    ) -> list[int]:
        ids = []
        for row, deps in prepared:
            found = (
                tx.run("open_by_dedupe_key", row).fetchall()
                if row["dedupe_key"] is not None
                else []
            )
            ids.append(found[0][0] if found else self._insert_task(tx, row, deps).id)
        return ids

    def _task_params(
        self,
        title: Any,
        description: Any,
        required_capabilities: Any,
        priority: Any,
        max_attempts: Any,
        session_id: Any,
        dedupe_key: Any = None,
        concurrency_key: Any = None,
        concurrency_limit: Any = None,
        not_before: Any = None,
        lease_seconds: Any = None,
    ) -> dict[str, Any]:
        if isinstance(concurrency_key, str) and not concurrency_key:
            concurrency_key = None  # an empty key is no key (as below), so a limit needs one
        if concurrency_limit is not None:
            _check_int("concurrency_limit", concurrency_limit, low=1, high=1_000_000)
            if concurrency_key is None:
                raise InvalidInput("concurrency_limit", "needs a concurrency_key")
        elif concurrency_key is not None:
            concurrency_limit = 1
        if not_before is not None and not isinstance(not_before, datetime):
            raise InvalidInput("not_before", "must be a timezone-aware datetime")
        if required_capabilities == () or required_capabilities == []:
            caps_json = "[]"
        else:
            caps = check_capabilities(required_capabilities, "required_capabilities")
            caps_json = json.dumps(list(caps), separators=(",", ":"))
        return {
            "title": _check_text("title", title, limit=MAX_TITLE, required=True),
            "description": _check_text("description", description, limit=MAX_TEXT, required=False),
            "caps": caps_json,
            "priority": _check_int("priority", priority, low=-1_000_000, high=1_000_000),
            "max_attempts": _check_int("max_attempts", max_attempts, low=1, high=1000),
            "session_id": _check_text("session_id", session_id, limit=MAX_NAME, required=False),
            "dedupe_key": _check_text("dedupe_key", dedupe_key, limit=MAX_NAME, required=False)
            or None,
            "concurrency_key": _check_text(
                "concurrency_key", concurrency_key, limit=MAX_NAME, required=False
            )
            or None,
            "concurrency_limit": concurrency_limit,
            "not_before": format_time(not_before, "not_before") if not_before is not None else None,
            "task_lease_seconds": None if lease_seconds is None else _check_lease(lease_seconds),
        }

    @staticmethod
    def _check_dep_ids(depends_on: Any) -> tuple[int, ...]:
        if depends_on == () or depends_on == []:
            return ()
        if isinstance(depends_on, str | bytes) or not isinstance(depends_on, Iterable):
            raise InvalidInput("depends_on", "must be a list of task ids")
        return tuple(sorted({_check_id("depends_on", d) for d in depends_on}))

    def _create_plain_sqlite(self, title: str) -> Task:
        """SQLite: create_task with a title and defaults, in the fewest steps.

        The same rows, event and Task as ``_insert_task`` with ``_PLAIN_TASK_ROW``.
        The insert returns nothing (the id is the rowid): the chain head comes from
        this connection's memory of its last append when nothing was written since,
        by this connection (``total_changes`` unmoved) or by any other
        (``PRAGMA data_version`` unmoved; we hold the write lock, so none can write
        now); otherwise it is read. A stale head could not fork the chain: its next
        ``seq`` would already be taken, and the insert would be refused.
        """
        q = self._q["insert_plain_task"]
        local = self._local
        with _SqliteOne(self) as cur:
            now = format_time(self._now())  # the clock is the caller's code: checked
            conn = local.conn
            version = cur.execute("PRAGMA data_version").fetchall()[0][0]
            known = local.head
            if known is not None and known[0] == version and known[1] == conn.total_changes:
                seq, prev = known[2], known[3]
            else:
                found = cur.execute(_AUDIT_HEAD_SQL).fetchall()
                seq, prev = found[0] if found else (None, None)
            cur.execute(q.sql, q.args({"title": title, "now": now}))
            task_id = cur.lastrowid
            subject = f"task:{task_id}"
            payload = f'{{"priority":0,"title":{_audit.json_str(title)}}}'
            actor = _actor.get() or self.actor
            event = _audit.chain_one(seq, prev, now, actor, "create", subject, payload)
            cur.execute(_AUDIT_INSERT_ONE, event)
            changes = conn.total_changes
        local.head = (version, changes, event[0], event[7])  # committed: remember it
        return _queued_task(task_id, title, None, (), 0, 3, None, now, ())

    def _insert_task(self, tx: _Tx, row: dict[str, Any], deps: tuple[int, ...]) -> Task:
        if deps:
            self._check_deps_exist(tx, deps)
        row["now"] = now = tx.stamp()
        returned = tx.run("insert_task", row).fetchall()[0]
        task_id = returned[0]
        if self._sqlite:
            tx.head = (returned[1], returned[2])
        caps = row["caps"]
        task = _queued_task(
            task_id,
            row["title"],
            row["description"],
            () if caps == "[]" else tuple(json.loads(caps)),
            row["priority"],
            row["max_attempts"],
            row["session_id"],
            now,
            deps,
            row["dedupe_key"],
            row["concurrency_key"],
            row["concurrency_limit"],
            row["not_before"],
            row["task_lease_seconds"],
        )
        for dep in deps:
            tx.run("insert_dep", {"task_id": task_id, "dep": dep})
        if row["caps"] == "[]" and not deps:
            # The canonical JSON of the common payload, built directly (sorted keys).
            payload_json = f'{{"priority":{row["priority"]},"title":{_audit.json_str(row["title"])}'
            tx.audit_json("create", f"task:{task_id}", payload_json + "}")
        else:
            payload: dict[str, Any] = {"title": row["title"], "priority": row["priority"]}
            if row["caps"] != "[]":
                payload["required_capabilities"] = json.loads(row["caps"])
            if deps:
                payload["depends_on"] = list(deps)
            tx.audit("create", f"task:{task_id}", payload)
        tx.notify()
        return task

    def _autoincrement_tasks(self, tx: _Tx) -> bool:
        if self._tasks_autoincrement is None:
            sql = tx.cur.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tasks'"
            ).fetchone()[0]
            self._tasks_autoincrement = "AUTOINCREMENT" in sql.upper()
        return self._tasks_autoincrement

    def _check_deps_exist(self, tx: _Tx, deps: Iterable[int]) -> None:
        for dep in deps:
            if not tx.run("get_task", {"id": dep}).fetchall():
                raise NotFound("task", dep)

    def _insert_tasks(
        self,
        tx: _Tx,
        prepared: list[tuple[dict[str, Any], tuple[int, ...]]],
        title_only: bool = False,
    ) -> list[int]:
        """Many tasks in one go: one executemany, one audit event for the batch."""
        self._check_deps_exist(tx, sorted({d for _, deps in prepared for d in deps}))
        now = tx.stamp()
        rows: list[Any]
        if self._sqlite and title_only:
            # Title-only items (the bulk-load case): bind the title alone and let the
            # columns' defaults fill the rest, as a hand-written INSERT would.
            q = self._q["insert_title_only"]
            rows = [(row["title"], now, now) for row, _ in prepared]
        else:
            q = self._q["insert_task_many"]
            rows = []
            for row, _ in prepared:
                row["now"] = now
                rows.append(q.args(row))
        if self._sqlite:
            # Under BEGIN IMMEDIATE nobody else inserts: SQLite gives each new row
            # max(id) + 1, so the ids are the next n integers (checked below).
            base = tx.cur.execute("SELECT COALESCE(MAX(id), 0) FROM tasks").fetchone()[0]
            if self._autoincrement_tasks(tx):
                # An adopted AUTOINCREMENT table never reuses ids: it continues after
                # the highest id it ever gave, which may be above MAX(id).
                seq = tx.cur.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'tasks'"
                ).fetchall()
                base = max(base, seq[0][0] if seq else 0)
            tx.cur.executemany(q.sql, rows)
            ids = list(range(base + 1, base + len(rows) + 1))
            top = tx.cur.execute("SELECT MAX(id) FROM tasks").fetchone()[0]
            if top != ids[-1]:
                raise StoreError(f"batch insert gave ids up to {top}, expected {ids[-1]}")
        else:
            cur = tx.cur
            cur.executemany(self._q["insert_task_ids"].sql, rows, returning=True)
            ids = []
            while True:
                ids.append(cur.fetchone()[0])
                if not cur.nextset():
                    break
        dep_rows = [
            {"task_id": tid, "dep": d}
            for tid, (_, deps) in zip(ids, prepared, strict=True)
            for d in deps
        ]
        if dep_rows:
            qd = self._q["insert_dep"]
            tx.cur.executemany(qd.sql, [qd.args(r) for r in dep_rows])
        tx.audit(
            "create_batch",
            f"task:{ids[0]}" if len(ids) == 1 else f"tasks:{ids[0]}..{ids[-1]}",
            {"ids": ids, "titles": [row["title"] for row, _ in prepared]},
        )
        tx.notify()
        return ids

    def add_dependency(self, task_id: int, depends_on: int) -> Task:
        """Make ``task_id`` wait for ``depends_on``; refuses a cycle (DependencyCycle)."""
        _check_id("task_id", task_id)
        _check_id("depends_on", depends_on)
        with self._write() as tx:
            if not self._sqlite:
                # Two concurrent edges could each pass the cycle check; one at a time.
                tx.cur.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK_CLASS}, 1)")
            for tid in (task_id, depends_on):
                if not tx.run("get_task", {"id": tid}).fetchall():
                    raise NotFound("task", tid)
            path = self._path_between(tx, depends_on, task_id)
            if path is not None:
                raise DependencyCycle(task_id, depends_on, [task_id, *path])
            exists = self._exec_core(
                sa.select(sa.literal(1)).where(
                    task_dependencies.c.task_id == task_id,
                    task_dependencies.c.depends_on == depends_on,
                ),
                tx.cur,
            )
            if not exists:
                tx.run("insert_dep", {"task_id": task_id, "dep": depends_on})
                tx.audit("depend", f"task:{task_id}", {"depends_on": depends_on})
        return self.get_task(task_id)

    def _path_between(self, tx: _Tx, start: int, goal: int) -> list[int] | None:
        """A dependency path start -> ... -> goal, if one exists (breadth-first)."""
        if start == goal:
            return [start]
        parents: dict[int, int] = {start: start}
        frontier = [start]
        while frontier:
            rows = self._exec_core(
                sa.select(task_dependencies.c.task_id, task_dependencies.c.depends_on).where(
                    task_dependencies.c.task_id.in_(frontier)
                ),
                tx.cur,
            )
            frontier = []
            for node, nxt in rows:
                if nxt in parents:
                    continue
                parents[nxt] = node
                if nxt == goal:
                    path = [nxt]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return list(reversed(path))
                frontier.append(nxt)
        return None

    def get_task(self, task_id: int) -> Task:
        """The task with ``task_id`` (NotFound if none)."""
        _check_id("task_id", task_id)
        rows = self._fetch("get_task_with_deps", {"id": task_id})
        if not rows:
            raise NotFound("task", task_id)
        return _task_returned(rows[0])

    def list_tasks(
        self,
        status: TaskStatus | str | None = None,
        capability: str | None = None,
        ready: bool | None = None,
        *,
        agent_id: int | None = None,
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[Task]:
        """Tasks by id, filtered by ``status``, a required ``capability``, readiness, agent.

        ``ready=True`` keeps queued tasks with no open dependency; ``ready=False``
        the others. ``limit`` and ``after_id`` page through large boards.
        """
        _check_int("after_id", after_id, low=0, high=MAX_INT4)
        stmt = sa.select(*_TASK_COLS).where(tasks.c.id > after_id).order_by(tasks.c.id)
        if status is not None:
            stmt = stmt.where(tasks.c.status == _parse_enum(TaskStatus, "status", status).value)
        if capability is not None:
            _check_text("capability", capability, limit=MAX_NAME, required=True)
            stmt = stmt.where(_requires_sql(self._engine.dialect.name).bindparams(cap=capability))
        if ready is not None:
            is_ready = sa.and_(_status_is("queued"), _no_open_dependency())
            stmt = stmt.where(is_ready if ready else ~is_ready)
        if agent_id is not None:
            stmt = stmt.where(tasks.c.agent_id == _check_id("agent_id", agent_id))
        if limit is not None:
            stmt = stmt.limit(_check_int("limit", limit, low=1, high=1_000_000))
        with self._read() as cur:
            rows = self._exec_core(stmt, cur)
            deps = self._deps_for(cur, [r[0] for r in rows])
        return [_task(r, deps.get(r[0], ())) for r in rows]

    def _deps_for(self, cur: Any, ids: list[int]) -> dict[int, tuple[int, ...]]:
        out: dict[int, list[int]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._exec_core(
                sa.select(task_dependencies.c.task_id, task_dependencies.c.depends_on)
                .where(task_dependencies.c.task_id.in_(chunk))
                .order_by(task_dependencies.c.task_id, task_dependencies.c.depends_on),
                cur,
            )
            for tid, dep in rows:
                out.setdefault(tid, []).append(dep)
        return {k: tuple(v) for k, v in out.items()}

    def counts(self) -> dict[TaskStatus, int]:
        """Number of tasks in each status (every status present, zeros included)."""
        rows = self._exec_core(sa.select(tasks.c.status, sa.func.count()).group_by(tasks.c.status))
        out = dict.fromkeys(TaskStatus, 0)
        for status, n in rows:
            out[TaskStatus(status)] = n
        return out

    # ------------------------------------------------------------ claims

    def claim(
        self,
        task_id: int,
        agent_id: int,
        *,
        lease_seconds: float | None = None,
        start: bool = False,
    ) -> Task:
        """Claim one task for an agent: exactly one winner under any concurrency.

        Raises NotFound, AtCapacity, or Conflict naming why the task is not
        claimable (not queued, open dependencies, capabilities the agent lacks).
        With ``start=True`` the task goes straight to ``started``.
        """
        _check_id("task_id", task_id)
        with self._write() as tx:
            agent = self._claimant(tx, agent_id)
            if agent.max_tasks is not None:
                self._room(tx, agent.id, agent.max_tasks, 0)  # AtCapacity when full
            rows = tx.run(
                "claim_one",
                self._claim_params(
                    tx,
                    task_id=task_id,
                    agent_id=agent_id,
                    lease_seconds=lease_seconds,
                    start=start,
                ),
            ).fetchall()
            if not rows:
                raise self._why_not_claimable(tx, task_id, agent.capabilities)
            claimed = self._settle_claims(tx, [_task_returned(rows[0])], lease_seconds)
            if not claimed:
                raise Conflict(
                    f"task {task_id} is not claimable: its concurrency key is at its limit"
                )
            self._audit_claims(
                tx, [(t.id, t.claim_epoch, t.lease_expires_at) for t in claimed], agent_id, start
            )
        return claimed[0]

    def claim_next(
        self, agent_id: int, *, lease_seconds: float | None = None, start: bool = False
    ) -> Task | None:
        """Claim the best ready task the agent covers (priority, then age), or None."""
        got = self.claim_batch(agent_id, 1, lease_seconds=lease_seconds, start=start)
        return got[0] if got else None

    def claim_batch(
        self, agent_id: int, n: int, *, lease_seconds: float | None = None, start: bool = False
    ) -> list[Task]:
        """Claim up to ``n`` (1..1000) ready tasks in one statement and one transaction.

        Each claimed task gets its own lease, fencing epoch and audit event. Overdue
        leases are expired first (a bounded number), so progress needs no sweeper.
        """
        _check_int("n", n, low=1, high=1000)
        _check_id("agent_id", agent_id)
        if agent_id not in self._slow_claimers or self._fast_claims_again(agent_id):
            fast = (
                self._claim_batch_fast_sqlite(agent_id, n, lease_seconds, start)
                if self._sqlite
                else self._claim_batch_fast_pg(agent_id, n, lease_seconds, start)
            )
            if fast is not None:
                return fast
        try:
            return self._claim_batch(agent_id, n, lease_seconds, start)
        except Conflict as exc:
            # On PostgreSQL the claim's agents foreign key can trip before the agent's
            # row is read: the one foreign key a claim sets is agent_id.
            if type(exc.__cause__).__name__ == "ForeignKeyViolation":
                raise NotFound("agent", agent_id) from None
            raise

    def _claim_batch(
        self, agent_id: int, n: int, lease_seconds: float | None, start: bool
    ) -> list[Task]:
        swept_at = None
        with self._write() as tx:
            # The agent's capabilities enter the claim as a subquery, so its row is read
            # beside the claim (one round trip on PostgreSQL), not before it.
            pending = None
            if not self._sqlite:
                # FOR UPDATE: claims by one agent take turns, so max_tasks holds across
                # concurrent transactions (each counts what the others committed).
                pending = tx.run("get_agent_for_update", {"id": agent_id})
            last = self._last_sweep
            if last is None or not _NO_TIME <= tx.now - last < _SWEEP_EVERY:
                self._expire(tx, _EXPIRE_ON_CLAIM)
                swept_at = tx.now  # recorded once committed: a refusal rolls it back
            self._claims += 1
            oldest_first = bool(self.fifo_every) and self._claims % self.fifo_every == 0
            params = self._claim_params(
                tx, task_id=None, agent_id=agent_id, lease_seconds=lease_seconds, start=start
            )
            size = -n if oldest_first else n
            max_tasks: int | None = None
            rows = []
            if self._sqlite:
                # First as an agent without max_tasks (the usual case): no read of the
                # agent's row. Only when that claims nothing do we look at the agent.
                rows = tx.run_sized("claim_batch_uncapped", size, params).fetchall()
                if not rows:
                    found = tx._cur.execute(_AGENT_MAX_TASKS_SQL, (agent_id,)).fetchall()
                    if not found:
                        raise NotFound("agent", agent_id)
                    max_tasks = found[0][0]
            if pending is not None or max_tasks is not None:
                # A savepoint to undo a claim beyond max_tasks (on PostgreSQL the
                # agent's row arrives with the claim).
                tx.cur.execute("SAVEPOINT claim")
                rows = tx.run_sized("claim_batch", size, params).fetchall()
            if pending is not None:
                agent_rows = pending.fetchall()
                if not agent_rows:
                    raise NotFound("agent", agent_id)
                max_tasks = _agent(agent_rows[0]).max_tasks
            if max_tasks is not None and rows:
                room = self._room(tx, agent_id, max_tasks, len(rows))
                if room < len(rows):
                    # Undo the claim entirely (no trace left on the rows) and take fewer.
                    tx.cur.execute("ROLLBACK TO SAVEPOINT claim")
                    size = -room if oldest_first else room
                    rows = tx.run_sized("claim_batch", size, params).fetchall()
            if rows and self._sqlite:
                tx.head = (rows[0][_ROW_HEAD], rows[0][_ROW_HEAD + 1])
            settled = self._settle_and_audit(tx, rows, agent_id, lease_seconds, start, oldest_first)
        if swept_at is not None:
            self._last_sweep = swept_at
        # Plain claims become Task values after COMMIT, outside the write lock.
        return settled if settled is not None else [_task_returned(r) for r in rows]

    def _settle_and_audit(
        self,
        tx: _Tx,
        rows: list[Any],
        agent_id: int,
        lease_seconds: float | None,
        start: bool,
        oldest_first: bool,
    ) -> list[Task] | None:
        """Put claimed ``rows`` in claim order (in place), settle them if any needs it
        (``_settle_claims``) and record their events. The settled Tasks, or None when
        the rows stand as claimed."""
        if len(rows) > 1:
            rows.sort(
                key=(lambda r: r[_ROW_ID])
                if oldest_first
                else (lambda r: (-r[_ROW_PRIORITY], r[_ROW_ID]))
            )
        for r in rows:  # a plain loop: a generator costs more for the usual one row
            if not _claimed_as_is(r, lease_seconds):
                settled = self._settle_claims(tx, [_task_returned(r) for r in rows], lease_seconds)
                claims = [(t.id, t.claim_epoch, t.lease_expires_at) for t in settled]
                self._audit_claims(tx, claims, agent_id, start)
                return settled
        self._audit_claims(
            tx, [(r[_ROW_ID], r[_ROW_EPOCH], r[_ROW_LEASE]) for r in rows], agent_id, start
        )
        return None

    def _claim_batch_fast_sqlite(
        self, agent_id: int, n: int, lease_seconds: float | None, start: bool
    ) -> list[Task] | None:
        """SQLite: claim_batch's usual case in the fewest steps, or None (nothing
        changed) to take the general path.

        The usual case: no overdue-lease sweep due, and an agent without max_tasks.
        For an agent with max_tasks (the uncapped claim leaves its tasks alone) the
        general path is taken for a while, as on PostgreSQL. Claims that need settling
        (a concurrency key, a task's own lease) or more than one event take the general
        path's steps inside this transaction.
        """
        last = self._last_sweep
        if last is None:
            return None
        with _SqliteOne(self) as cur:
            moment = self._now()
            now = format_time(moment)  # the caller's clock: checked
            if not _NO_TIME <= moment - last < _SWEEP_EVERY:
                return None  # a sweep is due: the general path runs it (nothing changed)
            oldest_first = bool(self.fifo_every) and (self._claims + 1) % self.fifo_every == 0
            lease = self._lease_until(moment, lease_seconds)
            q = self._sized_statement("claim_batch_uncapped", -n if oldest_first else n)
            params = {
                "new_status": "started" if start else "claimed",
                "agent_id": agent_id,
                "lease": lease,
                "now": now,
                "started_at": now if start else None,
            }
            rows = cur.execute(q.sql, q.args(params)).fetchall()
            if not rows:
                found = cur.execute(_AGENT_MAX_TASKS_SQL, (agent_id,)).fetchall()
                if not found:
                    raise NotFound("agent", agent_id)
                if found[0][0] is None:
                    self._claims += 1  # a claim made, as on the other paths, if empty
                    return []  # nothing ready for it
                self._slow_claimers[agent_id] = time.monotonic() + _SLOW_CLAIMER_RETRY
                return None  # max_tasks: the general path counts its room
            self._claims += 1
            row = rows[0]
            settled = None
            if len(rows) == 1 and _claimed_as_is(row, lease_seconds):
                actor = _actor.get() or self.actor
                payload = _claim_payload(agent_id, row[_ROW_EPOCH], row[_ROW_LEASE], start)
                cur.execute(
                    _AUDIT_INSERT_ONE,
                    _audit.chain_one(
                        row[_ROW_HEAD],
                        row[_ROW_HEAD + 1],
                        now,
                        actor,
                        "claim",
                        f"task:{row[_ROW_ID]}",
                        payload,
                    ),
                )
            else:
                tx = _Tx(self, cur, moment)
                tx.head = (row[_ROW_HEAD], row[_ROW_HEAD + 1])
                settled = self._settle_and_audit(
                    tx, rows, agent_id, lease_seconds, start, oldest_first
                )
                self._append_audit_sqlite(tx)
        # Plain claims become Task values after COMMIT, outside the write lock.
        return settled if settled is not None else [_task_returned(r) for r in rows]

    def _claim_batch_fast_pg(
        self, agent_id: int, n: int, lease_seconds: float | None, start: bool
    ) -> list[Task] | None:
        """PostgreSQL: claim_batch in one round trip, or None to take the slow path.

        One pipelined send: BEGIN, the guarded claim (``_claim_fast_pg``: it locks the
        agent row FOR UPDATE, claims, then takes the chain lock), an audit insert that
        the server computes from the rows this transaction claimed (``xmin`` is ours),
        COMMIT. When the guard says the slow
        path is needed, nothing was claimed and nothing appended: the caller runs the
        slow path in a new transaction. The overdue-lease sweep, when due, is the
        slow path's too.
        """
        now = self._now()
        last = self._last_sweep
        if last is None or not _NO_TIME <= now - last < _SWEEP_EVERY:
            return None
        oldest_first = bool(self.fifo_every) and (self._claims + 1) % self.fifo_every == 0
        stamp = format_time(now)
        lease = self._lease_until(now, lease_seconds)
        q = self._sized_statement("claim_fast_pg", -n if oldest_first else n)
        conn = self._conn()
        # The thread's own cursor sends the statements whose results nobody reads.
        sink, claim_cur = self._cursor(), conn.cursor()
        try:
            with conn.pipeline():
                sink.execute("BEGIN")
                claim_cur.execute(
                    q.sql,
                    q.args(
                        {
                            "new_status": "started" if start else "claimed",
                            "agent_id": agent_id,
                            "lease": lease,
                            "now": stamp,
                            "started_at": stamp if start else None,
                        }
                    ),
                )
                sink.execute(
                    _PG_CLAIM_AUDIT[oldest_first, bool(start)],  # start may be any truthy value
                    _claim_audit_parts(stamp, _actor.get() or self.actor, agent_id, lease, start),
                )
                sink.execute("COMMIT")
            # Read after the block: its exit sends the one Sync and collects every
            # result; a fetch inside would cost a round trip of its own.
            rows = claim_cur.fetchall()
        except BaseException as exc:
            _rolled_back(conn, exc)
            raise
        if not rows[0][0]:
            if rows[0][1] is not None:
                # max_tasks: no use trying it fast again for a while. Another process
                # may lift the limit, so the fast claim is tried again after that.
                self._slow_claimers[agent_id] = time.monotonic() + _SLOW_CLAIMER_RETRY
            return None
        self._claims += 1
        claimed = [_task_returned(r[3:]) for r in rows if r[3] is not None]
        if len(claimed) > 1:
            claimed.sort(key=lambda t: (t.id,) if oldest_first else (-t.priority, t.id))
        return claimed

    def _fast_claims_again(self, agent_id: int) -> bool:
        """True once an agent seen with max_tasks is due a new fast attempt.

        Threads may ask at once (one agent served by several): the entry may be gone.
        """
        retry_at = self._slow_claimers.get(agent_id)
        if retry_at is not None and retry_at > time.monotonic():
            return False
        self._slow_claimers.pop(agent_id, None)
        return True

    def _room(self, tx: _Tx, agent_id: int, max_tasks: int, just_claimed: int) -> int:
        """How many of ``just_claimed`` fit under max_tasks; AtCapacity if none."""
        active = tx.run("agent_active_count", {"agent_id": agent_id}).fetchall()[0][0]
        room: int = max_tasks - (active - just_claimed)
        if room <= 0:
            raise AtCapacity(agent_id, max_tasks)  # it was full before: roll all back
        return room

    def _settle_claims(
        self, tx: _Tx, claimed: list[Task], lease_seconds: float | None
    ) -> list[Task]:
        """Enforce concurrency limits and per-task leases on rows just claimed.

        The claim statement filters on each key's limit, but tasks sharing a key can
        arrive in one batch, and on PostgreSQL concurrent transactions cannot see each
        other's uncommitted claims. So, per key (in sorted order, under an advisory
        lock on PostgreSQL), count the claimed and started tasks now visible, ours
        included, and give back the surplus, lowest priority first.
        """
        keyed = [t for t in claimed if t.concurrency_key is not None]
        if keyed:
            dropped: set[int] = set()
            for key in sorted({t.concurrency_key for t in keyed if t.concurrency_key}):
                if not self._sqlite:
                    tx.cur.execute(
                        f"SELECT pg_advisory_xact_lock({_PG_LOCK_CLASS + 1}, hashtext(%s))",
                        (key,),
                    )
                mine = [t for t in keyed if t.concurrency_key == key]
                limit = min(t.concurrency_limit or 1 for t in mine)
                active = tx.run("active_with_key", {"key": key}).fetchall()[0][0]
                # The surplus may exceed this batch (another transaction's claims of the
                # key, with a higher limit, committed meanwhile): then all of it goes back.
                keep = max(0, len(mine) - max(0, active - limit))
                for task in reversed(mine[keep:]):
                    tx.run("unclaim", {"id": task.id, "epoch": task.claim_epoch})
                    dropped.add(task.id)
            claimed = [t for t in claimed if t.id not in dropped]
        if lease_seconds is None:
            for index, task in enumerate(claimed):
                if task.lease_seconds is not None:
                    lease = self._lease_until(tx.now, task.lease_seconds)
                    tx.run("set_lease", {"id": task.id, "lease": lease})
                    claimed[index] = attrs.evolve(task, lease_expires_at=lease)
        return claimed

    def _claim_params(
        self,
        tx: _Tx,
        *,
        task_id: int | None,
        agent_id: int,
        lease_seconds: float | None,
        start: bool,
    ) -> dict[str, Any]:
        # The agent's capabilities enter the statements as a subquery on :agent_id.
        now = tx.stamp()
        return {
            "id": task_id,
            "new_status": "started" if start else "claimed",
            "agent_id": agent_id,
            "lease": self._lease_until(tx.now, lease_seconds),
            "now": now,
            "started_at": now if start else None,
        }

    def _claimant(self, tx: _Tx, agent_id: int) -> Agent:
        """The claiming agent, its row locked on PostgreSQL so its claims take turns."""
        _check_id("agent_id", agent_id)
        lookup = "get_agent" if self._sqlite else "get_agent_for_update"
        rows = tx.run(lookup, {"id": agent_id}).fetchall()
        if not rows:
            raise NotFound("agent", agent_id)
        return _agent(rows[0])

    def _audit_claims(
        self, tx: _Tx, claimed: list[tuple[int, int, str | None]], agent_id: int, start: bool
    ) -> None:
        """One event per claimed ``(task id, epoch, lease)``."""
        tx.events += [
            ("claim", f"task:{task_id}", _claim_payload(agent_id, epoch, lease, start))
            for task_id, epoch, lease in claimed
        ]

    def _why_not_claimable(self, tx: _Tx, task_id: int, caps: tuple[str, ...]) -> StoreError:
        rows = tx.run("get_task", {"id": task_id}).fetchall()
        if not rows:
            return NotFound("task", task_id)
        task = _task(rows[0])
        if task.status is not TaskStatus.QUEUED:
            holder = f" by agent {task.agent_id}" if task.agent_id is not None else ""
            return Conflict(f"task {task_id} is not claimable: it is {task.status.value}{holder}")
        missing = sorted(set(task.required_capabilities) - set(caps))
        if missing:
            return Conflict(
                f"task {task_id} is not claimable by this agent: it lacks capabilities {missing}"
            )
        if task.not_before is not None and task.not_before > tx.stamp():
            return Conflict(f"task {task_id} is not claimable before {task.not_before}")
        if task.concurrency_key is not None:
            active = tx.run("active_with_key", {"key": task.concurrency_key}).fetchall()[0][0]
            if active >= (task.concurrency_limit or 1):
                return Conflict(
                    f"task {task_id} is not claimable: {active} tasks with concurrency key "
                    f"{task.concurrency_key!r} are running (limit {task.concurrency_limit})"
                )
        deps = [r[0] for r in tx.run("task_deps", {"id": task_id}).fetchall()]
        return Conflict(f"task {task_id} is not claimable: it waits for open dependencies {deps}")

    # ------------------------------------------------------------ fenced moves

    def start(self, task_id: int, epoch: int, *, lease_seconds: float | None = None) -> Task:
        """claimed -> started, by the holder of ``epoch``; renews the lease."""
        return self._fenced("start", task_id, epoch, {"lease_seconds": lease_seconds})

    def heartbeat(self, task_id: int, epoch: int, *, lease_seconds: float | None = None) -> Task:
        """Renew the lease of a claimed or started task held with ``epoch``."""
        return self._fenced("heartbeat", task_id, epoch, {"lease_seconds": lease_seconds})

    def extend_lease(self, task_id: int, epoch: int, seconds: float) -> Task:
        """Push the lease of a claimed or started task to ``seconds`` from now (long work)."""
        return self._fenced("heartbeat", task_id, epoch, {"lease_seconds": _check_lease(seconds)})

    def complete(
        self,
        task_id: int,
        epoch: int,
        *,
        result: Any = None,
        usage: Usage | Mapping[str, int] | None = None,
    ) -> Task:
        """started -> done, with an optional JSON ``result`` and the run's ``usage``/cost."""
        return self._fenced("complete", task_id, epoch, {"result": result, "usage": usage})

    def fail(self, task_id: int, epoch: int, *, error: str | None = None) -> Task:
        """claimed|started -> failed, recording ``error``. ``retry`` re-queues it later."""
        return self._fenced("fail", task_id, epoch, {"error": error})

    def release(self, task_id: int, epoch: int, *, error: str | None = None) -> Task:
        """Give a task back: -> queued (attempts+1), or failed once max_attempts is reached."""
        return self._fenced("release", task_id, epoch, {"error": error})

    def _fenced(self, action: str, task_id: int, epoch: int, opts: dict[str, Any]) -> Task:
        _check_id("task_id", task_id)
        _check_int("epoch", epoch, low=0, high=MAX_INT4)
        params: dict[str, Any] = {"id": task_id, "epoch": epoch}
        payload: dict[str, Any] = {"epoch": epoch}
        if action in ("start", "heartbeat"):
            lease_seconds = opts["lease_seconds"]
        if action == "complete":
            usage = _usage(opts["usage"])
            params["result"] = _result_json(opts["result"])
            if usage is _NO_USAGE or usage == _NO_USAGE:
                params.update(_NO_USAGE_PARAMS)
            else:
                payload["usage"] = {n: getattr(usage, n) for n in _usage_fields()}
                params.update(payload["usage"])
        if action in ("fail", "release"):
            params["error"] = _check_text("error", opts["error"], limit=MAX_TEXT, required=False)
        if action in ("complete", "fail"):
            if self._sqlite:
                return self._fenced_sqlite(action, task_id, epoch, params, payload)
            return self._fenced_in_one_round_trip(action, task_id, epoch, params, payload)
        task: Task | None = None
        with self._write() as tx:
            params["now"] = tx.stamp()
            if action in ("start", "heartbeat"):
                params["lease"] = self._lease_until(tx.now, lease_seconds)
                payload["lease_expires_at"] = params["lease"]
            rows = tx.run(action, params).fetchall()
            if not rows:
                raise self._why_refused(tx, action, task_id, epoch)
            row = rows[0]
            if self._sqlite:
                tx.head = (row[_ROW_HEAD], row[_ROW_HEAD + 1])
            task_lease = row[_ROW_LEASE_SECONDS]
            if action in ("start", "heartbeat") and lease_seconds is None and task_lease:
                lease = self._lease_until(tx.now, task_lease)
                tx.run("set_lease", {"id": task_id, "lease": lease})
                task = attrs.evolve(_task_returned(row), lease_expires_at=lease)
                payload["lease_expires_at"] = lease
            if action == "release":
                [task] = self._back_off(tx, [_task_returned(row)])
                payload["to"] = task.status.value
                if task.not_before:
                    payload["not_before"] = task.not_before
            if action in ("release", "complete"):
                tx.notify()  # queued again, or dependents may now be ready
            if len(payload) == 1:
                tx.audit_json(action, f"task:{task_id}", f'{{"epoch":{epoch}}}')
            else:
                tx.audit(action, f"task:{task_id}", payload)
        # Otherwise the Task value is built after COMMIT, outside the write lock.
        return task if task is not None else _task_returned(row)

    def _fenced_sqlite(
        self,
        action: str,
        task_id: int,
        epoch: int,
        params: dict[str, Any],
        payload: dict[str, Any],
    ) -> Task:
        """SQLite: complete or fail a task in the fewest steps: the fenced UPDATE, which
        returns the task and the chain head, then its audit row."""
        q = self._q[action]
        subject = f"task:{task_id}"
        payload_json = (
            f'{{"epoch":{epoch}}}' if len(payload) == 1 else _audit.canonical_json(payload)
        )
        with _SqliteOne(self) as cur:
            params["now"] = now = format_time(self._now())  # the caller's clock: checked
            rows = cur.execute(q.sql, q.args(params)).fetchall()
            if not rows:  # a read in this transaction says why
                raise _refusal(self._fetch("get_task", {"id": task_id}), action, task_id, epoch)
            row = rows[0]
            actor = _actor.get() or self.actor
            cur.execute(
                _AUDIT_INSERT_ONE,
                _audit.chain_one(
                    row[_ROW_HEAD], row[_ROW_HEAD + 1], now, actor, action, subject, payload_json
                ),
            )
        return _task_returned(row)

    def _fenced_in_one_round_trip(
        self,
        action: str,
        task_id: int,
        epoch: int,
        params: dict[str, Any],
        payload: dict[str, Any],
    ) -> Task:
        """PostgreSQL: complete or fail a task with one round trip.

        The whole transaction is pipelined: the fenced UPDATE, whose RETURNING takes the
        chain lock (after the row lock, so it is taken last) and, for complete, queues
        the NOTIFY; an audit insert that the server makes only if this transaction did
        touch the task row (``xmin`` is ours); COMMIT.
        If the UPDATE matched nothing, the transaction commits no change at all, and
        a plain read then says why.
        """
        conn = self._conn()
        at = format_time(self._now())
        params["now"] = at
        actor = _actor.get() or self.actor
        subject = f"task:{task_id}"
        payload_json = _audit.canonical_json(payload)
        pre, post = _audit.body_parts(at, actor, action, subject, payload_json)
        q = self._q[f"{action}_locked_pg"]  # the UPDATE takes the chain lock itself
        qa = self._q["audit_append_pg_if_touched"]
        # The thread's own cursor sends the statements whose results nobody reads.
        sink, update = self._cursor(), conn.cursor()
        try:
            with conn.pipeline():
                sink.execute("BEGIN")
                update.execute(q.sql, q.args(params))
                sink.execute(
                    qa.sql,
                    qa.args(
                        {
                            "at": at,
                            "actor": actor,
                            "verb": action,
                            "subject": subject,
                            "payload": payload_json,
                            "pre": pre,
                            "post": post,
                            "task_id": task_id,
                        }
                    ),
                )
                sink.execute("COMMIT")
            rows = update.fetchall()  # after the block: one round trip in all
        except BaseException as exc:
            _rolled_back(conn, exc)
            raise
        if not rows:
            raise _refusal(self._fetch("get_task", {"id": task_id}), action, task_id, epoch)
        return _task_returned(rows[0])

    def _back_off(self, tx: _Tx, requeued: list[Task]) -> list[Task]:
        """Delay re-queued tasks: base * 2**(attempts-1), capped, with jitter."""
        if not self.backoff_base:
            return requeued
        out = []
        for task in requeued:
            if task.status is TaskStatus.QUEUED and task.attempts > 0:
                delay = min(self.backoff_cap, self.backoff_base * 2 ** min(task.attempts - 1, 60))
                delay *= 1 + self.backoff_jitter * self._rng.uniform(-1.0, 1.0)
                try:
                    not_before = format_time(tx.now + timedelta(seconds=delay))
                except OverflowError:  # past datetime.max (year 9999)
                    raise InvalidInput(
                        "now", f"the retry backoff from {tx.now} ends after 9999"
                    ) from None
                tx.run("set_not_before", {"id": task.id, "not_before": not_before})
                task = attrs.evolve(task, not_before=not_before)
            out.append(task)
        return out

    def complete_many(self, items: Iterable[Sequence[Any]]) -> BatchOutcome:
        """Complete many started tasks in one transaction, each judged on its own.

        An item is ``(task_id, epoch)`` or ``(task_id, epoch, result)``. Items with a
        stale epoch or an illegal transition are refused and reported with the
        reason; the others are applied, each with its own audit event.
        """
        checked = self._batch_items("complete_many", items, "result")
        return self._apply_many("complete", checked, "result")

    def fail_many(self, items: Iterable[Sequence[Any]]) -> BatchOutcome:
        """Fail many claimed or started tasks in one transaction; ``(task_id, epoch[, error])``."""
        checked = self._batch_items("fail_many", items, "error")
        return self._apply_many("fail", checked, "error")

    def _batch_items(
        self, name: str, items: Iterable[Sequence[Any]], extra: str
    ) -> list[tuple[int, int, Any]]:
        if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
            raise InvalidInput(name, "must be a list of (task_id, epoch[, ...]) items")
        checked: list[tuple[int, int, Any]] = []
        seen: set[int] = set()
        for index, item in enumerate(items):
            if not (type(item) is tuple or type(item) is list) and (
                isinstance(item, str | bytes) or not isinstance(item, Sequence)
            ):
                item = ()  # refused just below
            if len(item) not in (2, 3):
                raise InvalidInput(
                    f"{name}[{index}]", f"must be (task_id, epoch) or (task_id, epoch, {extra})"
                )
            task_id, epoch = item[0], item[1]
            # Plain ints in range pass without building the field names of an error.
            if not (type(task_id) is int and 1 <= task_id <= MAX_INT4):
                task_id = _check_id(f"{name}[{index}].task_id", task_id)
            if not (type(epoch) is int and 0 <= epoch <= MAX_INT4):
                epoch = _check_int(f"{name}[{index}].epoch", epoch, low=0, high=MAX_INT4)
            if task_id in seen:
                raise InvalidInput(f"{name}[{index}]", f"task {task_id} appears twice in one batch")
            seen.add(task_id)
            value = item[2] if len(item) == 3 else None
            if value is None:
                pass
            elif extra == "result":
                value = _result_json(value)
            else:
                value = _check_text("error", value, limit=MAX_TEXT, required=False)
            checked.append((task_id, epoch, value))
        if not checked:
            raise InvalidInput(name, "is empty; give at least one item")
        if len(checked) > 1000:
            raise InvalidInput(name, f"has {len(checked)} items; the limit is 1000")
        return checked

    def _apply_many(
        self, action: str, checked: list[tuple[int, int, Any]], extra: str
    ) -> BatchOutcome:
        applied: list[int] = []
        refused: list[tuple[int, str]] = []
        with self._write() as tx:
            now = tx.stamp()
            # One statement for the whole batch: the items as a VALUES list, each row
            # updated only if its epoch and status still allow it; RETURNING says which.
            args: list[Any]
            if self._sqlite:
                sql = _batch_update_sql(action, len(checked))
                args = [now, now]
                args += [v for item in checked for v in item]
            else:
                sql = _PG_BATCH_UPDATE[action]
                args = [
                    [item[0] for item in checked],
                    [item[1] for item in checked],
                    [item[2] for item in checked],
                    now,
                    now,
                ]
            cur = tx.cur
            cur.execute(sql, args)
            done = {row[0] for row in cur.fetchall()}
            events = tx.events
            for task_id, epoch, _ in checked:
                if task_id in done:
                    applied.append(task_id)
                    events.append((action, f"task:{task_id}", f'{{"epoch":{epoch}}}'))
                else:
                    refused.append((task_id, str(self._why_refused(tx, action, task_id, epoch))))
            if applied and action == "complete":
                tx.notify()
        return BatchOutcome(tuple(applied), tuple(refused))

    def _why_refused(self, tx: _Tx, action: str, task_id: int, epoch: int) -> StoreError:
        return _refusal(tx.run("get_task", {"id": task_id}).fetchall(), action, task_id, epoch)

    def retry(self, task_id: int) -> Task:
        """failed -> queued (an operator's explicit retry; attempts start again at 0)."""
        _check_id("task_id", task_id)
        with self._write() as tx:
            current = tx.run("get_task", {"id": task_id}).fetchall()
            found = _task(current[0]) if current else None
            key = found.dedupe_key if found and found.status is TaskStatus.FAILED else None
            if key is not None:
                holder = tx.run("open_by_dedupe_key", {"dedupe_key": key}).fetchall()
                if holder and holder[0][0] != task_id:
                    raise Conflict(
                        f"task {task_id} cannot be retried: task {holder[0][0]} with the same "
                        f"dedupe key {key!r} is still open"
                    )
            rows = tx.run("retry", {"id": task_id, "now": tx.stamp()}).fetchall()
            if not rows:
                current = tx.run("get_task", {"id": task_id}).fetchall()
                if not current:
                    raise NotFound("task", task_id)
                raise InvalidTransition("task", task_id, _task(current[0]).status.value, "retry")
            tx.audit("retry", f"task:{task_id}", {})
            tx.notify()
        return _task_returned(rows[0])

    def expire_leases(self, now: datetime | None = None, *, limit: int = 10_000) -> list[Task]:
        """Re-queue tasks whose lease ended before ``now`` (fail them at max_attempts)."""
        _check_int("limit", limit, low=1, high=1_000_000)
        with self._write() as tx:
            if now is not None:
                format_time(now, "now")
                tx.set_now(now)
            return self._expire(tx, limit)

    def _expire(self, tx: _Tx, limit: int) -> list[Task]:
        rows = tx.run_sized(
            "expire", limit, {"now": tx.stamp(), "error": "lease expired"}
        ).fetchall()
        if not rows:
            return []
        expired = self._back_off(tx, [_task_returned(r) for r in rows])
        tx.notify()
        for task in sorted(expired, key=lambda t: t.id):
            tx.audit(
                "expire", f"task:{task.id}", {"epoch": task.claim_epoch, "to": task.status.value}
            )
        return expired

    # ------------------------------------------------------------ wake-ups

    def wait_for_work(self, timeout: float) -> bool:
        """Block until ready work may exist (True) or ``timeout`` seconds pass (False).

        It returns at once when a ready task exists. Otherwise, on PostgreSQL it
        sleeps on ``LISTEN colibri_work``, which every transaction that creates,
        re-queues or completes a task notifies; on SQLite it watches
        ``PRAGMA data_version`` (which changes when another connection commits;
        no table is read) every 5 ms and looks for ready work after each change.
        A task scheduled for later (``not_before``) wakes it when due. A True is a
        hint, not a reservation: another worker may claim the task first.
        """
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 <= timeout <= _MAX_WAIT
        ):
            # NaN compares false both ways: it would spin forever (inf: block forever).
            raise InvalidInput(
                "timeout", f"must be a number of seconds from 0 to {_MAX_WAIT}, not {timeout!r}"
            )
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            self._waiting += 1
        try:
            return self._wait_for_work(timeout)
        except StoreError:
            raise
        except Exception as exc:
            if self._closed:  # close() gave up waiting and closed the connection under us
                raise StoreError("the store was closed while waiting for work") from exc
            raise
        finally:
            with self._lock:
                self._waiting -= 1
                self._waiters_gone.notify_all()

    def _wait_for_work(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        waiter = self._work_waiter()
        while True:
            # Take the change marker before looking, so a commit in between is not missed.
            marker: int = waiter.execute("PRAGMA data_version").fetchone()[0] if self._sqlite else 0
            if self._ready_now():
                return True
            remaining = deadline - time.monotonic()
            due = self._seconds_to_next_due()
            if due is not None and due <= 0:
                continue
            budget = remaining if due is None else min(remaining, due)
            if remaining <= 0:
                return False
            if self._sqlite:
                woke = _watch_data_version(waiter, budget, marker, self._closing)
            else:
                woke = _watch_notifies(waiter, budget, self._closing)
            if self._closed:
                raise StoreError("the store was closed while waiting for work")
            if not woke and due is None and time.monotonic() >= deadline:
                return False

    def _closing(self) -> bool:
        return self._closed

    def _work_waiter(self) -> Any:
        if self._waiter is None:
            pooled = self._engine.raw_connection()
            conn: Any = pooled.driver_connection
            if self._sqlite:
                conn.execute("PRAGMA data_version").fetchone()
            else:
                conn.autocommit = True
                conn.execute(f"LISTEN {WORK_CHANNEL}")
            self._waiter = conn
            with self._lock:
                self._connections.append(pooled)
        return self._waiter

    def _ready_now(self) -> bool:
        return bool(self._fetch("ready_exists", {"now": format_time(self._now())}))

    def _seconds_to_next_due(self) -> float | None:
        now = self._now()
        rows = self._fetch("next_due", {"now": format_time(now)})
        if not rows or rows[0][0] is None:
            return None
        due = datetime.strptime(rows[0][0], _OWN_TIME).replace(tzinfo=UTC)
        return (due - now).total_seconds()

    # ------------------------------------------------------------ agents

    def register_agent(
        self,
        name: str,
        capabilities: Iterable[str] = (),
        *,
        host: str | None = None,
        max_tasks: int | None = None,
        status: AgentStatus | str = AgentStatus.IDLE,
    ) -> Agent:
        """Create or update (by ``name``) an agent; capabilities must be an array of strings."""
        _check_text("name", name, limit=MAX_NAME, required=True)
        caps = check_capabilities(capabilities)
        _check_text("host", host, limit=MAX_NAME, required=False)
        if max_tasks is not None:
            _check_int("max_tasks", max_tasks, low=1, high=100_000)
        agent_status = _parse_enum(AgentStatus, "status", status)
        caps_json = json.dumps(list(caps), separators=(",", ":"))
        with self._write() as tx:
            now = tx.stamp()
            found = self._exec_core(sa.select(agents.c.id).where(agents.c.name == name), tx.cur)
            values = {
                "capabilities": caps_json,
                "status": agent_status.value,
                "host": host,
                "max_tasks": max_tasks,
                "last_seen": now,
            }
            if found:
                agent_id = found[0][0]
                self._exec_core(
                    sa.update(agents).where(agents.c.id == agent_id).values(**values), tx.cur
                )
                verb = "update"
            else:
                agent_id = self._exec_core(
                    sa.insert(agents)
                    .values(name=name, created_at=now, **values)
                    .returning(agents.c.id),
                    tx.cur,
                )[0][0]
                verb = "register"
            tx.audit(
                verb,
                f"agent:{agent_id}",
                {"name": name, "capabilities": list(caps), "host": host, "max_tasks": max_tasks},
            )
        if max_tasks is None:
            self._slow_claimers.pop(agent_id, None)  # its claims may take the fast path now
        return self.get_agent(agent_id)

    def get_agent(self, agent_id: int) -> Agent:
        """The agent with ``agent_id`` (NotFound if none)."""
        _check_id("agent_id", agent_id)
        rows = self._fetch("get_agent", {"id": agent_id})
        if not rows:
            raise NotFound("agent", agent_id)
        return _agent(rows[0])

    def list_agents(self, status: AgentStatus | str | None = None) -> list[Agent]:
        """Agents by name, optionally only those in ``status``."""
        stmt = sa.select(*_AGENT_COLS).order_by(agents.c.name)
        if status is not None:
            stmt = stmt.where(agents.c.status == _parse_enum(AgentStatus, "status", status).value)
        return [_agent(r) for r in self._exec_core(stmt)]

    def agent_heartbeat(self, agent_id: int, *, host: str | None = None) -> Agent:
        """Record that an agent is alive (last_seen = now, status active)."""
        _check_id("agent_id", agent_id)
        _check_text("host", host, limit=MAX_NAME, required=False)
        with self._write() as tx:
            values: dict[str, Any] = {"last_seen": tx.stamp(), "status": "active"}
            if host is not None:
                values["host"] = host
            done = self._exec_core(
                sa.update(agents)
                .where(agents.c.id == agent_id)
                .values(**values)
                .returning(agents.c.id),
                tx.cur,
            )
            if not done:
                raise NotFound("agent", agent_id)
            tx.audit("heartbeat", f"agent:{agent_id}", {"host": host})
        return self.get_agent(agent_id)

    def set_agent_status(self, agent_id: int, status: AgentStatus | str) -> Agent:
        """Set an agent's presence: active, idle or offline."""
        _check_id("agent_id", agent_id)
        new = _parse_enum(AgentStatus, "status", status)
        with self._write() as tx:
            done = self._exec_core(
                sa.update(agents)
                .where(agents.c.id == agent_id, agents.c.status != new.value)
                .values(status=new.value)
                .returning(agents.c.id),
                tx.cur,
            )
            if done:
                tx.audit("status", f"agent:{agent_id}", {"status": new.value})
            elif not tx.run("get_agent", {"id": agent_id}).fetchall():
                raise NotFound("agent", agent_id)
        return self.get_agent(agent_id)

    # ------------------------------------------------------------ skills

    def register_skill(
        self, name: str, description: str | None = None, category: str | None = None
    ) -> Skill:
        """Add a skill; names are unique (AlreadyExists otherwise)."""
        _check_text("name", name, limit=MAX_NAME, required=True)
        _check_text("description", description, limit=MAX_TEXT, required=False)
        _check_text("category", category, limit=MAX_NAME, required=False)
        with self._write() as tx:
            if self._exec_core(sa.select(skills.c.id).where(skills.c.name == name), tx.cur):
                raise AlreadyExists("skill", "name", name)
            now = tx.stamp()
            skill_id = self._exec_core(
                sa.insert(skills)
                .values(name=name, description=description, category=category, created_at=now)
                .returning(skills.c.id),
                tx.cur,
            )[0][0]
            tx.audit("register", f"skill:{skill_id}", {"name": name, "category": category})
        return Skill(skill_id, name, description, category, now)

    def list_skills(self) -> list[Skill]:
        """Every skill, by name."""
        rows = self._exec_core(sa.select(*skills.c).order_by(skills.c.name))
        return [Skill(*r) for r in rows]

    # ------------------------------------------------------------ tenants

    def register_tenant(self, tenant_id: str, jail_root_path: str, collection_id: str) -> Tenant:
        """Add a tenant (status provisioned); all three values must be unique."""
        _check_text("tenant_id", tenant_id, limit=MAX_NAME, required=True)
        _check_text("jail_root_path", jail_root_path, limit=4096, required=True)
        _check_text("collection_id", collection_id, limit=MAX_NAME, required=True)
        if not jail_root_path.startswith("/"):
            raise InvalidInput(
                "jail_root_path", f"must be an absolute path, not {jail_root_path!r}"
            )
        with self._write() as tx:
            for column, value in (
                (tenants.c.tenant_id, tenant_id),
                (tenants.c.jail_root_path, jail_root_path),
                (tenants.c.collection_id, collection_id),
            ):
                if self._exec_core(sa.select(sa.literal(1)).where(column == value), tx.cur):
                    raise AlreadyExists("tenant", column.name, value)
            now = tx.stamp()
            self._exec_core(
                sa.insert(tenants).values(
                    tenant_id=tenant_id,
                    jail_root_path=jail_root_path,
                    collection_id=collection_id,
                    status="provisioned",
                    created_at=now,
                    updated_at=now,
                ),
                tx.cur,
            )
            tx.audit(
                "register",
                f"tenant:{tenant_id}",
                {"jail_root_path": jail_root_path, "collection_id": collection_id},
            )
        return Tenant(tenant_id, jail_root_path, collection_id, TenantStatus.PROVISIONED, now, now)

    def get_tenant(self, tenant_id: str) -> Tenant:
        """The tenant ``tenant_id`` (NotFound if none)."""
        _check_text("tenant_id", tenant_id, limit=MAX_NAME, required=True)
        rows = self._exec_core(sa.select(*tenants.c).where(tenants.c.tenant_id == tenant_id))
        if not rows:
            raise NotFound("tenant", tenant_id)
        return _tenant(rows[0])

    def list_tenants(self) -> list[Tenant]:
        """Every tenant, by id."""
        return [
            _tenant(r) for r in self._exec_core(sa.select(*tenants.c).order_by(tenants.c.tenant_id))
        ]

    def set_tenant_status(self, tenant_id: str, status: TenantStatus | str) -> Tenant:
        """Move a tenant: provisioned -> active -> stopped -> destroyed; stopped -> active."""
        new = _parse_enum(TenantStatus, "status", status)
        _check_text("tenant_id", tenant_id, limit=MAX_NAME, required=True)
        with self._write() as tx:
            rows = self._exec_core(
                sa.select(tenants.c.status).where(tenants.c.tenant_id == tenant_id), tx.cur
            )
            if not rows:
                raise NotFound("tenant", tenant_id)
            current = TenantStatus(rows[0][0])
            if not tenant_move_allowed(current, new):
                raise InvalidTransition("tenant", tenant_id, current.value, f"move to {new.value}")
            self._exec_core(
                sa.update(tenants)
                .where(tenants.c.tenant_id == tenant_id)
                .values(status=new.value, updated_at=tx.stamp()),
                tx.cur,
            )
            tx.audit("status", f"tenant:{tenant_id}", {"from": current.value, "to": new.value})
        return self.get_tenant(tenant_id)

    # ------------------------------------------------------------ audit

    def audit_events(self, after: int = 0, limit: int | None = None) -> list[AuditEvent]:
        """Audit events with seq > ``after``, in order."""
        _check_int("after", after, low=0, high=MAX_INT4)  # seq is a 32-bit INTEGER on PostgreSQL
        stmt = (
            sa.select(*_AUDIT_COLS).where(audit_events.c.seq > after).order_by(audit_events.c.seq)
        )
        if limit is not None:
            stmt = stmt.limit(_check_int("limit", limit, low=1, high=10_000_000))
        return [_event(r) for r in self._exec_core(stmt)]

    def verify_chain(self, anchor: tuple[int, str] | None = None) -> ChainReport:
        """Walk the whole chain; report the first edited, deleted, inserted or reordered event.

        A chain is only as trustworthy as its head: pass ``anchor=(seq, hash)``
        recorded earlier (for example from a previous report's ``head_hash``) to also
        detect a truncated tail or a wholesale rewrite before that point.
        """
        if anchor is not None:
            if not isinstance(anchor, tuple | list) or len(anchor) != 2:
                raise InvalidInput("anchor", "must be a (seq, hash) pair")
            _check_id("anchor.seq", anchor[0])
            _check_text("anchor.hash", anchor[1], limit=MAX_NAME, required=True)
        prev = _audit.GENESIS_HASH
        expected_seq = 1
        count = 0
        anchored = anchor is None
        with self._read() as cur:
            cur.execute(self._q_sql_all_events())
            while True:
                batch = cur.fetchmany(5000)
                if not batch:
                    break
                for row in batch:
                    event = _event(row)
                    count += 1
                    problem = None
                    if event.seq != expected_seq:
                        problem = (
                            f"expected seq {expected_seq}, found {event.seq} (deleted or inserted)"
                        )
                    elif event.prev_hash != prev:
                        problem = (
                            "prev_hash does not match the previous event (reordered or inserted)"
                        )
                    elif _audit.recompute(event) != event.hash:
                        problem = "hash does not match the event's contents (edited)"
                    if problem:
                        return ChainReport(False, count, prev, event.seq, problem)
                    if anchor is not None and event.seq == anchor[0]:
                        if event.hash != anchor[1]:
                            return ChainReport(
                                False,
                                count,
                                prev,
                                event.seq,
                                "hash differs from the anchor (rewritten)",
                            )
                        anchored = True
                    prev = event.hash
                    expected_seq += 1
        if not anchored:
            return ChainReport(
                False,
                count,
                prev,
                None,
                f"the chain ends before the anchor seq {anchor[0] if anchor else ''} (truncated)",
            )
        return ChainReport(True, count, prev)

    def _q_sql_all_events(self) -> str:
        return _Compiled(
            sa.select(*_AUDIT_COLS).order_by(audit_events.c.seq), self._engine.dialect
        ).sql

    def prove(self, seq: int) -> tuple[AuditEvent, InclusionProof]:
        """The event ``seq`` and a Merkle inclusion proof of it in the current log."""
        _check_id("seq", seq)
        with self._read() as cur:
            rows = self._exec_core(sa.select(*_AUDIT_COLS).where(audit_events.c.seq == seq), cur)
            if not rows:
                raise NotFound("audit event", seq)
            hashes = [
                r[0]
                for r in self._exec_core(
                    sa.select(audit_events.c.hash).order_by(audit_events.c.seq), cur
                )
            ]
        event = _event(rows[0])
        return event, _audit.make_proof(event, seq - 1, hashes)

    # ------------------------------------------------------------ export / import

    def export_json(self) -> dict[str, Any]:
        """Every table as JSON-able rows, in one consistent read."""
        out: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "schema_revision": self.schema_revision,
            "tables": {},
        }
        with self._read() as cur:
            for table in TABLES_IN_ORDER:
                key = [c for c in table.primary_key.columns]
                rows = self._exec_core(sa.select(*table.c).order_by(*key), cur)
                names = [c.name for c in table.c]
                out["tables"][table.name] = [dict(zip(names, r, strict=True)) for r in rows]
        return out

    def import_json(self, document: Mapping[str, Any]) -> dict[str, int]:
        """Restore an ``export_json`` document into an empty store; returns rows per table."""
        tables = _check_export(document)
        with self._write() as tx:
            for table in TABLES_IN_ORDER:
                if self._exec_core(sa.select(sa.literal(1)).select_from(table).limit(1), tx.cur):
                    raise Conflict(f"import_json needs an empty store; table {table.name} has rows")
            counts = {}
            for table in TABLES_IN_ORDER:
                rows = tables.get(table.name, [])
                names = [c.name for c in table.c]
                for index, row in enumerate(rows):
                    if not isinstance(row, Mapping) or set(row) != set(names):
                        raise InvalidInput(
                            f"tables.{table.name}[{index}]", f"must have exactly the keys {names}"
                        )
                    _check_import_row(table, index, row)
                if table is audit_events:
                    _check_import_chain(rows)
                if table is task_dependencies:
                    _check_import_acyclic(rows)
                if rows:
                    q = _Compiled(
                        sa.insert(table).values({n: _B(n) for n in names}), self._engine.dialect
                    )
                    tx.cur.executemany(q.sql, [q.args(r) for r in rows])
                counts[table.name] = len(rows)
            if not self._sqlite:
                for table in (agents, skills, tasks):
                    tx.cur.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                    )
        return counts


# ---------------------------------------------------------------- helpers


_IMPORT_ENUMS: dict[tuple[str, str], Any] = {
    ("tasks", "status"): TaskStatus,
    ("agents", "status"): AgentStatus,
    ("tenants", "status"): TenantStatus,
}
_IMPORT_JSON_ARRAYS = {("tasks", "required_capabilities"), ("agents", "capabilities")}
_IMPORT_JSON = {("tasks", "result"), ("audit_events", "payload")}


def _check_import_row(table: sa.Table, index: int, row: Mapping[str, Any]) -> None:
    """Each value has its column's type and shape, so an import cannot plant a bad row."""
    for column in table.c:
        value = row[column.name]
        field = f"tables.{table.name}[{index}].{column.name}"
        key = (table.name, column.name)
        if value is None:
            if not column.nullable or column.primary_key:
                raise InvalidInput(field, "must not be null")
            continue
        python_type = column.type.python_type
        if python_type is int:
            # INTEGER is 32-bit on PostgreSQL (and in the original's schema).
            high = 2**62 if isinstance(column.type, sa.BigInteger) else MAX_INT4
            if column.name in _IMPORT_IDS:
                low = 1  # the API refuses id 0: such a row could never be read or moved
            else:
                low = -high - 1 if column.name == "priority" else 0
            _check_int(field, value, low=low, high=high)
        elif python_type is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(field, f"must be a number, not {type(value).__name__}")
        else:
            _check_text(field, value, limit=10 * MAX_TEXT, required=False)
        if column.name in _IMPORT_OWN_TIMES or key == ("audit_events", "at"):
            # Columns only this code writes, in its own form; claims and expiry compare
            # lease_expires_at and not_before as text, so another form would strand a task.
            if not _is_own_time(value):
                raise InvalidInput(field, "must be a time like 2026-11-23T19:06:24.123456Z")
        elif column.name in ("created_at", "updated_at"):
            # The store's own form, or any ISO-8601 time (what an adopted database holds).
            if not _is_own_time(value):
                try:
                    datetime.fromisoformat(value)
                except ValueError:
                    raise InvalidInput(
                        field, "must be an ISO-8601 time like 2026-11-23T19:06:24.123456Z"
                    ) from None
        elif column.name == "lease_seconds":
            try:
                _check_lease(value)
            except InvalidInput as exc:
                raise InvalidInput(field, str(exc).split(": ", 1)[1]) from None
        if key in _IMPORT_ENUMS:
            _parse_enum(_IMPORT_ENUMS[key], field, value)
        if key in _IMPORT_JSON_ARRAYS or key in _IMPORT_JSON:
            try:
                parsed = json.loads(value)
                # What the store writes: no NaN or Infinity, no lone surrogate (the
                # chain hashes, PostgreSQL's jsonb and export would refuse them later).
                _audit.canonical_json(parsed).encode("utf-8")
            except (ValueError, RecursionError):
                raise InvalidInput(
                    field, "must hold JSON (no NaN or Infinity, no lone surrogate)"
                ) from None
            if key in _IMPORT_JSON_ARRAYS and key[0] == "tasks":
                check_capabilities(parsed, field)
    if table is tasks:
        _check_import_task(index, row)
    elif table is agents:
        _check_import_agent(index, row)


def _check_import_task(index: int, row: Mapping[str, Any]) -> None:
    """What create_task would refuse, a task row must not bring in either."""
    field = f"tables.tasks[{index}]"
    _check_text(f"{field}.title", row["title"], limit=MAX_TITLE, required=True)
    _check_int(f"{field}.priority", row["priority"], low=-1_000_000, high=1_000_000)
    _check_int(f"{field}.max_attempts", row["max_attempts"], low=1, high=1000)
    key, limit = row["concurrency_key"], row["concurrency_limit"]
    if (key is None) != (limit is None):
        # A key without a limit would never be claimable; a limit without a key, odd.
        raise InvalidInput(
            f"{field}.concurrency_limit", "and concurrency_key must be both set or both null"
        )
    if limit is not None:
        _check_int(f"{field}.concurrency_limit", limit, low=1, high=1_000_000)
        if not key:
            raise InvalidInput(f"{field}.concurrency_key", "must not be empty")
    if row["dedupe_key"] == "":
        raise InvalidInput(f"{field}.dedupe_key", "must not be empty (null is no key)")


def _check_import_agent(index: int, row: Mapping[str, Any]) -> None:
    """What register_agent would refuse, an agent row must not bring in either."""
    field = f"tables.agents[{index}]"
    _check_text(f"{field}.name", row["name"], limit=MAX_NAME, required=True)
    if row["max_tasks"] is not None:
        # 0 would make the agent unable ever to claim, with nothing saying why.
        _check_int(f"{field}.max_tasks", row["max_tasks"], low=1, high=100_000)


def _check_import_acyclic(rows: list[Any]) -> None:
    """No task may wait for itself, directly or through others (add_dependency's rule):
    a task in a cycle would never be ready."""
    edges: dict[int, list[int]] = {}
    for row in rows:
        edges.setdefault(row["task_id"], []).append(row["depends_on"])
    state: dict[int, int] = {}  # 1: on the current path, 2: known to reach no cycle
    for root in sorted(edges):
        if state.get(root):
            continue
        path, stack = [root], [iter(edges[root])]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise InvalidInput(
                    "tables.task_dependencies",
                    f"holds a dependency cycle {cycle}; refusing to import it",
                )
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(edges.get(nxt, ())))


# Integer columns holding ids, which the API takes from 1 up.
_IMPORT_IDS = frozenset({"id", "agent_id", "task_id", "depends_on"})
# Timestamps only this code writes (the original's tables had created_at/updated_at only).
_IMPORT_OWN_TIMES = frozenset(
    {"not_before", "lease_expires_at", "started_at", "finished_at", "last_seen"}
)


def _is_own_time(value: str) -> bool:
    """``value`` is exactly what format_time writes."""
    if len(value) != 27 or value[10] != "T" or value[-1] != "Z":
        return False
    try:
        return format_time(datetime.strptime(value, _OWN_TIME).replace(tzinfo=UTC)) == value
    except (ValueError, InvalidInput):  # InvalidInput: a year before 1000
        return False


def _check_import_chain(rows: list[Any]) -> None:
    """The imported audit log must be an intact chain; later events will build on it."""
    prev = _audit.GENESIS_HASH
    for index, row in enumerate(rows):
        event = AuditEvent(
            seq=row["seq"],
            at=row["at"],
            actor=row["actor"],
            verb=row["verb"],
            subject=row["subject"],
            payload=json.loads(row["payload"]),
            prev_hash=row["prev_hash"],
            hash=row["hash"],
        )
        if (
            event.seq != index + 1
            or event.prev_hash != prev
            or _audit.recompute(event) != event.hash
        ):
            raise InvalidInput(
                f"tables.audit_events[{index}]", "breaks the hash chain; refusing to import it"
            )
        prev = event.hash


def _check_lease(seconds: Any) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise InvalidInput(
            "lease_seconds", f"must be a positive number of seconds, not {seconds!r}"
        )
    if seconds > 366 * 86400:
        raise InvalidInput("lease_seconds", "must be at most a year")
    return float(seconds)


def _check_export(document: Any) -> Mapping[str, Any]:
    if not isinstance(document, Mapping):
        raise InvalidInput("document", "must be a mapping produced by export_json")
    if document.get("format") != EXPORT_FORMAT:
        raise InvalidInput("document.format", f"must be {EXPORT_FORMAT!r}")
    if document.get("version") != EXPORT_VERSION:
        raise InvalidInput(
            "document.version", f"unsupported export version {document.get('version')!r}"
        )
    tables = document.get("tables")
    if not isinstance(tables, Mapping):
        raise InvalidInput("document.tables", "must be a mapping of table name to rows")
    known = {t.name for t in TABLES_IN_ORDER}
    unknown = set(tables) - known
    if unknown:
        raise InvalidInput("document.tables", f"unknown tables {sorted(unknown, key=repr)}")
    for name, rows in tables.items():
        if not isinstance(rows, list):
            raise InvalidInput(f"document.tables.{name}", "must be a list of rows")
    return tables


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _install_sqlite_hooks(engine: sa.Engine, busy_timeout: float) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # We issue BEGIN ourselves (IMMEDIATE for writes), so the driver must not.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _retry_busy(lambda: cur.execute("PRAGMA journal_mode = WAL"), busy_timeout)
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("colibri_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _retry_busy(action: Callable[[], Any], timeout: float) -> None:
    # Switching to WAL needs a moment of exclusive access, which the busy handler
    # does not always wait for; retry within the same budget.
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


_AUDIT_COLUMN_NAMES = ("seq", "at", "actor", "verb", "subject", "payload", "prev_hash", "hash")
_AUDIT_ROWS_PER_INSERT = 500  # 8 parameters a row: well under SQLite's 32766
_AUDIT_HEAD_SQL = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
_AGENT_MAX_TASKS_SQL = "SELECT max_tasks FROM agents WHERE id = ?"  # SQLite claims
# Seconds a Store claims for an agent seen with max_tasks on the general path only,
# before it tries the fast claim again.
_SLOW_CLAIMER_RETRY = 30.0


# The head of the chain, for the server-side appends (one row, genesis when empty).
_PG_AUDIT_HEAD = (
    "SELECT COALESCE((SELECT seq FROM audit_events ORDER BY seq DESC LIMIT 1), 0) AS seq, "
    "COALESCE((SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1), "
    f"'{_audit.GENESIS_HASH}') AS hash"
)
# hash(i) = sha256(hash(i-1) || pre[i] || seq(i) || post[i]): _audit.event_hash, chained
# by the server from the head it reads after the chain lock. The recursive CTE steps
# once per event, each step reading its own element by position. The texts come as
# JSON arrays cast to jsonb once, at bind: a jsonb array finds its i-th element in
# constant time, where a text[] walks every element before it (1000 events took 16 ms
# that way, now 6 ms; 4000 took 170 ms, now 25 ms).
_PG_AUDIT_APPEND_MANY = (
    "WITH RECURSIVE head AS (" + _PG_AUDIT_HEAD + "), "
    "chain(i, seq, prev_hash, hash) AS ("
    "SELECT 0, head.seq, NULL::text, head.hash FROM head "
    "UNION ALL SELECT c.i + 1, c.seq + 1, c.hash, encode(sha256(convert_to("
    "c.hash || (%(pre)s::jsonb ->> c.i) || (c.seq + 1)::text || (%(post)s::jsonb ->> c.i), "
    "'UTF8')), 'hex') FROM chain AS c WHERE c.i < %(n)s::integer) "
    f"INSERT INTO audit_events ({', '.join(_AUDIT_COLUMN_NAMES)}) "
    "SELECT c.seq, %(at)s, %(actor)s, %(verb)s::jsonb ->> (c.i - 1), "
    "%(subject)s::jsonb ->> (c.i - 1), %(payload)s::jsonb ->> (c.i - 1), c.prev_hash, c.hash "
    "FROM chain AS c WHERE c.i > 0"
)


def _json_array(texts: list[str]) -> str:
    return json.dumps(texts, ensure_ascii=False, separators=(",", ":"))


def _claim_audit_sql(order: str, status: str) -> str:
    """The audit insert of the one-round-trip claim, for events in ``order``.

    The events are those ``_audit_claims`` would write for the rows this transaction
    claimed for the agent: ``xmin`` is ours. They are found through an index on their
    status and their lease, which is this claim's own timestamp, so the scan touches
    hardly more than the rows just claimed. Their text around the epoch and the task
    id comes from ``_claim_audit_parts``.
    """
    return (
        "WITH RECURSIVE mine AS (SELECT "
        f"array_agg(tasks.id ORDER BY {order}) AS ids, "
        f"array_agg(tasks.claim_epoch ORDER BY {order}) AS epochs FROM tasks "
        f"WHERE tasks.status = '{status}' AND tasks.lease_expires_at = %(lease)s "
        "AND tasks.agent_id = %(agent_id)s::integer AND tasks.xmin = pg_current_xact_id()::xid), "
        "head AS (" + _PG_AUDIT_HEAD + "), "
        "chain(i, seq, prev_hash, hash) AS ("
        "SELECT 0, head.seq, NULL::text, head.hash FROM head "
        "UNION ALL SELECT c.i + 1, c.seq + 1, c.hash, encode(sha256(convert_to("
        "c.hash || %(pre_a)s || mine.epochs[c.i + 1]::text || %(pre_b)s || (c.seq + 1)::text "
        "|| %(post_a)s || mine.ids[c.i + 1]::text || %(post_b)s, 'UTF8')), 'hex') "
        "FROM chain AS c, mine WHERE c.i < cardinality(mine.ids)) "
        f"INSERT INTO audit_events ({', '.join(_AUDIT_COLUMN_NAMES)}) "
        "SELECT c.seq, %(at)s, %(actor)s, 'claim', 'task:' || mine.ids[c.i]::text, "
        "%(pay_a)s || mine.epochs[c.i]::text || %(pay_b)s, c.prev_hash, c.hash "
        "FROM chain AS c, mine WHERE c.i > 0"
    )


# By (oldest first, started): the status is a literal, so both columns of the agent's
# index (agent_id, status) bound the scan to the agent's active tasks.
_PG_CLAIM_AUDIT = {
    (oldest_first, start): _claim_audit_sql(
        "tasks.id" if oldest_first else "tasks.priority DESC, tasks.id",
        "started" if start else "claimed",
    )
    for oldest_first in (False, True)
    for start in (False, True)
}
_EPOCH_MARK, _ID_MARK = "\x00", "\x01"


def _claim_payload(agent_id: int, epoch: int | str, lease: str | None, start: bool) -> str:
    """A claim event's payload as canonical JSON (sorted keys, no spaces), built directly:
    this runs per claimed task. The lease is our own fixed-width timestamp, which needs
    no escaping."""
    tail = ',"started":true}' if start else "}"
    return f'{{"agent_id":{agent_id},"epoch":{epoch},"lease_expires_at":"{lease}"{tail}'


def _claim_audit_parts(
    at: str, actor: str, agent_id: int, lease: str, start: bool
) -> dict[str, Any]:
    """The fixed text of a claim event around its epoch and task id, as parameters.

    Cut from ``_audit.body_parts`` itself (marks in place of the epoch and the id), so
    the server's payload and hash are byte for byte those of ``_audit_claims``.
    """
    payload = _claim_payload(agent_id, _EPOCH_MARK, lease, start)
    pre, post = _audit.body_parts(at, actor, "claim", f"task:{_ID_MARK}", payload)
    pay_a, pay_b = payload.split(_EPOCH_MARK)
    pre_a, pre_b = pre.split(_EPOCH_MARK)
    # The id mark is a control character, which the subject's JSON escapes.
    post_a, post_b = post.split(json.dumps(_ID_MARK)[1:-1])
    return {
        "agent_id": agent_id,
        "lease": lease,
        "at": at,
        "actor": actor,
        "pay_a": pay_a,
        "pay_b": pay_b,
        "pre_a": pre_a,
        "pre_b": pre_b,
        "post_a": post_a,
        "post_b": post_b,
    }


def _pin_oldest_first_index(sql: str) -> str:
    """Make SQLite walk queued tasks by id through their partial index.

    Without statistics its planner picks another index on ``status`` and then
    sorts every queued task; SQLAlchemy cannot render ``INDEXED BY``, so it is added
    to the two FROM clauses of the oldest-first claim here (checked: both must match).
    """
    pinned = "tasks INDEXED BY ix_tasks_queued_by_age"
    out = sql.replace(
        "FROM tasks AS oldest", f"FROM {pinned.replace('tasks', 'tasks AS oldest', 1)}"
    )
    out = out.replace("FROM tasks \nWHERE", f"FROM {pinned} \nWHERE")
    if out.count("INDEXED BY") != 2:
        raise AssertionError("the oldest-first claim statement changed shape")
    return out


@functools.lru_cache(maxsize=64)
def _audit_insert_sql(n: int) -> str:
    """SQLite: insert ``n`` audit rows (PostgreSQL's appends are built by the server)."""
    row = "(" + ", ".join(["?"] * len(_AUDIT_COLUMN_NAMES)) + ")"
    return f"INSERT INTO audit_events ({', '.join(_AUDIT_COLUMN_NAMES)}) VALUES " + ", ".join(
        [row] * n
    )


_AUDIT_INSERT_ONE = _audit_insert_sql(1)  # the hot paths' one event


_PG_BATCH_UPDATE = {
    action: (
        "WITH items AS (SELECT * FROM unnest(%b::integer[], %b::integer[], %b::text[]) "
        "AS i(id, epoch, value)) "
        f"UPDATE tasks SET {assignments}, finished_at = %s, updated_at = %s FROM items "
        "WHERE tasks.id = items.id AND tasks.claim_epoch = items.epoch "
        f"AND tasks.status IN {allowed} RETURNING tasks.id"
    )
    for action, assignments, allowed in (
        (
            "complete",
            "status = 'done', lease_expires_at = NULL, result = items.value, "
            "input_tokens = 0, output_tokens = 0, cache_read_tokens = 0, "
            "cache_write_tokens = 0, cost_micros = 0",
            "('started')",
        ),
        (
            "fail",
            "status = 'failed', attempts = tasks.attempts + 1, lease_expires_at = NULL, "
            "last_error = items.value",
            "('claimed', 'started')",
        ),
    )
}


@functools.lru_cache(maxsize=64)
def _batch_update_sql(action: str, n: int) -> str:
    """SQLite: ``UPDATE tasks ... FROM`` a VALUES list of (id, epoch, result or error).

    Parameters: finished_at, updated_at, then the items. Each item finds its task by
    primary key (ids in a batch are unique, checked before); the ``+`` keeps the
    planner from walking the status index instead.
    """
    if action == "complete":
        assignments = (
            "status = 'done', lease_expires_at = NULL, result = items.column3, "
            "input_tokens = 0, output_tokens = 0, cache_read_tokens = 0, "
            "cache_write_tokens = 0, cost_micros = 0"
        )
        allowed = "('started')"
    else:
        assignments = (
            "status = 'failed', attempts = attempts + 1, lease_expires_at = NULL, "
            "last_error = items.column3"
        )
        allowed = "('claimed', 'started')"
    values = ", ".join(["(?, ?, ?)"] * n)
    return (
        f"UPDATE tasks SET {assignments}, finished_at = ?, updated_at = ? "
        f"FROM (VALUES {values}) AS items "
        "WHERE tasks.id = items.column1 AND tasks.claim_epoch = items.column2 "
        f"AND +tasks.status IN {allowed} RETURNING tasks.id"
    )


def _watch_data_version(
    conn: sqlite3.Connection, budget: float, start: int, stop: Callable[[], bool]
) -> bool:
    """Wait up to ``budget`` seconds for a commit after marker ``start``; True if one came.
    Gives up (False) as soon as ``stop()`` is true."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        time.sleep(min(0.005, max(0.0, deadline - time.monotonic())))
        if stop():
            return False
        if conn.execute("PRAGMA data_version").fetchone()[0] != start:
            return True
    return False


def _watch_notifies(conn: Any, budget: float, stop: Callable[[], bool]) -> bool:
    """PostgreSQL: wait up to ``budget`` seconds for a notification; True if one came.
    Listens in slices of ``_WAIT_SLICE`` and gives up (False) once ``stop()`` is true."""
    deadline = time.monotonic() + budget
    while not stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if any(True for _ in conn.notifies(timeout=min(left, _WAIT_SLICE), stop_after=1)):
            return True
    return False


def _refusal(current: list[Any], action: str, task_id: int, epoch: int) -> StoreError:
    """Why a fenced ``action`` on ``task_id`` with ``epoch`` matched no row (``current``:
    the task's row, read after, or nothing)."""
    if not current:
        return NotFound("task", task_id)
    task = _task(current[0])
    if task.claim_epoch != epoch:
        return StaleEpoch(task_id, epoch, task.claim_epoch)
    return InvalidTransition("task", task_id, task.status.value, action)


def _rolled_back(conn_or_cursor: Any, exc: BaseException | None) -> None:
    """After a failed write: roll back, and raise a database refusal as Conflict.

    Other errors are left to the caller to re-raise (``raise`` in its except block).
    """
    with contextlib.suppress(Exception):
        conn_or_cursor.execute("ROLLBACK")
    if exc is not None and not isinstance(exc, StoreError) and _is_integrity_error(exc):
        raise Conflict(f"the database refused the change: {exc}") from exc


def _is_integrity_error(exc: BaseException) -> bool:
    return type(exc).__name__ in {
        "IntegrityError",
        "UniqueViolation",
        "ForeignKeyViolation",
        "CheckViolation",
        "NotNullViolation",
    }


_STATUS_OF = {status.value: status for status in TaskStatus}
_TASK_ROW_ORDER = (
    "id agent_id status title description created_at updated_at required_capabilities "
    "priority attempts max_attempts claim_epoch lease_expires_at session_id result last_error "
    "input_tokens output_tokens cache_read_tokens cache_write_tokens cost_micros started_at "
    "finished_at dedupe_key concurrency_key concurrency_limit not_before lease_seconds"
).split()
# _task unpacks rows and builds Task positionally (a hot path): both orders must hold.
if [c.name for c in _TASK_COLS] != _TASK_ROW_ORDER:
    raise AssertionError("tasks columns changed order; update _task")
if [f.name for f in attrs.fields(Task)] != [
    "id", "title", "description", "status", "agent_id", "required_capabilities", "priority",
    "attempts", "max_attempts", "claim_epoch", "lease_expires_at", "session_id", "result",
    "last_error", "usage", "created_at", "updated_at", "started_at", "finished_at",
    "depends_on", "dedupe_key", "concurrency_key", "concurrency_limit", "not_before",
    "lease_seconds",
]:  # fmt: skip
    raise AssertionError("Task fields changed order; update _task")
_TASK_WIDTH = len(_TASK_ROW_ORDER)
# Statements returning a task for a Task value: its columns, then its dependencies,
# then (SQLite's hot statements) the audit chain head.
_ROW_DEPS = _TASK_WIDTH
_ROW_HEAD = _TASK_WIDTH + 1
_ROW_ID = _TASK_INDEX["id"]
_ROW_EPOCH = _TASK_INDEX["claim_epoch"]
_ROW_LEASE = _TASK_INDEX["lease_expires_at"]
_ROW_PRIORITY = _TASK_INDEX["priority"]
_ROW_CONCURRENCY_KEY = _TASK_INDEX["concurrency_key"]
_ROW_LEASE_SECONDS = _TASK_INDEX["lease_seconds"]


def _claimed_as_is(row: Sequence[Any], lease_seconds: float | None) -> bool:
    """A claimed row needs no settling: no concurrency key, and no lease of its own
    to apply (the claim gave none)."""
    return row[_ROW_CONCURRENCY_KEY] is None and (
        lease_seconds is not None or row[_ROW_LEASE_SECONDS] is None
    )


def _queued_task(
    task_id: int,
    title: str,
    description: str | None,
    caps: tuple[str, ...],
    priority: int,
    max_attempts: int,
    session_id: str | None,
    now: str,
    deps: tuple[int, ...],
    dedupe_key: str | None = None,
    concurrency_key: str | None = None,
    concurrency_limit: int | None = None,
    not_before: str | None = None,
    lease_seconds: float | None = None,
) -> Task:
    """A task just created, from what was sent and the schema's defaults (no read)."""
    return Task(
        task_id,
        title,
        description,
        TaskStatus.QUEUED,
        None,
        caps,
        priority,
        0,
        max_attempts,
        0,
        None,
        session_id,
        None,
        None,
        _NO_USAGE,
        now,
        now,
        None,
        None,
        deps,
        dedupe_key,
        concurrency_key,
        concurrency_limit,
        not_before,
        lease_seconds,
    )


def _task_returned(row: Sequence[Any]) -> Task:
    """A Task from a row whose task columns are followed by its dependencies' text."""
    csv = row[_ROW_DEPS]
    return _task(row, _dep_ids(csv) if csv else ())


def _dep_ids(csv: str) -> tuple[int, ...]:
    return tuple(sorted(int(d) for d in csv.split(",")))


def _task(row: Sequence[Any], deps: tuple[int, ...] = ()) -> Task:
    if len(row) != _TASK_WIDTH:
        row = row[:_TASK_WIDTH]  # a query that selects more after the task's columns
    (
        task_id,
        agent_id,
        status,
        title,
        description,
        created_at,
        updated_at,
        caps,
        priority,
        attempts,
        max_attempts,
        claim_epoch,
        lease_expires_at,
        session_id,
        result,
        last_error,
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_write_tokens,
        cost_micros,
        started_at,
        finished_at,
        dedupe_key,
        concurrency_key,
        concurrency_limit,
        not_before,
        lease_seconds,
    ) = row
    if input_tokens or output_tokens or cache_read_tokens or cache_write_tokens or cost_micros:
        usage = Usage(
            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_micros
        )
    else:
        usage = _NO_USAGE
    return Task(
        task_id,
        title,
        description,
        _STATUS_OF[status],
        agent_id,
        () if caps == "[]" else tuple(json.loads(caps)),
        priority,
        attempts,
        max_attempts,
        claim_epoch,
        lease_expires_at,
        session_id,
        json.loads(result) if result is not None else None,
        last_error,
        usage,
        created_at,
        updated_at,
        started_at,
        finished_at,
        deps,
        dedupe_key,
        concurrency_key,
        concurrency_limit,
        not_before,
        lease_seconds,
    )


def _caps_tuple(text: str) -> tuple[str, ...]:
    return () if text == "[]" else tuple(json.loads(text))


def _agent(row: Sequence[Any]) -> Agent:
    caps = json.loads(row[2]) if row[2] else []
    # A row written by the original may hold an object here; it covers nothing.
    capabilities = tuple(c for c in caps if isinstance(c, str)) if isinstance(caps, list) else ()
    return Agent(
        id=row[0],
        name=row[1],
        capabilities=capabilities,
        status=_lenient_agent_status(row[3]),
        created_at=row[4],
        host=row[5],
        last_seen=row[6],
        max_tasks=row[7],
    )


def _lenient_agent_status(value: str) -> AgentStatus:
    try:
        return AgentStatus(value)
    except ValueError:
        return AgentStatus.OFFLINE


def _tenant(row: Sequence[Any]) -> Tenant:
    return Tenant(row[0], row[1], row[2], TenantStatus(row[3]), row[4], row[5])


def _event(row: Sequence[Any]) -> AuditEvent:
    return AuditEvent(
        seq=row[0],
        at=row[1],
        actor=row[2],
        verb=row[3],
        subject=row[4],
        payload=json.loads(row[5]),
        prev_hash=row[6],
        hash=row[7],
    )


__all__ = ["Store", "check_capabilities", "format_time"]
