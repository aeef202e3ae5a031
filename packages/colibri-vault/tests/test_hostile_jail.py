"""A hostile jail cannot make provision() touch anything outside it.

Each test snapshots every file and directory of the test's host tree outside the
jail root (type, mode, owner, size, mtime, content, link target) before and after,
and compares. Path errors are raised before bw is even started.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import JAIL_UID, World, snapshot
from dotenv import dotenv_values

import colibri_vault._provision
from colibri_vault import ProvisionAction
from colibri_vault.errors import (
    EnvWriteFailed,
    JailUserMissing,
    TargetEscapesRoot,
    UnsafeJailUser,
)


def outside(world: World, tenant: str = "tenant-alpha") -> dict[str, tuple]:
    # The appdata dir and the call log change by design (bw's state).
    skip = [world.base / tenant / "root", world.appdata, world.log, world.pid_file]
    skip.append(world.scenario_path)
    return snapshot(world.tmp, skip)


@pytest.fixture
def home(world: World) -> Path:
    return world.base / "tenant-alpha" / "root" / "home" / "agent"


def test_home_symlinked_to_a_host_directory(world: World, home: Path) -> None:
    home.rmdir()
    home.symlink_to(world.host / "dir")
    before = outside(world)
    exc = world.fail("tenant-alpha", TargetEscapesRoot)
    assert "symbolic link" in str(exc)
    assert outside(world) == before
    assert not (world.host / "dir" / ".env").exists()
    assert world.calls() == []


def test_home_parent_symlinked_to_a_host_directory(world: World, home: Path) -> None:
    jail_home = home.parent
    (world.host / "dir" / "agent").mkdir()
    for child in jail_home.iterdir():
        child.rmdir()
    jail_home.rmdir()
    jail_home.symlink_to(world.host / "dir")
    before = outside(world)
    world.fail("tenant-alpha", TargetEscapesRoot)
    assert outside(world) == before


def test_env_symlinked_to_a_host_file_is_replaced_not_followed(world: World, home: Path) -> None:
    (home / ".env").symlink_to(world.host / "precious.txt")
    before = outside(world)
    result = world.run("tenant-alpha")
    assert result.action is ProvisionAction.UPDATED
    assert outside(world) == before
    assert (world.host / "precious.txt").read_text() == "host data\n"
    st = os.lstat(home / ".env")
    assert stat.S_ISREG(st.st_mode) and st.st_uid == JAIL_UID
    assert dotenv_values(home / ".env", interpolate=False)["PGDATABASE"] == "alpha"


def test_env_symlink_to_a_missing_host_path_creates_nothing_there(world: World, home: Path) -> None:
    (home / ".env").symlink_to(world.host / "created-by-mistake")
    before = outside(world)
    world.run("tenant-alpha")
    assert outside(world) == before
    assert not (world.host / "created-by-mistake").exists()


def test_env_hard_linked_to_a_host_file_is_replaced_not_written_through(
    world: World, home: Path
) -> None:
    os.link(world.host / "precious.txt", home / ".env")
    before_inode = os.stat(world.host / "precious.txt").st_ino
    before = outside(world)
    result = world.run("tenant-alpha")
    assert result.action is ProvisionAction.UPDATED
    assert outside(world) == before
    assert (world.host / "precious.txt").read_text() == "host data\n"
    host = os.stat(world.host / "precious.txt")
    assert host.st_ino == before_inode and host.st_nlink == 1
    assert os.stat(home / ".env").st_ino != before_inode


def test_hard_link_with_the_right_content_is_still_replaced(world: World, home: Path) -> None:
    world.run("tenant-alpha")
    # The jail owner hard-links a host-side name to the file: an unchanged run must
    # not leave the host name sharing the secrets' inode with future writes.
    os.link(home / ".env", world.host / "linked-from-host")
    before = outside(world)
    result = world.run("tenant-alpha")
    assert result.action is ProvisionAction.UPDATED
    assert outside(world) == before
    assert os.stat(home / ".env").st_nlink == 1


def test_env_that_is_a_directory(world: World, home: Path) -> None:
    (home / ".env").mkdir()
    from colibri_vault.errors import EnvWriteFailed

    before = outside(world)
    world.fail("tenant-alpha", EnvWriteFailed)
    assert outside(world) == before


@pytest.mark.parametrize(
    "env_path",
    ["home/agent/../../../../host/evil.env", "/home/agent/./.env", "../.env", "/", ""],
)
def test_dotdot_or_dot_in_the_configured_env_path(world: World, env_path: str) -> None:
    before = outside(world)
    world.fail("tenant-alpha", TargetEscapesRoot, jail=world.jail_settings(env_path=env_path))
    assert outside(world) == before
    assert world.calls() == []


def test_dotdot_in_the_configured_jail_root(world: World) -> None:
    before = outside(world)
    root = f"{world.base}/tenant-alpha/../../host"
    world.fail("tenant-alpha", TargetEscapesRoot, jail_root=root)
    assert outside(world) == before


def test_dotdot_in_the_configured_base(world: World) -> None:
    before = outside(world)
    jail = world.jail_settings(allowed_base=f"{world.base}/../jails")
    world.fail("tenant-alpha", TargetEscapesRoot, jail=jail)
    assert outside(world) == before


def test_jail_root_outside_the_base(world: World) -> None:
    fake_root = world.host / "fakeroot"
    (fake_root / "etc").mkdir(parents=True)
    (fake_root / "etc" / "passwd").write_text("agent:*:1001:1002::/home/agent:/bin/sh\n")
    (fake_root / "home" / "agent").mkdir(parents=True)
    before = outside(world)
    world.fail("tenant-alpha", TargetEscapesRoot, jail_root=str(fake_root))
    assert outside(world) == before
    assert not (fake_root / "home" / "agent" / ".env").exists()


def test_jail_root_is_the_base_itself(world: World) -> None:
    before = outside(world)
    exc = world.fail("tenant-alpha", TargetEscapesRoot, jail_root=str(world.base))
    assert "base itself" in str(exc)
    assert outside(world) == before


def test_jail_root_is_a_relative_path(world: World) -> None:
    before = outside(world)
    world.fail("tenant-alpha", TargetEscapesRoot, jail_root="jails/tenant-alpha/root")
    assert outside(world) == before


def test_jail_root_that_is_a_symlink_elsewhere(world: World) -> None:
    elsewhere = world.host / "elsewhere"
    (elsewhere / "etc").mkdir(parents=True)
    (elsewhere / "etc" / "passwd").write_text("agent:*:1001:1002::/home/agent:/bin/sh\n")
    (elsewhere / "home" / "agent").mkdir(parents=True)
    (world.base / "tenant-link").mkdir()
    (world.base / "tenant-link" / "root").symlink_to(elsewhere)
    before = outside(world, "tenant-link")
    world.fail("tenant-link", TargetEscapesRoot)
    assert outside(world, "tenant-link") == before
    assert not (elsewhere / "home" / "agent" / ".env").exists()


def test_jail_root_symlink_pointing_inside_the_base_is_refused_too(world: World) -> None:
    (world.base / "tenant-link").mkdir()
    (world.base / "tenant-link" / "root").symlink_to(world.base / "tenant-alpha" / "root")
    world.fail("tenant-link", TargetEscapesRoot)
    assert not world.env_file("tenant-alpha").exists()


def test_base_given_through_a_host_symlink_is_canonicalised(world: World) -> None:
    # The operator's base may itself be a host symlink (/usr/local/bastille -> /tank/...).
    alias = world.tmp / "bastille-alias"
    alias.symlink_to(world.base)
    jail = world.jail_settings(allowed_base=str(alias))
    result = world.run("tenant-alpha", jail=jail)
    assert result.action is ProvisionAction.CREATED
    assert result.path == str(world.env_file("tenant-alpha"))


def test_etc_symlinked_to_the_host_etc(world: World) -> None:
    root = world.base / "tenant-alpha" / "root"
    host_etc = world.host / "etc"
    host_etc.mkdir()
    (host_etc / "passwd").write_text("agent:*:1001:1002::/home/agent:/bin/sh\n")
    (root / "etc" / "passwd").unlink()
    (root / "etc").rmdir()
    (root / "etc").symlink_to(host_etc)
    before = outside(world)
    world.fail("tenant-alpha", TargetEscapesRoot)
    assert outside(world) == before


def test_passwd_symlinked_to_a_host_file(world: World) -> None:
    root = world.base / "tenant-alpha" / "root"
    (world.host / "passwd").write_text("agent:*:1001:1002::/home/agent:/bin/sh\n")
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").symlink_to(world.host / "passwd")
    before = outside(world)
    world.fail("tenant-alpha", TargetEscapesRoot)
    assert outside(world) == before


def test_passwd_giving_the_user_uid_0(world: World) -> None:
    world.make_jail("tenant-root", uid=0, gid=0)
    before = outside(world, "tenant-root")
    exc = world.fail("tenant-root", UnsafeJailUser)
    assert "uid is 0" in str(exc)
    assert outside(world, "tenant-root") == before
    assert world.calls() == []


def test_user_in_group_0_is_refused(world: World) -> None:
    world.make_jail("tenant-wheel", gid=0)
    before = outside(world, "tenant-wheel")
    world.fail("tenant-wheel", UnsafeJailUser)
    assert outside(world, "tenant-wheel") == before


def test_user_missing_from_the_jails_passwd(world: World) -> None:
    world.make_jail(
        "tenant-nouser", passwd="root:*:0:0::/root:/bin/sh\nwww:*:80:80::/:/sbin/nologin\n"
    )
    before = outside(world, "tenant-nouser")
    exc = world.fail("tenant-nouser", JailUserMissing)
    assert "agent" in str(exc)
    assert outside(world, "tenant-nouser") == before


def test_jail_user_is_never_looked_up_on_the_host(world: World) -> None:
    # 'root' exists on every host; in this jail it is absent.
    world.make_jail("tenant-hostuser", passwd="agent:*:1001:1002::/home/agent:/bin/sh\n")
    before = outside(world, "tenant-hostuser")
    world.fail("tenant-hostuser", JailUserMissing, jail=world.jail_settings(user="daemon"))
    assert outside(world, "tenant-hostuser") == before


@pytest.mark.parametrize(
    "entry",
    [
        "agent:*:1001:1002::/home/agent:/bin/sh\nagent:*:1003:1003::/home/agent:/bin/sh\n",
        "agent:*:x:1002::/home/agent:/bin/sh\n",
        "agent:*:1001:1002::/home/agent\n",
        "agent:*:1001:1002::home/agent:/bin/sh\n",
        "agent:*:-1:1002::/home/agent:/bin/sh\n",
    ],
)
def test_unusable_passwd_entries(world: World, entry: str) -> None:
    world.make_jail("tenant-odd", passwd=entry)
    before = outside(world, "tenant-odd")
    world.fail("tenant-odd", UnsafeJailUser)
    assert outside(world, "tenant-odd") == before


def test_home_with_dotdot_in_passwd(world: World) -> None:
    world.make_jail("tenant-dd", passwd="agent:*:1001:1002::/home/../../../host:/bin/sh\n")
    before = outside(world, "tenant-dd")
    world.fail("tenant-dd", TargetEscapesRoot)
    assert outside(world, "tenant-dd") == before


def test_missing_jail(world: World) -> None:
    world.fail("tenant-none", TargetEscapesRoot)
    assert world.calls() == []


def test_relative_allowed_base_is_refused(world: World) -> None:
    world.fail("tenant-alpha", TargetEscapesRoot, jail=world.jail_settings(allowed_base="jails"))
    assert world.calls() == []


def _while_bw_runs(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    """Run ``action`` after the target's checks, between bw's answer and the write."""
    real = colibri_vault._provision._Sequence.fetch

    def fetch(self: Any, tenant: str) -> Any:
        fetched = real(self, tenant)
        action()
        return fetched

    monkeypatch.setattr(colibri_vault._provision._Sequence, "fetch", fetch)


def test_home_rebuilt_while_bw_runs_is_an_error_not_a_lost_write(
    world: World, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The jail moves its user's home aside and makes a fresh one during the ~25 s of bw
    # calls. The write went into the old directory, still held open: the result said
    # "created" at the home's path, and the new home had no .env.
    def rebuild() -> None:
        home.rename(home.parent / "agent.old")
        home.mkdir()
        os.chown(home, JAIL_UID, 1002)

    _while_bw_runs(monkeypatch, rebuild)
    exc = world.fail("tenant-alpha", EnvWriteFailed)
    assert "replaced while the secrets were fetched" in str(exc)
    assert list(home.iterdir()) == []
    assert list((home.parent / "agent.old").iterdir()) == []
    assert world.commands()[-1] == "lock"


def test_jail_recreated_while_bw_runs_is_an_error_not_a_lost_write(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = world.base / "tenant-alpha" / "root"

    def recreate() -> None:
        root.rename(root.parent / "root.old")
        world.make_jail("tenant-alpha")

    _while_bw_runs(monkeypatch, recreate)
    world.fail("tenant-alpha", EnvWriteFailed)
    assert not world.env_file("tenant-alpha").exists()
    assert not (root.parent / "root.old" / "home" / "agent" / ".env").exists()
    # The next provision finds the new jail and writes there.
    monkeypatch.undo()
    assert world.run("tenant-alpha").action is ProvisionAction.CREATED
    assert world.env_file("tenant-alpha").exists()


def test_home_swapped_for_a_symlink_while_bw_runs_writes_nowhere_outside(
    world: World, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def swap() -> None:
        home.rename(home.parent / "agent.old")
        home.symlink_to(world.host / "dir")

    _while_bw_runs(monkeypatch, swap)
    before = outside(world)
    exc = world.fail("tenant-alpha", EnvWriteFailed)
    assert "symbolic link" in str(exc)
    assert outside(world) == before
    assert not (world.host / "dir" / ".env").exists()
