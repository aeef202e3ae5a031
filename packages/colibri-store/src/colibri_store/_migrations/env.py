"""Alembic environment: always runs on the connection colibri-store passes in.

colibri-store runs migrations itself on every open (no alembic.ini, no CLI);
see ``colibri_store._migrate``.
"""

from __future__ import annotations

from alembic import context

from colibri_store._migrate import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
