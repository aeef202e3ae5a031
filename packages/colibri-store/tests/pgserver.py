"""A throwaway PostgreSQL cluster started from the server binaries, for tests and benchmarks.

Finds ``initdb``/``pg_ctl`` via ``pg_config --bindir`` or ``/usr/lib/postgresql/*/bin``.
As root, runs them as the ``postgres`` user (they refuse root). Listens on a Unix
socket only. Each test gets its own schema, so the cluster is started once a session.

A watchdog process stops the cluster and removes its files when the process that
started it ends without calling ``stop()`` (killed by a timeout, say): it waits for
the end of a pipe that only the starter holds.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path


def find_bindir() -> Path | None:
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    candidates += [os.path.dirname(p) for p in filter(None, [shutil.which("initdb")])]
    for c in candidates:
        if (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


class PgServer:
    def __init__(self, bindir: Path, *, fsync: bool = False) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="colibri-pg-"))
        self.data = self.root / "data"
        self.sock = self.root
        self.run_as: list[str] = []
        self.user = pwd.getpwuid(os.getuid()).pw_name
        if os.getuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no 'postgres' user") from None
            runuser = shutil.which("runuser") or shutil.which("su")
            if runuser is None:
                raise RuntimeError("running as root and neither runuser nor su is available")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.run_as = [runuser, "-u", "postgres", "--"]
            self.user = "postgres"
        self.fsync = fsync

    def _run(self, *argv: str) -> None:
        out = subprocess.run([*self.run_as, *argv], capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise RuntimeError(f"{argv[0]} failed ({out.returncode}): {out.stderr or out.stdout}")

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        )
        opts = (
            f"-c listen_addresses='' -c unix_socket_directories={self.sock} "
            f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=100"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "server.log"),
            "start",
        )
        stop_now = [
            *self.run_as,
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-m",
            "immediate",
        ]
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.root), *stop_now],
            stdin=subprocess.PIPE,
            start_new_session=True,  # outlives a kill of the starter's process group
        )

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            watchdog = getattr(self, "_watchdog", None)
            if watchdog is not None:
                assert watchdog.stdin is not None
                watchdog.stdin.close()  # it finds the cluster gone, and ends
                watchdog.wait(timeout=60)

    def url(self, schema: str | None = None) -> str:
        base = f"postgresql+psycopg://{self.user}@/postgres?host={self.sock}"
        if schema:
            base += f"&options=-csearch_path%3D{schema}"
        return base

    def new_schema(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            host=str(self.sock), user=self.user, dbname="postgres", autocommit=True
        ) as c:
            c.execute(f"CREATE SCHEMA {name}")
        return name


# python -c _WATCHDOG ROOT PG_CTL_ARGV...: wait for stdin's end, then stop and remove.
_WATCHDOG = """
import shutil, subprocess, sys
sys.stdin.buffer.read()
root, argv = sys.argv[1], sys.argv[2:]
subprocess.run([*argv, "-w", "stop"], capture_output=True, timeout=60)
shutil.rmtree(root, ignore_errors=True)
"""
