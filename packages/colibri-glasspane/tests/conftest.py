"""Shared helpers: the real Pi captures and a builder for synthetic event lines."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from colibri_glasspane import Glasspane

# Modest by default so the suite stays fast; GLASSPANE_HYPOTHESIS=thorough for a long hunt.
settings.register_profile(
    "default",
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=3000,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("GLASSPANE_HYPOTHESIS", "default"))

DATA = Path(__file__).parent / "data" / "pi-0.73.1"
CAPTURES = [
    "text_reply",
    "tool_call",
    "provider_error",
    "provider_error_noretry",
    "no_api_key",
    "sigterm_streaming",
    "rpc_tool_call",
    "long_reply",
]


def capture(name: str) -> bytes:
    return (DATA / f"{name}.jsonl").read_bytes()


def capture_lines(name: str) -> list[bytes]:
    """The capture's lines, each with its newline."""
    return capture(name).splitlines(keepends=True)


def line(**fields: Any) -> bytes:
    """One event line: ``line(type="agent_start")``."""
    return json.dumps(fields).encode() + b"\n"


def assistant(stop: str, text: str = "", error: str | None = None, **usage: Any) -> dict:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": [{"type": "text", "text": text}] if text else [],
        "usage": {
            "input": usage.get("input", 0),
            "output": usage.get("output", 0),
            "cacheRead": usage.get("cacheRead", 0),
            "cacheWrite": usage.get("cacheWrite", 0),
            "cost": {"total": usage.get("cost", 0.0)},
        },
        "stopReason": stop,
    }
    if error is not None:
        message["errorMessage"] = error
    return message


def run_lines(stop: str = "stop", text: str = "ok", error: str | None = None) -> list[bytes]:
    """A minimal complete Pi run ending with ``stop``."""
    message = assistant(stop, text, error)
    return [
        line(type="agent_start"),
        line(type="turn_start"),
        line(type="message_start", message={"role": "assistant", "content": []}),
        line(type="message_end", message=message),
        line(type="turn_end", message=message, toolResults=[]),
        line(type="agent_end", messages=[message]),
    ]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def glasspane(clock: FakeClock) -> Glasspane:
    return Glasspane(host="test-host", clock=clock)
