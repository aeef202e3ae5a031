"""Golden tests for the pure argv builders: every mode, on any host."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colibri_spawner import (
    errors,
    jail_create_argv,
    jail_remove_argv,
    jail_wrap,
    sandbox_env,
    sandbox_wrap,
)

CD = 'cd -- "$1" || exit 125; shift; exec "$@"'


def test_jail_wrap_minimal():
    assert jail_wrap(jail="j1", argv=["/usr/local/bin/pi", "--mode", "json"], env={}) == [
        "/usr/sbin/jexec", "j1", "/usr/bin/env", "-i", "/usr/local/bin/pi", "--mode", "json",
    ]  # fmt: skip


def test_jail_wrap_user_env_cwd():
    argv = jail_wrap(
        jail="j1",
        argv=["/usr/local/bin/pi", "-p", "hi there"],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/agent", "Z": "a=b c"},
        cwd="/home/agent/work",
        user="agent",
    )
    assert argv == [
        "/usr/sbin/jexec", "-U", "agent", "j1",
        "/usr/bin/env", "-i", "HOME=/home/agent", "PATH=/usr/local/bin:/usr/bin:/bin", "Z=a=b c",
        "/bin/sh", "-c", CD, "sh", "/home/agent/work",
        "/usr/local/bin/pi", "-p", "hi there",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("privilege", "prefix"),
    [
        ((), []),
        (("/usr/local/bin/doas", "-n"), ["/usr/local/bin/doas", "-n"]),
        (("/usr/sbin/mdo", "-u", "root"), ["/usr/sbin/mdo", "-u", "root"]),
    ],
    ids=["none", "doas", "mdo"],
)
def test_privilege_prefix(privilege, prefix):
    wrapped = jail_wrap(jail="j", argv=["/bin/true"], env={}, privilege=privilege)
    assert wrapped == [*prefix, "/usr/sbin/jexec", "j", "/usr/bin/env", "-i", "/bin/true"]
    assert jail_create_argv(name="j", root="/jails/j", privilege=privilege)[: len(prefix) + 2] == [
        *prefix, "/usr/sbin/jail", "-q",
    ]  # fmt: skip
    assert jail_remove_argv(name="j", privilege=privilege) == [
        *prefix, "/usr/sbin/jail", "-q", "-r", "j",
    ]  # fmt: skip


def test_jail_create_argv_modes():
    assert jail_create_argv(name="colibri-s1", root="/usr/local/bastille/jails/colibri-s1") == [
        "/usr/sbin/jail", "-q", "-c", "name=colibri-s1",
        "path=/usr/local/bastille/jails/colibri-s1", "host.hostname=colibri-s1",
        "ip4=inherit", "mount.devfs", "persist",
    ]  # fmt: skip
    assert jail_create_argv(
        name="n", root="/j/n", ip4="new", mount_devfs=False,
        params={"ip4.addr": "10.0.0.2", "allow.raw_sockets": "1"},
    ) == [
        "/usr/sbin/jail", "-q", "-c", "name=n", "path=/j/n", "host.hostname=n", "ip4=new",
        "allow.raw_sockets=1", "ip4.addr=10.0.0.2", "persist",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [
        {"argv": ["pi"]},  # relative program
        {"argv": ["/bin/pi"], "cwd": "work"},  # relative cwd
        {"argv": ["/bin/pi"], "jexec": "jexec"},  # relative tool
        {"argv": []},
    ],
)
def test_jail_wrap_refuses_relative_paths(kwargs):
    with pytest.raises(errors.InvalidSpec, match="absolute"):
        jail_wrap(jail="j", env={}, **kwargs)


def test_jail_root_must_be_absolute():
    with pytest.raises(errors.InvalidSpec, match="absolute"):
        jail_create_argv(name="j", root="jails/j")


_SANDBOX_HEAD = ["/usr/bin/bwrap", "--die-with-parent", "--unshare-all"]
_SANDBOX_ETC = [
    "--ro-bind-try", "/etc/ssl", "/etc/ssl",
    "--ro-bind-try", "/etc/ca-certificates", "/etc/ca-certificates",
    "--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf",
    "--ro-bind-try", "/etc/hosts", "/etc/hosts",
    "--ro-bind-try", "/etc/nsswitch.conf", "/etc/nsswitch.conf",
]  # fmt: skip


def test_sandbox_wrap_merged_usr_with_network():
    assert sandbox_wrap(
        argv=["/opt/node/bin/pi", "--mode", "json"],
        workdir="/srv/tasks/t1",
        ro_binds=["/opt/node"],
    ) == [
        *_SANDBOX_HEAD, "--share-net",
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin",
        *_SANDBOX_ETC,
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
        "--ro-bind", "/opt/node", "/opt/node",
        "--bind", "/srv/tasks/t1", "/work", "--remount-ro", "/", "--chdir", "/work", "--",
        "/opt/node/bin/pi", "--mode", "json",
    ]  # fmt: skip


def test_sandbox_wrap_split_usr_without_network():
    assert sandbox_wrap(
        argv=["/usr/bin/true"],
        workdir="/t",
        share_net=False,
        merged_usr=False,
        bwrap="/usr/local/bin/bwrap",
        inside_workdir="/task",
    ) == [
        "/usr/local/bin/bwrap", "--die-with-parent", "--unshare-all",
        "--ro-bind", "/usr", "/usr",
        "--ro-bind-try", "/bin", "/bin", "--ro-bind-try", "/lib", "/lib",
        "--ro-bind-try", "/lib64", "/lib64", "--ro-bind-try", "/sbin", "/sbin",
        *_SANDBOX_ETC,
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
        "--bind", "/t", "/task", "--remount-ro", "/", "--chdir", "/task", "--",
        "/usr/bin/true",
    ]  # fmt: skip


def test_sandbox_never_binds_root_or_home_and_never_new_session():
    argv = sandbox_wrap(argv=["/usr/bin/true"], workdir="/t")
    pairs = list(itertools.pairwise(argv))
    assert ("--bind", "/") not in pairs and ("--ro-bind", "/") not in pairs
    assert not any(a.startswith(("/home", "/root")) for a in argv)
    assert "--new-session" not in argv


_env_keys = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="="),
    min_size=1,
    max_size=10,
)
_env_values = st.text(st.characters(blacklist_characters="\0"), max_size=20)


@given(
    env=st.dictionaries(_env_keys, _env_values, max_size=6),
    args=st.lists(st.text(st.characters(blacklist_characters="\0"), max_size=10), max_size=4),
    cwd=st.none() | st.just("/home/a b"),
    user=st.none() | st.just("agent"),
)
def test_jail_wrap_round_trips_env_and_argv(env, args, cwd, user):
    argv = ["/usr/local/bin/agent", *args]
    wrapped = jail_wrap(jail="j", argv=argv, env=env, cwd=cwd, user=user)
    start = wrapped.index("-i") + 1
    assignments = wrapped[start : start + len(env)]
    assert dict(a.split("=", 1) for a in assignments) == env
    assert wrapped[-len(argv) :] == argv
    assert ("-U" in wrapped[:3]) == (user is not None)


@given(env=st.dictionaries(_env_keys, _env_values, max_size=6))
def test_sandbox_env_is_exactly_the_specs_with_a_home(env):
    assert sandbox_env(env, "/task") == {"HOME": "/task", **env}
    assert sandbox_env({**env, "HOME": "/task/home"})["HOME"] == "/task/home"
