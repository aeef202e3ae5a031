"""Programmatic Alembic: upgrade on every open, adopt the original's databases.

Revisions are additive only, so upgrading on open is safe. A database stamped
with a revision this code does not know was written by a newer colibri-store and
is refused. A database the original Colibri made (its four tables, no version
table) is adopted: stamped at revision 0001, then upgraded, keeping its rows.
Before a revision is applied to a SQLite database that holds data, a copy is
taken with SQLite's online backup API and its path logged; on PostgreSQL taking
a ``pg_dump`` first is the operator's job, and the log says so.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from colibri_store._schema import ORIGINAL_TABLES
from colibri_store.errors import SchemaError, SchemaTooNew

log = logging.getLogger("colibri_store")

VERSION_TABLE = "colibri_schema_version"
_PG_MIGRATION_LOCK = 0x636F6C69  # "coli": one advisory lock id for migrations
_SCRIPT_LOCATION = str(Path(__file__).with_name("_migrations"))


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", _SCRIPT_LOCATION)
    return cfg


def script_directory() -> ScriptDirectory:
    """The package's own revisions."""
    return ScriptDirectory.from_config(_config())


def current_revision(conn: sa.Connection) -> str | None:
    """The revision the database is stamped with, or None."""
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def upgrade(engine: sa.Engine, sqlite_file: Path | None) -> str:
    """Bring the database to head; returns the head revision. Idempotent and concurrency-safe."""
    script = script_directory()
    head = script.get_current_head()
    assert head is not None
    known = {rev.revision for rev in script.walk_revisions()}

    with engine.connect().execution_options(colibri_begin="DEFERRED") as conn:
        current = current_revision(conn)
        conn.rollback()
    _refuse_unknown(current, known, head)
    if current == head:
        return head

    # Serialise concurrent openers: SQLite through BEGIN IMMEDIATE (the engine's
    # begin hook), PostgreSQL through an advisory lock; then look again.
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        current = current_revision(conn)
        _refuse_unknown(current, known, head)
        if current == head:
            return head
        existing = set(sa.inspect(conn).get_table_names())
        cfg = _config()
        cfg.attributes["connection"] = conn
        if current is None and existing & set(ORIGINAL_TABLES):
            missing = set(ORIGINAL_TABLES) - existing
            if missing:
                raise SchemaError(
                    "the database has some of the original Colibri's tables but not "
                    f"{sorted(missing)}; refusing to adopt a partial schema. Point "
                    "COLIBRI_DB_URL/COLIBRI_DB_PATH at a complete or an empty database"
                )
            log.warning("adopting a database created by the original Colibri (no version table)")
            command.stamp(cfg, "0001")
        if _holds_data(conn, existing):
            _backup_before_upgrade(conn, sqlite_file, current, head)
        command.upgrade(cfg, "head")
        log.info("database schema upgraded from %s to %s", current or "nothing", head)
    return head


def _refuse_unknown(current: str | None, known: set[str], head: str) -> None:
    if current is not None and current not in known:
        raise SchemaTooNew(current, head)


def _holds_data(conn: sa.Connection, existing: set[str]) -> bool:
    for table in ORIGINAL_TABLES:
        if table in existing and conn.exec_driver_sql(f"SELECT 1 FROM {table} LIMIT 1").first():
            return True
    return False


def _backup_before_upgrade(
    conn: sa.Connection, sqlite_file: Path | None, current: str | None, head: str
) -> None:
    if conn.dialect.name != "sqlite":
        log.warning(
            "upgrading a PostgreSQL database that holds data from %s to %s; "
            "taking a pg_dump first is the operator's job",
            current,
            head,
        )
        return
    if sqlite_file is None:
        return
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = sqlite_file.with_name(f"{sqlite_file.name}.pre-{head}-{stamp}.bak")
    # We hold the write lock on `conn`; WAL lets a second connection read a
    # consistent copy of the last committed state meanwhile.
    source = sqlite3.connect(str(sqlite_file), timeout=30)
    try:
        dest = sqlite3.connect(str(target))
        try:
            source.backup(dest)
        finally:
            dest.close()
    finally:
        source.close()
    target.chmod(0o600)
    log.warning("backed up the database to %s before upgrading it to %s", target, head)
