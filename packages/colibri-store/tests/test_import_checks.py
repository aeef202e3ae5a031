"""import_json refuses rows the store itself could never have written, where they harm.

Timestamps the store alone writes must be in its own form: claims and lease expiry
compare ``lease_expires_at`` and ``not_before`` as text, so a time in any other form
would leave a task leased, or waiting, for ever. ``created_at``/``updated_at`` may also
be any ISO-8601 time, which is what a database adopted from the original holds. Task
rows must pass what ``create_task`` checks (title, priority, max_attempts, concurrency
key and limit), agent rows what ``register_agent`` checks (name, max_tasks).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from test_schema import ORIGINAL_DDL, ORIGINAL_ROWS, _raw_exec

from colibri_store import InvalidInput, Store, _audit


def _document(store: Store) -> dict[str, Any]:
    agent = store.register_agent("a", ["x"])
    store.create_task("queued one")
    task = store.create_task("keyed", concurrency_key="repo")
    store.create_task("claimed one")
    store.claim(task.id, agent.id)
    store.agent_heartbeat(agent.id)
    return store.export_json()


def _rechained(doc: dict[str, Any]) -> dict[str, Any]:
    """The audit events' hashes recomputed, so only the poked value can be refused."""
    prev = _audit.GENESIS_HASH
    for event in doc["tables"]["audit_events"]:
        event["prev_hash"] = prev
        event["hash"] = prev = _audit.event_hash(
            prev,
            event["seq"],
            event["at"],
            event["actor"],
            event["verb"],
            event["subject"],
            _audit.canonical_json(json.loads(event["payload"])),
        )
    return doc


def _poked(doc: dict[str, Any], table: str, column: str, value: Any, where: Any = None) -> Any:
    out = copy.deepcopy(doc)
    rows = [r for r in out["tables"][table] if where is None or where(r)]
    assert rows, f"no {table} row to poke"
    rows[0][column] = value
    return _rechained(out)


BAD = [
    # (table, column, value, which row, message)
    ("tasks", "lease_expires_at", "9999-99-99T99:99:99.999999Z", "leased", "must be a time"),
    ("tasks", "lease_expires_at", "2026-11-23 12:00:00", "leased", "must be a time"),
    ("tasks", "lease_expires_at", "zzz", "leased", "must be a time"),
    ("tasks", "started_at", "yesterday", None, "must be a time"),
    ("tasks", "finished_at", "2026-11-23T12:00:00Z", None, "must be a time"),
    ("agents", "last_seen", "2026-11-23T12:00:00.000000+00:00", None, "must be a time"),
    ("audit_events", "at", "2026-11-23", None, "must be a time"),
    ("tasks", "not_before", "0999-01-01T00:00:00.000000Z", None, "must be a time"),
    ("tasks", "created_at", "", None, "ISO-8601"),
    ("tasks", "updated_at", "not a time", None, "ISO-8601"),
    ("agents", "created_at", "yesterday", None, "ISO-8601"),
    ("skills", "created_at", "32/13/2025", None, "ISO-8601"),
    ("tenants", "updated_at", "soon", None, "ISO-8601"),
    ("tasks", "max_attempts", 0, None, "max_attempts"),
    ("tasks", "max_attempts", 1001, None, "max_attempts"),
    ("tasks", "concurrency_limit", None, "keyed", "both set or both null"),
    ("tasks", "concurrency_key", None, "keyed", "both set or both null"),
    ("tasks", "concurrency_limit", 0, "keyed", "concurrency_limit"),
    ("tasks", "concurrency_key", "", "keyed", "must not be empty"),
    ("tasks", "dedupe_key", "", None, "must not be empty"),
    ("tasks", "title", "", None, "must not be empty"),
    ("tasks", "title", "   ", None, "must not be empty"),
    ("tasks", "title", "t" * 501, None, "the limit is 500"),
    ("tasks", "priority", 1_000_001, None, "priority"),
    ("tasks", "priority", -1_000_001, None, "priority"),
    ("agents", "max_tasks", 0, None, "max_tasks"),
    ("agents", "max_tasks", 100_001, None, "max_tasks"),
    ("agents", "name", "", None, "must not be empty"),
]
ROWS = {
    None: None,
    "leased": lambda r: r.get("lease_expires_at") is not None,
    "keyed": lambda r: r.get("concurrency_key") is not None,
}


@pytest.mark.parametrize(
    ("table", "column", "value", "row", "message"),
    BAD,
    ids=[f"{t}.{c}={v!r}" for t, c, v, _, _ in BAD],
)
def test_import_refuses(
    db_url: str,
    tmp_path: Any,
    table: str,
    column: str,
    value: Any,
    row: str | None,
    message: str,
) -> None:
    from conftest import make_url

    with Store.open(db_url, actor="src") as src:
        doc = _document(src)
    if table == "skills":
        doc["tables"]["skills"] = [
            {"id": 1, "name": "zfs", "description": None, "category": None, "created_at": "x"}
        ]
    if table == "tenants":
        doc["tables"]["tenants"] = [
            {
                "tenant_id": "acme",
                "jail_root_path": "/j/acme",
                "collection_id": "c1",
                "status": "active",
                "created_at": "2026-11-23T12:00:00.000000Z",
                "updated_at": "2026-11-23T12:00:00.000000Z",
            }
        ]
    bad = _poked(doc, table, column, value, ROWS[row])
    (tmp_path / "dst").mkdir()
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    with Store.open(make_url(backend, tmp_path / "dst")) as dst:
        with pytest.raises(InvalidInput, match=message) as refused:
            dst.import_json(bad)
        assert f"tables.{table}[" in str(refused.value)
        assert column in str(refused.value) or "concurrency" in str(refused.value)
        # Nothing of it landed: the same store then takes the good document whole.
        assert all(rows == [] for rows in dst.export_json()["tables"].values())
        good = _rechained(copy.deepcopy(doc))
        if table == "skills":
            good["tables"]["skills"][0]["created_at"] = "2026-11-23T12:00:00.000000Z"
        dst.import_json(good)
        assert dst.export_json()["tables"] == good["tables"]
        assert dst.verify_chain().ok


def test_adopted_database_round_trips(db_url: str, tmp_path: Any) -> None:
    """The original's timestamps ("2025-01-01 00:00:00") still import."""
    from conftest import make_url

    _raw_exec(db_url, ORIGINAL_DDL + ORIGINAL_ROWS)
    with Store.open(db_url) as adopted:
        doc = adopted.export_json()
    assert doc["tables"]["tasks"][0]["created_at"] == "2025-01-02 00:00:00"
    (tmp_path / "dst").mkdir()
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    with Store.open(make_url(backend, tmp_path / "dst")) as dst:
        dst.import_json(doc)
        assert dst.export_json()["tables"] == doc["tables"]
