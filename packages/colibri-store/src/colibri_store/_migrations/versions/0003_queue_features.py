"""Queue features: unique tasks, concurrency keys, scheduling and backoff, per-task leases.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_QUEUED = sa.text("status = 'queued'")
_OPEN_WITH_KEY = sa.text("dedupe_key IS NOT NULL AND status IN ('queued', 'claimed', 'started')")


def upgrade() -> None:
    op.add_column("tasks", sa.Column("dedupe_key", sa.Text, nullable=True))
    op.add_column("tasks", sa.Column("concurrency_key", sa.Text, nullable=True))
    op.add_column("tasks", sa.Column("concurrency_limit", sa.Integer, nullable=True))
    op.add_column("tasks", sa.Column("not_before", sa.Text, nullable=True))
    op.add_column("tasks", sa.Column("lease_seconds", sa.Float, nullable=True))
    # One open task per dedupe key: a retried intake finds the task it already made.
    op.create_index(
        "ux_tasks_dedupe_open",
        "tasks",
        ["dedupe_key"],
        unique=True,
        sqlite_where=_OPEN_WITH_KEY,
        postgresql_where=_OPEN_WITH_KEY,
    )
    op.create_index("ix_tasks_concurrency", "tasks", ["concurrency_key", "status"])
    # The oldest-first claims (anti-starvation) walk queued tasks by id; a partial index
    # holds only queued rows, so it costs nothing when tasks finish.
    op.create_index(
        "ix_tasks_queued_by_age",
        "tasks",
        ["id"],
        sqlite_where=_QUEUED,
        postgresql_where=_QUEUED,
    )


def downgrade() -> None:
    # Revisions are additive only: there is no way down (tests enforce this).
    pass
