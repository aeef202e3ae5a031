"""The glasspane: a set of panes, the secrets to mask in them, and their snapshot."""

from __future__ import annotations

import time
from collections.abc import Callable

from colibri_glasspane._machine import PaneMachine
from colibri_glasspane._mask import Masker
from colibri_glasspane._model import (
    SNAPSHOT_VERSION,
    GlasspaneConfig,
    Pane,
    ProcessState,
    Runtime,
    Snapshot,
    StreamMode,
)
from colibri_glasspane.errors import DuplicatePane, InvalidArgument, UnknownPane

Clock = Callable[[], float]


def _check_text(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InvalidArgument(name, f"must be a str, got {type(value).__name__}")


class Glasspane:
    """Every agent's event stream, one pane each: bytes in, pane state out.

    Pure: it reads no file, socket or process. The caller feeds each pane the
    bytes its agent wrote (in any chunks) and reports the process's state; the
    clock (seconds, ``time.time`` by default) is only read, and can be injected.
    Not thread-safe: use it from one thread or task.
    """

    def __init__(
        self,
        *,
        host: str = "",
        clock: Clock = time.time,
        config: GlasspaneConfig | None = None,
    ) -> None:
        _check_text("host", host)
        if not callable(clock):
            raise InvalidArgument("clock", "must be a callable returning seconds as a float")
        self.host = host
        self.config = config if config is not None else GlasspaneConfig()
        self._clock = clock
        self._panes: dict[str, PaneMachine] = {}
        self._global_secrets: set[str] = set()
        self._tenant_secrets: dict[str, set[str]] = {}
        self._pane_secrets: dict[str, set[str]] = {}

    # --- panes ----------------------------------------------------------------

    def open_pane(
        self,
        pane_id: str,
        *,
        agent: str = "",
        runtime: Runtime = Runtime.PI,
        mode: StreamMode = StreamMode.AUTO,
        tenant: str | None = None,
        session_id: str | None = None,
        cwd: str | None = None,
    ) -> None:
        """Start watching one agent session; feed it with :meth:`feed`."""
        _check_text("pane_id", pane_id)
        if not pane_id:
            raise InvalidArgument("pane_id", "must not be empty")
        _check_text("agent", agent)
        _check_text("tenant", tenant, optional=True)
        _check_text("session_id", session_id, optional=True)
        _check_text("cwd", cwd, optional=True)
        if not isinstance(runtime, Runtime):
            raise InvalidArgument("runtime", f"must be a Runtime, got {runtime!r}")
        if not isinstance(mode, StreamMode):
            raise InvalidArgument("mode", f"must be a StreamMode, got {mode!r}")
        if pane_id in self._panes:
            raise DuplicatePane(pane_id)
        masker = self._masker_for(pane_id, tenant)
        self._panes[pane_id] = PaneMachine(
            pane_id=pane_id,
            agent=agent,
            tenant=tenant,
            runtime=runtime,
            mode=mode,
            session_id=masker.mask_optional(session_id),
            cwd=masker.mask_optional(cwd),
            opened_at=self._clock(),
            config=self.config,
            masker=masker,
        )

    def close_pane(self, pane_id: str) -> Pane:
        """Stop watching a pane; returns its last view."""
        machine = self._machine(pane_id)
        view = machine.view(self._clock())
        del self._panes[pane_id]
        self._pane_secrets.pop(pane_id, None)
        return view

    def pane_ids(self) -> tuple[str, ...]:
        """The open panes' ids, sorted."""
        return tuple(sorted(self._panes))

    def feed(self, pane_id: str, data: bytes | bytearray | memoryview) -> None:
        """Ingest bytes the pane's agent wrote: any chunking, ``\\n`` between events.

        Malformed lines, unknown event types and oversize lines are counted on
        the pane, never raised.
        """
        machine = self._machine(pane_id)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidArgument("data", f"must be bytes, got {type(data).__name__}")
        machine.feed(data, self._clock())

    def end_of_stream(self, pane_id: str) -> None:
        """The agent's output closed: judge an unterminated last line (if any) too."""
        self._machine(pane_id).end_of_stream(self._clock())

    def set_process_state(self, pane_id: str, process: ProcessState) -> None:
        """Record the agent process's state (from the spawner).

        Report an exit after feeding the pane everything the process wrote, so
        its last events are judged before its exit.
        """
        if not isinstance(process, ProcessState):
            raise InvalidArgument("process", f"must be a ProcessState, got {process!r}")
        self._machine(pane_id).process = process

    def pane(self, pane_id: str) -> Pane:
        """The pane's current view (state, flags, counters...), every string masked."""
        return self._machine(pane_id).view(self._clock())

    def snapshot(self, *, attention_only: bool = False, session_id: str | None = None) -> Snapshot:
        """Every pane (or those that need attention / belong to a session), ordered by id."""
        now = self._clock()
        panes = tuple(self._panes[pane_id].view(now) for pane_id in sorted(self._panes))
        whole = Snapshot(version=SNAPSHOT_VERSION, host=self.host, generated_at=now, panes=panes)
        return whole.filtered(attention_only=attention_only, session_id=session_id)

    # --- secrets --------------------------------------------------------------

    def register_secret(
        self, value: str, *, pane_id: str | None = None, tenant: str | None = None
    ) -> None:
        """Mask ``value`` from now on, in strings kept so far too.

        With ``pane_id`` it applies to that pane, with ``tenant`` to every pane of
        the tenant (open now or later), with neither to every pane.
        """
        _check_text("value", value)
        if not value.strip():
            raise InvalidArgument("value", "a secret must not be empty or blank")
        if pane_id is not None and tenant is not None:
            raise InvalidArgument("pane_id", "give pane_id or tenant, not both")
        if pane_id is not None:
            self._machine(pane_id)
            self._pane_secrets.setdefault(pane_id, set()).add(value)
        elif tenant is not None:
            _check_text("tenant", tenant)
            self._tenant_secrets.setdefault(tenant, set()).add(value)
        else:
            self._global_secrets.add(value)
        for machine in self._panes.values():
            if pane_id is not None and machine.pane_id != pane_id:
                continue
            if tenant is not None and machine.tenant != tenant:
                continue
            machine.remask(self._masker_for(machine.pane_id, machine.tenant))

    def _masker_for(self, pane_id: str, tenant: str | None) -> Masker:
        secrets = set(self._global_secrets)
        secrets |= self._pane_secrets.get(pane_id, set())
        if tenant is not None:
            secrets |= self._tenant_secrets.get(tenant, set())
        return Masker(secrets)

    def _machine(self, pane_id: str) -> PaneMachine:
        try:
            return self._panes[pane_id]
        except KeyError:
            raise UnknownPane(pane_id) from None
        except TypeError:
            raise InvalidArgument("pane_id", f"must be a str, got {pane_id!r}") from None
