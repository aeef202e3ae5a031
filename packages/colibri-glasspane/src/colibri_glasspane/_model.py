"""The glasspane's public values: enums, process state, a pane's view, the snapshot."""

from __future__ import annotations

import enum
import signal as _signal

import attrs

from colibri_glasspane.errors import InvalidArgument

SNAPSHOT_VERSION = 1


class AgentState(enum.Enum):
    """What the agent is doing, as its event stream and process tell it."""

    IDLE = "idle"
    """Nothing running: not started yet, or (rpc) waiting for the next prompt."""
    WORKING = "working"
    """A run, a retry or a compaction is in progress."""
    BLOCKED = "blocked"
    """Waiting on a person: an rpc dialog, or queued steering / follow-up messages."""
    DONE = "done"
    """The final run ended with stop reason ``stop`` or ``length`` and nothing failed after."""
    ERROR = "error"
    """The run failed, or the process ended without a final successful event."""


class Runtime(enum.Enum):
    """Which agent harness wrote the stream."""

    PI = "pi"
    ZOT = "zot"


class StreamMode(enum.Enum):
    """How the harness runs: one-shot (``--mode json``) or long-lived (``--mode rpc``).

    ``AUTO`` decides from the stream: a Pi ``session`` header means json mode, an
    rpc ``response`` or ``extension_ui_request`` means rpc mode.
    """

    AUTO = "auto"
    JSON = "json"
    RPC = "rpc"


class Flag(enum.Enum):
    """Derived facts shown beside the state."""

    STALLED = "stalled"
    """Working, but no event for longer than the configured stall time."""
    NEEDS_ATTENTION = "needs_attention"
    """State error or blocked, or stalled."""
    RETRYING = "retrying"
    """Pi is retrying a failed provider request (``auto_retry_start``)."""
    COMPACTING = "compacting"
    """Pi is compacting the context."""
    TRUNCATED = "truncated"
    """The last run stopped at the output length limit (stop reason ``length``)."""
    ABORTED = "aborted"
    """The last run was aborted (stop reason ``aborted``)."""
    KILLED = "killed"
    """The process ended by a signal (or exit 128+N, the shell's way of saying so)."""


class ProcessKind(enum.Enum):
    """The life stage of the agent's process, as the caller (the spawner) reports it."""

    STARTING = "starting"
    RUNNING = "running"
    EXITED = "exited"
    KILLED = "killed"
    LOST = "lost"


@attrs.frozen
class ProcessState:
    """The agent process's state; build one with the class methods."""

    kind: ProcessKind
    code: int | None = None
    """Exit code, for ``exited`` only."""
    signal: int | None = None
    """Signal number, for ``killed`` only."""

    def __attrs_post_init__(self) -> None:
        if self.kind is ProcessKind.EXITED:
            if not isinstance(self.code, int) or self.signal is not None:
                raise InvalidArgument("process", "exited needs an int exit code and no signal")
        elif self.kind is ProcessKind.KILLED:
            if not isinstance(self.signal, int) or self.signal <= 0 or self.code is not None:
                raise InvalidArgument("process", "killed needs a positive signal number, no code")
        elif self.code is not None or self.signal is not None:
            raise InvalidArgument("process", f"{self.kind.value} takes no exit code or signal")

    @classmethod
    def starting(cls) -> ProcessState:
        """Spawned, not yet confirmed running."""
        return cls(ProcessKind.STARTING)

    @classmethod
    def running(cls) -> ProcessState:
        """Known to be alive."""
        return cls(ProcessKind.RUNNING)

    @classmethod
    def exited(cls, code: int) -> ProcessState:
        """Ended with this exit code."""
        return cls(ProcessKind.EXITED, code=code)

    @classmethod
    def killed(cls, signal: int) -> ProcessState:
        """Ended by this signal number."""
        return cls(ProcessKind.KILLED, signal=signal)

    @classmethod
    def lost(cls) -> ProcessState:
        """Gone, and its exit status is unknown."""
        return cls(ProcessKind.LOST)

    @property
    def ended(self) -> bool:
        """True once the process is no longer running (exited, killed or lost)."""
        return self.kind in (ProcessKind.EXITED, ProcessKind.KILLED, ProcessKind.LOST)

    @property
    def death_signal(self) -> int | None:
        """The signal that ended it: a kill, or an exit code 128+N (129..192)."""
        if self.kind is ProcessKind.KILLED:
            return self.signal
        if self.kind is ProcessKind.EXITED and self.code is not None and 128 < self.code <= 192:
            return self.code - 128
        return None

    def describe(self) -> str:
        """A short phrase: ``exited 1``, ``killed by SIGTERM``, ``killed by SIGTERM (exit 143)``."""
        sig = self.death_signal
        if sig is not None:
            text = f"killed by {signal_name(sig)}"
            return text if self.kind is ProcessKind.KILLED else f"{text} (exit {self.code})"
        if self.kind is ProcessKind.EXITED:
            return f"exited {self.code}"
        if self.kind is ProcessKind.LOST:
            return "process lost (exit status unknown)"
        return str(self.kind.value)


def signal_name(number: int) -> str:
    """``SIGTERM`` for 15 on this platform, ``signal 99`` for a number it does not know."""
    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@attrs.frozen
class Usage:
    """Tokens and cost summed over every assistant message of the pane (retries included)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost_nanousd: int = 0
    """Cost in billionths of a US dollar, kept as an integer so sums are exact."""

    @property
    def cost_usd(self) -> float:
        """The cost in US dollars."""
        return self.cost_nanousd / 1e9


@attrs.frozen
class LineCounters:
    """What the line reader saw: every complete line lands in exactly one of the last four."""

    bytes: int = 0
    """Bytes consumed up to and including the last newline."""
    events: int = 0
    """Lines that were events this pane understands."""
    unknown: int = 0
    """JSON objects with a ``type`` this pane does not know (ignored)."""
    malformed: int = 0
    """Invalid JSON or UTF-8, not an object, no ``type``, or a known event with wrong fields."""
    oversize: int = 0
    """Lines longer than the configured bound, skipped without being buffered."""


@attrs.frozen
class ToolCall:
    """A tool execution: name, call id, when it started and its (masked, shortened) arguments."""

    name: str
    call_id: str | None = None
    started_at: float | None = None
    args: str = ""


@attrs.frozen
class Pane:
    """One agent session's pane at one moment; every string in it is already masked."""

    id: str
    agent: str
    tenant: str | None
    runtime: Runtime
    mode: StreamMode
    session_id: str | None
    cwd: str | None
    state: AgentState
    flags: tuple[Flag, ...]
    """Sorted by value, so equal panes serialise identically."""
    reason: str | None
    """Why the state is error or blocked: ``killed by SIGTERM``, ``provider error: ...``."""
    process: ProcessState
    current_tool: ToolCall | None
    last_tool: ToolCall | None
    tool_calls: int
    turns: int
    retries: int
    stop_reason: str | None
    """Stop reason of the last finished run's last assistant message."""
    opened_at: float
    last_event_at: float | None
    last_error: str | None
    text_tail: str
    """The end of the last assistant text."""
    usage: Usage
    lines: LineCounters

    @property
    def needs_attention(self) -> bool:
        """True when an operator should look: error, blocked or stalled."""
        return Flag.NEEDS_ATTENTION in self.flags

    @property
    def stalled(self) -> bool:
        """True when working but silent for longer than the stall time."""
        return Flag.STALLED in self.flags


@attrs.frozen
class Snapshot:
    """The versioned, JSON-serialisable view of every pane, ordered by pane id."""

    version: int
    host: str
    generated_at: float
    panes: tuple[Pane, ...]

    def to_json(self) -> str:
        """Serialise to a JSON document; :meth:`from_json` gives back an equal snapshot."""
        from colibri_glasspane._snapshot import snapshot_to_json

        return snapshot_to_json(self)

    @classmethod
    def from_json(cls, document: str | bytes) -> Snapshot:
        """Parse a document made by :meth:`to_json`; raises ``SnapshotError`` if it is not one."""
        from colibri_glasspane._snapshot import snapshot_from_json

        return snapshot_from_json(document)

    def filtered(self, *, attention_only: bool = False, session_id: str | None = None) -> Snapshot:
        """The same snapshot keeping only panes that need attention and/or belong to a session."""
        panes = tuple(
            p
            for p in self.panes
            if (not attention_only or p.needs_attention)
            and (session_id is None or p.session_id == session_id)
        )
        return attrs.evolve(self, panes=panes)


@attrs.frozen
class GlasspaneConfig:
    """Limits and timings; every pane of a :class:`Glasspane` uses the same ones."""

    max_line_bytes: int = 8 * 1024 * 1024
    """Longer lines are skipped and counted, never buffered whole."""
    stall_after: float = 4 * 3600.0
    """Seconds without an event after which a working pane is flagged stalled."""
    text_tail_chars: int = 280
    """How much of the last assistant text a pane keeps."""
    tool_args_chars: int = 200
    """How much of a tool call's arguments (as JSON) a pane keeps."""

    def __attrs_post_init__(self) -> None:
        for name in ("max_line_bytes", "text_tail_chars", "tool_args_chars"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidArgument(name, f"must be a positive int, got {value!r}")
        if not isinstance(self.stall_after, int | float) or self.stall_after <= 0:
            raise InvalidArgument(
                "stall_after", f"must be positive seconds, got {self.stall_after!r}"
            )
