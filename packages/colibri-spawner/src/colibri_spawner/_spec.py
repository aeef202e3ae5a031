"""Values: what to start (AgentSpec) and what became of it (ExitRecord, AgentStatus)."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from colibri_spawner.errors import InvalidSpec

_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class Runtime(enum.Enum):
    """Where an agent runs."""

    LOCAL = "local"
    JAIL = "jail"
    SANDBOX = "sandbox"


class StdinMode(enum.Enum):
    """What the agent's stdin is.

    ``CLOSED``: ``/dev/null`` (Pi json mode reads a piped stdin to EOF first).
    ``PIPE``: a FIFO in the session directory, held open by the shim so that it
    survives a supervisor restart; lines are written with ``AgentHandle.send``.
    """

    CLOSED = "closed"
    PIPE = "pipe"


class ProvisionPolicy(enum.Enum):
    """What a failing provision hook does to the spawn."""

    REQUIRED = "required"
    BEST_EFFORT = "best-effort"


class AgentState(enum.Enum):
    """What is known about an agent process."""

    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"  # the shim died without an exit record


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    # A bare string is iterable too: it would become one argument per character.
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidSpec(
            f"argv must be a list of strings, not {type(value).__name__}", field="argv"
        )
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise InvalidSpec(
                f"argv items must be strings, not {type(item).__name__} ({item!r})",
                field="argv",
            )
    return items


def _freeze_env(env: Mapping[str, str]) -> Mapping[str, str]:
    if not isinstance(env, Mapping):
        raise InvalidSpec(f"env must be a mapping, not {type(env).__name__}", field="env")
    for key, val in env.items():
        if not isinstance(key, str) or not isinstance(val, str):
            raise InvalidSpec(
                f"environment variable {key!r} must map a string to a string", field="env"
            )
    return MappingProxyType(dict(env))


def is_session_id(value: object) -> bool:
    """True if ``value`` is a well-formed session id (safe as a directory name)."""
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


def _check_session_id(_inst: object, _attr: object, value: str) -> None:
    if not is_session_id(value):
        raise InvalidSpec(
            f"session id {value!r} must be 1-128 characters of [A-Za-z0-9._-] "
            "starting with a letter or digit",
            field="session_id",
        )


def _check_argv(_inst: object, _attr: object, value: tuple[str, ...]) -> None:
    if not value or not value[0]:
        raise InvalidSpec("argv must name a program as its first item", field="argv")
    if any("\0" in a for a in value):
        raise InvalidSpec("argv items must not contain NUL bytes", field="argv")


def _check_cwd(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not value or "\0" in value:
        raise InvalidSpec(f"cwd {value!r} must be a non-empty string without NUL", field="cwd")


def _check_jail_name(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidSpec(f"jail_name {value!r} must be a string or None", field="jail_name")


def _check_env(_inst: object, _attr: object, value: Mapping[str, str]) -> None:
    for key, val in value.items():
        if not key or "=" in key or "\0" in key or "\0" in val:
            raise InvalidSpec(
                f"environment variable {key!r} is malformed (empty, '=' or NUL)", field="env"
            )


def _check_enum(kind: type[enum.Enum], field: str) -> Callable[[object, object, object], None]:
    def check(_inst: object, _attr: object, value: object) -> None:
        # A plain string ("local") equals no member: it would slip past every
        # runtime comparison and fail much later, or not at all.
        if not isinstance(value, kind):
            raise InvalidSpec(f"{field} must be a {kind.__name__}, not {value!r}", field=field)

    return check


@attrs.frozen
class AgentSpec:
    """What to start.

    ``argv[0]`` is resolved to an absolute path before the start (service managers
    run with a minimal PATH); ``env`` is the agent's *whole* environment (nothing is
    inherited from the supervisor); ``cwd`` is a host directory for ``local`` and
    ``sandbox`` (bound at ``/work``) and a path inside the jail for ``jail``.
    ``jail_name`` picks a static named jail (``jail`` runtime only); without it the
    jail provider uses its pool or makes an ephemeral jail.
    """

    argv: tuple[str, ...] = attrs.field(converter=_str_tuple, validator=_check_argv)
    session_id: str = attrs.field(validator=_check_session_id)
    cwd: str = attrs.field(validator=_check_cwd)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_env, validator=_check_env)
    runtime: Runtime = attrs.field(default=Runtime.LOCAL, validator=_check_enum(Runtime, "runtime"))
    stdin: StdinMode = attrs.field(
        default=StdinMode.CLOSED, validator=_check_enum(StdinMode, "stdin")
    )
    jail_name: str | None = attrs.field(default=None, validator=_check_jail_name)


@attrs.frozen
class ProvisionContext:
    """What a provision hook is told: where the agent is about to run."""

    session_id: str
    runtime: Runtime
    root: str  # the jail root, the sandbox work dir, or the local cwd (host paths)
    jail_name: str | None = None
    user: str | None = None


@attrs.frozen
class ProvisionOutcome:
    """What became of the provision hook (``None`` on a handle when no hook ran)."""

    ok: bool
    policy: ProvisionPolicy
    error: str | None = None


@attrs.frozen
class ExitRecord:
    """How an agent ended, as its shim recorded it.

    Exactly one of ``code`` and ``signal`` is set. ``returncode`` follows
    ``subprocess``: the exit code, or minus the signal number.
    """

    pid: int
    code: int | None
    signal: int | None
    started_at: float
    ended_at: float
    cleanup: tuple[Mapping[str, Any], ...] = ()

    @property
    def returncode(self) -> int:
        """Exit code, or ``-signal`` for a signal death (as ``subprocess`` reports)."""
        if self.signal is not None:
            return -self.signal
        return self.code if self.code is not None else -1

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExitRecord:
        """Build from the shim's ``exit.json``."""
        return cls(
            pid=int(data["pid"]),
            code=None if data.get("code") is None else int(data["code"]),
            signal=None if data.get("signal") is None else int(data["signal"]),
            started_at=float(data["started_at"]),
            ended_at=float(data["ended_at"]),
            cleanup=tuple(data.get("cleanup", ())),
        )


@attrs.frozen
class AgentStatus:
    """A point-in-time view of one agent: running, exited (with its record) or unknown."""

    session_id: str
    state: AgentState
    pid: int | None  # a hint: pids are reused; identity is the shim's lock
    exit: ExitRecord | None = None


@attrs.frozen
class LogChunk:
    """Complete lines read from a session log, and the offset just past the last one.

    Persist ``offset`` together with whatever was derived from ``lines``; reading
    again from it neither skips nor repeats a line. A partial last line is not
    returned until its ``\\n`` arrives.
    """

    lines: tuple[bytes, ...]
    offset: int
