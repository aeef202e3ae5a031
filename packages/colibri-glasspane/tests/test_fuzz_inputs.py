"""Fuzzing the glasspane with hostile agent output.

Malformed, unknown and oversize lines are counted on the pane, never raised (README,
"Lines"); registered secrets never appear in a pane or a snapshot (README, "Secrets").
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import FakeClock, assistant, line

from colibri_glasspane import Glasspane, Snapshot

SECRET_WITH_ESCAPES = 'pa"ss\\w\tord-9f2c'


def _strings(value: Any) -> list[str]:
    """Every string (keys too) of a decoded JSON document."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _assert_hidden(glasspane: Glasspane, secret: str) -> None:
    """The secret is in no string of the snapshot, neither raw nor JSON-escaped."""
    document = glasspane.snapshot().to_json()
    assert Snapshot.from_json(document) == glasspane.snapshot()
    for text in _strings(json.loads(document)):
        assert secret not in text
        assert json.dumps(secret)[1:-1] not in text


# -- regression cases found by the campaign --------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"type": "response", "command": "prompt", "success": False, "error": {"m": "k=SECRET"}},
        {"type": "extension_ui_request", "method": "confirm", "title": ["SECRET"]},
        {"type": "extension_error", "extensionPath": {"p": "SECRET"}, "error": {"e": "SECRET"}},
    ],
)
def test_a_secret_with_json_escapes_in_a_non_string_value_is_masked(event: dict[str, Any]):
    # The value was JSON-encoded before masking: '"' became '\\"' and the
    # masker no longer saw the secret, so the reason / last error showed it escaped.
    text = json.dumps(event).replace("SECRET", json.dumps(SECRET_WITH_ESCAPES)[1:-1])
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.register_secret(SECRET_WITH_ESCAPES)
    glasspane.feed("p", line(type="agent_start") + text.encode() + b"\n")
    pane = glasspane.pane("p")
    assert pane.lines.malformed == 0 and pane.lines.events == 2
    assert "[masked]" in (pane.reason or "") + (pane.last_error or "")
    _assert_hidden(glasspane, SECRET_WITH_ESCAPES)


def test_zot_error_object_with_an_escaped_secret_is_masked():
    glasspane = Glasspane(clock=FakeClock())
    from colibri_glasspane import Runtime

    glasspane.open_pane("z", runtime=Runtime.ZOT)
    glasspane.register_secret(SECRET_WITH_ESCAPES)
    event = {"type": "error", "message": {"detail": SECRET_WITH_ESCAPES}}
    glasspane.feed("z", line(type="turn_start") + json.dumps(event).encode() + b"\n")
    assert "[masked]" in (glasspane.pane("z").reason or "")
    _assert_hidden(glasspane, SECRET_WITH_ESCAPES)


def test_an_unknown_stop_reason_is_masked_and_bounded():
    # stop_reason was kept raw (unmasked, unbounded) and its repr was masked too late.
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.open_pane("q")
    glasspane.register_secret(SECRET_WITH_ESCAPES)
    for pane_id, stop in (("p", f"weird {SECRET_WITH_ESCAPES}"), ("q", "x" * 100_000 + "later")):
        end = line(type="agent_end", messages=[assistant(stop)])
        glasspane.feed(pane_id, line(type="agent_start") + end)
    pane = glasspane.pane("p")
    assert pane.stop_reason == "weird [masked]" and "[masked]" in (pane.reason or "")
    _assert_hidden(glasspane, SECRET_WITH_ESCAPES)
    long = glasspane.pane("q")
    assert long.stop_reason is not None and len(long.stop_reason) <= 500
    assert long.reason is not None and len(long.reason) <= 1000
    # A secret registered later masks the kept stop reason too.
    glasspane.register_secret("later")
    assert "later" not in (glasspane.pane("q").stop_reason or "")
    _assert_hidden(glasspane, "later")
