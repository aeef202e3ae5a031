"""The current schema as SQLAlchemy Core tables (what the migrations build, at head).

Timestamps are TEXT in one fixed-width UTC form, ``2026-11-23T19:06:24.123456Z``,
on both backends: they sort correctly as text, compare the same everywhere and
round-trip through export/import byte for byte. JSON columns are TEXT holding
canonical JSON. Money is integer micro-dollars.
"""

from __future__ import annotations

import sqlalchemy as sa

TASK_STATUSES = ("queued", "claimed", "started", "done", "failed")
ACTIVE_TASK_STATUSES = ("claimed", "started")

metadata = sa.MetaData()

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("capabilities", sa.Text, nullable=False, server_default="[]"),
    sa.Column("status", sa.Text, nullable=False, server_default="idle"),
    sa.Column("created_at", sa.Text, nullable=False),
    # revision 0002
    sa.Column("host", sa.Text, nullable=True),
    sa.Column("last_seen", sa.Text, nullable=True),
    sa.Column("max_tasks", sa.Integer, nullable=True),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("agents.id"), nullable=True),
    sa.Column("status", sa.Text, nullable=False, server_default="queued"),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    # revision 0002
    sa.Column("required_capabilities", sa.Text, nullable=False, server_default="[]"),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="3"),
    sa.Column("claim_epoch", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_expires_at", sa.Text, nullable=True),
    sa.Column("session_id", sa.Text, nullable=True),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("input_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cache_read_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cache_write_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cost_micros", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("started_at", sa.Text, nullable=True),
    sa.Column("finished_at", sa.Text, nullable=True),
    # revision 0003
    sa.Column("dedupe_key", sa.Text, nullable=True),
    sa.Column("concurrency_key", sa.Text, nullable=True),
    sa.Column("concurrency_limit", sa.Integer, nullable=True),
    sa.Column("not_before", sa.Text, nullable=True),
    sa.Column("lease_seconds", sa.Float, nullable=True),
    sa.CheckConstraint(
        "status IN ('queued', 'claimed', 'started', 'done', 'failed')", name="ck_tasks_status"
    ),
)

skills = sa.Table(
    "skills",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("category", sa.Text, nullable=True),
    sa.Column("created_at", sa.Text, nullable=False),
)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("jail_root_path", sa.Text, nullable=False, unique=True),
    sa.Column("collection_id", sa.Text, nullable=False, unique=True),
    sa.Column("status", sa.Text, nullable=False, server_default="provisioned"),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
)

task_dependencies = sa.Table(
    "task_dependencies",
    metadata,
    sa.Column("task_id", sa.Integer, sa.ForeignKey("tasks.id"), primary_key=True),
    sa.Column("depends_on", sa.Integer, sa.ForeignKey("tasks.id"), primary_key=True),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("verb", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.Text, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
)

#: Tables in an order that satisfies foreign keys (export/import use it).
TABLES_IN_ORDER = (agents, skills, tenants, tasks, task_dependencies, audit_events)
ORIGINAL_TABLES = ("tasks", "agents", "skills", "tenants")
