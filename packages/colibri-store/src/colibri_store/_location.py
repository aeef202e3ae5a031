"""Where the store lives when the caller does not say (DESIGN.md section 3)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from colibri_store.errors import InvalidInput

DB_FILE = "colibri.sqlite"


def default_db_path(environ: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """The platform default database file, without ``COLIBRI_*`` overrides.

    FreeBSD: ``/var/db/colibri``; elsewhere ``$XDG_DATA_HOME/colibri``, then
    ``~/.local/share/colibri``, then the temp dir.
    """
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if plat.startswith("freebsd"):
        return Path("/var/db/colibri") / DB_FILE
    xdg = env.get("XDG_DATA_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "colibri" / DB_FILE
    home = env.get("HOME")
    if home and Path(home).is_absolute():
        return Path(home) / ".local" / "share" / "colibri" / DB_FILE
    return Path(tempfile.gettempdir()) / "colibri" / DB_FILE


def resolve_url(url: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The URL to open: the argument, ``COLIBRI_DB_URL``, ``COLIBRI_DB_PATH``, or the default."""
    env = os.environ if environ is None else environ
    if url:
        return url
    if env.get("COLIBRI_DB_URL"):
        return env["COLIBRI_DB_URL"]
    raw_path = env.get("COLIBRI_DB_PATH")
    if raw_path is not None:
        if not raw_path.strip():
            raise InvalidInput("COLIBRI_DB_PATH", "is set but empty; unset it or give a file path")
        path = Path(raw_path).expanduser()
    else:
        path = default_db_path(env)
    return sqlite_url(path)


def sqlite_url(path: Path) -> str:
    """A SQLAlchemy URL for a SQLite file (absolute)."""
    return f"sqlite:///{path.absolute()}"


def ensure_parent_dir(db_file: Path) -> None:
    """Create the database's parent directories, readable by the owner only."""
    parent = db_file.parent
    if parent.is_dir():
        return
    # Only the directories we create get 0700; an existing parent keeps its mode.
    old = os.umask(0o077)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    finally:
        os.umask(old)
