"""The task board: leases, fencing epochs, priorities, dependencies, usage, audit chain.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns: list[tuple[str, type[sa.types.TypeEngine[int]] | type[sa.Text], dict[str, Any]]] = [
        ("required_capabilities", sa.Text, {"nullable": False, "server_default": "[]"}),
        ("priority", sa.Integer, {"nullable": False, "server_default": "0"}),
        ("attempts", sa.Integer, {"nullable": False, "server_default": "0"}),
        ("max_attempts", sa.Integer, {"nullable": False, "server_default": "3"}),
        ("claim_epoch", sa.Integer, {"nullable": False, "server_default": "0"}),
        ("lease_expires_at", sa.Text, {"nullable": True}),
        ("session_id", sa.Text, {"nullable": True}),
        ("result", sa.Text, {"nullable": True}),
        ("last_error", sa.Text, {"nullable": True}),
        ("input_tokens", sa.Integer, {"nullable": False, "server_default": "0"}),
        ("output_tokens", sa.Integer, {"nullable": False, "server_default": "0"}),
        ("cache_read_tokens", sa.Integer, {"nullable": False, "server_default": "0"}),
        ("cache_write_tokens", sa.Integer, {"nullable": False, "server_default": "0"}),
        ("cost_micros", sa.BigInteger, {"nullable": False, "server_default": "0"}),
        ("started_at", sa.Text, {"nullable": True}),
        ("finished_at", sa.Text, {"nullable": True}),
    ]
    for name, type_, kwargs in columns:
        op.add_column("tasks", sa.Column(name, type_, **kwargs))
    op.add_column("agents", sa.Column("host", sa.Text, nullable=True))
    op.add_column("agents", sa.Column("last_seen", sa.Text, nullable=True))
    op.add_column("agents", sa.Column("max_tasks", sa.Integer, nullable=True))

    # Claim order is priority, then age: one index serves the seek on status and the
    # order, so a claim costs O(log n) however many finished tasks the table holds.
    op.create_index("ix_tasks_claim_order", "tasks", ["status", sa.text("priority DESC"), "id"])
    # Lease sweeps seek (status, lease) for the few overdue rows; capacity checks seek
    # an agent's active tasks. Plain composite indexes, which both planners pick.
    op.create_index("ix_tasks_lease", "tasks", ["status", "lease_expires_at"])
    op.create_index("ix_tasks_agent", "tasks", ["agent_id", "status"])

    op.create_table(
        "task_dependencies",
        sa.Column("task_id", sa.Integer, sa.ForeignKey("tasks.id"), primary_key=True),
        sa.Column("depends_on", sa.Integer, sa.ForeignKey("tasks.id"), primary_key=True),
    )
    op.create_index("ix_task_dependencies_depends_on", "task_dependencies", ["depends_on"])

    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("verb", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
    )
    # Append-only, enforced by the database itself.
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{event.lower()} BEFORE {event} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION colibri_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION colibri_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION colibri_audit_append_only()"
        )


def downgrade() -> None:
    # Revisions are additive only: there is no way down (tests enforce this).
    pass
