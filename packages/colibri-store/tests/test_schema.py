"""Migrations: create, reopen, refuse newer, adopt the original's database, stay additive."""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

import colibri_store
from colibri_store import SchemaError, SchemaTooNew, Store, TaskStatus
from colibri_store._migrate import script_directory

VERSIONS = Path(colibri_store.__file__).parent / "_migrations" / "versions"
HEAD = script_directory().get_current_head()

# The original Colibri's DDL, written from DESIGN.md section 3 (SQLite flavour).
ORIGINAL_DDL = [
    """CREATE TABLE agents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        capabilities TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL DEFAULT 'idle',
        created_at TEXT NOT NULL)""",
    """CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent_id INTEGER REFERENCES agents(id),
        status TEXT NOT NULL DEFAULT 'queued'
            CHECK (status IN ('queued', 'claimed', 'started', 'done', 'failed')),
        title TEXT NOT NULL,
        description TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    """CREATE TABLE skills (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        description TEXT,
        category TEXT,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE tenants (
        tenant_id TEXT PRIMARY KEY,
        jail_root_path TEXT NOT NULL UNIQUE,
        collection_id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL DEFAULT 'provisioned',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
]
ORIGINAL_ROWS = [
    "INSERT INTO agents (name, capabilities, status, created_at) "
    "VALUES ('old-agent', '[\"rust\"]', 'active', '2025-01-01 00:00:00')",
    "INSERT INTO agents (name, capabilities, status, created_at) "
    "VALUES ('object-caps', '{\"rust\": 1}', 'idle', '2025-01-01 00:00:00')",
    "INSERT INTO tasks (agent_id, status, title, description, created_at, updated_at) "
    "VALUES (1, 'done', 'old task', 'kept', '2025-01-02 00:00:00', '2025-01-02 00:00:00')",
    "INSERT INTO tasks (status, title, created_at, updated_at) "
    "VALUES ('queued', 'waiting', '2025-01-03 00:00:00', '2025-01-03 00:00:00')",
    "INSERT INTO skills (name, description, category, created_at) "
    "VALUES ('zfs', 'snapshots', 'storage', '2025-01-01 00:00:00')",
    "INSERT INTO tenants VALUES ('acme', '/usr/local/bastille/jails/acme', 'acme', "
    "'active', '2025-01-01 00:00:00', '2025-01-01 00:00:00')",
]


def _raw_exec(url: str, statements: list[str]) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for stmt in statements:
            if conn.dialect.name == "postgresql":
                stmt = stmt.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "SERIAL PRIMARY KEY")
            conn.exec_driver_sql(stmt)
    engine.dispose()


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    return names


def test_open_creates_schema_and_reopen_is_a_noop(db_url: str) -> None:
    with Store.open(db_url) as store:
        assert store.schema_revision == HEAD
        task = store.create_task("survives reopen")
    tables = _tables(db_url)
    assert {"tasks", "agents", "skills", "tenants", "task_dependencies", "audit_events"} <= tables
    for _ in range(2):
        with Store.open(db_url) as store:
            assert store.get_task(task.id).title == "survives reopen"
            assert store.verify_chain().ok
            assert len(store.audit_events()) == 1


def test_database_from_a_newer_colibri_is_refused(db_url: str) -> None:
    Store.open(db_url).close()
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE colibri_schema_version SET version_num = '0099'")
    engine.dispose()
    with pytest.raises(SchemaTooNew, match=r"revision '0099'.*upgrade colibri-store") as info:
        Store.open(db_url)
    assert info.value.revision == "0099"


def test_original_database_is_adopted_without_loss(db_url: str, caplog) -> None:
    _raw_exec(db_url, ORIGINAL_DDL + ORIGINAL_ROWS)
    with Store.open(db_url) as store:
        old = store.get_task(1)
        assert (old.title, old.description, old.status) == ("old task", "kept", TaskStatus.DONE)
        assert old.created_at == "2025-01-02 00:00:00" and old.max_attempts == 3
        agents = {a.name: a for a in store.list_agents()}
        assert agents["old-agent"].capabilities == ("rust",)
        assert agents["object-caps"].capabilities == ()  # an object covers nothing
        assert [s.name for s in store.list_skills()] == ["zfs"]
        assert store.get_tenant("acme").jail_root_path == "/usr/local/bastille/jails/acme"
        # the adopted board works: the queued task is claimable
        claimed = store.claim_next(agents["old-agent"].id)
        assert claimed is not None and claimed.title == "waiting"
    assert "adopting a database created by the original" in caplog.text
    if db_url.startswith("sqlite"):
        db_file = Path(db_url.removeprefix("sqlite:///"))
        backups = list(db_file.parent.glob(f"{db_file.name}.pre-{HEAD}-*.bak"))
        assert len(backups) == 1
        with sqlite3.connect(backups[0]) as conn:
            assert conn.execute("SELECT title FROM tasks WHERE id = 1").fetchone() == ("old task",)
    else:
        assert "pg_dump first is the operator's job" in caplog.text


def test_partial_original_schema_is_refused(db_url: str) -> None:
    _raw_exec(db_url, ORIGINAL_DDL[:2])
    with pytest.raises(SchemaError, match="refusing to adopt a partial schema"):
        Store.open(db_url)
    assert "audit_events" not in _tables(db_url)


def test_sqlite_pragmas_on_every_connection(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'p.sqlite'}", busy_timeout=7) as store:
        cur = store._cursor()
        assert cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cur.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert cur.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert cur.execute("PRAGMA busy_timeout").fetchone()[0] == 7000


def test_status_check_constraint_is_in_the_database(db_url: str) -> None:
    Store.open(db_url).close()
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO tasks (status, title, created_at, updated_at) "
            "VALUES ('running', 't', 'x', 'x')"
        )
    engine.dispose()


def test_in_memory_and_unknown_urls_are_refused() -> None:
    with pytest.raises(colibri_store.InvalidInput, match="not durable"):
        Store.open("sqlite://")
    with pytest.raises(colibri_store.InvalidInput, match="unsupported database 'mysql'"):
        Store.open("mysql://u@localhost/db")
    with pytest.raises(colibri_store.InvalidInput, match="not a database URL"):
        Store.open("::nonsense::")


# ---------------------------------------------------------------- additive only

_DESTRUCTIVE_OPS = {
    "drop_table",
    "drop_column",
    "drop_index",
    "drop_constraint",
    "alter_column",
    "rename_table",
    "batch_alter_table",
    "exec_driver_sql",  # raw SQL must go through op.execute with a literal, checked below
}
_DESTRUCTIVE_SQL = [
    # a statement (at the start, or after a ';') that destroys or rewrites
    re.compile(
        r"(^|;)\s*(DROP\s+\w|TRUNCATE\s+\w|DELETE\s+FROM\b|UPDATE\s+\w+\s+SET\b|REPLACE\s+INTO\b)",
        re.M,
    ),
    re.compile(r"\bALTER\s+TABLE\b[^;]*\b(RENAME|DROP|ALTER\s+COLUMN|TYPE)\b", re.S),
]


def _revision_problems(source: str) -> list[str]:
    tree = ast.parse(source)
    problems = []
    # Every string in the module, constants included, is checked as SQL.
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.upper()
            problems += [f"SQL {text[:40]!r}" for rx in _DESTRUCTIVE_SQL if rx.search(text)]
        if isinstance(node, ast.FunctionDef) and node.name == "downgrade":
            body = [
                n
                for n in node.body
                if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
            ]
            if not all(isinstance(n, ast.Pass) for n in body):
                problems.append("downgrade has a body")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _DESTRUCTIVE_OPS:
                problems.append(f"op.{node.func.attr}")
            if node.func.attr == "execute" and not all(
                isinstance(a, ast.Constant | ast.JoinedStr) for a in node.args
            ):
                problems.append("execute() of SQL that is not a literal")
    return problems


@pytest.mark.parametrize("path", sorted(VERSIONS.glob("*.py")), ids=lambda p: p.name)
def test_every_revision_is_additive(path: Path) -> None:
    if path.name == "__init__.py":
        return
    assert _revision_problems(path.read_text()) == []


@pytest.mark.parametrize(
    "body",
    [
        "def upgrade():\n    op.drop_table('tasks')\ndef downgrade():\n    pass\n",
        "def upgrade():\n    op.alter_column('tasks', 'title', new_column_name='name')\n",
        "def upgrade():\n    op.execute('ALTER TABLE tasks RENAME TO t2')\n",
        "def upgrade():\n    op.execute('DROP INDEX ix')\n",
        "def upgrade():\n    op.execute('CREATE INDEX i ON t (c); DROP TABLE tasks')\n",
        "def upgrade():\n    op.get_bind().exec_driver_sql('DROP TABLE tasks')\n",
        "SQL = 'DROP TABLE tasks'\ndef upgrade():\n    op.execute(SQL)\n",
        "def upgrade():\n    pass\ndef downgrade():\n    op.drop_table('x')\n",
    ],
)
def test_the_additive_check_catches_destructive_revisions(body: str) -> None:
    assert _revision_problems(body) != []
