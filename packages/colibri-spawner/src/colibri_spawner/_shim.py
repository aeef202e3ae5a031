"""The per-agent supervising shim. Standard library only.

``launch`` runs in the supervisor: it forks twice (so the shim is no child of the
supervisor and never a zombie of it), and the grandchild -- the shim -- takes the
session lock, opens the log files, forks the agent into its own process group and
``exec``s a small fresh interpreter running this file (``python -I -S _shim.py``).
The agent is the shim's direct child, so ``waitpid`` gives its exact status; the
interpreter start happens while the agent is already starting, so it adds nothing
to the time to the agent's first line.

Files in the session directory (the directory is the identity, the lock proves the
shim is alive; a pid in a file is only a hint):

    lock         flock(LOCK_EX) held by the shim for its whole life
    state.json   pid, pgid, shim pid, start time (written once the exec succeeded)
    out.jsonl    the agent's stdout, O_APPEND, never truncated
    err.log      the agent's stderr, O_APPEND
    stdin        a FIFO (stdin mode "pipe"); the shim holds a write end so the agent
                 sees EOF only when asked (SIGUSR1 to the shim)
    exit.json    code or signal, start and end times, cleanup results; atomic write
    shim.log     the shim's own diagnostics
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence

# The exec'd shim keeps its memory small: json (and re under it) is imported only when
# a record is written, typing only by type checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

LOCK = "lock"
STATE = "state.json"
SPEC = "spec.json"
OUT = "out.jsonl"
ERR = "err.log"
STDIN = "stdin"
EXIT = "exit.json"
SHIM_LOG = "shim.log"

_LEFTOVER_DEADLINE = 5.0
# The shim's interpreter starts after the agent's first output (or this many
# seconds), so that it does not compete with the agent's own start-up for the CPU.
_EXEC_DEFER = 0.1
# Imported as a module (not run as a script) so that its cached bytecode is used:
# no compile at every start. The directory goes last on sys.path, after the stdlib.
_BOOT = "import sys; sys.path.append(sys.argv.pop(1)); import _shim; _shim.main(sys.argv[1:])"
_HANDLED = {signal.SIGTERM, signal.SIGUSR1, signal.SIGINT, signal.SIGHUP}
_CLEANUP_TIMEOUT = 60.0


def write_json_atomic(
    directory: str, name: str, data: Mapping[str, Any], *, durable: bool = True
) -> None:
    """Write ``name`` in ``directory`` via a temp file and a rename.

    ``durable`` adds the fsyncs (file, then directory) that make it survive a host
    crash; records only meaningful while the host is up skip them to stay off the
    start-up path (a rename is atomic for readers either way).
    """
    import json

    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(data, sort_keys=True).encode() + b"\n")
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, os.path.join(directory, name))
    if durable:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _close_fds_except(keep: Sequence[int]) -> None:
    maxfd = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, maxfd)


def launch(
    *,
    agent_dir: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str | None,
    stdin_pipe: bool,
    python: str,
    timeout: float,
) -> Started:
    """Start the shim and the agent; return them with the shim's ready message.

    The message is ``{"ok": true, "pid", "shim_pid", "started_at"}`` or
    ``{"ok": false, "error"}``, after a ``{"spawned": pid}`` line once the agent exists.
    Raises ``TimeoutError`` if the shim does not answer in time; a spawned agent is
    killed then, and the shim is given as long again to record that before it is
    killed too (so a spawn that times out returns within twice the timeout).
    An "ok" start must then be confirmed (``Started.confirm``) or abandoned; if this
    function raises instead (an exception from a signal handler, KeyboardInterrupt),
    it abandons the start itself.
    """
    import json
    import select  # noqa: F401

    _load_prctl()
    ready_r, ready_w = os.pipe()
    confirm_r, confirm_w = os.pipe()
    alive_r, alive_w = os.pipe()
    child = os.fork()
    if child == 0:  # the intermediate: new session, fork the shim, leave
        status = 1
        try:
            os.close(ready_r)
            os.close(confirm_w)
            os.close(alive_r)
            os.setsid()
            if os.fork() == 0:
                _shim_start(agent_dir, list(argv), dict(env), cwd, stdin_pipe, python, ready_w,
                            confirm_r, alive_w, timeout)  # fmt: skip
            status = 0
        except BaseException as exc:  # never return into the supervisor's code
            try:
                os.write(ready_w, _msg({"ok": False, "error": f"shim fork failed: {exc!r}"}))
            finally:
                os._exit(1)
        os._exit(status)
    started = Started(confirm_w, alive_r, child)
    try:
        os.close(ready_w)
        os.close(confirm_r)
        os.close(alive_w)
        partial: list[bytes] = []
        try:
            data = _read_all(ready_r, timeout, partial)
        finally:
            os.close(ready_r)
            _reap_intermediate(child)
        lines = [json.loads(line) for line in b"".join(partial).splitlines(keepends=True)
                 if line.endswith(b"\n")]  # fmt: skip
        if data is None:
            # The shim stalled. If it had started the agent (it says so at once), kill
            # that now: the shim cannot reap it before it sees this spawn abandoned, so
            # the pid is still the agent's. abandon() (below) then ends the shim.
            for line in lines:
                if "spawned" in line:
                    try:
                        os.killpg(int(line["spawned"]), signal.SIGKILL)
                    except OSError:
                        pass
            raise TimeoutError(f"the shim did not report within {timeout:g} s")
        reports = [line for line in lines if "ok" in line]
        if not reports:
            started.message = {"ok": False, "error": "the shim exited without reporting"}
        else:
            started.message = reports[-1]
        if not started.message.get("ok"):
            started.close()  # the shim has exited: nothing to confirm
    except BaseException:
        started.abandon(agent_dir, timeout)
        raise
    return started


class Started:
    """A shim that reported, and the pipes that decide whether its agent may run on.

    The shim waits for ``confirm`` (at most the start timeout) before it supervises;
    EOF instead makes it kill the agent and record that exit, holding the ``alive``
    pipe until it has. So a spawn that fails at its very end -- interrupted by a
    signal handler's exception -- leaves nothing running.
    """

    __slots__ = ("_alive_r", "_confirm_w", "_confirmed", "_group", "message")

    def __init__(self, confirm_w: int, alive_r: int, group: int) -> None:
        self.message: dict[str, Any] = {}
        self._confirm_w = confirm_w
        self._alive_r = alive_r
        self._group = group  # the intermediate's process group, which the shim is in
        self._confirmed = False

    def close(self) -> None:
        """Close both pipes (forget the fd first: an interrupt may leak, never re-close)."""
        for name in ("_confirm_w", "_alive_r"):
            fd = getattr(self, name)
            setattr(self, name, -1)
            if fd >= 0:
                os.close(fd)

    def confirm(self) -> None:
        """The spawn is complete: from now on the shim supervises the agent."""
        self._confirmed = True  # first: if interrupted after the write, abandon() knows
        os.write(self._confirm_w, b"1")
        self.close()

    def abandon(self, agent_dir: str, timeout: float) -> None:
        """The spawn failed: end the agent and wait (bounded) until the shim is done."""
        if self._confirmed:  # the shim may be supervising already: kill the agent here
            try:
                os.killpg(int(self.message["pid"]), signal.SIGKILL)
            except (OSError, KeyError, TypeError, ValueError):
                pass
        alive_r, self._alive_r = self._alive_r, -1
        try:
            self.close()  # EOF on the confirm pipe: an unconfirmed shim kills the agent
            if alive_r < 0:
                return
            deadline = time.monotonic() + timeout
            if _read_all(alive_r, timeout) is None or not _await_unlocked(
                os.path.join(agent_dir, LOCK), deadline
            ):
                os.killpg(self._group, signal.SIGKILL)
        except OSError:
            pass
        finally:
            if alive_r >= 0:
                os.close(alive_r)


def _await_unlocked(path: str, deadline: float) -> bool:
    # A confirmed shim closes its alive pipe when it execs: its lock tells its end.
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        finally:
            os.close(fd)
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def _reap_intermediate(pid: int, timeout: float = 5.0) -> None:
    # It exits right after its fork; bounded all the same.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _msg(obj: Mapping[str, Any]) -> bytes:
    import json

    return json.dumps(obj).encode() + b"\n"


def _read_all(fd: int, timeout: float, chunks: list[bytes] | None = None) -> bytes | None:
    """Everything up to EOF, or None after ``timeout`` (what came is left in ``chunks``)."""
    import select

    deadline = time.monotonic() + timeout
    if chunks is None:
        chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _shim_start(
    agent_dir: str,
    argv: list[str],
    env: dict[str, str],
    cwd: str | None,
    stdin_pipe: bool,
    python: str,
    ready_w: int,
    confirm_r: int,
    alive_w: int,
    timeout: float,
) -> None:
    """In the shim (grandchild of the supervisor). Never returns."""
    pid = -1
    try:
        # Until supervise() has its handlers, a close_stdin (SIGUSR1) or SIGTERM must
        # wait (pending), not kill the shim with the default action.
        signal.pthread_sigmask(signal.SIG_SETMASK, _HANDLED)
        lock_fd = os.open(
            os.path.join(agent_dir, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        # Blocking: a supervisor probing liveness holds it for an instant only, and
        # the session directory was created exclusively, so no other shim has it.
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        out_fd = os.open(os.path.join(agent_dir, OUT), flags, 0o600)
        err_fd = os.open(os.path.join(agent_dir, ERR), flags, 0o600)
        log_fd = os.open(os.path.join(agent_dir, SHIM_LOG), flags, 0o600)
        # Let go of the supervisor's stdio at once (a terminal, a logger's pipe).
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(null)
        holder = -1
        if stdin_pipe:
            fifo = os.path.join(agent_dir, STDIN)
            os.mkfifo(fifo, 0o600)
            # Reader first (non-blocking open needs no writer), then our write end,
            # which keeps the agent from seeing EOF while we live.
            in_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            holder = os.open(fifo, os.O_WRONLY | os.O_CLOEXEC)
            os.set_blocking(in_fd, True)
        else:
            in_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        _set_subreaper()
        started_at = time.time()
        try:
            pid = _spawn_agent(
                argv,
                env,
                cwd,
                in_fd,
                out_fd,
                err_fd,
                keep=[ready_w, confirm_r, alive_w, log_fd, lock_fd, holder],
            )
        except OSError as exc:
            code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            os.write(
                ready_w, _msg({"ok": False, "error": f"exec {argv[0]!r} failed: [{code}] {exc}"})
            )
            os._exit(1)
        try:
            # First of all, so that a supervisor giving up on a stalled shim (a slow
            # disk below) can still end the agent.
            os.write(ready_w, _msg({"spawned": pid}))
        except OSError:
            pass  # the supervisor is gone: it confirms nothing, so the agent ends below
        write_json_atomic(
            agent_dir,
            STATE,
            {"pid": pid, "pgid": pid, "shim_pid": os.getpid(), "started_at": started_at},
            durable=False,  # a host crash ends the agent too; the lock is the identity
        )
    except BaseException as exc:
        if pid > 0:  # nobody will know of this agent: it must not run on
            try:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
        try:
            os.write(ready_w, _msg({"ok": False, "error": f"shim failed: {exc!r}"}))
        except OSError:
            pass
        os._exit(1)
    try:
        ready = {"ok": True, "pid": pid, "shim_pid": os.getpid(), "started_at": started_at}
        os.write(ready_w, _msg(ready))
        os.close(ready_w)
    except OSError:
        pass  # the supervisor died meanwhile; it did not confirm either (below)
    if _confirmed(confirm_r, timeout):
        os.close(alive_w)
        # The agent runs: from here on, whatever happens, this process supervises it.
        try:
            _exec_supervisor(agent_dir, pid, lock_fd, holder, started_at, python,
                             (in_fd, out_fd, err_fd))  # fmt: skip
        except BaseException:
            pass  # no interpreter could be exec'd: supervise from this process instead
    else:
        # spawn() failed after all, or its process died before it returned: nobody
        # knows of this agent, so it must not run on. It is recorded as killed, by
        # this process, which holds alive_w until the end: spawn() waits for that
        # before it removes the session directory.
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        supervise(agent_dir, pid, lock_fd, holder, started_at)
    finally:
        os._exit(0)


def _confirmed(confirm_r: int, timeout: float) -> bool:
    import select

    try:
        ready, _, _ = select.select([confirm_r], [], [], timeout)
        return bool(ready) and os.read(confirm_r, 1) == b"1"
    except OSError:
        return False
    finally:
        os.close(confirm_r)


def _exec_supervisor(
    agent_dir: str,
    pid: int,
    lock_fd: int,
    holder: int,
    started_at: float,
    python: str,
    agent_fds: tuple[int, int, int],
) -> None:
    """Replace this forked copy of the supervisor by a small fresh interpreter."""
    _await_first_output(pid, agent_fds[1], _EXEC_DEFER)
    for fd in agent_fds:
        os.close(fd)
    keep = [lock_fd] + ([holder] if holder >= 0 else [])
    _close_fds_except(keep)
    # A supervisor ignoring SIGCHLD would make waitpid fail in the shim. The handled
    # signals stay blocked across the exec (see _shim_start).
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in keep:
        os.set_inheritable(fd, True)
    args = [
        python, "-I", "-S", "-c", _BOOT, os.path.dirname(os.path.abspath(__file__)),
        "--dir", agent_dir, "--pid", str(pid), "--lock-fd", str(lock_fd),
        "--holder-fd", str(holder), "--started-at", repr(started_at),
    ]  # fmt: skip
    # The agent is starting right now: let it have the CPU first. A supervisor that
    # mostly sleeps in waitpid loses nothing by a lower priority.
    try:
        os.nice(10)
    except OSError:
        pass
    os.execv(python, args)


def _spawn_agent(
    argv: list[str],
    env: dict[str, str],
    cwd: str | None,
    in_fd: int,
    out_fd: int,
    err_fd: int,
    keep: list[int],
) -> int:
    """posix_spawn the agent: own process group, stdio, default signals, empty mask.

    posix_spawn (vfork-like) copies no page tables and reports a failed exec as an
    OSError here, so no exec-status pipe is needed. This process is a throwaway fork
    of the supervisor, so it may change its own cwd for the child, and closes every
    descriptor the supervisor left inheritable first.
    """
    _close_fds_except([in_fd, out_fd, err_fd, *keep])
    if cwd:
        os.chdir(cwd)
    try:
        sigs = set(range(1, signal.NSIG)) - {signal.SIGKILL, signal.SIGSTOP}
        defaults = [s for s in sigs if signal.getsignal(s) is not None]
        return os.posix_spawn(
            argv[0],
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, in_fd, 0),
                (os.POSIX_SPAWN_DUP2, out_fd, 1),
                (os.POSIX_SPAWN_DUP2, err_fd, 2),
            ],
            setpgroup=0,
            setsigmask=(),
            setsigdef=defaults,
        )
    finally:
        os.chdir("/")


def _await_first_output(pid: int, out_fd: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if os.fstat(out_fd).st_size > 0:
            return
        if hasattr(os, "waitid"):  # peek at an exit without reaping it
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        time.sleep(0.002)


_REAPER: list[Any] = []  # [callable or None], loaded once in the supervisor
_PROC_REAP_ACQUIRE = 2  # FreeBSD sys/procctl.h
_PROC_REAP_KILL = 6
_P_PID = 0  # FreeBSD idtype_t


def _load_prctl() -> None:
    """Load prctl(2) (Linux) or procctl(2) (FreeBSD) once, in the supervisor.

    The forked shim then needs no import; the exec'd one imports ctypes only on
    FreeBSD, where killing the reaper's descendants needs procctl again.
    """
    if _REAPER:
        return
    _REAPER.append(_reaper_call())


def _reaper_call() -> Any:
    if not sys.platform.startswith(("linux", "freebsd")):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        platform: str = sys.platform  # a plain str: checked at run time on each OS
        if platform.startswith("linux"):
            return libc.prctl
        procctl = libc.procctl
        procctl.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p]
        return procctl
    except (OSError, AttributeError):
        return None


def _set_subreaper() -> None:
    # Orphaned grandchildren come back to the shim, which kills them after the agent
    # ends (pi's bash tool runs commands in their own process group). Set before the
    # agent starts; it survives the shim's exec.
    call = _REAPER[0] if _REAPER else None
    if call is None:
        return
    if sys.platform.startswith("linux"):
        call(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    else:
        call(_P_PID, os.getpid(), _PROC_REAP_ACQUIRE, None)


def _kill_descendants() -> int:
    """SIGKILL every descendant left (they are ours as subreaper); return how many."""
    if sys.platform.startswith("freebsd"):
        return _freebsd_reap_kill()
    children = _own_children()
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(children)


def _freebsd_reap_kill() -> int:
    try:
        import ctypes

        class ReaperKill(ctypes.Structure):
            _fields_ = [  # struct procctl_reaper_kill
                ("rk_sig", ctypes.c_int),
                ("rk_flags", ctypes.c_uint),
                ("rk_subtree", ctypes.c_int),
                ("rk_killed", ctypes.c_uint),
                ("rk_fpid", ctypes.c_int),
                ("rk_pad0", ctypes.c_uint * 15),
            ]

        call = _reaper_call()
        if call is None:
            return 0
        request = ReaperKill(rk_sig=signal.SIGKILL)
        if call(_P_PID, os.getpid(), _PROC_REAP_KILL, ctypes.byref(request)) != 0:
            return 0  # ESRCH: nothing left to kill
        return int(request.rk_killed)
    except (OSError, AttributeError, ValueError):
        return 0


def _own_children() -> list[int]:
    me = os.getpid()
    found: list[int] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may hold spaces.
        rest = stat[stat.rfind(b")") + 2 :].split()
        if len(rest) > 1 and int(rest[1]) == me:
            found.append(int(name))
    return found


def _kill_leftovers(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
    deadline = time.monotonic() + _LEFTOVER_DEADLINE
    while time.monotonic() < deadline:
        try:
            while True:
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
        except ChildProcessError:
            pass
        if not _kill_descendants():
            return
        time.sleep(0.01)


def _run_cleanup(agent_dir: str) -> list[dict[str, Any]]:
    import json

    try:
        with open(os.path.join(agent_dir, SPEC), encoding="utf-8") as fh:
            commands = json.load(fh).get("cleanup", [])
    except (OSError, ValueError):
        return []
    if not commands:
        return []
    import subprocess

    results: list[dict[str, Any]] = []
    for argv in commands:
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_CLEANUP_TIMEOUT,
                check=False,
            )
            results.append(
                {
                    "argv": argv,
                    "returncode": proc.returncode,
                    "output": proc.stderr.decode(errors="replace")[-2000:],
                }
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            results.append({"argv": argv, "returncode": None, "output": repr(exc)})
    return results


def supervise(agent_dir: str, pid: int, lock_fd: int, holder: int, started_at: float) -> None:
    """Wait for the agent, kill what it left behind, run cleanup, record the exit."""
    del lock_fd  # held (and so the lock) until this process ends
    holder_box = [holder]

    def forward_term(_sig: int, _frame: object) -> None:
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass

    def close_stdin(_sig: int, _frame: object) -> None:
        if holder_box[0] >= 0:
            os.close(holder_box[0])
            holder_box[0] = -1

    signal.signal(signal.SIGTERM, forward_term)
    signal.signal(signal.SIGUSR1, close_stdin)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            status = -1
            break
    ended_at = time.time()
    code: int | None
    sig: int | None
    if status == -1:
        code, sig = None, None
    elif os.WIFSIGNALED(status):
        code, sig = None, os.WTERMSIG(status)
    else:
        code, sig = os.WEXITSTATUS(status), None
    close_stdin(0, None)
    _kill_leftovers(pid)
    cleanup = _run_cleanup(agent_dir)
    write_json_atomic(
        agent_dir,
        EXIT,
        {
            "pid": pid,
            "code": code,
            "signal": sig,
            "started_at": started_at,
            "ended_at": ended_at,
            "cleanup": cleanup,
        },
    )


def main(args: Sequence[str]) -> int:
    """Entry point of the exec'd shim interpreter."""
    opts = dict(zip(args[0::2], args[1::2], strict=False))
    supervise(
        opts["--dir"],
        int(opts["--pid"]),
        int(opts["--lock-fd"]),
        int(opts["--holder-fd"]),
        float(opts["--started-at"]),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
