"""End to end: the real ``pi`` (0.73.1) under the spawner, against a fake server on loopback."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import events
from fake_openai import REPLY, FakeOpenAI

from colibri_spawner import AgentState, PiMode, Spawner, pi_argv, pi_prompt, pi_spec


def _find_pi() -> str | None:
    dirs = [os.environ.get("COLIBRI_TEST_NODE_BIN", "")]
    dirs.append(str(Path.home() / ".cache/colibri-ci/node-tools/node_modules/.bin"))
    for directory in dirs:
        if directory and os.access(os.path.join(directory, "pi"), os.X_OK):
            return os.path.join(directory, "pi")
    return shutil.which("pi")


PI = _find_pi()
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(
    PI is None or NODE is None,
    reason="the pi CLI (npm @mariozechner/pi-coding-agent@0.73.1) or node is not installed; "
    "set COLIBRI_TEST_NODE_BIN",
)


@pytest.fixture
def server():
    with FakeOpenAI() as srv:
        yield srv


@pytest.fixture
def pi_env(tmp_path: Path, server: FakeOpenAI) -> dict[str, str]:
    home = tmp_path / "home"
    agent_dir = home / ".pi" / "agent"
    agent_dir.mkdir(parents=True)
    models = {"providers": {"fake": {
        "baseUrl": server.base_url, "api": "openai-completions", "apiKey": "FAKE_OPENAI_API_KEY",
        "compat": {"supportsDeveloperRole": False, "supportsReasoningEffort": False},
        "models": [{"id": "fake-text", "name": "Fake", "contextWindow": 128000,
                    "maxTokens": 4096}]}}}  # fmt: skip
    (agent_dir / "models.json").write_text(json.dumps(models))
    settings = {"defaultProvider": "fake", "defaultModel": "fake-text", "quietStartup": True,
                "enableInstallTelemetry": False}  # fmt: skip
    (agent_dir / "settings.json").write_text(json.dumps(settings))
    assert NODE is not None
    return {
        "PATH": f"{os.path.dirname(NODE)}:/usr/bin:/bin",
        "HOME": str(home),
        "FAKE_OPENAI_API_KEY": "sk-fake",
        "PI_OFFLINE": "1",
    }


@pytest.fixture
def pi_cwd(workdir: Path) -> Path:
    # Both retry layers off: one failed request must not become twelve.
    (workdir / ".pi").mkdir()
    retry = {"retry": {"enabled": False, "provider": {"maxRetries": 0}}}
    (workdir / ".pi" / "settings.json").write_text(json.dumps(retry))
    return workdir


_FLAGS = {"provider": "fake", "model": "fake-text", "tools": ("read", "bash"), "isolated": True}


def test_json_mode(data_dir, pi_env, pi_cwd, server):
    assert PI is not None
    spec = pi_spec(pi=PI, session_id="pi-json", cwd=str(pi_cwd), env=pi_env, mode=PiMode.JSON,
                   prompts=["Say hello"], **_FLAGS)  # fmt: skip
    assert spec.argv == tuple(pi_argv(PI, mode=PiMode.JSON, prompts=["Say hello"], **_FLAGS))
    handle = Spawner(data_dir).spawn(spec)
    record = handle.wait(120)
    assert record.code == 0, handle.stderr_path.read_text()
    evs = events(handle.read().lines)
    assert evs[0]["type"] == "session" and evs[0]["cwd"] == str(pi_cwd)
    assert evs[-1]["type"] == "agent_end"
    final = evs[-1]["messages"][-1]  # type: ignore[index]
    assert final["stopReason"] == "stop"
    assert final["content"][0]["text"] == REPLY
    assert server.requests and server.requests[0]["body"]["stream"] is True


def test_rpc_mode(data_dir, pi_env, pi_cwd, server):
    assert PI is not None
    spec = pi_spec(pi=PI, session_id="pi-rpc", cwd=str(pi_cwd), env=pi_env, mode=PiMode.RPC,
                   **_FLAGS)  # fmt: skip
    handle = Spawner(data_dir).spawn(spec)
    handle.send(pi_prompt("Say hello", "p1"))
    seen: list[dict[str, object]] = []
    offset = 0
    while not any(e["type"] == "agent_end" for e in seen):
        chunk = handle.wait_lines(offset, 60)
        assert chunk.lines, f"pi ended early: {handle.stderr_path.read_text()}"
        offset = chunk.offset
        seen += events(chunk.lines)
    response = next(e for e in seen if e["type"] == "response")
    assert response["id"] == "p1" and response["success"] is True
    assert handle.status().state is AgentState.RUNNING  # rpc pi waits for the next command
    handle.send(pi_prompt("Again", "p2"))
    while sum(e["type"] == "agent_end" for e in seen) < 2:
        chunk = handle.wait_lines(offset, 60)
        assert chunk.lines
        offset = chunk.offset
        seen += events(chunk.lines)
    handle.close_stdin()  # pi shuts down when stdin closes
    assert handle.wait(60).code == 0
    assert len(server.requests) == 2


def test_json_mode_inside_the_sandbox(data_dir, pi_env, pi_cwd, server):
    from colibri_spawner import Runtime, SandboxProvider, errors

    assert PI is not None
    install = str(Path(PI).parents[2])  # .../node_modules/.bin/pi -> the install dir
    sandbox = SandboxProvider(ro_binds=(install,), inside_workdir="/task")
    try:
        sandbox.probe()
    except errors.SandboxUnavailable as exc:
        pytest.skip(f"bwrap: {exc}")
    # pi's settings live in the work dir, the only place the sandbox shows it.
    shutil.copytree(Path(pi_env["HOME"]) / ".pi" / "agent", pi_cwd / ".pi" / "agent")
    env = {**pi_env, "HOME": "/task", "PATH": "/usr/bin:/bin"}
    spec = pi_spec(pi=PI, session_id="pi-sbx", cwd=str(pi_cwd), env=env, mode=PiMode.JSON,
                   prompts=["Say hello"], runtime=Runtime.SANDBOX, **_FLAGS)  # fmt: skip
    handle = Spawner(data_dir, providers=[sandbox]).spawn(spec)
    assert handle.wait(120).code == 0, handle.stderr_path.read_text()
    evs = events(handle.read().lines)
    assert evs[0]["type"] == "session" and evs[0]["cwd"] == "/task"
    assert evs[-1]["messages"][-1]["content"][0]["text"] == REPLY  # type: ignore[index]
