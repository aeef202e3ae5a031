"""Agents, skills and tenants."""

from __future__ import annotations

import pytest

from colibri_store import (
    AgentStatus,
    AlreadyExists,
    InvalidInput,
    InvalidTransition,
    NotFound,
    Store,
    TenantStatus,
)


def test_register_agent_is_an_upsert_by_name(store: Store) -> None:
    a = store.register_agent("builder", ["zfs", "freebsd", "zfs"], host="h1")
    assert a.capabilities == ("freebsd", "zfs") and a.host == "h1"
    b = store.register_agent("builder", ["linux"], max_tasks=3)
    assert b.id == a.id and b.capabilities == ("linux",) and b.max_tasks == 3
    assert [x.name for x in store.list_agents()] == ["builder"]


@pytest.mark.parametrize(
    "caps",
    [{"zfs": 1}, "zfs", ["zfs", 1], [None], [""], 42, [["nested"]], ["x"] * 65],
    ids=["object", "string", "mixed", "null", "empty", "int", "nested", "too-many"],
)
def test_capabilities_must_be_an_array_of_strings(store: Store, caps: object) -> None:
    with pytest.raises(InvalidInput, match="capabilities") as info:
        store.register_agent("a", caps)  # type: ignore[arg-type]
    assert info.value.field == "capabilities"
    assert store.list_agents() == []


def test_agent_status_and_heartbeat(store: Store, clock) -> None:
    a = store.register_agent("a")
    assert a.status is AgentStatus.IDLE
    clock.advance(5)
    hb = store.agent_heartbeat(a.id, host="h2")
    assert hb.status is AgentStatus.ACTIVE and hb.host == "h2" and hb.last_seen > a.last_seen
    off = store.set_agent_status(a.id, "offline")
    assert off.status is AgentStatus.OFFLINE
    assert store.list_agents(status="offline") == [off]
    with pytest.raises(InvalidInput, match="unknown value 'asleep'"):
        store.set_agent_status(a.id, "asleep")
    with pytest.raises(NotFound):
        store.agent_heartbeat(99)


def test_skills_have_unique_names(store: Store) -> None:
    s = store.register_skill("zfs", "snapshots", "storage")
    assert store.list_skills() == [s]
    with pytest.raises(AlreadyExists, match="a skill with name 'zfs' already exists"):
        store.register_skill("zfs")
    with pytest.raises(InvalidInput):
        store.register_skill("")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("acme", "/j/other", "c2"), "tenant_id"),
        (("t2", "/j/acme", "c2"), "jail_root_path"),
        (("t2", "/j/other", "acme-col"), "collection_id"),
    ],
)
def test_tenant_columns_are_unique(store: Store, args: tuple[str, str, str], field: str) -> None:
    store.register_tenant("acme", "/j/acme", "acme-col")
    with pytest.raises(AlreadyExists) as info:
        store.register_tenant(*args)
    assert info.value.field == field
    assert [t.tenant_id for t in store.list_tenants()] == ["acme"]


def test_tenant_lifecycle(store: Store) -> None:
    t = store.register_tenant("acme", "/j/acme", "acme")
    assert t.status is TenantStatus.PROVISIONED
    with pytest.raises(InvalidTransition, match="provisioned: cannot move to stopped"):
        store.set_tenant_status("acme", "stopped")
    for status in ("active", "stopped", "active", "stopped", "destroyed"):
        assert store.set_tenant_status("acme", status).status.value == status
    for status in TenantStatus:
        with pytest.raises(InvalidTransition):
            store.set_tenant_status("acme", status)
    with pytest.raises(InvalidInput):
        store.register_tenant("x", "relative/path", "x")
    with pytest.raises(NotFound):
        store.get_tenant("nobody")
