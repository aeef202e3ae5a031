"""One bw sequence at a time per appdata dir, across threads and processes."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import World, collection, guid, note, settings_from
from dotenv import dotenv_values

import colibri_vault._provision
from colibri_vault import JailSettings, ProvisionAction, ProvisionResult, VaultSettings, provision
from colibri_vault.errors import LockTimeout

TENANTS = [f"tenant-{i}" for i in range(8)]


def _populate(world: World) -> None:
    world.caplog.set_level(logging.DEBUG, logger="colibri_vault")
    for i, tenant in enumerate(TENANTS):
        world.make_jail(tenant)
        world.scenario["vault"]["collections"].append(collection(tenant, guid(f"COL-{i}")))
        world.scenario["vault"]["items"].append(
            note(
                f"{tenant}-keys",
                f"item-{i}",
                guid(f"COL-{i}"),
                [(1, "TENANT_TOKEN", f"token-{i}-xyz")],
            )
        )
    # Widen every bw call so unserialised sequences would surely overlap.
    world.scenario["delay"] = 0.03
    world.save()


def _check(world: World, results: list[Any]) -> None:
    for tenant, result in zip(TENANTS, results, strict=True):
        assert isinstance(result, ProvisionResult), result
        assert result.action is ProvisionAction.CREATED
        i = tenant.rsplit("-", 1)[1]
        env = world.base / tenant / "root/home/agent/.env"
        assert dotenv_values(env, interpolate=False) == {"TENANT_TOKEN": f"token-{i}-xyz"}
    logged = [r.getMessage() for r in world.caplog.records]
    assert any("created" in m for m in logged) or not any(
        isinstance(r, ProvisionResult) and r.path for r in results
    )
    world.assert_no_leak([repr(r) for r in results] + logged)
    calls = world.calls()
    assert len(calls) == 9 + 7 * 7  # one login, then status..lock per tenant
    assert not [c for c in calls if c["overlap"]], "two bw processes ran at once"


def _provision_one(args: tuple[str, VaultSettings, JailSettings]) -> Any:
    tenant, vault, jail = args
    try:
        return provision(tenant, vault=vault, jail=jail)
    except Exception as exc:
        return exc


def test_eight_threads_provision_eight_tenants(world: World) -> None:
    _populate(world)
    vault, jail = world.vault_settings(), world.jail_settings()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(_provision_one, [(t, vault, jail) for t in TENANTS]))
    _check(world, results)


def _in_child(tenant: str, vault_kwargs: dict[str, Any], jail_kwargs: dict[str, Any]) -> str:
    vault, jail = settings_from(vault_kwargs, jail_kwargs)
    return provision(tenant, vault=vault, jail=jail).action.value


def test_eight_processes_provision_eight_tenants(world: World) -> None:
    _populate(world)
    vault_kwargs, jail_kwargs = world.child_settings()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        pending = [pool.apply_async(_in_child, (t, vault_kwargs, jail_kwargs)) for t in TENANTS]
        actions = [p.get(timeout=120) for p in pending]
    assert actions == ["created"] * 8
    _check(world, [ProvisionResult(t, ProvisionAction.CREATED, "") for t in TENANTS])


def test_without_the_lock_sequences_overlap(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # The control for the two tests above: their overlap check can fail.
    _populate(world)
    monkeypatch.setattr(
        colibri_vault._provision, "appdata_lock", lambda *a, **k: contextlib.nullcontext()
    )
    vault, jail = world.vault_settings(), world.jail_settings()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(_provision_one, [(t, vault, jail) for t in TENANTS]))
    assert any(c["overlap"] for c in world.calls())


def test_a_held_lock_times_out_without_running_bw(world: World) -> None:
    path: Path = world.appdata / ".colibri-vault.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        exc = world.fail("tenant-alpha", LockTimeout, vault=world.vault_settings(lock_timeout=0.3))
        assert str(path) in str(exc)
    finally:
        os.close(fd)
    assert world.calls() == []
    assert world.run("tenant-alpha").action is ProvisionAction.CREATED
