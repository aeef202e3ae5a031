"""The Pi harness: argv and AgentSpec for ``pi --mode json`` and ``pi --mode rpc``."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

from colibri_spawner._spec import AgentSpec, Runtime, StdinMode
from colibri_spawner.errors import InvalidSpec


class PiMode(enum.Enum):
    """Pi's output modes that a supervisor can drive."""

    JSON = "json"  # one-shot: prompts on the command line, stdin closed
    RPC = "rpc"  # long-lived: prompt commands on stdin, exits when stdin closes


def pi_argv(
    pi: str,
    *,
    mode: PiMode,
    prompts: Sequence[str] = (),
    provider: str | None = None,
    model: str | None = None,
    session_dir: str | None = None,
    tools: Sequence[str] | None = None,
    thinking: str | None = None,
    system_prompt: str | None = None,
    append_system_prompt: str | None = None,
    isolated: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """``pi --mode json|rpc [flags] [prompts]``.

    ``session_dir=None`` passes ``--no-session``; ``tools=()`` passes ``--no-tools``;
    ``isolated`` adds ``--no-extensions --no-skills --no-context-files``. Prompts
    belong to json mode only (rpc prompts are sent with ``pi_prompt``).
    """
    if not pi:
        raise InvalidSpec("the pi binary must be named", field="argv")
    if mode is PiMode.JSON and not prompts:
        raise InvalidSpec("json mode needs at least one prompt", field="argv")
    if mode is PiMode.RPC and prompts:
        raise InvalidSpec("rpc mode takes prompts on stdin, not in argv", field="argv")
    out = [pi, "--mode", mode.value]
    if provider is not None:
        out += ["--provider", provider]
    if model is not None:
        out += ["--model", model]
    out += ["--session-dir", session_dir] if session_dir is not None else ["--no-session"]
    if tools is not None:
        out += ["--tools", ",".join(tools)] if tools else ["--no-tools"]
    if thinking is not None:
        out += ["--thinking", thinking]
    if system_prompt is not None:
        out += ["--system-prompt", system_prompt]
    if append_system_prompt is not None:
        out += ["--append-system-prompt", append_system_prompt]
    if isolated:
        out += ["--no-extensions", "--no-skills", "--no-context-files"]
    out += list(extra)
    out += list(prompts)
    return out


def pi_spec(
    *,
    pi: str,
    session_id: str,
    cwd: str,
    env: Mapping[str, str],
    mode: PiMode = PiMode.JSON,
    runtime: Runtime = Runtime.LOCAL,
    jail_name: str | None = None,
    **argv_options: Any,
) -> AgentSpec:
    """An AgentSpec for Pi: stdin closed in json mode, a pipe in rpc mode.

    ``env`` must give ``PATH`` with ``node`` on it (pi is a node script) and
    ``HOME`` or ``PI_CODING_AGENT_DIR`` for its settings.
    """
    return AgentSpec(
        argv=pi_argv(pi, mode=mode, **argv_options),
        session_id=session_id,
        cwd=cwd,
        env=env,
        runtime=runtime,
        stdin=StdinMode.CLOSED if mode is PiMode.JSON else StdinMode.PIPE,
        jail_name=jail_name,
    )


def pi_prompt(message: str, request_id: str) -> dict[str, str]:
    """An rpc ``prompt`` command: ``{"id", "type": "prompt", "message"}``."""
    return {"id": request_id, "type": "prompt", "message": message}
