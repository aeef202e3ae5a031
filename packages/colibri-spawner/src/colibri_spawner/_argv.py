"""Pure argv builders for jails and sandboxes, and binary resolution.

The builders do no I/O: they take absolute paths and return a list, so every mode
is tested with golden values on any host (no FreeBSD needed).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence

from colibri_spawner.errors import BinaryNotFound, InvalidSpec, NotExecutable

DEFAULT_SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Changes to the working directory inside the jail, then execs the rest; used instead
# of `jexec -d`, which older FreeBSD releases lack.
_CD_AND_EXEC = 'cd -- "$1" || exit 125; shift; exec "$@"'


def resolve_binary(name: str, search_path: str | None = None) -> str:
    """Resolve ``name`` to an absolute path of an executable regular file.

    A bare name is looked up on ``search_path`` (default: this process's PATH, then
    the usual system directories). Relative paths with a slash are refused: a
    service manager's working directory is not something to rely on.
    """
    path = search_path if search_path is not None else _default_search_path()
    if "/" in name:
        if not os.path.isabs(name):
            raise InvalidSpec(
                f"binary {name!r} is a relative path; give an absolute path or a bare name",
                field="argv",
            )
        return _check_executable(name, path)
    for directory in path.split(os.pathsep):
        if not directory or not os.path.isabs(directory):
            continue
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory, name)
        if directory and os.path.exists(candidate):
            raise NotExecutable(candidate)
    raise BinaryNotFound(name, path)


def _default_search_path() -> str:
    own = os.environ.get("PATH", "")
    return f"{own}{os.pathsep}{DEFAULT_SEARCH_PATH}" if own else DEFAULT_SEARCH_PATH


def _check_executable(path: str, search_path: str) -> str:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise BinaryNotFound(path, search_path) from None
    except OSError as exc:
        raise NotExecutable(path) from exc
    if not stat.S_ISREG(st.st_mode) or not os.access(path, os.X_OK):
        raise NotExecutable(path)
    return path


def _env_assignments(env: Mapping[str, str]) -> list[str]:
    return [f"{key}={value}" for key, value in sorted(env.items())]


def jail_wrap(
    *,
    jail: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str | None = None,
    user: str | None = None,
    privilege: Sequence[str] = (),
    jexec: str = "/usr/sbin/jexec",
    env_bin: str = "/usr/bin/env",
    sh: str = "/bin/sh",
) -> list[str]:
    """argv that runs ``argv`` inside a running jail with exactly ``env``.

    ``[privilege...] jexec [-U user] JAIL /usr/bin/env -i K=V... [/bin/sh -c 'cd..' sh CWD]
    /abs/cmd args...``. ``-U`` looks the user up in the jail's own passwd; ``env -i``
    gives the agent exactly the spec's variables whatever jexec inherits; the working
    directory is entered by ``/bin/sh`` inside the jail (not ``jexec -d``). jexec
    does not fork, so the pid started is the agent's.
    """
    _require_absolute("argv[0]", argv[0] if argv else "")
    for label, value in (("jexec", jexec), ("env", env_bin), ("sh", sh)):
        _require_absolute(label, value)
    if cwd is not None:
        _require_absolute("cwd", cwd)
    if not jail or "\0" in jail:
        raise InvalidSpec(f"jail name {jail!r} is empty or malformed", field="jail_name")
    out = [*privilege, jexec]
    if user is not None:
        out += ["-U", user]
    out += [jail, env_bin, "-i", *_env_assignments(env)]
    if cwd is not None:
        out += [sh, "-c", _CD_AND_EXEC, "sh", cwd]
    out += list(argv)
    return out


def jail_create_argv(
    *,
    name: str,
    root: str,
    ip4: str = "inherit",
    mount_devfs: bool = True,
    params: Mapping[str, str] | None = None,
    privilege: Sequence[str] = (),
    jail_bin: str = "/usr/sbin/jail",
) -> list[str]:
    """``jail -q -c name=N path=ROOT host.hostname=N ip4=... [mount.devfs] ... persist``.

    ``-q`` keeps "created" messages out of stdout; ``persist`` keeps the jail alive
    with no process in it, so it can be provisioned before the agent is exec'd.
    """
    _require_absolute("jail root", root)
    _require_absolute("jail", jail_bin)
    out = [*privilege, jail_bin, "-q", "-c", f"name={name}", f"path={root}"]
    out += [f"host.hostname={name}", f"ip4={ip4}"]
    if mount_devfs:
        out.append("mount.devfs")
    out += [f"{k}={v}" for k, v in sorted((params or {}).items())]
    out.append("persist")
    return out


def jail_remove_argv(
    *, name: str, privilege: Sequence[str] = (), jail_bin: str = "/usr/sbin/jail"
) -> list[str]:
    """``jail -q -r NAME``: SIGTERM to every process in it, wait, kill, remove."""
    _require_absolute("jail", jail_bin)
    return [*privilege, jail_bin, "-q", "-r", name]


def sandbox_env(env: Mapping[str, str], inside_workdir: str = "/work") -> dict[str, str]:
    """The environment to exec ``bwrap`` with: exactly ``env``, ``HOME`` defaulting to
    the work dir. bwrap hands its environment to the agent unchanged, so it is not
    cleared with ``--clearenv``/``--setenv``: values (API keys) would then sit in
    bwrap's argv, readable by every local user in ``ps`` for the agent's whole life.
    """
    return {"HOME": inside_workdir, **env}


def sandbox_wrap(
    *,
    argv: Sequence[str],
    workdir: str,
    ro_binds: Sequence[str] = (),
    share_net: bool = True,
    merged_usr: bool = True,
    bwrap: str = "/usr/bin/bwrap",
    inside_workdir: str = "/work",
) -> list[str]:
    """The tight bubblewrap argv: only ``workdir`` (at ``/work``) is writable.

    No host home, ``/usr`` and ``ro_binds`` read-only, own /proc, /dev and /tmp,
    network shared (agents call LLM APIs) unless ``share_net`` is false. No
    ``--new-session``: it would stop SIGTERM to the process group from reaching the
    agent (use it only with a terminal attached). The environment is not in the
    argv: exec bwrap with ``sandbox_env(...)``.
    """
    for label, value in (("argv[0]", argv[0] if argv else ""), ("bwrap", bwrap)):
        _require_absolute(label, value)
    _require_absolute("workdir", workdir)
    out = [bwrap, "--die-with-parent", "--unshare-all"]
    if share_net:
        out.append("--share-net")
    out += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        if merged_usr:
            out += ["--symlink", f"usr/{link}", f"/{link}"]
        else:
            out += ["--ro-bind-try", f"/{link}", f"/{link}"]
    for etc in ("ssl", "ca-certificates", "resolv.conf", "hosts", "nsswitch.conf"):
        out += ["--ro-bind-try", f"/etc/{etc}", f"/etc/{etc}"]
    # /tmp first, so that read-only binds living under the host's /tmp stay visible.
    out += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in ro_binds:
        _require_absolute("ro_bind", path)
        out += ["--ro-bind", path, path]
    out += ["--bind", workdir, inside_workdir]
    # The sandbox root is a tmpfs bwrap made: read-only once the mount points exist.
    out += ["--remount-ro", "/", "--chdir", inside_workdir, "--"]
    out += list(argv)
    return out


def _require_absolute(label: str, value: str) -> None:
    if not value or not os.path.isabs(value):
        raise InvalidSpec(f"{label} {value!r} must be an absolute path", field=label)
