"""A provision that dies half-way (SIGKILL, power loss) leaves the jail consistent.

The crash is real: a child process runs provision() and ends itself with ``os._exit``
at the chosen system call, as SIGKILL would, with no ``finally`` run.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

from conftest import World, settings_from
from dotenv import dotenv_values

from colibri_vault import ProvisionAction, provision


def _crash_at_first_fsync(vault_kwargs: dict[str, Any], jail_kwargs: dict[str, Any]) -> None:
    # The first fsync is the temporary file's, after its content and before the rename.
    os.fsync = lambda fd: os._exit(86)
    vault, jail = settings_from(vault_kwargs, jail_kwargs)
    provision("tenant-alpha", vault=vault, jail=jail)


def _crash_in_child(world: World) -> None:
    world.save()
    vault_kwargs, jail_kwargs = world.child_settings()
    child = multiprocessing.get_context("spawn").Process(
        target=_crash_at_first_fsync, args=(vault_kwargs, jail_kwargs)
    )
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 86, child.exitcode


def _rotate(world: World, old: str, new: str) -> None:
    for item in world.scenario["vault"]["items"]:
        for field in item.get("fields", []):
            if field.get("value") == old:
                field["value"] = new
                return
    raise AssertionError(f"no field holds {old!r}")


def test_a_temporary_file_left_by_a_crash_is_removed_by_the_next_provision(
    world: World,
) -> None:
    home: Path = world.env_file("tenant-alpha").parent
    world.run("tenant-alpha")
    _rotate(world, "sk-or-v1-0123456789abcdef", "sk-or-v1-rotated-000000000")
    _crash_in_child(world)
    # The crash left the rotated set under a temporary name; .env still has the old one.
    leftovers = [p.name for p in home.iterdir() if p.name != ".env"]
    assert len(leftovers) == 1 and leftovers[0].startswith("..env.colibri-"), leftovers
    assert "sk-or-v1-rotated-000000000" in (home / leftovers[0]).read_text()
    assert dotenv_values(home / ".env")["OPENROUTER_API_KEY"] == "sk-or-v1-0123456789abcdef"

    # The key is revoked and dropped from the vault: no copy of it may stay in the jail.
    for item in world.scenario["vault"]["items"]:
        item["fields"] = [
            f for f in item.get("fields", []) if f.get("name") != "OPENROUTER_API_KEY"
        ]
    result = world.run("tenant-alpha")
    assert result.action is ProvisionAction.UPDATED
    assert sorted(p.name for p in home.iterdir()) == [".env"]
    assert "OPENROUTER_API_KEY" not in dotenv_values(home / ".env")
    assert any("interrupted write" in r.getMessage() for r in world.caplog.records)


def test_leftovers_go_on_an_unchanged_run_too_and_look_alikes_stay(world: World) -> None:
    home: Path = world.env_file("tenant-alpha").parent
    world.run("tenant-alpha")
    _rotate(world, "sk-or-v1-0123456789abcdef", "sk-or-v1-rotated-000000000")
    _crash_in_child(world)
    _rotate(world, "sk-or-v1-rotated-000000000", "sk-or-v1-0123456789abcdef")
    (leftover,) = [p for p in home.iterdir() if p.name != ".env"]
    # Names the writer never makes, and a directory with the writer's name, are the
    # jail user's own: they stay.
    keep = ["..env.colibri-0123.tmp", "..env.colibri-0123456789abcdef.tmp.bak", "x.env.tmp"]
    for name in keep:
        (home / name).write_text("mine\n")
    (home / "..env.colibri-00000000000000ff.tmp").mkdir()
    assert world.run("tenant-alpha").action is ProvisionAction.UNCHANGED
    assert not leftover.exists()
    assert sorted(p.name for p in home.iterdir()) == sorted(
        [".env", "..env.colibri-00000000000000ff.tmp", *keep]
    )


def test_a_symlink_named_like_a_leftover_is_not_followed(world: World) -> None:
    home: Path = world.env_file("tenant-alpha").parent
    (home / "..env.colibri-0123456789abcdef.tmp").symlink_to(world.host / "precious.txt")
    world.run("tenant-alpha")
    assert (world.host / "precious.txt").read_text() == "host data\n"
