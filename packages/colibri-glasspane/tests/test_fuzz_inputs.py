"""Fuzzing the glasspane with hostile agent output.

Malformed, unknown and oversize lines are counted on the pane, never raised (README,
"Lines"); registered secrets never appear in a pane or a snapshot (README, "Secrets").
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from conftest import CAPTURES, FakeClock, assistant, capture_lines, line, run_lines
from hypothesis import given, settings
from hypothesis import strategies as st

from colibri_glasspane import (
    AgentState,
    Flag,
    Glasspane,
    GlasspaneConfig,
    Pane,
    ProcessState,
    Runtime,
    Snapshot,
    SnapshotError,
    StreamMode,
)

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


def _assert_hidden(glasspane: Glasspane, secret: str, *, escaped: bool = True) -> None:
    """The secret is in no string of the snapshot, raw nor (``escaped``) JSON-escaped."""
    document = glasspane.snapshot().to_json()
    assert Snapshot.from_json(document) == glasspane.snapshot()
    for text in _strings(json.loads(document)):
        assert secret not in text
        if escaped:
            assert json.dumps(secret)[1:-1] not in text
            assert json.dumps(secret, ensure_ascii=False)[1:-1] not in text


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


@pytest.mark.parametrize(
    "event",
    [
        {"type": "response", "command": "prompt", "success": False, "error": {"m": "SECRET"}},
        {"type": "extension_error", "extensionPath": "x", "error": {"e": ["SECRET"]}},
    ],
)
def test_a_secret_registered_after_its_escaped_json_was_kept_is_masked(event: dict[str, Any]):
    # A structured error is kept as JSON text, where the secret's '"', '\\' and tab are
    # escaped; a secret registered only afterwards was not found in that text.
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    text = json.dumps(event).replace("SECRET", json.dumps(SECRET_WITH_ESCAPES)[1:-1])
    glasspane.feed("p", line(type="agent_start") + text.encode() + b"\n")
    pane = glasspane.pane("p")
    assert json.dumps(SECRET_WITH_ESCAPES)[1:-1] in (pane.reason or "") + (pane.last_error or "")
    glasspane.register_secret(SECRET_WITH_ESCAPES)
    pane = glasspane.pane("p")
    assert "[masked]" in (pane.reason or "") + (pane.last_error or "")
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


# -- the campaign ------------------------------------------------------------------------

_SMALL_CAPTURES = [name for name in CAPTURES if name != "long_reply"]
_REAL_LINES = [raw for name in _SMALL_CAPTURES for raw in capture_lines(name)]
_REAL_EVENTS = [json.loads(raw) for raw in _REAL_LINES if raw.strip()]
# 150 examples each by default; GLASSPANE_HYPOTHESIS=thorough gives the profile's 3,000.
_FUZZ = settings(max_examples=max(150, settings.default.max_examples), deadline=None)

# Any JSON value, including what the real events never hold at a given place.
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a decoded event (the event itself excluded)."""
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:6]):
            found += _paths(item, (*prefix, index))
    return found


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replaced(value[head], tuple(rest), new)
    return copy


@st.composite
def _mutated_event(draw: st.DrawFn) -> bytes:
    """A real captured event with one field (at any depth) replaced by any JSON value."""
    event = draw(st.sampled_from(_REAL_EVENTS))
    paths = _paths(event)
    path = draw(st.sampled_from(paths))
    return _compact(_replaced(event, path, draw(_json_values)))


def _feed_all(glasspane: Glasspane, pane_id: str, stream: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    for start, end in itertools.pairwise(points):
        glasspane.feed(pane_id, stream[start:end])
        machine = glasspane._panes[pane_id]  # the bound on what a pane buffers
        assert machine.reader.pending <= glasspane.config.max_line_bytes


def _check_pane(pane: Pane, lines: int, config: GlasspaneConfig) -> None:
    """The documented invariants of a pane after a whole stream (end_of_stream done)."""
    counted = pane.lines
    assert counted.events + counted.unknown + counted.malformed + counted.oversize == lines
    assert pane.needs_attention == (
        pane.state in (AgentState.ERROR, AgentState.BLOCKED) or Flag.STALLED in pane.flags
    )
    assert list(pane.flags) == sorted(pane.flags, key=lambda f: f.value)
    for text in (pane.session_id, pane.cwd, pane.stop_reason):
        assert text is None or len(text) <= 500
    for text in (pane.reason, pane.last_error):
        assert text is None or len(text) <= 1100
    assert len(pane.text_tail) <= config.text_tail_chars
    for tool in (pane.current_tool, pane.last_tool):
        if tool is not None:
            assert len(tool.name) <= 500 and len(tool.args) <= config.tool_args_chars
            assert tool.call_id is None or len(tool.call_id) <= 500
    usage = pane.usage
    for count in (usage.input, usage.output, usage.cache_read, usage.cache_write):
        assert 0 <= count <= 2**63 - 1
    assert 0 <= usage.cost_nanousd <= 2**63 - 1


def _nonblank_lines(stream: bytes) -> int:
    return sum(1 for piece in stream.split(b"\n") if piece)


@_FUZZ
@given(
    events=st.lists(_mutated_event() | st.sampled_from(_REAL_LINES), min_size=1, max_size=25),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=8),
    runtime=st.sampled_from(list(Runtime)),
)
def test_real_events_mutated_field_by_field_are_counted_never_raised(
    events: list[bytes], cuts: list[int], runtime: Runtime
) -> None:
    config = GlasspaneConfig(max_line_bytes=4096)
    glasspane = Glasspane(clock=FakeClock(), config=config)
    glasspane.open_pane("p", runtime=runtime)
    stream = b"".join(events)
    _feed_all(glasspane, "p", stream, cuts)
    glasspane.end_of_stream("p")
    for process in (ProcessState.running(), ProcessState.exited(0), ProcessState.killed(15)):
        glasspane.set_process_state("p", process)
        _check_pane(glasspane.pane("p"), _nonblank_lines(stream), config)
    document = glasspane.snapshot().to_json()
    assert Snapshot.from_json(document) == glasspane.snapshot()


# Bytes that are rarely valid: control characters, broken UTF-8, lone surrogate escapes,
# CR in every position, NUL, deep nesting, near-valid JSON.
_NASTY = [
    b"\x00",
    b"\r",
    b"\r\n",
    b"\xff\xfe",
    b"\xc3",
    b"\xed\xa0\x80",  # a UTF-8-encoded surrogate
    b'"\\ud800"',
    b'"\\udc00\\ud800"',
    b"\\u0000",
    b"{",
    b"}",
    b"[" * 2000,
    b"]" * 2000,
    b'{"type":',
    b'{"type":"message_update","assistantMessageEvent":{"type":"text_delta","delta":"',
    b'","partial":',
    b'{"type":"agent_end","messages":[',
    b"1e999",
    b"-0",
    b"null",
    b"[]",
    b'"type"',
    b'{"type":null}',
    b'{"type":"agent_start","type":"agent_end"}',
    b'{"type":"turn_start"}',
]
_nasty_streams = st.lists(
    st.sampled_from(_NASTY) | st.sampled_from(_REAL_LINES) | st.binary(max_size=12),
    max_size=30,
).map(b"".join)


@_FUZZ
@given(
    stream=_nasty_streams,
    cuts=st.lists(st.integers(min_value=0, max_value=12_000), max_size=8),
    runtime=st.sampled_from(list(Runtime)),
    mode=st.sampled_from(list(StreamMode)),
)
def test_nasty_bytes_in_odd_places_are_counted_never_raised(
    stream: bytes, cuts: list[int], runtime: Runtime, mode: StreamMode
) -> None:
    config = GlasspaneConfig(max_line_bytes=1024)
    glasspane = Glasspane(clock=FakeClock(), config=config)
    glasspane.open_pane("p", runtime=runtime, mode=mode)
    _feed_all(glasspane, "p", stream, cuts)
    # The resumable offset: every byte up to and including the last newline.
    assert glasspane.pane("p").lines.bytes == stream.rfind(b"\n") + 1
    glasspane.end_of_stream("p")
    _check_pane(glasspane.pane("p"), _nonblank_lines(stream), config)
    Snapshot.from_json(glasspane.snapshot().to_json())


# Secrets with characters that JSON and repr escape, or that a regex would read as syntax.
_secrets = st.builds(
    lambda body, extra: f"sk-{body}{extra}",
    st.text("0123456789abcdef", min_size=6, max_size=12),
    st.sampled_from(["", '"', "\\", "\t", "\n", "'", "é", "\u2028", ".*", "$1"]),
)


_KEEP = ("type", "role")  # their values say what an event is: left as they are


def _inject(value: Any, secret: str, where: int) -> Any:
    """``value`` with ``secret`` put into every string and key but the event and block
    types and roles; where in each string depends on ``where``."""
    if isinstance(value, str):
        cut = where % (len(value) + 1)
        return value[:cut] + secret + value[cut:]
    if isinstance(value, dict):
        return {
            (k if k in _KEEP else _inject(k, secret, where)): (
                v if k in _KEEP else _inject(v, secret, where)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_inject(v, secret, where) for v in value]
    return value


def _compact(event: Any) -> bytes:
    """One line as Pi writes it (no spaces: the message_update fast path applies)."""
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


@_FUZZ
@given(
    secret=_secrets,
    picks=st.lists(st.tuples(st.sampled_from(_REAL_EVENTS), st.integers(0, 200)), max_size=20),
    later=st.booleans(),
    split=st.integers(1, 5),
)
def test_a_secret_put_anywhere_in_real_events_never_reaches_a_snapshot(
    secret: str, picks: list[tuple[dict[str, Any], int]], later: bool, split: int
) -> None:
    lines = [_compact(_inject(event, secret, where)) for event, where in picks]
    # And streamed across deltas, split in `split` pieces.
    step = max(1, len(secret) // split)
    for start in range(0, len(secret), step):
        delta = {"type": "text_delta", "delta": secret[start : start + step], "partial": {}}
        lines.append(_compact({"type": "message_update", "assistantMessageEvent": delta}))
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p", runtime=Runtime.PI)
    if not later:
        glasspane.register_secret(secret)
    glasspane.feed("p", b"".join(lines))
    if later:
        glasspane.register_secret(secret)
    for process in (ProcessState.running(), ProcessState.exited(1)):
        glasspane.set_process_state("p", process)
        # A secret registered later is masked in what was kept, also inside the
        # JSON text of a value that was kept encoded (it was missed there once).
        _assert_hidden(glasspane, secret)


def _finished_glasspane() -> Glasspane:
    glasspane = Glasspane(host="h", clock=FakeClock())
    for name in ("text_reply", "tool_call", "provider_error", "rpc_tool_call"):
        glasspane.open_pane(name)
        glasspane.feed(name, b"".join(capture_lines(name)))
        glasspane.set_process_state(name, ProcessState.exited(0))
    return glasspane


_SNAPSHOT = json.loads(_finished_glasspane().snapshot().to_json())


@_FUZZ
@given(data=st.data())
def test_a_snapshot_document_mutated_field_by_field_is_read_or_refused(
    data: st.DataObject,
) -> None:
    path = data.draw(st.sampled_from(_paths(_SNAPSHOT)))
    document = json.dumps(_replaced(_SNAPSHOT, path, data.draw(_json_values)))
    try:
        snapshot = Snapshot.from_json(document)
    except SnapshotError:
        return
    assert Snapshot.from_json(snapshot.to_json()) == snapshot


@_FUZZ
@given(document=st.binary(max_size=200) | _nasty_streams | st.text(max_size=50))
def test_any_snapshot_document_bytes_are_read_or_refused(document: bytes | str) -> None:
    try:
        Snapshot.from_json(document)
    except SnapshotError:
        pass


_NOT_NEW_WORK = [
    raw
    for raw in _REAL_LINES
    if raw.strip()
    and json.loads(raw)["type"] not in ("agent_start", "auto_retry_start", "compaction_start")
]


@_FUZZ
@given(
    final=st.sampled_from(["text_reply", "tool_call", "provider_error", "provider_error_noretry"]),
    late=st.lists(st.sampled_from(_NOT_NEW_WORK) | _mutated_event(), max_size=15),
)
def test_a_terminal_state_holds_against_late_and_stray_events(final: str, late: list[bytes]):
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.feed("p", b"".join(capture_lines(final)))
    before = glasspane.pane("p")
    assert before.state in (AgentState.DONE, AgentState.ERROR)
    # A mutated line may have become one that begins new work; the others must not move it.
    late = [
        raw
        for raw in late
        if not any(
            kind in raw for kind in (b'"agent_start"', b'"auto_retry_start"', b'"compaction_start"')
        )
    ]
    glasspane.feed("p", b"".join(late))
    after = glasspane.pane("p")
    assert (after.state, after.reason, after.stop_reason) == (
        before.state,
        before.reason,
        before.stop_reason,
    )


def test_repeated_events_with_fresh_ids_keep_the_pane_bounded():
    # Duplicate and ever-new ids (tool calls, dialogs, sessions) must not grow the pane.
    def one_round(n: int) -> bytes:
        return b"".join(
            [
                line(type="session", id=f"s-{n}", cwd=f"/w/{n}"),
                line(type="agent_start"),
                line(type="tool_execution_start", toolCallId=f"c{n}", toolName="bash", args={}),
                line(type="tool_execution_start", toolCallId=f"c{n}", toolName="bash", args={}),
                line(type="tool_execution_end", toolCallId=f"c{n}", toolName="bash"),
                line(type="extension_ui_request", id=f"u{n}", method="confirm", title="ok?"),
                line(type="queue_update", steering=["x"] * 50, followUp=[]),
                line(type="queue_update", steering=[], followUp=[]),
                *run_lines(text="ok " * 200),
            ]
        )

    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.feed("p", one_round(0))
    machine = glasspane._panes["p"]
    first = {k: len(v) for k, v in vars(machine).items() if hasattr(v, "__len__")}
    for n in range(1, 3000):
        glasspane.feed("p", one_round(n))
    later = {k: len(v) for k, v in vars(machine).items() if hasattr(v, "__len__")}
    assert all(later[k] <= max(first[k], 600) for k in later)  # ids grow by digits only
    assert len(machine.tail.kept) + len(machine.tail.held) <= glasspane.config.text_tail_chars
    assert machine.reader.pending == 0
    assert glasspane.pane("p").tool_calls == 6000


@pytest.mark.parametrize("size", [63, 64, 65, 200])
@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_lines_around_the_bound_in_any_chunking_buffer_at_most_the_bound(size: int, chunk: int):
    config = GlasspaneConfig(max_line_bytes=64)
    glasspane = Glasspane(clock=FakeClock(), config=config)
    glasspane.open_pane("p")
    body = b'{"type":"turn_start","x":"' + b"y" * size
    body = body[:size] if size < len(body) else body
    stream = (body + b"\r\n") * 3 + b'{"type":"agent_start"}\n' + body
    _feed_all(glasspane, "p", stream, list(range(0, len(stream), chunk)))
    glasspane.end_of_stream("p")
    pane = glasspane.pane("p")
    _check_pane(pane, _nonblank_lines(stream), config)
    assert pane.lines.events >= 1  # agent_start
    # Three CRLF lines of size + 1 bytes, and the unterminated last line of size bytes.
    assert pane.lines.oversize == 3 * (size + 1 > 64) + (size > 64)
