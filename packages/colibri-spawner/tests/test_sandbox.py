"""The sandbox provider with the real bubblewrap (skipped, with the probe's message, if absent)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import TEST_AGENT, events

import colibri_spawner
from colibri_spawner import AgentSpec, Runtime, SandboxProvider, Spawner, errors
from colibri_spawner._argv import DEFAULT_SEARCH_PATH

# What the Python test agent needs to read: its venv, the base interpreter, the sources.
_RO = tuple(
    sorted(
        {
            sys.prefix,
            sys.base_prefix,
            str(Path(colibri_spawner.__file__).resolve().parents[1]),
        }
    )
)


def _probe_or_skip(provider: SandboxProvider) -> None:
    try:
        provider.probe()
    except errors.SandboxUnavailable as exc:
        pytest.skip(f"bwrap: {exc}")


@pytest.fixture
def sandbox() -> SandboxProvider:
    provider = SandboxProvider(ro_binds=_RO, inside_workdir="/task")
    _probe_or_skip(provider)
    return provider


def _spec(sid: str, cwd: Path, *args: str) -> AgentSpec:
    return AgentSpec(
        argv=(TEST_AGENT, "--session-id", sid, *args),
        session_id=sid,
        cwd=str(cwd),
        runtime=Runtime.SANDBOX,
    )


def _processes_mentioning(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(name))
    return found


def test_agent_streams_jsonl_from_inside_the_sandbox(sandbox, data_dir, workdir):
    spawner = Spawner(data_dir, providers=[sandbox])
    handle = spawner.spawn(_spec("sbx", workdir, "--count", "4"))
    assert handle.wait(60).code == 0, handle.stderr_path.read_text()
    evs = events(handle.read().lines)
    assert evs[0]["cwd"] == "/task"
    assert [e["seq"] for e in evs] == list(range(len(evs)))
    assert handle.spec["exec_argv"][0].endswith("bwrap")


def test_only_the_work_dir_is_writable_and_env_is_the_specs(sandbox, data_dir, workdir):
    script = (
        "env | sort; "
        "touch /task/written && echo work-writable; "
        "touch /etc/colibri-probe 2>/dev/null || echo etc-readonly; "
        "touch /colibri-probe 2>/dev/null || echo root-readonly; "
        "touch /tmp/scratch && echo private-tmp; "
        "ls /root >/dev/null 2>&1 || echo no-host-home; "
        "ls /home >/dev/null 2>&1 || echo no-home"
    )
    spec = AgentSpec(
        argv=("/bin/sh", "-c", script),
        session_id="shape",
        cwd=str(workdir),
        env={"A": "1", "PATH": "/usr/bin:/bin"},
        runtime=Runtime.SANDBOX,
    )
    handle = Spawner(data_dir, providers=[SandboxProvider(inside_workdir="/task")]).spawn(spec)
    handle.wait(60)
    lines = [line.decode() for line in handle.read().lines]
    shell_own = ("PWD=", "SHLVL=", "_=")  # set by /bin/sh itself
    env_lines = [line for line in lines if "=" in line and not line.startswith(shell_own)]
    assert sorted(env_lines) == ["A=1", "HOME=/task", "PATH=/usr/bin:/bin"]
    for expected in (
        "work-writable",
        "etc-readonly",
        "root-readonly",
        "private-tmp",
        "no-host-home",
        "no-home",
    ):
        assert expected in lines, handle.stderr_path.read_text()
    assert (workdir / "written").exists()
    assert not Path("/etc/colibri-probe").exists() and not Path("/tmp/scratch").exists()


def test_stop_leaves_no_process_behind(sandbox, data_dir, workdir):
    spawner = Spawner(data_dir, providers=[sandbox])
    handle = spawner.spawn(_spec("sbx-stop", workdir, "--hang", "--spawn-child"))
    handle.wait_lines(0, 30)
    assert _processes_mentioning("sbx-stop")
    record = handle.stop(grace=5)
    assert record.returncode != 0
    assert _processes_mentioning("--session-id\0sbx-stop") == []


def test_binaries_outside_the_sandbox_view_are_refused(sandbox, data_dir, workdir, tmp_path):
    script = tmp_path / "agent"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    spawner = Spawner(data_dir, providers=[sandbox])
    with pytest.raises(errors.InvalidSpec, match="not visible inside the sandbox"):
        spawner.spawn(AgentSpec(argv=(str(script),), session_id="v", cwd=str(workdir),
                                runtime=Runtime.SANDBOX))  # fmt: skip
    assert spawner.agents() == []


def test_ro_binds_under_the_inside_work_dir_are_refused(data_dir, workdir):
    provider = SandboxProvider(ro_binds=("/work/venv",))
    _probe_or_skip(provider)
    with pytest.raises(errors.InvalidSpec, match="hides it"):
        Spawner(data_dir, providers=[provider]).spawn(_spec("h", workdir))


def test_missing_bwrap_says_so(data_dir, workdir):
    provider = SandboxProvider(search_path="/nonexistent")
    with pytest.raises(errors.SandboxUnavailable, match="bubblewrap"):
        Spawner(data_dir, providers=[provider]).spawn(_spec("nb", workdir))


def test_failed_namespace_probe_reports_the_reason(data_dir, workdir, tmp_path):
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    bwrap = fakebin / "bwrap"
    bwrap.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    bwrap.chmod(0o755)
    provider = SandboxProvider(search_path=f"{fakebin}:{DEFAULT_SEARCH_PATH}")
    with pytest.raises(errors.SandboxUnavailable, match=r"uid map: Permission denied.*AppArmor"):
        Spawner(data_dir, providers=[provider]).spawn(_spec("np", workdir))
    assert not (data_dir / "agents" / "np").exists()


def test_secrets_in_the_env_never_appear_in_an_argv(sandbox, data_dir, workdir):
    spec = AgentSpec(
        argv=(TEST_AGENT, "--session-id", "secret", "--hang"),
        session_id="secret",
        cwd=str(workdir),
        env={"OPENAI_API_KEY": "sk-colibri-never-in-argv"},
        runtime=Runtime.SANDBOX,
    )
    handle = Spawner(data_dir, providers=[sandbox]).spawn(spec)
    handle.wait_lines(0, 30)
    assert _processes_mentioning("--session-id\0secret")  # it runs...
    assert _processes_mentioning("sk-colibri-never-in-argv") == []  # ...with no key in sight
    assert "sk-colibri" not in (handle.directory / "spec.json").read_text()
    handle.stop(grace=5)
