"""The message_update fast path reads exactly what a full decode reads, or steps aside."""

from __future__ import annotations

import json

import msgspec
from conftest import CAPTURES, FakeClock, capture_lines
from hypothesis import given
from hypothesis import strategies as st

from colibri_glasspane import Glasspane
from colibri_glasspane import _events as ev

_FULL = ev.pi_decoder()


def _expected(raw: bytes) -> tuple[str, str | None]:
    update = _FULL.decode(raw).assistantMessageEvent
    return update.type, update.delta if update.type == "text_delta" else None


def _pi_line(kind: str, delta: str | None, ensure_ascii: bool) -> bytes:
    event: dict[str, object] = {"type": kind, "contentIndex": 0}
    if delta is not None:
        event["delta"] = delta
    event["partial"] = {"role": "assistant", "content": [{"type": "text", "text": delta or ""}]}
    document = {"type": "message_update", "assistantMessageEvent": event, "message": {}}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=ensure_ascii).encode()


def test_every_captured_message_update_takes_the_fast_path_and_agrees():
    count = 0
    for name in CAPTURES:
        for raw in capture_lines(name):
            line = raw.rstrip(b"\n")
            if not line.startswith(ev.UPDATE_PREFIX):
                continue
            for form in (line, memoryview(line)):
                assert ev.fast_message_update(form, ev.line_head(form)) == _expected(line)
            count += 1
    assert count == 541


@given(
    delta=st.text(max_size=300),
    kind=st.sampled_from(["text_delta", "thinking_delta", "toolcall_delta", "text_start"]),
    ensure_ascii=st.booleans(),
)
def test_any_delta_reads_the_same_as_a_full_decode(delta, kind, ensure_ascii):
    line = _pi_line(kind, delta, ensure_ascii)
    fast = ev.fast_message_update(line, ev.line_head(line))
    # Either it steps aside (None: the full decode runs) or it agrees with it.
    assert fast is None or fast == _expected(line)
    if kind == "text_delta" and '"' not in delta and len(line) < ev.HEAD_BYTES:
        assert fast == ("text_delta", delta)


@given(delta=st.text(max_size=50), cut=st.integers(min_value=1, max_value=400))
def test_a_line_cut_short_is_never_an_event(delta, cut):
    line = _pi_line("text_delta", delta, ensure_ascii=False)
    cut_line = line[: len(line) - min(cut, len(line) - 1)]  # never empty
    if cut_line.endswith(b"}"):
        return  # cut at an inner '}': see the test below
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.feed("p", cut_line + b"\n")
    pane = glasspane.pane("p")
    assert pane.lines.events == 0
    assert pane.lines.malformed == 1


def test_documented_limit_the_skipped_part_is_not_validated():
    """Only the head and the closing brace are checked: the skipped partial is trusted."""
    line = b'{"type":"message_update","assistantMessageEvent":{"type":"text_delta",'
    line += b'"contentIndex":0,"delta":"hi","partial":{oops not json}}'
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.feed("p", b'{"type":"agent_start"}\n' + line + b"\n")
    pane = glasspane.pane("p")
    assert (pane.lines.events, pane.lines.malformed, pane.text_tail) == (2, 0, "hi")
    try:
        msgspec.json.decode(line)
    except msgspec.DecodeError:
        pass
    else:  # pragma: no cover - the line above really is invalid JSON
        raise AssertionError("expected invalid JSON")


def test_a_bad_delta_escape_falls_back_to_the_full_decode_and_counts_malformed():
    line = b'{"type":"message_update","assistantMessageEvent":{"type":"text_delta",'
    line += b'"contentIndex":0,"delta":"bad \\q escape","partial":{}}'
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.feed("p", line + b"\n")
    assert glasspane.pane("p").lines.malformed == 1
