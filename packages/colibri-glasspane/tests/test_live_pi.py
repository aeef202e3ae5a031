"""The real ``pi`` 0.73.1 against a local fake provider, its stdout read as a pipe gives it.

Skipped when the ``pi`` CLI is not installed (CI installs it and exports
``COLIBRI_TEST_NODE_BIN``). Talks only to a server on 127.0.0.1 started here.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from colibri_glasspane import AgentState, Flag, Glasspane, ProcessState

TIMEOUT = 60.0


def _pi_binary() -> str | None:
    node_bin = os.environ.get("COLIBRI_TEST_NODE_BIN")
    if node_bin:
        found = shutil.which("pi", path=node_bin)
        if found:
            return found
    return shutil.which("pi")


PI = _pi_binary()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PI is None, reason="the pi CLI (npm @mariozechner/pi-coding-agent) is absent"
    ),
]


def _chunk(model: str, delta: dict, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-live",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class _FakeProvider(BaseHTTPRequestHandler):
    """OpenAI-style streaming chat completions; the model name picks the behaviour."""

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        model = json.loads(self.rfile.read(length) or b"{}").get("model", "")
        if model == "fake-error":
            body = b'{"error": {"message": "fake internal server error"}}'
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        words = ["Hello", " from", " the", " live", " fake", " server."]
        if model == "fake-slow":
            words = [f" tok{i}" for i in range(200)]
        try:
            self.wfile.write(_chunk(model, {"role": "assistant", "content": ""}))
            for word in words:
                self.wfile.write(_chunk(model, {"content": word}))
                self.wfile.flush()
                if model == "fake-slow":
                    time.sleep(0.05)
            self.wfile.write(_chunk(model, {}, "stop"))
            usage = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
            body = {
                "id": "chatcmpl-live",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            self.wfile.write(b"data: " + json.dumps(body).encode() + b"\n\ndata: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def provider() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeProvider)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def pi_home(tmp_path: Path, provider: int) -> Path:
    agent_dir = tmp_path / "home" / ".pi" / "agent"
    agent_dir.mkdir(parents=True)
    models = [
        {"id": name, "name": name, "contextWindow": 128000, "maxTokens": 4096}
        for name in ("fake-text", "fake-error", "fake-slow")
    ]
    (agent_dir / "models.json").write_text(
        json.dumps(
            {
                "providers": {
                    "fake": {
                        "baseUrl": f"http://127.0.0.1:{provider}/v1",
                        "api": "openai-completions",
                        "apiKey": "FAKE_OPENAI_API_KEY",
                        "compat": {
                            "supportsDeveloperRole": False,
                            "supportsReasoningEffort": False,
                        },
                        "models": models,
                    }
                }
            }
        )
    )
    (agent_dir / "settings.json").write_text(
        json.dumps(
            {
                "defaultProvider": "fake",
                "defaultModel": "fake-text",
                "quietStartup": True,
                "enableInstallTelemetry": False,
            }
        )
    )
    work = tmp_path / "work" / ".pi"
    work.mkdir(parents=True)
    (work / "settings.json").write_text(
        json.dumps({"retry": {"enabled": False, "provider": {"maxRetries": 0}}})
    )
    return tmp_path


def _start_pi(home: Path, model: str, prompt: str) -> subprocess.Popen[bytes]:
    assert PI is not None
    env = {
        "PATH": os.path.dirname(PI) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home / "home"),
        "FAKE_OPENAI_API_KEY": "sk-fake-live-secret",
        "PI_OFFLINE": "1",
    }
    argv = [
        PI,
        "--mode",
        "json",
        "--provider",
        "fake",
        "--model",
        model,
        "--no-session",
        "--no-tools",
        "--no-extensions",
        "--no-skills",
        "--no-context-files",
        prompt,
    ]
    return subprocess.Popen(
        argv,
        cwd=home / "work",
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _pump(glasspane: Glasspane, proc: subprocess.Popen[bytes], until=None) -> None:  # type: ignore[no-untyped-def]
    """Feed the pane what the pipe gives, in the pipe's own chunks, until EOF or ``until``."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            return
        glasspane.feed("live", chunk)
        if until is not None and until(glasspane.pane("live")):
            return
    raise AssertionError("pi did not finish in time")


def _finish(glasspane: Glasspane, proc: subprocess.Popen[bytes]) -> None:
    _pump(glasspane, proc)
    glasspane.end_of_stream("live")
    code = proc.wait(timeout=TIMEOUT)
    process = ProcessState.killed(-code) if code < 0 else ProcessState.exited(code)
    glasspane.set_process_state("live", process)


def _glasspane() -> Glasspane:
    glasspane = Glasspane(host="live")
    glasspane.open_pane("live", agent="pi")
    glasspane.register_secret("sk-fake-live-secret")
    glasspane.set_process_state("live", ProcessState.running())
    return glasspane


def test_live_text_reply_is_done(pi_home: Path) -> None:
    glasspane = _glasspane()
    proc = _start_pi(pi_home, "fake-text", "Say hello")
    try:
        _finish(glasspane, proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    pane = glasspane.pane("live")
    assert pane.state is AgentState.DONE, pane
    assert pane.text_tail == "Hello from the live fake server."
    assert (pane.usage.input, pane.usage.output) == (42, 7)
    assert (pane.lines.malformed, pane.lines.unknown, pane.lines.oversize) == (0, 0, 0)


def test_live_provider_error_is_an_error_although_pi_exits_0(pi_home: Path) -> None:
    glasspane = _glasspane()
    proc = _start_pi(pi_home, "fake-error", "Say hello")
    try:
        _finish(glasspane, proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    pane = glasspane.pane("live")
    assert pane.process == ProcessState.exited(0)
    assert pane.state is AgentState.ERROR, pane
    assert pane.reason is not None and pane.reason.startswith("provider error: 500")


def test_live_sigterm_while_streaming_is_an_error_killed(pi_home: Path) -> None:
    glasspane = _glasspane()
    proc = _start_pi(pi_home, "fake-slow", "Say hello slowly")
    try:
        _pump(glasspane, proc, until=lambda pane: "tok2" in pane.text_tail)
        assert glasspane.pane("live").state is AgentState.WORKING
        os.killpg(proc.pid, signal.SIGTERM)
        _finish(glasspane, proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    pane = glasspane.pane("live")
    assert pane.state is AgentState.ERROR, pane
    assert Flag.KILLED in pane.flags
    assert pane.reason is not None and pane.reason.startswith("killed by SIGTERM")
