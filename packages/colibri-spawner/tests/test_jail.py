"""The jail provider's whole lifecycle, with fake jail/jls/jexec/doas on PATH.

The fakes record every call in ``calls.log`` and keep jails as files in a state
directory; fake ``jexec`` changes to ``/`` (as the real one does) and execs the
command on the host, so the wrapped argv (``env -i``, the ``/bin/sh`` cd) really runs.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from conftest import TEST_AGENT, events
from hypothesis import given, settings
from hypothesis import strategies as st

from colibri_spawner import (
    AgentSpec,
    JailProvider,
    ProvisionPolicy,
    Runtime,
    Spawner,
    errors,
)
from colibri_spawner._argv import DEFAULT_SEARCH_PATH

_PRELUDE = """#!/bin/sh
here=$(cd "$(dirname "$0")" && pwd)
state="$here/state"
mkdir -p "$state"
echo "$(basename "$0") $*" >> "$here/calls.log"
"""

FAKES = {
    "jail": _PRELUDE
    + r"""
[ "$1" = "-q" ] || { echo "fake jail: always pass -q" >&2; exit 2; }
case "$2" in
-c) name=""; path=""; persist=""
    shift 2
    for a in "$@"; do
      case "$a" in name=*) name=${a#name=};; path=*) path=${a#path=};; persist) persist=1;; esac
    done
    [ -n "$name" ] && [ -n "$path" ] && [ -n "$persist" ] || {
      echo "need name path persist" >&2; exit 1; }
    [ -e "$state/$name" ] && { echo "jail: $name: already exists" >&2; exit 1; }
    [ -d "$path" ] || { echo "jail: $path: no such directory" >&2; exit 1; }
    echo "$path" > "$state/$name";;
-r) [ -e "$state/$3" ] || { echo "jail: \"$3\" not found" >&2; exit 1; }
    rm -f "$state/$3";;
*) echo "fake jail: unsupported $*" >&2; exit 2;;
esac
""",
    "jls": _PRELUDE
    + r"""
if [ "$1" = "-j" ] && [ "$3" = "path" ]; then
  [ -e "$state/$2" ] || { echo "jls: jail \"$2\" not found" >&2; exit 1; }
  cat "$state/$2"; exit 0
fi
[ "$1" = "name" ] && { ls "$state"; exit 0; }
echo "fake jls: unsupported $*" >&2; exit 2
""",
    "jexec": _PRELUDE
    + r"""
[ "$1" = "-U" ] && shift 2
[ -e "$state/$1" ] || { echo "jexec: jail \"$1\" not found" >&2; exit 1; }
shift
cd /
exec "$@"
""",
    "doas": _PRELUDE + '[ "$1" = "-n" ] && shift\nexec "$@"\n',
}


class FakeJails:
    def __init__(self, root: Path) -> None:
        self.bin = root / "fakebin"
        self.bin.mkdir()
        for name, text in FAKES.items():
            path = self.bin / name
            path.write_text(text)
            path.chmod(0o755)
        self.state = self.bin / "state"
        self.state.mkdir()
        self.base = root / "jails"
        self.base.mkdir()
        self.search_path = f"{self.bin}:{DEFAULT_SEARCH_PATH}"

    def calls(self) -> list[str]:
        log = self.bin / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def tools_called(self) -> list[str]:
        """``jail -c``, ``jexec``, ``doas mkdir``...: the tool and what matters of its args."""
        out = []
        for call in self.calls():
            words = call.split()
            if words[0] == "jail":
                out.append(f"jail {words[2]}")
            elif words[0] == "doas":
                out.append(f"doas {os.path.basename(words[2])}")
            else:
                out.append(words[0])
        return out

    def make_static(self, name: str, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (self.state / name).write_text(f"{root}\n")

    def provider(self, **kw: object) -> JailProvider:
        return JailProvider(
            allowed_base=str(self.base),
            search_path=self.search_path,
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture
def fake(tmp_path: Path) -> FakeJails:
    return FakeJails(tmp_path)


def _spec(sid: str, *args: str, **kw: object) -> AgentSpec:
    cwd = kw.pop("cwd", "/tmp")
    return AgentSpec(
        argv=(TEST_AGENT, "--session-id", sid, *args),
        session_id=sid,
        cwd=str(cwd),
        env={"COLIBRI_MARK": "jail-test"},
        runtime=Runtime.JAIL,
        **kw,  # type: ignore[arg-type]
    )


def test_ephemeral_lifecycle_and_hook_order(fake, data_dir, workdir):
    spawner = Spawner(data_dir, providers=[fake.provider(user="agent", privilege=("doas", "-n"))])
    seen: dict[str, object] = {}

    def hook(ctx):
        seen["ctx"] = ctx
        seen["calls"] = fake.tools_called()
        seen["root_exists"] = Path(ctx.root).is_dir()

    handle = spawner.spawn(_spec("e1", cwd=workdir), provision=hook)
    record = handle.wait(30)
    assert record.code == 0
    name, root = "colibri-e1", fake.base / "colibri-e1"
    ctx = seen["ctx"]
    assert (ctx.jail_name, ctx.root, ctx.user) == (name, str(root), "agent")
    assert seen["root_exists"] is True
    assert seen["calls"] == ["doas mkdir", "doas jail", "jail -c"]  # created, not yet entered
    assert fake.tools_called() == [
        "doas mkdir", "doas jail", "jail -c", "doas jexec", "jexec",
        "doas jail", "jail -r", "doas rm",
    ]  # fmt: skip
    jexec = next(c for c in fake.calls() if c.startswith("jexec"))
    assert jexec.startswith(f"jexec -U agent {name} /usr/bin/env -i COLIBRI_MARK=jail-test /bin/sh")
    assert [c["returncode"] for c in record.cleanup] == [0, 0]
    assert not root.exists() and not (fake.state / name).exists()
    evs = events(handle.read().lines)
    # The agent ran in the spec's cwd although jexec changed to "/".
    assert evs[0]["cwd"] == str(workdir)
    assert evs[-1]["type"] == "agent_end"


def test_ephemeral_jail_is_removed_when_the_agent_is_stopped(fake, data_dir):
    spawner = Spawner(data_dir, providers=[fake.provider()])
    handle = spawner.spawn(_spec("e2", "--hang"))
    assert (fake.state / "colibri-e2").exists()
    handle.wait_lines(0, 20)
    assert handle.stop(grace=5).signal == signal.SIGTERM
    assert not (fake.state / "colibri-e2").exists()
    assert not (fake.base / "colibri-e2").exists()


def test_ephemeral_names_of_distinct_ids_differ_and_plain_ids_stay_as_they_are():
    provider = JailProvider()
    assert provider.ephemeral_name("task-17_b") == "colibri-task-17_b"
    dotted = provider.ephemeral_name("a.b")
    assert re.fullmatch(r"colibri-a_b-[0-9a-f]{12}", dotted)
    # An id spelled like the changed name of another gets a suffix of its own.
    lookalike = dotted.removeprefix("colibri-")
    assert provider.ephemeral_name(lookalike) not in (dotted, "colibri-" + lookalike)
    assert len({provider.ephemeral_name(i) for i in ("a.b", "a_b", lookalike, "a-b")}) == 4


@settings(max_examples=300, deadline=None)
@given(st.lists(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", fullmatch=True), min_size=2,
                max_size=6, unique=True))  # fmt: skip
def test_ephemeral_names_are_jail_safe_and_never_shared(ids):
    provider = JailProvider()
    names = [provider.ephemeral_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    for name in names:
        assert re.fullmatch(r"colibri-[A-Za-z0-9_-]+", name) and len(name) <= 150


def test_sessions_whose_ids_differ_only_by_dot_and_underscore_run_at_once(fake, data_dir):
    spawner = Spawner(data_dir, providers=[fake.provider()])
    handles = [spawner.spawn(_spec(sid, "--hang")) for sid in ("a.b", "a_b")]
    jails = [h.spec["details"]["jail"] for h in handles]
    assert len(set(jails)) == 2 and all((fake.state / j).exists() for j in jails)
    for handle in handles:
        handle.wait_lines(0, 20)
        handle.stop(grace=5)
    assert not any((fake.state / j).exists() or (fake.base / j).exists() for j in jails)


def test_static_jail_is_entered_and_left_alone(fake, data_dir):
    fake.make_static("web", fake.base / "web" / "root")
    spawner = Spawner(data_dir, providers=[fake.provider()])
    seen = []
    handle = spawner.spawn(_spec("st", jail_name="web"), provision=seen.append)
    assert handle.wait(30).code == 0
    assert seen[0].root == str(fake.base / "web" / "root") and seen[0].jail_name == "web"
    assert fake.tools_called() == ["jls", "jexec"]
    assert (fake.state / "web").exists()
    assert handle.spec["details"] == {"jail": "web", "root": seen[0].root, "kind": "static"}


def test_unknown_jail(fake, data_dir):
    spawner = Spawner(data_dir, providers=[fake.provider()])
    with pytest.raises(errors.UnknownJail, match="nowhere"):
        spawner.spawn(_spec("uj", jail_name="nowhere"))
    assert spawner.agents() == [] and "jexec" not in fake.tools_called()


def test_jail_root_outside_the_allowed_base(fake, data_dir, tmp_path):
    fake.make_static("evil", tmp_path / "elsewhere")
    fake.make_static("base", fake.base)  # the base itself is not strictly inside
    link = fake.base / "sneaky"
    link.symlink_to(tmp_path / "elsewhere")
    fake.make_static("sneaky", link)
    spawner = Spawner(data_dir, providers=[fake.provider()])
    for name in ("evil", "base", "sneaky"):
        with pytest.raises(errors.JailRootOutsideBase, match="allowed base"):
            spawner.spawn(_spec("out", jail_name=name))
    assert spawner.agents() == [] and "jexec" not in fake.tools_called()


def test_pool_hands_out_free_jails_only(fake, data_dir):
    for name in ("p1", "p2"):
        fake.make_static(name, fake.base / name)
    spawner = Spawner(data_dir, providers=[fake.provider(pool=("p1", "p2"))])
    a = spawner.spawn(_spec("a", "--hang"))
    b = spawner.spawn(_spec("b", "--hang"))
    assert {a.spec["details"]["jail"], b.spec["details"]["jail"]} == {"p1", "p2"}
    with pytest.raises(errors.JailPoolExhausted, match="busy"):
        spawner.spawn(_spec("c", "--hang"))
    a.stop(grace=5)
    c = spawner.spawn(_spec("c", "--hang"))
    assert c.spec["details"]["jail"] == a.spec["details"]["jail"]
    for h in (b, c):
        h.stop(grace=5)


def test_required_provision_failure_removes_the_jail(fake, data_dir):
    spawner = Spawner(data_dir, providers=[fake.provider()])

    def hook(ctx):
        raise OSError("bw: vault is locked")

    with pytest.raises(errors.ProvisionFailed, match="vault is locked"):
        spawner.spawn(_spec("pf", "--hang"), provision=hook)
    assert fake.tools_called() == ["jail -c", "jail -r"]
    assert not (fake.base / "colibri-pf").exists()
    assert spawner.agents() == []


def test_best_effort_provision_failure_goes_on(fake, data_dir):
    spawner = Spawner(data_dir, providers=[fake.provider()])

    def hook(ctx):
        raise OSError("bw: vault is locked")

    handle = spawner.spawn(_spec("bf"), provision=hook, policy=ProvisionPolicy.BEST_EFFORT)
    assert handle.wait(30).code == 0
    assert handle.provision is not None and not handle.provision.ok
    assert fake.tools_called() == ["jail -c", "jexec", "jail -r"]


def test_sweep_removes_only_unowned_ephemeral_leftovers(fake, data_dir):
    fake.make_static("colibri-leftover", fake.base / "colibri-leftover")
    (fake.base / "colibri-rootonly").mkdir()
    fake.make_static("web", fake.base / "web")  # no prefix: never touched
    spawner = Spawner(data_dir, providers=[fake.provider()])
    live = spawner.spawn(_spec("live", "--hang"))
    # A fresh supervisor (after a restart) sweeps at start-up.
    swept = Spawner(data_dir, providers=[fake.provider()]).sweep()
    assert sorted(swept) == ["colibri-leftover", "colibri-rootonly"]
    assert sorted(os.listdir(fake.state)) == ["colibri-live", "web"]
    assert sorted(os.listdir(fake.base)) == ["colibri-live", "web"]
    live.stop(grace=5)
    assert sorted(os.listdir(fake.state)) == ["web"]


def test_jail_spec_paths_must_be_absolute(fake, data_dir):
    spawner = Spawner(data_dir, providers=[fake.provider()])
    bad = AgentSpec(argv=("pi",), session_id="r", cwd="/", runtime=Runtime.JAIL)
    with pytest.raises(errors.InvalidSpec, match="absolute"):
        spawner.spawn(bad)
    with pytest.raises(errors.InvalidSpec, match="absolute"):
        spawner.spawn(_spec("r", cwd="work"))
    assert fake.calls() == [] and spawner.agents() == []


def test_missing_privilege_helper(fake, data_dir):
    spawner = Spawner(data_dir, providers=[fake.provider(privilege=("no-such-doas", "-n"))])
    with pytest.raises(errors.BinaryNotFound, match="no-such-doas"):
        spawner.spawn(_spec("np"))
    assert spawner.agents() == []


def test_exit_record_of_a_jailed_agent_is_exact(fake, data_dir):
    spawner = Spawner(data_dir, providers=[fake.provider()])
    handle = spawner.spawn(_spec("x1", "--fail"))
    assert handle.wait(30).code == 1  # jexec does not fork: the status is the agent's
    data = json.loads((handle.directory / "exit.json").read_text())
    assert data["code"] == 1


def test_working_directory_with_shell_metacharacters(fake, data_dir, tmp_path):
    odd = tmp_path / "a b$HOME;`x`"
    odd.mkdir()
    spawner = Spawner(data_dir, providers=[fake.provider()])
    handle = spawner.spawn(_spec("odd", cwd=odd))
    assert handle.wait(30).code == 0
    assert events(handle.read().lines)[0]["cwd"] == str(odd)


def test_missing_working_directory_inside_the_jail_fails_the_agent(fake, data_dir, tmp_path):
    spawner = Spawner(data_dir, providers=[fake.provider()])
    handle = spawner.spawn(_spec("nocwd", cwd=tmp_path / "missing"))
    assert handle.wait(30).code == 125  # the jail's /bin/sh could not cd: exit 125
    assert b"missing" in handle.stderr_path.read_bytes()


def test_failed_jail_creation_is_a_typed_error_and_leaves_nothing(fake, data_dir):
    spawner = Spawner(data_dir, providers=[fake.provider()])
    # A root left over from an earlier run: mkdir refuses, the leftover is untouched.
    (fake.base / "colibri-r1").mkdir()
    with pytest.raises(errors.CommandFailed, match="mkdir"):
        spawner.spawn(_spec("r1"))
    assert (fake.base / "colibri-r1").is_dir()
    # A jail of that name exists already: jail -c fails, the fresh root is removed.
    (fake.state / "colibri-r2").write_text("/elsewhere\n")
    with pytest.raises(errors.CommandFailed, match="already exists"):
        spawner.spawn(_spec("r2"))
    assert not (fake.base / "colibri-r2").exists()
    assert spawner.agents() == [] and "jexec" not in fake.tools_called()
