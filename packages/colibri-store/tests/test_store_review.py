"""Regression tests for defects found in the store review (each failed before its fix)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeClock, make_url

from colibri_store import InvalidInput, Store


def _backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


def _three_task_document(db_url: str) -> dict[str, Any]:
    with Store.open(db_url, actor="src") as src:
        agent = src.register_agent("a", ["x"])
        assert agent.id == 1
        for title in ("one", "two", "three"):
            src.create_task(title)
        src.register_skill("zfs")
        return src.export_json()


def _refused_and_empty(db_url: str, tmp_path: Path, doc: dict[str, Any], match: str) -> None:
    (tmp_path / "dst").mkdir()
    with Store.open(make_url(_backend(db_url), tmp_path / "dst")) as dst:
        with pytest.raises(InvalidInput, match=match):
            dst.import_json(doc)
        assert all(rows == [] for rows in dst.export_json()["tables"].values())


@pytest.mark.parametrize(
    ("table", "column"),
    [("tasks", "id"), ("agents", "id"), ("skills", "id"), ("tasks", "agent_id")],
)
def test_import_refuses_id_zero(db_url: str, tmp_path: Path, table: str, column: str) -> None:
    """An imported task with id 0 was claimable by claim_next, but get_task, start,
    complete and release refuse id 0 (and list_tasks skips it): it was stuck for good."""
    doc = copy.deepcopy(_three_task_document(db_url))
    doc["tables"][table][0][column] = 0
    _refused_and_empty(db_url, tmp_path, doc, rf"tables\.{table}\[0\]\.{column}")


@pytest.mark.parametrize(
    "edges",
    [[(1, 1)], [(1, 2), (2, 1)], [(1, 2), (2, 3), (3, 1)]],
    ids=["self", "two", "three"],
)
def test_import_refuses_dependency_cycles(
    db_url: str, tmp_path: Path, edges: list[tuple[int, int]]
) -> None:
    """add_dependency refuses cycles; an import planted them, and the tasks in a
    cycle could never become ready."""
    doc = copy.deepcopy(_three_task_document(db_url))
    doc["tables"]["task_dependencies"] = [{"task_id": t, "depends_on": d} for t, d in edges]
    _refused_and_empty(db_url, tmp_path, doc, "dependency cycle")


def test_import_takes_a_diamond_of_dependencies(db_url: str, tmp_path: Path) -> None:
    """Shared upstreams are no cycle."""
    doc = copy.deepcopy(_three_task_document(db_url))
    doc["tables"]["task_dependencies"] = [
        {"task_id": 3, "depends_on": 1},
        {"task_id": 3, "depends_on": 2},
        {"task_id": 2, "depends_on": 1},
    ]
    (tmp_path / "dst").mkdir()
    with Store.open(make_url(_backend(db_url), tmp_path / "dst")) as dst:
        dst.import_json(doc)
        assert dst.get_task(3).depends_on == (1, 2)
        assert [t.id for t in dst.list_tasks(ready=True)] == [1]


_END = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def test_expiry_whose_backoff_ends_after_9999_is_refused_typed(store: Store) -> None:
    """expire_leases(now=...) near datetime.max raised OverflowError (no StoreError)."""
    agent = store.register_agent("a")
    store.create_task("t", max_attempts=5)
    held = store.claim_next(agent.id)
    assert held is not None
    seq = len(store.audit_events())
    with pytest.raises(InvalidInput, match="now"):
        store.expire_leases(now=_END)
    assert store.get_task(held.id) == held
    assert len(store.audit_events()) == seq


def test_a_lease_ending_after_9999_is_refused_typed(db_url: str) -> None:
    """A claim, heartbeat or extend_lease whose lease ends past datetime.max raised
    OverflowError; it is now InvalidInput, and nothing changes."""
    clock = FakeClock()
    with Store.open(db_url, clock=clock, actor="test", lease_seconds=60) as store:
        agent = store.register_agent("a")
        task = store.create_task("t")
        held = store.claim(task.id, agent.id)
        clock.now = _END - timedelta(days=1)
        seq = len(store.audit_events())
        with pytest.raises(InvalidInput, match="lease_seconds"):
            store.extend_lease(held.id, held.claim_epoch, 366 * 86400)
        with pytest.raises(InvalidInput, match="lease_seconds"):
            store.heartbeat(held.id, held.claim_epoch, lease_seconds=2 * 86400)
        assert store.get_task(held.id) == held
        assert len(store.audit_events()) == seq
        store.complete(held.id, store.start(held.id, held.claim_epoch).claim_epoch)
        other = store.create_task("other")
        clock.now = _END
        seq = len(store.audit_events())
        for claim in (
            lambda: store.claim_next(agent.id),
            lambda: store.claim_batch(agent.id, 5),
            lambda: store.claim(other.id, agent.id),
        ):
            with pytest.raises(InvalidInput, match="lease_seconds"):
                claim()
        assert store.get_task(other.id) == other
        assert len(store.audit_events()) == seq
