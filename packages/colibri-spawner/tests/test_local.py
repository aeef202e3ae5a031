"""The local provider with real processes: logs, status, stop, process groups, stdin."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from conftest import (
    TEST_AGENT,
    agent_spec,
    events,
    kill_quietly,
    proc_alive,
    read_all,
    wait_dead,
)

from colibri_spawner import (
    AgentSpec,
    AgentState,
    ProvisionPolicy,
    Runtime,
    Spawner,
    StdinMode,
    errors,
)


def test_agent_stdout_goes_to_the_session_log_and_exit_is_recorded(spawner, workdir):
    handle = spawner.spawn(agent_spec("s1", workdir, "--emit-usage", "--count", "5"))
    evs = read_all(handle)
    assert [e["seq"] for e in evs] == list(range(len(evs)))
    assert evs[0]["type"] == "session" and evs[0]["id"] == "s1"
    assert evs[0]["cwd"] == str(workdir)
    assert evs[-1]["type"] == "agent_end"
    assert "usage" in [e["type"] for e in evs]
    status = handle.status()
    assert status.state is AgentState.EXITED
    assert status.exit is not None and status.exit.code == 0 and status.exit.signal is None
    assert status.exit.returncode == 0
    assert status.exit.ended_at >= status.exit.started_at
    assert handle.pid == status.exit.pid
    assert handle.stderr_path.read_bytes() == b""


def test_stderr_goes_to_its_own_log_and_a_failure_code_is_kept(spawner, workdir):
    handle = spawner.spawn(agent_spec("fail", workdir, "--fail"))
    record = handle.wait(30)
    assert record.code == 1
    assert b"failing as asked" in handle.stderr_path.read_bytes()
    evs = events(handle.read().lines)
    assert all(json.dumps(e) for e in evs)  # stdout carries only JSON
    assert evs[-1]["type"] == "agent_end"


def test_agent_runs_in_its_own_process_group_and_session(spawner, workdir):
    handle = spawner.spawn(agent_spec("pg", workdir, "--hang"))
    pid = handle.pid
    assert pid is not None
    assert os.getpgid(pid) == pid
    assert os.getsid(pid) != os.getsid(0)
    # The shim, not this process, is the agent's parent.
    ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert ppid != os.getpid()
    assert ppid == json.loads((handle.directory / "state.json").read_text())["shim_pid"]
    handle.stop(grace=5)


def test_environment_is_exactly_the_specs(spawner, workdir):
    spec = AgentSpec(
        argv=("/usr/bin/env",), session_id="env", cwd=str(workdir), env={"A": "1", "B": "x y"}
    )
    handle = spawner.spawn(spec)
    handle.wait(10)
    assert sorted(handle.read().lines) == [b"A=1", b"B=x y"]


def test_working_directory_and_bare_names_resolved_on_the_specs_path(spawner, workdir):
    spec = AgentSpec(argv=("pwd",), session_id="cwd", cwd=str(workdir), env={"PATH": "/bin"})
    handle = spawner.spawn(spec)
    handle.wait(10)
    assert handle.read().lines == (str(workdir).encode(),)
    assert handle.spec["exec_argv"][0] == "/bin/pwd"


def test_stop_sends_sigterm_to_the_group(spawner, workdir):
    handle = spawner.spawn(agent_spec("term", workdir, "--hang"))
    handle.wait_lines(0, 10)
    record = spawner.stop("term", grace=10)
    assert record.signal == signal.SIGTERM and record.returncode == -signal.SIGTERM
    assert handle.status().state is AgentState.EXITED


def test_stop_escalates_to_sigkill_after_the_grace(spawner, workdir):
    handle = spawner.spawn(agent_spec("stubborn", workdir, "--hang", "--ignore-term"))
    handle.wait_lines(0, 10)
    record = handle.stop(grace=0.3, kill_timeout=10)
    assert record.signal == signal.SIGKILL


@pytest.mark.parametrize("detach", [False, True], ids=["same-group", "own-session"])
def test_stop_kills_grandchildren(spawner, workdir, detach):
    flag = "--detach-child" if detach else "--spawn-child"
    handle = spawner.spawn(agent_spec("gc", workdir, flag, "--hang"))
    child = _child_pid(handle)
    try:
        assert proc_alive(child)
        handle.stop(grace=5)
        assert wait_dead(child, 10), "the agent's sleeping child survived stop"
    finally:
        kill_quietly(child)


def test_children_left_behind_by_an_agent_that_exits_are_killed(spawner, workdir):
    handle = spawner.spawn(agent_spec("leaver", workdir, "--detach-child"))
    child = _child_pid(handle)
    try:
        assert handle.wait(30).code == 0
        assert wait_dead(child, 10)
    finally:
        kill_quietly(child)


def _child_pid(handle) -> int:
    offset, deadline = 0, time.monotonic() + 20
    while time.monotonic() < deadline:
        chunk = handle.wait_lines(offset, 20)
        offset = chunk.offset
        for ev in events(chunk.lines):
            if ev["type"] == "child_spawned":
                return int(ev["pid"])
    raise AssertionError("no child_spawned event")


def test_rpc_stdin_pipe_takes_prompts_and_eof_ends_the_agent(spawner, workdir):
    handle = spawner.spawn(agent_spec("rpc", workdir, "--rpc", stdin=StdinMode.PIPE))
    handle.send({"id": "1", "type": "prompt", "message": "hello"})
    seen: list[dict[str, object]] = []
    offset = 0
    while not any(e["type"] == "agent_end" for e in seen):
        chunk = handle.wait_lines(offset, 20)
        offset = chunk.offset
        seen += events(chunk.lines)
    assert seen[0] == {
        "type": "response",
        "id": "1",
        "command": "prompt",
        "success": True,
        "seq": 0,
    }
    assert seen[2]["type"] == "turn_start"
    assert handle.status().state is AgentState.RUNNING  # stdin stays open between prompts
    handle.close_stdin()
    assert handle.wait(20).code == 0
    with pytest.raises(errors.NotRunning, match="not running"):
        handle.send({"id": "2", "type": "prompt", "message": "too late"})


def test_send_to_an_agent_with_closed_stdin_is_refused(spawner, workdir):
    handle = spawner.spawn(agent_spec("closed", workdir))
    with pytest.raises(errors.InvalidSpec, match="stdin closed"):
        handle.send("x")
    handle.wait(30)


def test_status_survives_a_fresh_spawner(data_dir, workdir):
    first = Spawner(data_dir).spawn(agent_spec("again", workdir, "--hang"))
    second = Spawner(data_dir)
    [handle] = second.agents()
    assert handle.session_id == "again"
    assert handle.status().state is AgentState.RUNNING
    assert handle.pid == first.pid
    assert second.agent("again").stop(grace=5).signal == signal.SIGTERM


def _assert_nothing_left(spawner: Spawner, session_id: str) -> None:
    assert not (spawner.agents_dir / session_id).exists()


def test_missing_binary(spawner, workdir):
    spec = AgentSpec(argv=("/nonexistent/agent",), session_id="m", cwd=str(workdir))
    with pytest.raises(errors.BinaryNotFound, match="/nonexistent/agent"):
        spawner.spawn(spec)
    spec = AgentSpec(argv=("no-such-agent-xyz",), session_id="m", cwd=str(workdir))
    with pytest.raises(errors.BinaryNotFound, match="no-such-agent-xyz"):
        spawner.spawn(spec)
    _assert_nothing_left(spawner, "m")


def test_non_executable_binary(spawner, workdir, tmp_path):
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    for target in (str(script), str(tmp_path)):
        with pytest.raises(errors.NotExecutable, match="not an executable"):
            spawner.spawn(AgentSpec(argv=(target,), session_id="nx", cwd=str(workdir)))
    _assert_nothing_left(spawner, "nx")


def test_relative_binary_path_is_refused(spawner, workdir):
    with pytest.raises(errors.InvalidSpec, match="relative"):
        spawner.spawn(AgentSpec(argv=("./agent",), session_id="rel", cwd=str(workdir)))


def test_exec_failure_inside_the_shim_is_a_start_error(spawner, workdir, tmp_path):
    script = tmp_path / "agent"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    with pytest.raises(errors.StartFailed, match="ENOENT"):
        spawner.spawn(AgentSpec(argv=(str(script),), session_id="ex", cwd=str(workdir)))
    _assert_nothing_left(spawner, "ex")


def test_bad_cwd(spawner, tmp_path):
    for cwd in (tmp_path / "missing", tmp_path / "file"):
        if cwd.name == "file":
            cwd.write_text("")
        with pytest.raises(errors.BadWorkingDirectory, match=str(cwd)):
            spawner.spawn(agent_spec("cwd", cwd))
    _assert_nothing_left(spawner, "cwd")


def test_duplicate_session_id(spawner, workdir):
    handle = spawner.spawn(agent_spec("dup", workdir, "--hang"))
    with pytest.raises(errors.DuplicateSession, match="dup"):
        spawner.spawn(agent_spec("dup", workdir))
    assert handle.status().state is AgentState.RUNNING
    handle.stop(grace=5)


@pytest.mark.parametrize("bad", ["", ".hidden", "a/b", "..", "x" * 129, "sp ace", "nul\0"])
def test_malformed_session_ids(bad, workdir):
    with pytest.raises(errors.InvalidSpec, match="session id"):
        AgentSpec(argv=(TEST_AGENT,), session_id=bad, cwd=str(workdir))


def test_no_provider_for_runtime(spawner, workdir):
    with pytest.raises(errors.InvalidSpec, match="no provider"):
        spawner.spawn(agent_spec("rt", workdir, runtime=Runtime.JAIL))
    _assert_nothing_left(spawner, "rt")


def test_unknown_session_and_removal(spawner, workdir):
    with pytest.raises(errors.AgentNotFound):
        spawner.agent("nope")
    handle = spawner.spawn(agent_spec("rm", workdir, "--hang"))
    with pytest.raises(errors.StillRunning):
        spawner.remove("rm")
    handle.stop(grace=5)
    spawner.remove("rm")
    assert spawner.agents() == []


def test_provision_hook_runs_before_the_agent(spawner, workdir):
    seen = []

    def hook(ctx):
        seen.append((ctx, sorted(p.name for p in (spawner.agents_dir / "pv").iterdir())))
        (Path(ctx.root) / ".env").write_text("TOKEN=1\n")

    handle = spawner.spawn(
        AgentSpec(argv=("/bin/cat", ".env"), session_id="pv", cwd=str(workdir)), provision=hook
    )
    handle.wait(10)
    [(ctx, files)] = seen
    assert ctx.root == str(workdir) and ctx.runtime is Runtime.LOCAL and ctx.jail_name is None
    assert files == []  # nothing started yet
    assert handle.read().lines == (b"TOKEN=1",)  # the agent saw it from its first instruction
    assert handle.provision is not None and handle.provision.ok


def test_required_provision_failure_starts_nothing(spawner, workdir):
    def hook(ctx):
        raise RuntimeError("vault locked")

    with pytest.raises(errors.ProvisionFailed, match="vault locked"):
        spawner.spawn(agent_spec("req", workdir, "--hang"), provision=hook)
    _assert_nothing_left(spawner, "req")


def test_best_effort_provision_failure_is_recorded(spawner, workdir):
    def hook(ctx):
        raise RuntimeError("vault locked")

    handle = spawner.spawn(
        agent_spec("be", workdir), provision=hook, policy=ProvisionPolicy.BEST_EFFORT
    )
    assert handle.wait(30).code == 0
    outcome = handle.provision
    assert outcome is not None and not outcome.ok and "vault locked" in (outcome.error or "")
    assert outcome.policy is ProvisionPolicy.BEST_EFFORT


def test_spec_records_env_keys_not_values(spawner, workdir):
    spec = AgentSpec(
        argv=(TEST_AGENT,), session_id="sec", cwd=str(workdir), env={"API_KEY": "s3cret"}
    )
    handle = spawner.spawn(spec)
    handle.wait(30)
    text = (handle.directory / "spec.json").read_text()
    assert "API_KEY" in text and "s3cret" not in text


def test_signals_to_a_shim_still_starting_are_not_lost(spawner, workdir):
    # rpc mode prints nothing before a prompt, so the shim is still in its start-up
    # window here; close_stdin (SIGUSR1) must wait for its handler, not kill it.
    handle = spawner.spawn(agent_spec("early", workdir, "--rpc", stdin=StdinMode.PIPE))
    handle.close_stdin()
    record = handle.wait(20)
    assert record.code == 0 and record.signal is None


def test_tool_call_and_block_modes_of_the_test_agent(spawner, workdir):
    tool = read_all(spawner.spawn(agent_spec("tool", workdir, "--tool-call")))
    types = [e["type"] for e in tool]
    assert types.index("tool_execution_start") < types.index("tool_execution_end")
    assert types.count("turn_start") == 2 and types[-1] == "agent_end"
    blocked = spawner.spawn(agent_spec("block", workdir, "--block"))
    offset, seen = 0, []
    while "extension_ui_request" not in [e["type"] for e in seen]:
        chunk = blocked.wait_lines(offset, 20)
        offset = chunk.offset
        seen += events(chunk.lines)
    with pytest.raises(errors.WaitTimeout, match="new line"):
        blocked.wait_lines(offset, 0.2)  # blocked: nothing more comes
    with pytest.raises(errors.WaitTimeout, match="exit"):
        blocked.wait(0.2)
    assert blocked.stop(grace=5).signal == signal.SIGTERM


def test_test_agent_holds_before_exiting(spawner, workdir):
    handle = spawner.spawn(agent_spec("hold", workdir, "--hold-secs", "1.5"))
    chunk = handle.wait_lines(0, 20)
    while not any(e["type"] == "agent_end" for e in events(chunk.lines)):
        chunk = handle.wait_lines(0, 20)
    assert handle.status().state is AgentState.RUNNING  # still holding after agent_end
    assert handle.wait(20).code == 0


def test_no_supervisor_descriptor_leaks_into_shim_or_agent(spawner, workdir):
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.set_inheritable(True)  # even an inheritable one must not leak
    try:
        spec = AgentSpec(argv=("/bin/ls", "/proc/self/fd"), session_id="fds", cwd=str(workdir))
        handle = spawner.spawn(spec)
        handle.wait(10)
        # ls itself holds one more descriptor: the directory it lists.
        assert len(handle.read().lines) <= 4, handle.read().lines
        hanging = spawner.spawn(agent_spec("fds2", workdir, "--hang"))
        shim_pid = json.loads((hanging.directory / "state.json").read_text())["shim_pid"]
        targets = _fd_targets(shim_pid)  # still the forked copy of this process
        assert not any(t.startswith("socket:") for t in targets), targets
        _wait_supervising(shim_pid)
        targets = _fd_targets(shim_pid)
        assert not any(t.startswith("socket:") for t in targets), targets
        assert sorted(Path(t).name for t in targets) == ["lock", "null", "shim.log", "shim.log"]
        hanging.stop(grace=5)
    finally:
        listener.close()


def _fd_targets(pid: int) -> list[str]:
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass  # closed meanwhile
    return out


def _wait_supervising(shim_pid: int) -> None:
    """Until the shim's own interpreter has its SIGUSR1 handler (it then supervises)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in Path(f"/proc/{shim_pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:") and int(line.split()[1], 16) & (1 << 9):
                return
        time.sleep(0.01)
    raise AssertionError("the shim never started supervising")


def test_without_an_interpreter_to_exec_the_forked_shim_supervises(data_dir, workdir):
    spawner = Spawner(data_dir, python="/nonexistent/python3")
    handle = spawner.spawn(agent_spec("noexec", workdir, "--fail"))
    record = handle.wait(30)
    assert record.code == 1
    assert events(handle.read().lines)[-1]["type"] == "agent_end"
