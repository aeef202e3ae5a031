"""Shared fixtures: a data dir, the test agent, and a reaper that leaves nothing running."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from colibri_spawner import AgentSpec, AgentState, Spawner

TEST_AGENT = str(Path(sys.executable).parent / "colibri-test-agent")


def proc_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


def wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc_alive(pid):
            return True
        time.sleep(0.01)
    return not proc_alive(pid)


def kill_quietly(pid: int, group: bool = False) -> None:
    try:
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def reap_data_dir(data_dir: Path) -> None:
    """Kill every agent (and shim) recorded under ``data_dir``; for test teardown."""
    agents = data_dir / "agents"
    if not agents.is_dir():
        return
    for directory in agents.iterdir():
        try:
            state = json.loads((directory / "state.json").read_text())
        except (OSError, ValueError):
            continue
        kill_quietly(int(state["pgid"]), group=True)
        kill_quietly(int(state["shim_pid"]))
    for directory in agents.iterdir():
        try:
            state = json.loads((directory / "state.json").read_text())
        except (OSError, ValueError):
            continue
        wait_dead(int(state["pid"]), 5.0)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    reap_data_dir(path)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def spawner(data_dir: Path) -> Spawner:
    return Spawner(data_dir)


def agent_spec(session_id: str, cwd: Path | str, *args: str, **kw: object) -> AgentSpec:
    return AgentSpec(
        argv=(TEST_AGENT, "--session-id", session_id, *args),
        session_id=session_id,
        cwd=str(cwd),
        **kw,  # type: ignore[arg-type]
    )


def events(lines: tuple[bytes, ...] | list[bytes]) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines]


def read_all(handle, timeout: float = 30.0) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """Every event until the agent exits."""
    handle.wait(timeout)
    return events(handle.read(0).lines)


def running(spawner: Spawner) -> list[str]:
    return [h.session_id for h in spawner.agents() if h.status().state is AgentState.RUNNING]
