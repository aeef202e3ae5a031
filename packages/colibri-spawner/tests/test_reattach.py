"""Agents outlive their supervisor: SIGKILL it, start it again, nothing lost or repeated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TEST_AGENT, agent_spec, kill_quietly, proc_alive, wait_dead

from colibri_spawner import AgentState, Spawner, errors

SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))


def _supervisor(data_dir: Path, sid: str, mode: str, consumed: Path, *agent: str):
    return subprocess.Popen(
        [sys.executable, SUPERVISOR, str(data_dir), sid, mode, str(consumed), *agent],
        stdin=subprocess.DEVNULL,
    )


def _records(consumed: Path) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in consumed.read_bytes().splitlines()]


def _wait_records(consumed: Path, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if consumed.exists() and consumed.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"the supervisor did not consume {n} lines in {timeout} s")


def _check_contiguous(consumed: Path, expected_exit: int) -> None:
    records = _records(consumed)
    assert records[-1] == {"exit": expected_exit}
    seqs = [json.loads(r["line"])["seq"] for r in records[:-1]]  # type: ignore[arg-type]
    assert seqs == list(range(len(seqs))), "a line was lost or delivered twice"
    assert json.loads(records[-2]["line"])["type"] == "agent_end"  # type: ignore[arg-type]


def _run(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    try:
        return proc.wait(timeout)
    finally:
        kill_quietly(proc.pid)


def test_sigkill_mid_stream_then_resume_loses_and_repeats_nothing(data_dir, tmp_path):
    consumed = tmp_path / "consumed.jsonl"
    first = _supervisor(data_dir, "live", "spawn", consumed, TEST_AGENT, "--count", "300",
                        "--step-ms", "4")  # fmt: skip
    try:
        _wait_records(consumed, 20)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    handle = Spawner(data_dir).agent("live")
    assert handle.status().state is AgentState.RUNNING, "the agent died with its supervisor"
    assert _run(_supervisor(data_dir, "live", "resume", consumed)) == 0
    _check_contiguous(consumed, 0)


def test_agent_ending_while_the_supervisor_is_down_reports_its_exit(data_dir, tmp_path):
    consumed = tmp_path / "consumed.jsonl"
    first = _supervisor(data_dir, "ended", "spawn", consumed, TEST_AGENT, "--fail",
                        "--step-ms", "30")  # fmt: skip
    try:
        _wait_records(consumed, 2)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    handle = Spawner(data_dir).agent("ended")
    assert handle.wait(30).code == 1  # ended while nobody watched
    assert _run(_supervisor(data_dir, "ended", "resume", consumed)) == 0
    _check_contiguous(consumed, 1)


def test_a_torn_record_is_redone_once(data_dir, tmp_path):
    consumed = tmp_path / "consumed.jsonl"
    assert _run(_supervisor(data_dir, "torn", "spawn", consumed, TEST_AGENT)) == 0
    full = consumed.read_bytes()
    lines = full.splitlines(keepends=True)
    # Cut the log of consumed records mid-record, as a crash during the write would.
    consumed.write_bytes(b"".join(lines[:4]) + lines[4][:7])
    assert _run(_supervisor(data_dir, "torn", "resume", consumed)) == 0
    assert consumed.read_bytes() == full


def test_killed_shim_means_unknown_not_exit_zero(spawner, workdir):
    handle = spawner.spawn(agent_spec("orphan", workdir, "--hang"))
    state = json.loads((handle.directory / "state.json").read_text())
    os.kill(state["shim_pid"], signal.SIGKILL)
    assert wait_dead(state["shim_pid"])
    try:
        status = handle.status()
        assert status.state is AgentState.UNKNOWN and status.exit is None
        with pytest.raises(errors.AgentLost, match="unknown"):
            handle.wait(5)
        with pytest.raises(errors.AgentLost):
            handle.stop(grace=1)
        assert proc_alive(state["pid"]), "an agent of unknown status was signalled"
        # remove() is how an unknown session is cleared away; it signals nothing.
        spawner.remove("orphan")
        assert not handle.directory.exists()
        assert proc_alive(state["pid"])
        with pytest.raises(errors.AgentNotFound):
            spawner.agent("orphan")
    finally:
        kill_quietly(state["pid"], group=True)


def test_stale_state_naming_an_unrelated_pid_is_neither_signalled_nor_adopted(
    spawner, workdir, tmp_path
):
    bystander = subprocess.Popen(["/bin/sleep", "60"], start_new_session=True)
    try:
        directory = spawner.agents_dir / "stale"
        directory.mkdir(parents=True)
        (directory / "spec.json").write_text(json.dumps({"session_id": "stale"}))
        (directory / "lock").write_text("")
        state = {"pid": bystander.pid, "pgid": bystander.pid, "shim_pid": bystander.pid,
                 "started_at": 0.0}  # fmt: skip
        (directory / "state.json").write_text(json.dumps(state))
        handle = spawner.agent("stale")
        assert handle.status().state is AgentState.UNKNOWN
        assert handle.signal_group(signal.SIGTERM) is False
        with pytest.raises(errors.AgentLost):
            handle.stop(grace=0.1)
        handle.close_stdin()
        assert bystander.poll() is None
        assert proc_alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait(10)


def test_partial_last_line_is_read_once_when_complete(spawner, workdir):
    script = workdir / "slow.sh"
    script.write_text("#!/bin/sh\nprintf '{\"a\":'\nsleep 0.5\nprintf '1}\\n'\n")
    script.chmod(0o755)
    from colibri_spawner import AgentSpec

    handle = spawner.spawn(AgentSpec(argv=(str(script),), session_id="part", cwd=str(workdir)))
    first = handle.read(0)
    assert first.lines == () and first.offset == 0
    chunk = handle.wait_lines(0, 10)
    assert chunk.lines == (b'{"a":1}',) and chunk.offset == 8
    handle.wait(10)
    assert handle.read(chunk.offset).lines == ()


def test_a_second_supervisor_probing_does_not_disturb_spawns(data_dir, workdir):
    import threading

    stop = threading.Event()
    seen: set[str] = set()

    def probe() -> None:
        other = Spawner(data_dir)
        while not stop.is_set():
            for handle in other.agents():
                handle.status()
                seen.add(handle.session_id)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        spawner = Spawner(data_dir)
        handles = [spawner.spawn(agent_spec(f"c{i}", workdir)) for i in range(8)]
        records = [h.wait(30) for h in handles]
    finally:
        stop.set()
        thread.join(10)
    assert [r.code for r in records] == [0] * 8
    assert seen  # the prober really looked while agents started


def test_rpc_stdin_survives_the_supervisor(data_dir, workdir):
    code = (
        "import sys, time\n"
        "from colibri_spawner import AgentSpec, Spawner, StdinMode\n"
        "Spawner(sys.argv[1]).spawn(AgentSpec(argv=(sys.argv[2], '--rpc'), session_id='rpc',"
        " cwd=sys.argv[3], stdin=StdinMode.PIPE))\n"
        "print('spawned', flush=True)\n"
        "time.sleep(60)\n"
    )
    first = subprocess.Popen(
        [sys.executable, "-c", code, str(data_dir), TEST_AGENT, str(workdir)],
        stdout=subprocess.PIPE,
    )
    try:
        assert first.stdout is not None and first.stdout.readline() == b"spawned\n"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    handle = Spawner(data_dir).agent("rpc")
    handle.send({"id": "after", "type": "prompt", "message": "still there?"})
    offset, seen = 0, []
    while "agent_end" not in [e["type"] for e in seen]:
        chunk = handle.wait_lines(offset, 20)
        offset = chunk.offset
        seen += [json.loads(line) for line in chunk.lines]
    assert seen[0]["id"] == "after"
    handle.close_stdin()
    assert handle.wait(20).code == 0


def test_long_lines_arrive_whole(spawner, workdir):
    # Pi repeats whole partial messages: lines of tens of kilobytes, megabytes per run.
    code = (
        "import json, sys\n"
        "for i in range(60):\n"
        "    sys.stdout.write(json.dumps({'seq': i, 'pad': 'x' * (1000 * i)}) + '\\n')\n"
    )
    from colibri_spawner import AgentSpec

    handle = spawner.spawn(
        AgentSpec(argv=(sys.executable, "-c", code), session_id="long", cwd=str(workdir))
    )
    assert handle.wait(30).code == 0
    offset, got = 0, []
    while True:
        chunk = handle.read(offset, max_bytes=64 * 1024)
        if not chunk.lines:
            break
        got += [json.loads(line) for line in chunk.lines]
        offset = chunk.offset
    assert [g["seq"] for g in got] == list(range(60))
    assert all(len(g["pad"]) == 1000 * g["seq"] for g in got)
    assert offset == handle.log_path.stat().st_size
