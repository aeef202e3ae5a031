"""``colibri-test-agent``: a deterministic Pi-style JSONL agent for tests and demos.

Default run: ``session``, ``agent_start``, ``turn_start``, user message, ``--count``
assistant ``message_update`` deltas, assistant ``message_end``, optional ``usage``
(``--emit-usage``), ``turn_end``, ``agent_end``; then it holds ``--hold-secs`` and
exits 0. Every line carries ``seq`` (0, 1, 2, ...) so a reader can check that no
line was lost or repeated. Modes: ``--fail`` (an error run, exit 1), ``--block``
(asks a confirm dialog and waits forever), ``--hang`` (goes silent after
``agent_start``), ``--tool-call`` (a bash tool call turn first), ``--spawn-child``
(starts a sleeping child, ``--detach-child`` in its own session), ``--ignore-term``
(survives SIGTERM), ``--rpc`` (one run per ``prompt`` command read on stdin).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

_USAGE = {
    "input": 42,
    "output": 7,
    "cacheRead": 0,
    "cacheWrite": 0,
    "totalTokens": 49,
    "cost": {"input": 0.000126, "output": 0.000105, "cacheRead": 0, "cacheWrite": 0,
             "total": 0.000231},
}  # fmt: skip


class _Emitter:
    def __init__(self, step_ms: int) -> None:
        self.seq = 0
        self.step = step_ms / 1000.0
        self.out = sys.stdout.buffer

    def emit(self, event: dict[str, Any]) -> None:
        event["seq"] = self.seq
        self.seq += 1
        self.out.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
        self.out.flush()
        if self.step:
            time.sleep(self.step)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _assistant(text: str, stop: str = "stop", error: str | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "role": "assistant",
        "content": [{"type": "text", "text": text}] if text else [],
        "api": "openai-completions",
        "provider": "test",
        "model": "colibri-test-agent",
        "usage": _USAGE,
        "stopReason": stop,
        "timestamp": _now_ms(),
    }
    if error is not None:
        msg["errorMessage"] = error
    return msg


def _run(em: _Emitter, opts: argparse.Namespace, prompt: str) -> int:
    user = {"role": "user", "content": [{"type": "text", "text": prompt}], "timestamp": _now_ms()}
    em.emit({"type": "agent_start"})
    if opts.hang:
        while True:
            time.sleep(3600)
    em.emit({"type": "turn_start"})
    em.emit({"type": "message_start", "message": user})
    em.emit({"type": "message_end", "message": user})
    if opts.fail:
        failed = _assistant("", stop="error", error="colibri-test-agent: failing as asked")
        em.emit({"type": "message_end", "message": failed})
        em.emit({"type": "turn_end", "message": failed, "toolResults": []})
        em.emit({"type": "agent_end", "messages": [user, failed]})
        print("colibri-test-agent: failing as asked (--fail)", file=sys.stderr, flush=True)
        return 1
    if opts.tool_call:
        _tool_turn(em)
    if opts.block:
        em.emit(
            {
                "type": "extension_ui_request",
                "id": "ui-1",
                "method": "confirm",
                "title": "Proceed?",
                "message": "colibri-test-agent is blocked on a confirmation",
            }
        )
        while True:
            time.sleep(3600)
    text = ""
    for i in range(opts.count):
        delta = f"word{i} "
        text += delta
        em.emit(
            {
                "type": "message_update",
                "message": _assistant(text),
                "assistantMessageEvent": {"type": "text_delta", "contentIndex": 0, "delta": delta},
            }
        )
    final = _assistant(text or "done")
    em.emit({"type": "message_end", "message": final})
    if opts.emit_usage:
        em.emit(
            {"type": "usage", "input": 42, "output": 7, "cache_read": 0, "cache_write": 0,
             "cost_usd": 0.000231}
        )  # fmt: skip
    em.emit({"type": "turn_end", "message": final, "toolResults": []})
    em.emit({"type": "agent_end", "messages": [user, final]})
    return 0


def _tool_turn(em: _Emitter) -> None:
    call = {"type": "toolCall", "id": "call-1", "name": "bash", "arguments": {"command": "echo hi"}}
    msg = _assistant("", stop="toolUse")
    msg["content"] = [call]
    em.emit({"type": "message_end", "message": msg})
    args = call["arguments"]
    em.emit(
        {"type": "tool_execution_start", "toolCallId": "call-1", "toolName": "bash", "args": args}
    )
    result = {"content": [{"type": "text", "text": "hi\n"}], "details": {}}
    em.emit(
        {"type": "tool_execution_update", "toolCallId": "call-1", "toolName": "bash",
         "args": args, "partialResult": result}
    )  # fmt: skip
    em.emit(
        {"type": "tool_execution_end", "toolCallId": "call-1", "toolName": "bash",
         "result": result, "isError": False}
    )  # fmt: skip
    tool_result = {"role": "toolResult", "toolCallId": "call-1", "toolName": "bash",
                   "content": result["content"], "details": {}, "isError": False,
                   "timestamp": _now_ms()}  # fmt: skip
    em.emit({"type": "turn_end", "message": msg, "toolResults": [tool_result]})
    em.emit({"type": "turn_start"})


def _spawn_child(em: _Emitter, detach: bool) -> None:
    # Like Pi's bash tool: a sleeping grandchild of the supervisor.
    pid = os.fork()
    if pid == 0:
        if detach:
            os.setsid()
        os.execv("/bin/sleep", ["sleep", "1000"])
    em.emit({"type": "child_spawned", "pid": pid, "detached": detach})


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="colibri-test-agent", description=__doc__.splitlines()[0])
    p.add_argument("--session-id", default=None)
    p.add_argument("--cwd", default=None)
    p.add_argument("--step-ms", type=int, default=0)
    p.add_argument("--hold-secs", type=float, default=0.0)
    p.add_argument("--emit-usage", action="store_true")
    p.add_argument("--count", type=int, default=3, help="assistant deltas to emit")
    p.add_argument("--prompt", default="Say hello")
    p.add_argument("--fail", action="store_true")
    p.add_argument("--block", action="store_true")
    p.add_argument("--hang", action="store_true")
    p.add_argument("--tool-call", action="store_true")
    p.add_argument("--spawn-child", action="store_true")
    p.add_argument("--detach-child", action="store_true")
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("--rpc", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the test agent; returns the exit code."""
    opts = _parser().parse_args(argv)
    if opts.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    em = _Emitter(opts.step_ms)
    if not opts.rpc:
        em.emit(
            {
                "type": "session",
                "version": 3,
                "id": opts.session_id or str(uuid.uuid4()),
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "cwd": opts.cwd or os.getcwd(),
            }
        )
    if opts.spawn_child or opts.detach_child:
        _spawn_child(em, opts.detach_child)
    if opts.rpc:
        code = 0
        for raw in sys.stdin.buffer:
            try:
                cmd = json.loads(raw)
            except ValueError:
                em.emit({"type": "response", "command": "parse", "success": False,
                         "error": "not JSON"})  # fmt: skip
                continue
            if cmd.get("type") != "prompt":
                em.emit({"type": "response", "id": cmd.get("id"), "command": cmd.get("type"),
                         "success": True, "data": {}})  # fmt: skip
                continue
            em.emit({"type": "response", "id": cmd.get("id"), "command": "prompt",
                     "success": True})  # fmt: skip
            code = _run(em, opts, str(cmd.get("message", "")))
        return code
    code = _run(em, opts, opts.prompt)
    if opts.hold_secs:
        time.sleep(opts.hold_secs)
    return code


def console_main() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
