"""Properties: no byte stream raises, chunking never matters, state invariants hold."""

from __future__ import annotations

import itertools
import json

from conftest import CAPTURES, FakeClock, assistant, capture_lines, line
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from colibri_glasspane import (
    AgentState,
    Flag,
    Glasspane,
    GlasspaneConfig,
    ProcessState,
    Runtime,
    Snapshot,
    StreamMode,
)
from colibri_glasspane import _events as ev

_DELTA = {"type": "text_delta", "delta": "tok "}
WORK_STARTS = ("agent_start", "auto_retry_start", "compaction_start")

# Named event lines covering every Pi event type and the interesting variants.
EVENTS: dict[str, bytes] = {
    "session": line(type="session", version=3, id="s-1", cwd="/w"),
    "agent_start": line(type="agent_start"),
    "turn_start": line(type="turn_start"),
    "message_start": line(type="message_start", message={"role": "assistant", "content": []}),
    "message_update": line(type="message_update", assistantMessageEvent=_DELTA),
    "message_end_stop": line(type="message_end", message=assistant("stop", "hi", input=1)),
    "message_end_error": line(type="message_end", message=assistant("error", error="500")),
    "turn_end_tool": line(type="turn_end", message=assistant("toolUse"), toolResults=[]),
    "turn_end_stop": line(type="turn_end", message=assistant("stop", "hi"), toolResults=[]),
    "agent_end_stop": line(type="agent_end", messages=[assistant("stop", "done", output=2)]),
    "agent_end_length": line(type="agent_end", messages=[assistant("length", "cut")]),
    "agent_end_error": line(type="agent_end", messages=[assistant("error", error="500 x")]),
    "agent_end_aborted": line(type="agent_end", messages=[assistant("aborted", error="ab")]),
    "agent_end_tooluse": line(type="agent_end", messages=[assistant("toolUse")]),
    "agent_end_empty": line(type="agent_end", messages=[]),
    "tool_start": line(type="tool_execution_start", toolCallId="c", toolName="bash", args={}),
    "tool_update": line(type="tool_execution_update", toolCallId="c", toolName="bash", args={}),
    "tool_end": line(type="tool_execution_end", toolCallId="c", toolName="bash", isError=False),
    "queue_pending": line(type="queue_update", steering=["s"], followUp=[]),
    "queue_empty": line(type="queue_update", steering=[], followUp=[]),
    "compaction_start": line(type="compaction_start", reason="threshold"),
    "compaction_end": line(type="compaction_end", reason="threshold", aborted=False),
    "compaction_end_retry": line(type="compaction_end", reason="overflow", willRetry=True),
    "auto_retry_start": line(
        type="auto_retry_start", attempt=1, maxAttempts=3, delayMs=1, errorMessage="500"
    ),
    "auto_retry_end_ok": line(type="auto_retry_end", success=True, attempt=1),
    "auto_retry_end_fail": line(type="auto_retry_end", success=False, attempt=3, finalError="x"),
    "response_ok": line(type="response", id="1", command="prompt", success=True),
    "response_fail": line(type="response", id="1", command="prompt", success=False, error="no"),
    "get_state": line(
        type="response", id="2", command="get_state", success=True, data={"sessionId": "rpc-1"}
    ),
    "dialog": line(type="extension_ui_request", id="u", method="confirm", title="ok?"),
    "notify": line(type="extension_ui_request", id="n", method="notify", message="m"),
    "extension_error": line(type="extension_error", extensionPath="/e", event="x", error="e"),
    "session_info": line(type="session_info_changed", name="n"),
    "thinking": line(type="thinking_level_changed", level="high"),
    "usage_extremes": (
        b'{"type":"message_end","message":{"role":"assistant","content":[],"usage":'
        b'{"input":1e300,"output":-5,"cacheRead":9223372036854775807,"cacheWrite":0.5,'
        b'"cost":{"total":1e300}},"stopReason":"stop"}}\n'
    ),
    "deep_args": b'{"type":"tool_execution_start","toolName":"x","args":%s}\n'
    % (b"[" * 3000 + b"]" * 3000),
    "unknown": line(type="from_the_future", x=1),
    "garbage": b"{not json\n",
    "blank": b"\n",
}

# Streams made of whole real lines, synthetic events and raw garbage.
_pieces = st.one_of(
    st.sampled_from(
        [raw for name in CAPTURES if name != "long_reply" for raw in capture_lines(name)]
    ),
    st.sampled_from(list(EVENTS.values())),
    st.binary(max_size=40),
    st.builds(lambda n: b"x" * n + b"\n", st.integers(min_value=300, max_value=700)),
)
streams = st.lists(_pieces, max_size=30).map(b"".join)

# Event objects with any known type and any values in the fields events use: wrong
# types, nulls, huge or negative numbers, nested junk. msgspec's typed decode must
# turn all of it into counted lines, never an exception.
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = [
    "message",
    "messages",
    "assistantMessageEvent",
    "toolCallId",
    "toolName",
    "args",
    "steering",
    "followUp",
    "reason",
    "aborted",
    "willRetry",
    "errorMessage",
    "attempt",
    "success",
    "finalError",
    "command",
    "error",
    "data",
    "id",
    "method",
    "title",
    "timeout",
    "cwd",
    "extensionPath",
    "text",
    "content",
    "input",
    "output",
    "cost_usd",
    "cache_read",
]
_message_values = st.fixed_dictionaries(
    {"role": st.sampled_from(["assistant", "user", "toolResult", 3])},
    optional={
        "content": _json_values
        | st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["text", "toolCall", 1])},
                optional={"text": _json_values},
            ),
            max_size=3,
        ),
        "stopReason": st.sampled_from(["stop", "length", "toolUse", "error", "aborted", None, 7]),
        "errorMessage": _json_values,
        "usage": st.dictionaries(
            st.sampled_from(["input", "output", "cacheRead", "cacheWrite", "cost"]),
            _json_values | st.fixed_dictionaries({"total": _json_values}),
        ),
    },
)
fuzzed_events = st.builds(
    lambda kind, fields, message: (
        json.dumps(
            {
                "type": kind,
                **fields,
                **({"message": message, "messages": [message]} if message else {}),
            }
        ).encode()
        + b"\n"
    ),
    st.sampled_from(sorted(ev.PI_TAGS | ev.ZOT_TAGS | {"nope"})),
    st.dictionaries(st.sampled_from(_FIELDS), _json_values, max_size=5),
    st.none() | _message_values,
)

PROCESSES = [
    ProcessState.starting(),
    ProcessState.running(),
    ProcessState.exited(0),
    ProcessState.exited(1),
    ProcessState.exited(143),
    ProcessState.killed(9),
    ProcessState.lost(),
]


def _view(stream: bytes, cuts: list[int], runtime: Runtime, mode: StreamMode):  # type: ignore[no-untyped-def]
    glasspane = Glasspane(clock=FakeClock(), config=GlasspaneConfig(max_line_bytes=512))
    glasspane.open_pane("p", runtime=runtime, mode=mode)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    for start, end in itertools.pairwise(points):
        glasspane.feed("p", stream[start:end])
    glasspane.end_of_stream("p")
    return glasspane


@given(
    stream=st.one_of(
        st.binary(max_size=400), streams, st.lists(fuzzed_events, max_size=12).map(b"".join)
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=6000), max_size=12),
    runtime=st.sampled_from(list(Runtime)),
    mode=st.sampled_from(list(StreamMode)),
    process=st.sampled_from(PROCESSES),
)
def test_any_byte_stream_never_raises_and_round_trips(stream, cuts, runtime, mode, process):
    glasspane = _view(stream, cuts, runtime, mode)
    glasspane.set_process_state("p", process)
    pane = glasspane.pane("p")
    lines = [raw for raw in stream.split(b"\n")]
    complete = [raw for raw in lines[:-1] if raw] + ([lines[-1]] if lines[-1] else [])
    counted = pane.lines.events + pane.lines.unknown + pane.lines.malformed + pane.lines.oversize
    assert counted == len(complete)
    snapshot = glasspane.snapshot()
    assert Snapshot.from_json(snapshot.to_json()) == snapshot


@given(
    stream=streams,
    cuts=st.lists(st.integers(min_value=0, max_value=6000), max_size=12),
    runtime=st.sampled_from(list(Runtime)),
    mode=st.sampled_from(list(StreamMode)),
)
def test_chunking_never_changes_the_result(stream, cuts, runtime, mode):
    whole = _view(stream, [], runtime, mode).snapshot()
    split = _view(stream, cuts, runtime, mode).snapshot()
    one_byte = _view(stream, list(range(0, len(stream), 1)), runtime, mode).snapshot()
    assert split == whole
    assert one_byte == whole


class PaneInvariants(RuleBasedStateMachine):
    """Random event sequences and process reports on one Pi pane."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.glasspane = Glasspane(
            clock=self.clock, config=GlasspaneConfig(stall_after=100.0, max_line_bytes=4096)
        )
        self.glasspane.open_pane("p")
        self.lines_fed = 0
        self.process_ended = False

    @rule(mode=st.sampled_from([StreamMode.JSON, StreamMode.RPC]))
    @precondition(lambda self: self.lines_fed == 0)
    def reopen_in_mode(self, mode: StreamMode) -> None:
        self.glasspane.close_pane("p")
        self.glasspane.open_pane("p", mode=mode)
        self.process_ended = False

    @rule(name=st.sampled_from(sorted(EVENTS)))
    def feed_event(self, name: str) -> None:
        before = self.glasspane.pane("p")
        self.glasspane.feed("p", EVENTS[name])
        self.lines_fed += EVENTS[name] != b"\n"
        after = self.glasspane.pane("p")
        if before.state in (AgentState.DONE, AgentState.ERROR) and not self.process_ended:
            if after.state is not before.state:
                # Terminal states are left only by events that begin new work.
                assert name in WORK_STARTS, (name, before.state, after.state)

    @rule(process=st.sampled_from(PROCESSES))
    def report_process(self, process: ProcessState) -> None:
        self.glasspane.set_process_state("p", process)
        self.process_ended = process.ended

    @rule(seconds=st.sampled_from([1.0, 50.0, 150.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds

    @invariant()
    def ended_process_is_done_or_error(self) -> None:
        pane = self.glasspane.pane("p")
        if pane.process.ended:
            assert pane.state in (AgentState.DONE, AgentState.ERROR)
            assert pane.current_tool is None
            assert Flag.STALLED not in pane.flags

    @invariant()
    def attention_matches_state(self) -> None:
        pane = self.glasspane.pane("p")
        expected = pane.state in (AgentState.ERROR, AgentState.BLOCKED) or pane.stalled
        assert pane.needs_attention == expected
        assert not pane.stalled or pane.state in (AgentState.WORKING, AgentState.IDLE)
        assert list(pane.flags) == sorted(pane.flags, key=lambda f: f.value)

    @invariant()
    def error_has_a_reason(self) -> None:
        pane = self.glasspane.pane("p")
        assert (pane.reason is not None) == (pane.state in (AgentState.ERROR, AgentState.BLOCKED))

    @invariant()
    def every_line_is_counted_once(self) -> None:
        lines = self.glasspane.pane("p").lines
        assert lines.events + lines.unknown + lines.malformed + lines.oversize == self.lines_fed

    @invariant()
    def snapshot_round_trips(self) -> None:
        snapshot = self.glasspane.snapshot()
        assert Snapshot.from_json(snapshot.to_json()) == snapshot


TestPaneInvariants = PaneInvariants.TestCase
