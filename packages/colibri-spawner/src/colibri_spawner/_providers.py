"""Providers: turn an AgentSpec into the argv the shim execs, and clean up after it."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

import attrs

from colibri_spawner._argv import (
    DEFAULT_SEARCH_PATH,
    jail_create_argv,
    jail_remove_argv,
    jail_wrap,
    resolve_binary,
    sandbox_env,
    sandbox_wrap,
)
from colibri_spawner._spec import AgentSpec, ProvisionContext, Runtime
from colibri_spawner.errors import (
    BadWorkingDirectory,
    CommandFailed,
    InvalidSpec,
    JailPoolExhausted,
    JailRootOutsideBase,
    SandboxUnavailable,
    UnknownJail,
)

_COMMAND_TIMEOUT = 60.0
_HELPER_ENV = {"PATH": DEFAULT_SEARCH_PATH}


@attrs.frozen
class Prepared:
    """What a provider made of a spec: the exact argv the shim execs, and its undo."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None
    context: ProvisionContext
    cleanup: tuple[tuple[str, ...], ...] = ()
    details: Mapping[str, Any] = attrs.field(factory=dict)


class Provider(Protocol):
    """A place agents run in. ``local``, ``jail`` and ``sandbox`` implement it."""

    runtime: Runtime

    def prepare(self, spec: AgentSpec, busy_jails: Callable[[], Collection[str]]) -> Prepared:
        """Create what the agent needs (a jail, ...) and return the argv to exec."""
        ...

    def abort(self, prepared: Prepared) -> None:
        """Undo ``prepare`` after a failed spawn."""
        ...

    def sweep(self, live_jails: Collection[str]) -> list[str]:
        """Remove leftovers not used by a live agent; return what was removed."""
        ...


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT,
            env=_HELPER_ENV,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(argv, None, str(exc)) from exc
    except OSError as exc:
        raise CommandFailed(argv, None, repr(exc)) from exc


def _run_checked(argv: Sequence[str]) -> str:
    proc = _run(argv)
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout


def _check_host_dir(path: str) -> str:
    if not os.path.isabs(path):
        raise InvalidSpec(f"cwd {path!r} must be an absolute path", field="cwd")
    if not os.path.isdir(path):
        raise BadWorkingDirectory(path)
    return path


def _lookup_path(spec: AgentSpec, search_path: str | None) -> str:
    own = spec.env.get("PATH", "")
    rest = search_path if search_path is not None else DEFAULT_SEARCH_PATH
    return f"{own}{os.pathsep}{rest}" if own else rest


@attrs.define
class LocalProvider:
    """Runs the agent directly on the host, in its own process group."""

    search_path: str | None = None
    runtime: Runtime = attrs.field(default=Runtime.LOCAL, init=False)

    def prepare(self, spec: AgentSpec, busy_jails: Callable[[], Collection[str]]) -> Prepared:
        """Check the cwd and resolve argv[0] (spec PATH first, then the search path)."""
        cwd = _check_host_dir(spec.cwd)
        program = resolve_binary(spec.argv[0], _lookup_path(spec, self.search_path))
        return Prepared(
            argv=(program, *spec.argv[1:]),
            env=spec.env,
            cwd=cwd,
            context=ProvisionContext(session_id=spec.session_id, runtime=self.runtime, root=cwd),
        )

    def abort(self, prepared: Prepared) -> None:
        """Nothing to undo."""

    def sweep(self, live_jails: Collection[str]) -> list[str]:
        """Nothing persists outside the session directory."""
        return []


@attrs.define
class SandboxProvider:
    """Linux bubblewrap: only the work dir writable, no host home, env cleared.

    ``ro_binds`` are host directories the agent needs to read (its install dir,
    e.g. a virtualenv or node_modules); they must lie outside ``inside_workdir``.
    """

    ro_binds: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    share_net: bool = True
    inside_workdir: str = "/work"
    search_path: str | None = None
    runtime: Runtime = attrs.field(default=Runtime.SANDBOX, init=False)
    _probe: str | None = attrs.field(default=None, init=False)

    def bwrap_path(self) -> str:
        """The absolute path of ``bwrap``; SandboxUnavailable when it is missing."""
        try:
            return resolve_binary("bwrap", self.search_path or _default_path())
        except (FileNotFoundError, PermissionError) as exc:
            raise SandboxUnavailable(f"{exc}; install the bubblewrap package") from exc

    def probe(self) -> None:
        """Run ``bwrap --ro-bind / / --unshare-all /bin/true`` once; say why it fails."""
        if self._probe == "ok":
            return
        bwrap = self.bwrap_path()
        argv = [bwrap, "--ro-bind", "/", "/", "--unshare-all", "/bin/true"]
        proc = _run(argv)
        if proc.returncode != 0:
            out = (proc.stderr or proc.stdout).strip()
            hint = ""
            if "uid map" in out or "Permission denied" in out:
                hint = (
                    " (unprivileged user namespaces are blocked: Ubuntu's AppArmor "
                    "restriction, a container seccomp profile or the kernel setting)"
                )
            elif "No space left" in out or "Operation not permitted" in out:
                hint = " (user namespaces are disabled or exhausted on this kernel)"
            raise SandboxUnavailable(f"`{' '.join(argv)}` failed: {out}{hint}")
        self._probe = "ok"

    def prepare(self, spec: AgentSpec, busy_jails: Callable[[], Collection[str]]) -> Prepared:
        """Probe bwrap, check the work dir and binary visibility, build the argv."""
        self.probe()
        workdir = _check_host_dir(spec.cwd)
        for path in self.ro_binds:
            if not os.path.isabs(path):
                raise InvalidSpec(f"ro_bind {path!r} must be absolute", field="ro_binds")
            if _is_within(path, self.inside_workdir):
                raise InvalidSpec(
                    f"ro_bind {path!r} lies under the sandbox work dir "
                    f"{self.inside_workdir!r}, which hides it; choose another inside_workdir",
                    field="ro_binds",
                )
        program = resolve_binary(spec.argv[0], _lookup_path(spec, self.search_path))
        visible = ("/usr", "/bin", "/sbin", "/lib", "/lib64", *self.ro_binds)
        if not any(_is_within(program, root) for root in visible):
            raise InvalidSpec(
                f"{program!r} is not visible inside the sandbox; add its directory to ro_binds",
                field="argv",
            )
        argv = sandbox_wrap(
            argv=(program, *spec.argv[1:]),
            workdir=workdir,
            ro_binds=self.ro_binds,
            share_net=self.share_net,
            merged_usr=os.path.islink("/bin"),
            bwrap=self.bwrap_path(),
            inside_workdir=self.inside_workdir,
        )
        return Prepared(
            argv=tuple(argv),
            env=sandbox_env(spec.env, self.inside_workdir),
            cwd=workdir,
            context=ProvisionContext(
                session_id=spec.session_id, runtime=self.runtime, root=workdir
            ),
        )

    def abort(self, prepared: Prepared) -> None:
        """bwrap leaves nothing behind once its process is gone."""

    def sweep(self, live_jails: Collection[str]) -> list[str]:
        """``--die-with-parent`` means no sandbox outlives its shim."""
        return []


def _default_path() -> str:
    own = os.environ.get("PATH", "")
    return f"{own}{os.pathsep}{DEFAULT_SEARCH_PATH}" if own else DEFAULT_SEARCH_PATH


def _is_within(path: str, root: str) -> bool:
    path, root = os.path.normpath(path), os.path.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


_JAIL_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_JAIL_NAME_DIGEST = re.compile(r"-[0-9a-f]{12}\Z")  # the suffix ephemeral_name may add


@attrs.define
class JailProvider:
    """FreeBSD jails: a static named jail (``spec.jail_name``), a pool, or ephemeral.

    Ephemeral: ``jail -q -c ... persist`` -> provision hook -> ``jexec`` -> (after
    the agent) ``jail -q -r`` and the root removed by the shim. ``privilege`` is
    prefixed to every command needing root (``("doas", "-n")``,
    ``("mdo", "-u", "root")`` or empty). ``populate_root`` fills a fresh ephemeral
    root (e.g. a ZFS clone or a nullfs layout) before the jail is created.
    """

    allowed_base: str = "/usr/local/bastille/jails"
    ephemeral_prefix: str = "colibri-"
    pool: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    user: str | None = None
    privilege: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    ip4: str = "inherit"
    mount_devfs: bool = True
    params: Mapping[str, str] = attrs.field(factory=dict)
    populate_root: Callable[[str], None] | None = None
    search_path: str | None = None
    runtime: Runtime = attrs.field(default=Runtime.JAIL, init=False)

    def _tool(self, name: str) -> str:
        return resolve_binary(name, self.search_path or _default_path())

    def _privilege(self) -> list[str]:
        if not self.privilege:
            return []
        return [self._tool(self.privilege[0]), *self.privilege[1:]]

    def _base(self) -> str:
        return os.path.realpath(self.allowed_base)

    def _check_inside_base(self, root: str) -> str:
        base = self._base()
        real = os.path.realpath(root)
        if real == base or not _is_within(real, base):
            raise JailRootOutsideBase(root, base)
        return real

    def jail_root(self, name: str) -> str:
        """The host path of a running jail's root (``jls -j NAME path``)."""
        argv = [self._tool("jls"), "-j", name, "path"]
        proc = _run(argv)
        if proc.returncode != 0:
            raise UnknownJail(name, (proc.stderr or proc.stdout).strip())
        root = proc.stdout.strip()
        if not root:
            raise UnknownJail(name, "jls printed no path")
        return self._check_inside_base(root)

    def ephemeral_name(self, session_id: str) -> str:
        """The jail name for a session: the prefix, then the id made jail-safe.

        An id that is jail-safe already is kept as it is. One with a ``.`` (the jail
        hierarchy's separator) gets ``_`` for it and ``-`` plus 12 hex digits of the
        id's SHA-256, so that ``a.b`` and ``a_b`` never share a jail; so does an id
        that ends like such a suffix, so no kept id can equal a changed one.
        """
        safe = _JAIL_NAME_UNSAFE.sub("_", session_id)
        if safe == session_id and not _JAIL_NAME_DIGEST.search(session_id):
            return self.ephemeral_prefix + session_id
        digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.ephemeral_prefix}{safe}-{digest[:12]}"

    def prepare(self, spec: AgentSpec, busy_jails: Callable[[], Collection[str]]) -> Prepared:
        """Pick or create the jail, then build the ``jexec`` argv."""
        if not os.path.isabs(spec.argv[0]):
            raise InvalidSpec(
                f"argv[0] {spec.argv[0]!r} must be an absolute path inside the jail",
                field="argv",
            )
        if not os.path.isabs(spec.cwd):
            raise InvalidSpec(f"cwd {spec.cwd!r} must be absolute inside the jail", field="cwd")
        cleanup: tuple[tuple[str, ...], ...] = ()
        if spec.jail_name is not None:
            name, kind = spec.jail_name, "static"
            root = self.jail_root(name)
        elif self.pool:
            busy = set(busy_jails())
            free = [n for n in self.pool if n not in busy]
            if not free:
                raise JailPoolExhausted(self.pool)
            name, kind = free[0], "pool"
            root = self.jail_root(name)
        else:
            name, kind = self.ephemeral_name(spec.session_id), "ephemeral"
            root = self._create_ephemeral(name)
            cleanup = self._ephemeral_cleanup(name, root)
        argv = jail_wrap(
            jail=name,
            argv=spec.argv,
            env=spec.env,
            cwd=spec.cwd,
            user=self.user,
            privilege=self._privilege(),
            jexec=self._tool("jexec"),
        )
        return Prepared(
            argv=tuple(argv),
            env=_HELPER_ENV,
            cwd=None,
            context=ProvisionContext(
                session_id=spec.session_id,
                runtime=self.runtime,
                root=root,
                jail_name=name,
                user=self.user,
            ),
            cleanup=cleanup,
            details={"jail": name, "root": root, "kind": kind},
        )

    def _create_ephemeral(self, name: str) -> str:
        root = os.path.join(self._base(), name)
        self._check_inside_base(root)
        priv = self._privilege()
        _run_checked([*priv, self._tool("mkdir"), "-m", "0755", "--", root])
        try:
            if self.populate_root is not None:
                self.populate_root(root)
            _run_checked(
                jail_create_argv(
                    name=name,
                    root=root,
                    ip4=self.ip4,
                    mount_devfs=self.mount_devfs,
                    params=self.params,
                    privilege=priv,
                    jail_bin=self._tool("jail"),
                )
            )
        except BaseException:
            _run([*priv, self._tool("rm"), "-rf", "--", root])
            raise
        return root

    def _ephemeral_cleanup(self, name: str, root: str) -> tuple[tuple[str, ...], ...]:
        priv = self._privilege()
        return (
            tuple(jail_remove_argv(name=name, privilege=priv, jail_bin=self._tool("jail"))),
            (*priv, self._tool("rm"), "-rf", "--", root),
        )

    def abort(self, prepared: Prepared) -> None:
        """Remove an ephemeral jail made for a spawn that failed."""
        for argv in prepared.cleanup:
            _run(argv)

    def running_jails(self) -> list[str]:
        """Names of the running jails (``jls name``)."""
        out = _run_checked([self._tool("jls"), "name"])
        return [line.strip() for line in out.splitlines() if line.strip()]

    def sweep(self, live_jails: Collection[str]) -> list[str]:
        """Remove ephemeral jails (and roots) carrying the prefix and no live agent."""
        swept: list[str] = []
        live = set(live_jails)
        for name in self.running_jails():
            if name.startswith(self.ephemeral_prefix) and name not in live:
                root = os.path.join(self._base(), name)
                for argv in self._ephemeral_cleanup(name, root):
                    _run(argv)
                swept.append(name)
        base = self._base()
        if os.path.isdir(base):
            for entry in sorted(os.listdir(base)):
                if entry.startswith(self.ephemeral_prefix) and entry not in live:
                    if entry not in swept:
                        _run(
                            [
                                *self._privilege(),
                                self._tool("rm"),
                                "-rf",
                                "--",
                                os.path.join(base, entry),
                            ]
                        )
                        swept.append(entry)
        return swept
