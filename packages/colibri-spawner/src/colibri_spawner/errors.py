"""Errors raised by colibri-spawner.

Every error is a ``SpawnError``; catch that one root to handle them all::

    SpawnError
    ├── InvalidSpec(ValueError)            the AgentSpec (or another argument) is malformed
    ├── BinaryNotFound(FileNotFoundError)  argv[0] (or a helper tool) is not found
    ├── NotExecutable(PermissionError)     argv[0] exists but may not be executed
    ├── BadWorkingDirectory(NotADirectoryError)
    ├── DuplicateSession(FileExistsError)  a session directory already exists
    ├── AgentNotFound(LookupError)         no such session under the data dir
    ├── UnknownJail(LookupError)           jls does not know the jail
    ├── JailRootOutsideBase(ValueError)    a jail root is not strictly inside the allowed base
    ├── JailPoolExhausted                  every jail of the pool hosts a live agent
    ├── CommandFailed                      a jail/jls/bwrap helper command failed
    ├── SandboxUnavailable                 bubblewrap cannot create namespaces here
    ├── ProvisionFailed                    the provision hook failed under policy "required"
    ├── StartFailed                        the shim could not start the agent
    ├── AgentLost                          the shim died without an exit record
    ├── BadLog(ValueError)                 a log is no regular file, or the offset is no line end
    ├── StillRunning                       the session has not exited yet
    ├── NotRunning                         the session has ended (nothing to send to)
    └── WaitTimeout(TimeoutError)          a wait ran out of time

Leaves carry the objects involved (session id, path, argv) as attributes.
"""

from __future__ import annotations

from collections.abc import Sequence


class SpawnError(Exception):
    """Root of every error colibri-spawner raises."""


class InvalidSpec(SpawnError, ValueError):
    """The AgentSpec, a provider setting or an argument is malformed; nothing was done.

    ``field`` names the bad field or argument (``"argv"``, ``"offset"``, ``"grace"``...).
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class BinaryNotFound(SpawnError, FileNotFoundError):
    """A binary named by the spec or a provider was not found on the search path."""

    def __init__(self, name: str, search_path: str) -> None:
        super().__init__(
            f"binary {name!r} not found (searched {search_path!r}); "
            "install it or give an absolute path"
        )
        self.name = name
        self.search_path = search_path


class NotExecutable(SpawnError, PermissionError):
    """The binary exists but is not an executable regular file."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path!r} is not an executable file; check its mode (chmod +x) or the path"
        )
        self.path = path


class BadWorkingDirectory(SpawnError, NotADirectoryError):
    """The spec's working directory does not exist or is not a directory."""

    def __init__(self, path: str) -> None:
        super().__init__(f"working directory {path!r} does not exist or is not a directory")
        self.path = path


class DuplicateSession(SpawnError, FileExistsError):
    """A session with this id already exists under the data dir."""

    def __init__(self, session_id: str, path: str) -> None:
        super().__init__(
            f"session {session_id!r} already exists at {path!r}; "
            "pick a new session id or remove the old session first"
        )
        self.session_id = session_id
        self.path = path


class AgentNotFound(SpawnError, LookupError):
    """No session directory with this id exists under the data dir."""

    def __init__(self, session_id: str, path: str) -> None:
        super().__init__(f"no agent session {session_id!r} under {path!r}")
        self.session_id = session_id
        self.path = path


class UnknownJail(SpawnError, LookupError):
    """``jls`` does not know the named jail."""

    def __init__(self, name: str, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(f"jail {name!r} is not running{extra}; start it or choose another jail")
        self.name = name


class JailRootOutsideBase(SpawnError, ValueError):
    """A jail root is not strictly inside the allowed base directory."""

    def __init__(self, root: str, base: str) -> None:
        super().__init__(
            f"jail root {root!r} is not strictly inside the allowed base {base!r}; "
            "fix the jail's path or the allowed base"
        )
        self.root = root
        self.base = base


class JailPoolExhausted(SpawnError):
    """Every jail of the configured pool already hosts a live agent."""

    def __init__(self, pool: Sequence[str]) -> None:
        super().__init__(
            f"all jails of the pool {list(pool)!r} are busy; stop an agent or enlarge the pool"
        )
        self.pool = tuple(pool)


class CommandFailed(SpawnError):
    """A helper command (jail, jls, rm, bwrap probe) failed."""

    def __init__(self, argv: Sequence[str], returncode: int | None, output: str) -> None:
        code = "timed out" if returncode is None else f"exited {returncode}"
        super().__init__(f"command {list(argv)!r} {code}: {output.strip() or '(no output)'}")
        self.argv = tuple(argv)
        self.returncode = returncode
        self.output = output


class SandboxUnavailable(SpawnError):
    """bubblewrap is missing or cannot create namespaces on this host."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Linux sandbox unavailable: {reason}")
        self.reason = reason


class ProvisionFailed(SpawnError):
    """The provision hook failed and the policy was ``required``; nothing is left running."""

    def __init__(self, session_id: str, cause: BaseException) -> None:
        super().__init__(
            f"provisioning for session {session_id!r} failed: {cause!r}; "
            "the agent was not started and its jail or sandbox was removed"
        )
        self.session_id = session_id
        self.cause = cause


class StartFailed(SpawnError):
    """The supervising shim could not start the agent (exec failed, shim did not answer)."""

    def __init__(self, session_id: str, reason: str) -> None:
        super().__init__(f"agent {session_id!r} did not start: {reason}")
        self.session_id = session_id
        self.reason = reason


class AgentLost(SpawnError):
    """The agent's shim is gone without an exit record: its status is unknown."""

    def __init__(self, session_id: str, pid_hint: int | None) -> None:
        super().__init__(
            f"the shim of session {session_id!r} died without recording an exit status; "
            f"the status is unknown and pid {pid_hint} (a hint only, pids are reused) "
            "was not signalled: check it by hand"
        )
        self.session_id = session_id
        self.pid_hint = pid_hint


class BadLog(SpawnError, ValueError):
    """A log cannot be read from this offset.

    It is not a regular file (a FIFO or a device would block or never end), or the
    offset is not just past a line of it: mid-line, or beyond its end because the log
    was truncated or replaced since the offset was taken.
    """

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"cannot read log {path!r} from offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class StillRunning(SpawnError):
    """The session is running: remove() needs one that has exited (or is unknown)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} has not exited; stop it first")
        self.session_id = session_id


class NotRunning(SpawnError):
    """The operation needs a running agent, and this one has ended."""

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"session {session_id!r} is not running any more; read its exit record instead"
        )
        self.session_id = session_id


class WaitTimeout(SpawnError, TimeoutError):
    """A wait (for a start, an exit or a line) ran out of time."""

    def __init__(self, session_id: str, what: str, seconds: float) -> None:
        super().__init__(f"session {session_id!r}: no {what} within {seconds:g} s")
        self.session_id = session_id
        self.what = what
        self.seconds = seconds
