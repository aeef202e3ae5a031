"""The Spawner (start, find, stop agents) and the AgentHandle (watch one agent)."""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import select
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from colibri_spawner import _shim
from colibri_spawner._log import read_lines
from colibri_spawner._providers import LocalProvider, Prepared, Provider
from colibri_spawner._spec import (
    AgentSpec,
    AgentState,
    AgentStatus,
    ExitRecord,
    LogChunk,
    ProvisionContext,
    ProvisionOutcome,
    ProvisionPolicy,
    StdinMode,
    is_session_id,
)
from colibri_spawner.errors import (
    AgentLost,
    AgentNotFound,
    DuplicateSession,
    InvalidSpec,
    NotRunning,
    ProvisionFailed,
    StartFailed,
    StillRunning,
    WaitTimeout,
)

ProvisionHook = Callable[[ProvisionContext], object]

_PROVISION = "provision.json"


def _check_seconds(name: str, value: object, *, positive: bool = False) -> float:
    # NaN compares false with every deadline, so a wait given NaN never ended; an
    # infinite one never ends either. Every wait here is bounded.
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        bound = "> 0" if positive else ">= 0"
        raise InvalidSpec(
            f"{name} must be a finite number of seconds {bound}, not {value!r}", field=name
        )
    return float(value)


class AgentHandle:
    """One agent's session directory: its status, its logs, its stdin.

    A handle holds no process object: everything is read from the directory, so a
    handle made after a supervisor restart is as good as the one ``spawn`` returned.
    """

    __slots__ = ("directory", "session_id")

    def __init__(self, directory: Path, session_id: str) -> None:
        self.directory = directory
        self.session_id = session_id

    def __repr__(self) -> str:
        return f"AgentHandle({self.session_id!r}, {str(self.directory)!r})"

    @property
    def log_path(self) -> Path:
        """The append-only JSONL session log (the agent's stdout)."""
        return self.directory / _shim.OUT

    @property
    def stderr_path(self) -> Path:
        """The agent's stderr log."""
        return self.directory / _shim.ERR

    def _json(self, name: str) -> dict[str, Any] | None:
        # Records written without fsync (spec, state) can be empty or torn after a
        # host crash: such a record reads as absent, so that status(), agents() and
        # sweep() at the next start still work.
        try:
            with open(self.directory / name, encoding="utf-8") as fh:
                data = json.load(fh)
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @property
    def spec(self) -> dict[str, Any]:
        """What was started, as recorded (argv as exec'd, provider details)."""
        return self._json(_shim.SPEC) or {}

    @property
    def provision(self) -> ProvisionOutcome | None:
        """What the provision hook did, or None if none ran."""
        data = self._json(_PROVISION)
        if data is None:
            return None
        return ProvisionOutcome(
            ok=bool(data["ok"]), policy=ProvisionPolicy(data["policy"]), error=data.get("error")
        )

    @property
    def pid(self) -> int | None:
        """The agent's pid as recorded: a hint (pids are reused), not an identity."""
        state = self._json(_shim.STATE)
        return None if state is None else int(state["pid"])

    def exit_record(self) -> ExitRecord | None:
        """The shim's exit record, if the agent has ended."""
        data = self._json(_shim.EXIT)
        return None if data is None else ExitRecord.from_json(data)

    def _shim_alive(self) -> bool:
        try:
            fd = os.open(self.directory / _shim.LOCK, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the lock if we got it
        return False

    def status(self) -> AgentStatus:
        """Running (the shim holds its lock), exited (record), or unknown (shim died)."""
        record = self.exit_record()
        if record is None:
            if self._shim_alive():
                return AgentStatus(self.session_id, AgentState.RUNNING, self.pid)
            record = self.exit_record()  # it may have ended between the two looks
            if record is None:
                return AgentStatus(self.session_id, AgentState.UNKNOWN, self.pid)
        return AgentStatus(self.session_id, AgentState.EXITED, record.pid, record)

    def read(self, offset: int = 0, max_bytes: int = 8 << 20) -> LogChunk:
        """Complete lines of the session log from ``offset`` (see LogChunk)."""
        return read_lines(self.log_path, offset, max_bytes)

    def wait_lines(self, offset: int = 0, timeout: float = 30.0) -> LogChunk:
        """Wait until at least one complete line follows ``offset``, or the agent ends.

        Returns an empty chunk when the agent has ended with nothing more to read;
        raises WaitTimeout when neither happens in time.
        """
        _check_seconds("timeout", timeout)
        deadline = time.monotonic() + timeout
        pause, waited = 0.0002, 0.0
        while True:
            chunk = read_lines(self.log_path, offset)
            if chunk.lines:
                return chunk
            if (self.directory / _shim.EXIT).exists():
                return read_lines(self.log_path, offset)
            if time.monotonic() >= deadline:
                raise WaitTimeout(self.session_id, "new line", timeout)
            time.sleep(pause)
            pause = min(pause * 1.5, 0.002 if waited < 2.0 else 0.05)
            waited = timeout - (deadline - time.monotonic())

    def wait(self, timeout: float) -> ExitRecord:
        """Wait for the exit record; AgentLost if the shim died, WaitTimeout if slow."""
        _check_seconds("timeout", timeout)
        deadline = time.monotonic() + timeout
        checks = 0
        while True:
            record = self.exit_record()
            if record is not None:
                return record
            checks += 1
            if checks % 10 == 0 and not self._shim_alive():
                status = self.status()
                if status.exit is not None:
                    return status.exit
                raise AgentLost(self.session_id, status.pid)
            if time.monotonic() >= deadline:
                raise WaitTimeout(self.session_id, "exit", timeout)
            time.sleep(0.01)

    def _state(self) -> dict[str, Any]:
        state = self._json(_shim.STATE)
        if state is None:
            raise AgentLost(self.session_id, None)
        return state

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the agent's process group if its shim is alive.

        Returns False when the agent is not running. A recorded pid whose shim is
        gone is never signalled (it may belong to an unrelated process by now).
        """
        if not self._shim_alive() or self.exit_record() is not None:
            return False
        try:
            os.killpg(int(self._state()["pgid"]), sig)
        except ProcessLookupError:
            return False
        return True

    def stop(self, grace: float = 10.0, kill_timeout: float = 10.0) -> ExitRecord:
        """SIGTERM to the process group, ``grace`` seconds, then SIGKILL.

        Grandchildren in the group die with it; the shim kills any descendant that
        left the group once the agent is gone. Raises AgentLost if the status is
        unknown (nothing is signalled then).
        """
        _check_seconds("grace", grace)
        _check_seconds("kill_timeout", kill_timeout)
        status = self.status()
        if status.exit is not None:
            return status.exit
        if status.state is AgentState.UNKNOWN:
            raise AgentLost(self.session_id, status.pid)
        self.signal_group(signal.SIGTERM)
        try:
            return self.wait(grace)
        except WaitTimeout:
            pass
        self.signal_group(signal.SIGKILL)
        return self.wait(kill_timeout)

    def send(self, message: bytes | str | Mapping[str, Any], timeout: float = 10.0) -> None:
        """Write one line to the agent's stdin (stdin mode ``pipe`` only).

        A mapping is sent as compact JSON; a ``\\n`` is added if missing. A message
        holding a ``\\n`` before its end would be several lines: InvalidSpec.
        """
        _check_seconds("timeout", timeout)
        try:
            if isinstance(message, Mapping):
                data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
            elif isinstance(message, str):
                data = message.encode()
            elif isinstance(message, bytes | bytearray | memoryview):
                data = bytes(message)  # never bytes(int): that is so many NUL bytes
            else:
                raise TypeError(f"a {type(message).__name__} is not bytes, str or a mapping")
        except (TypeError, ValueError) as exc:
            raise InvalidSpec(f"message cannot be sent as a line: {exc}", field="message") from None
        if not data.endswith(b"\n"):
            data += b"\n"
        if b"\n" in data[:-1]:
            raise InvalidSpec("message must be one line (no \\n before its end)", field="message")
        if not (self.directory / _shim.STDIN).exists():
            raise InvalidSpec(
                f"session {self.session_id!r} was started with stdin closed; "
                "use StdinMode.PIPE to send it lines",
                field="stdin",
            )
        try:
            fd = os.open(self.directory / _shim.STDIN, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no reader: the agent is gone
                raise NotRunning(self.session_id) from exc
            raise
        try:
            deadline = time.monotonic() + timeout
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise WaitTimeout(self.session_id, "room on stdin", timeout) from None
                    select.select([], [fd], [], left)
        finally:
            os.close(fd)

    def close_stdin(self) -> None:
        """Let the agent see EOF on stdin (Pi rpc mode then shuts down)."""
        if not self._shim_alive():
            return
        os.kill(int(self._state()["shim_pid"]), signal.SIGUSR1)


class Spawner:
    """Starts agents under a data dir and finds them again after a restart.

    ``data_dir/agents/<session id>/`` is each agent's session directory. Providers
    are given per runtime; ``local`` is always available.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        providers: Iterable[Provider] = (),
        python: str | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        try:
            given = os.fspath(data_dir)
        except TypeError:
            given = ""
        if not isinstance(given, str) or not given or "\0" in given:
            raise InvalidSpec(
                f"data_dir {data_dir!r} must be a non-empty str path without NUL", field="data_dir"
            )
        # Absolute: the shim changes its working directory (and so may the caller).
        self.data_dir = Path(os.path.abspath(given))
        self.agents_dir = self.data_dir / "agents"
        self._providers: dict[object, Provider] = {}
        for provider in (LocalProvider(), *providers):
            self._providers[provider.runtime] = provider
        self._python = python or sys.executable
        self._start_timeout = _check_seconds("start_timeout", start_timeout, positive=True)

    def provider(self, spec: AgentSpec) -> Provider:
        """The provider for the spec's runtime."""
        try:
            return self._providers[spec.runtime]
        except KeyError:
            raise InvalidSpec(
                f"no provider configured for runtime {spec.runtime.value!r}; "
                "pass one to Spawner(providers=...)",
                field="runtime",
            ) from None

    def spawn(
        self,
        spec: AgentSpec,
        *,
        provision: ProvisionHook | None = None,
        policy: ProvisionPolicy = ProvisionPolicy.REQUIRED,
    ) -> AgentHandle:
        """Start the agent under its shim; return once it has been exec'd.

        The provision hook runs after the jail (or sandbox dir) exists and before
        the agent is exec'd. On any failure nothing is left running and the session
        directory is removed, so the same session id can be tried again.
        """
        provider = self.provider(spec)
        try:
            self.agents_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidSpec(
                f"data_dir {str(self.data_dir)!r} cannot hold session directories: {exc}",
                field="data_dir",
            ) from exc
        directory = self.agents_dir / spec.session_id
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            raise DuplicateSession(spec.session_id, str(directory)) from None
        except BaseException:
            # Raised as mkdir returned (by a signal handler: KeyboardInterrupt): the
            # directory may exist, empty; remove it so that the id can be tried again.
            try:
                os.rmdir(directory)
            except OSError:
                pass
            raise
        started: _shim.Started | None = None
        try:
            handle = AgentHandle(directory, spec.session_id)
            prepared = provider.prepare(spec, self.busy_jails)
            try:
                outcome = self._provision(spec, prepared, provision, policy)
                self._write_spec(directory, spec, prepared)
                if outcome is not None:
                    _shim.write_json_atomic(
                        str(directory),
                        _PROVISION,
                        {"ok": outcome.ok, "policy": outcome.policy.value, "error": outcome.error},
                    )
                started = self._launch(directory, spec, prepared)
                # The very last step: until it, a failure (even an exception raised by
                # a signal handler) makes the shim end the agent.
                started.confirm()
            except BaseException:
                if started is not None:
                    started.abandon(str(directory), self._start_timeout)
                provider.abort(prepared)
                raise
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return handle

    def _provision(
        self,
        spec: AgentSpec,
        prepared: Prepared,
        hook: ProvisionHook | None,
        policy: ProvisionPolicy,
    ) -> ProvisionOutcome | None:
        if hook is None:
            return None
        try:
            hook(prepared.context)
        except Exception as exc:
            if policy is ProvisionPolicy.REQUIRED:
                raise ProvisionFailed(spec.session_id, exc) from exc
            return ProvisionOutcome(ok=False, policy=policy, error=repr(exc))
        return ProvisionOutcome(ok=True, policy=policy)

    def _write_spec(self, directory: Path, spec: AgentSpec, prepared: Prepared) -> None:
        _shim.write_json_atomic(
            str(directory),
            _shim.SPEC,
            {
                "session_id": spec.session_id,
                "runtime": spec.runtime.value,
                "stdin": spec.stdin.value,
                "argv": list(spec.argv),
                "cwd": spec.cwd,
                "env_keys": sorted(spec.env),  # values may be secrets: keys only
                "exec_argv": list(prepared.argv),
                "cleanup": [list(c) for c in prepared.cleanup],
                "details": dict(prepared.details),
                "created_at": time.time(),
            },
            durable=False,  # before the start: a crash here leaves no agent to describe
        )

    def _launch(self, directory: Path, spec: AgentSpec, prepared: Prepared) -> _shim.Started:
        try:
            started = _shim.launch(
                agent_dir=str(directory),
                argv=prepared.argv,
                env=prepared.env,
                cwd=prepared.cwd,
                stdin_pipe=spec.stdin is StdinMode.PIPE,
                python=self._python,
                timeout=self._start_timeout,
            )
        except TimeoutError as exc:
            raise StartFailed(spec.session_id, str(exc)) from exc
        try:
            msg = started.message
            if not msg.get("ok"):
                raise StartFailed(spec.session_id, str(msg.get("error", "unknown error")))
        except BaseException:
            started.abandon(str(directory), self._start_timeout)
            raise
        return started

    def agent(self, session_id: str) -> AgentHandle:
        """The handle of an existing session (running or not)."""
        # Only a well-formed id can name a session directory (no "/", "..", NUL, or
        # a name too long for the file system).
        if not is_session_id(session_id) or not (self.agents_dir / session_id).is_dir():
            raise AgentNotFound(str(session_id), str(self.agents_dir))
        return AgentHandle(self.agents_dir / session_id, session_id)

    def agents(self) -> list[AgentHandle]:
        """Every session under the data dir, sorted by id (re-attach after a restart)."""
        if not self.agents_dir.is_dir():
            return []
        return [
            AgentHandle(p, p.name)
            for p in sorted(self.agents_dir.iterdir())
            if p.is_dir() and (p / _shim.SPEC).exists()
        ]

    def busy_jails(self) -> set[str]:
        """Jails hosting a live agent of this data dir."""
        busy: set[str] = set()
        for handle in self.agents():
            jail = handle.spec.get("details", {}).get("jail")
            if jail and handle.status().state is not AgentState.EXITED:
                busy.add(jail)  # unknown counts as busy: the agent may still run
        return busy

    def sweep(self) -> list[str]:
        """Remove jail/sandbox leftovers that no live agent of this data dir uses."""
        swept: list[str] = []
        live = self.busy_jails()
        for provider in self._providers.values():
            swept += provider.sweep(live)
        return swept

    def stop(self, session_id: str, grace: float = 10.0, kill_timeout: float = 10.0) -> ExitRecord:
        """Stop one agent (see AgentHandle.stop)."""
        return self.agent(session_id).stop(grace, kill_timeout)

    def remove(self, session_id: str) -> None:
        """Delete the directory of an agent that has ended, or whose status is unknown.

        An unknown session (its shim died without an exit record) can be neither
        waited for nor stopped, since its pid may be reused by now: removing its
        directory is how it is cleared away; nothing is signalled.
        """
        handle = self.agent(session_id)
        if handle.status().state is AgentState.RUNNING:
            raise StillRunning(session_id)
        shutil.rmtree(handle.directory)
