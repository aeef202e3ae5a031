"""colibri-store: a durable, concurrency-safe task board on SQLite or PostgreSQL.

    from colibri_store import Store
    store = Store.open()                  # COLIBRI_DB_URL / COLIBRI_DB_PATH / platform default
    task = store.create_task("fix zfs snapshot", required_capabilities=["zfs"])
    agent = store.register_agent("builder", ["zfs", "freebsd"])
    claimed = store.claim_next(agent.id)
    store.start(claimed.id, claimed.claim_epoch)
    store.complete(claimed.id, claimed.claim_epoch, result={"ok": True})

See the package README for every entry point.
"""

from __future__ import annotations

from typing import Any

from colibri_store._audit import verify_inclusion
from colibri_store._location import default_db_path
from colibri_store._models import (
    Agent,
    AgentStatus,
    AuditEvent,
    BatchOutcome,
    ChainReport,
    InclusionProof,
    Skill,
    Task,
    TaskStatus,
    Tenant,
    TenantStatus,
    Usage,
)
from colibri_store._store import Store
from colibri_store.errors import (
    AlreadyExists,
    AtCapacity,
    Conflict,
    DependencyCycle,
    InvalidInput,
    InvalidTransition,
    NotFound,
    SchemaError,
    SchemaTooNew,
    StaleEpoch,
    StoreError,
)

__all__ = [
    "Agent",
    "AgentStatus",
    "AlreadyExists",
    "AtCapacity",
    "AuditEvent",
    "BatchOutcome",
    "ChainReport",
    "Conflict",
    "DependencyCycle",
    "InclusionProof",
    "InvalidInput",
    "InvalidTransition",
    "NotFound",
    "SchemaError",
    "SchemaTooNew",
    "Skill",
    "StaleEpoch",
    "Store",
    "StoreError",
    "Task",
    "TaskStatus",
    "Tenant",
    "TenantStatus",
    "Usage",
    "__version__",
    "default_db_path",
    "verify_inclusion",
]


def __getattr__(name: str) -> Any:
    # The version comes from the installed distribution's metadata (one source of truth).
    if name == "__version__":
        from importlib.metadata import version

        return version("colibri-store")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
