"""State rules on synthetic streams: blocked, retries, compaction, process merge, zot."""

from __future__ import annotations

import pytest
from conftest import assistant, capture_lines, line, run_lines

from colibri_glasspane import (
    AgentState,
    Flag,
    Glasspane,
    GlasspaneConfig,
    ProcessState,
    Runtime,
    Snapshot,
    SnapshotError,
    StreamMode,
)


def _feed(glasspane: Glasspane, *chunks: bytes | list[bytes], pane: str = "p") -> None:
    for chunk in chunks:
        glasspane.feed(pane, b"".join(chunk) if isinstance(chunk, list) else chunk)


def _open(glasspane: Glasspane, **kwargs) -> None:  # type: ignore[no-untyped-def]
    glasspane.open_pane("p", **kwargs)


def test_queue_update_with_pending_items_blocks_and_an_empty_one_releases(glasspane):
    _open(glasspane)
    _feed(glasspane, line(type="agent_start"), line(type="turn_start"))
    _feed(glasspane, line(type="queue_update", steering=["look here"], followUp=[]))
    pane = glasspane.pane("p")
    assert pane.state is AgentState.BLOCKED
    assert pane.reason == "1 queued steering/follow-up message(s)"
    assert pane.needs_attention
    _feed(glasspane, line(type="queue_update", steering=[], followUp=[]))
    assert glasspane.pane("p").state is AgentState.WORKING


@pytest.mark.parametrize("method", ["select", "confirm", "input", "editor"])
def test_rpc_dialog_blocks_until_the_agent_moves_on(glasspane, method):
    _open(glasspane)
    _feed(glasspane, line(type="response", id="1", command="prompt", success=True))
    _feed(glasspane, line(type="agent_start"), line(type="turn_start"))
    _feed(
        glasspane,
        line(type="extension_ui_request", id="u1", method=method, title="Allow rm -rf?"),
    )
    pane = glasspane.pane("p")
    assert pane.mode is StreamMode.RPC
    assert pane.state is AgentState.BLOCKED
    assert pane.reason == f"waiting for an answer to {method}: Allow rm -rf?"
    assert Flag.NEEDS_ATTENTION in pane.flags
    _feed(glasspane, line(type="tool_execution_start", toolCallId="c", toolName="bash", args={}))
    assert glasspane.pane("p").state is AgentState.WORKING


def test_fire_and_forget_ui_requests_do_not_block(glasspane):
    _open(glasspane)
    _feed(glasspane, line(type="agent_start"))
    _feed(glasspane, line(type="extension_ui_request", id="n", method="notify", message="hi"))
    assert glasspane.pane("p").state is AgentState.WORKING


def test_a_dialog_with_a_timeout_stops_blocking_when_it_expires(glasspane, clock):
    _open(glasspane)
    _feed(glasspane, line(type="agent_start"))
    _feed(
        glasspane,
        line(type="extension_ui_request", id="u", method="confirm", title="ok?", timeout=5000),
    )
    assert glasspane.pane("p").state is AgentState.BLOCKED
    clock.now += 5.0
    assert glasspane.pane("p").state is AgentState.WORKING


def test_stalled_is_derived_from_the_injected_clock(clock):
    glasspane = Glasspane(clock=clock, config=GlasspaneConfig(stall_after=60.0))
    _open(glasspane)
    _feed(glasspane, line(type="agent_start"))
    assert not glasspane.pane("p").stalled
    clock.now += 59.9
    assert not glasspane.pane("p").stalled
    clock.now += 0.1
    pane = glasspane.pane("p")
    assert pane.stalled and pane.needs_attention
    assert pane.state is AgentState.WORKING
    _feed(glasspane, line(type="turn_start"))
    assert not glasspane.pane("p").stalled


def test_done_and_rpc_idle_panes_never_stall(clock):
    glasspane = Glasspane(clock=clock, config=GlasspaneConfig(stall_after=1.0))
    glasspane.open_pane("rpc", mode=StreamMode.RPC)
    glasspane.open_pane("json", mode=StreamMode.JSON)
    _feed(glasspane, run_lines("stop"), pane="json")
    clock.now += 10
    assert glasspane.pane("rpc").flags == ()
    assert glasspane.pane("json").flags == ()
    _feed(glasspane, run_lines("stop"), pane="rpc")
    clock.now += 10
    assert glasspane.pane("rpc").flags == ()


def test_a_silent_one_shot_agent_stalls_before_its_first_event(clock):
    """json mode: a live process that never gets to agent_start is stuck, not idle."""
    glasspane = Glasspane(clock=clock, config=GlasspaneConfig(stall_after=30.0))
    _open(glasspane)
    glasspane.set_process_state("p", ProcessState.running())
    _feed(glasspane, capture_lines("text_reply")[0])  # the session header only
    clock.now += 30
    pane = glasspane.pane("p")
    assert pane.state is AgentState.IDLE
    assert pane.stalled and pane.needs_attention
    glasspane.set_process_state("p", ProcessState.exited(1))
    pane = glasspane.pane("p")
    assert (pane.state, pane.stalled) == (AgentState.ERROR, False)


def test_compaction_after_the_run_shows_working_then_done_again(glasspane):
    _open(glasspane)
    _feed(glasspane, run_lines("stop"))
    assert glasspane.pane("p").state is AgentState.DONE
    _feed(glasspane, line(type="compaction_start", reason="threshold"))
    pane = glasspane.pane("p")
    assert pane.state is AgentState.WORKING
    assert Flag.COMPACTING in pane.flags
    _feed(
        glasspane, line(type="compaction_end", reason="threshold", aborted=False, willRetry=False)
    )
    assert glasspane.pane("p").state is AgentState.DONE


def test_a_run_that_ends_inside_compaction_with_exit_0_is_done(glasspane):
    _open(glasspane)
    _feed(glasspane, run_lines("stop"), line(type="compaction_start", reason="threshold"))
    glasspane.set_process_state("p", ProcessState.exited(0))
    assert glasspane.pane("p").state is AgentState.DONE


def test_overflow_compaction_that_will_retry_stays_working(glasspane):
    _open(glasspane)
    _feed(glasspane, run_lines("error", error="context overflow"))
    _feed(glasspane, line(type="compaction_start", reason="overflow"))
    _feed(glasspane, line(type="compaction_end", reason="overflow", aborted=False, willRetry=True))
    assert glasspane.pane("p").state is AgentState.WORKING
    _feed(glasspane, run_lines("stop"))
    assert glasspane.pane("p").state is AgentState.DONE


def test_a_failed_compaction_is_recorded_as_the_last_error(glasspane):
    _open(glasspane)
    _feed(glasspane, run_lines("stop"), line(type="compaction_start", reason="threshold"))
    _feed(
        glasspane,
        line(type="compaction_end", reason="threshold", aborted=False, errorMessage="quota"),
    )
    pane = glasspane.pane("p")
    assert pane.state is AgentState.DONE
    assert pane.last_error == "compaction failed: quota"


def test_killed_during_a_retry_delay_is_an_error(glasspane):
    _open(glasspane)
    _feed(glasspane, run_lines("error", error="529 overloaded"))
    _feed(
        glasspane,
        line(
            type="auto_retry_start",
            attempt=1,
            maxAttempts=3,
            delayMs=2000,
            errorMessage="529 overloaded",
        ),
    )
    glasspane.set_process_state("p", ProcessState.killed(15))
    pane = glasspane.pane("p")
    assert (pane.state, pane.reason) == (AgentState.ERROR, "killed by SIGTERM")


def test_a_successful_retry_ends_done(glasspane):
    _open(glasspane)
    _feed(glasspane, run_lines("error", error="503"))
    _feed(
        glasspane,
        line(type="auto_retry_start", attempt=1, maxAttempts=3, delayMs=1, errorMessage="503"),
    )
    _feed(glasspane, run_lines("stop", text="fine"))
    _feed(glasspane, line(type="auto_retry_end", success=True, attempt=1))
    pane = glasspane.pane("p")
    assert pane.state is AgentState.DONE
    assert pane.retries == 1
    assert pane.last_error == "provider error: 503"  # history is kept
    assert pane.text_tail == "fine"


@pytest.mark.parametrize(
    ("stop", "state", "flag", "reason"),
    [
        ("stop", AgentState.DONE, None, None),
        ("length", AgentState.DONE, Flag.TRUNCATED, None),
        ("aborted", AgentState.ERROR, Flag.ABORTED, "aborted: Request was aborted"),
        ("error", AgentState.ERROR, None, "provider error: Request was aborted"),
        ("toolUse", AgentState.ERROR, None, "run ended on a tool call without a final answer"),
        ("weird", AgentState.ERROR, None, "run ended with unknown stop reason 'weird'"),
    ],
)
def test_outcome_comes_from_the_last_assistant_message(glasspane, stop, state, flag, reason):
    _open(glasspane)
    _feed(glasspane, run_lines(stop, error="Request was aborted"))
    glasspane.set_process_state("p", ProcessState.exited(0))
    pane = glasspane.pane("p")
    assert pane.state is state
    assert pane.reason == reason
    assert pane.stop_reason == stop
    if flag is not None:
        assert flag in pane.flags


def test_agent_end_without_message_end_still_judges_and_counts_usage(glasspane):
    """An exception escaping Pi's loop emits only agent_end with the error."""
    _open(glasspane)
    message = assistant("error", error="boom", input=5, output=2, cost=0.25)
    _feed(glasspane, line(type="agent_start"), line(type="agent_end", messages=[message]))
    pane = glasspane.pane("p")
    assert pane.state is AgentState.ERROR
    assert pane.reason == "provider error: boom"
    assert (pane.usage.input, pane.usage.output, pane.usage.cost_nanousd) == (5, 2, 250_000_000)
    assert pane.usage.cost_usd == 0.25


def test_usage_is_summed_over_retries_without_double_counting(glasspane):
    _open(glasspane)
    failed = assistant(
        "error", error="500", input=10, output=1, cacheRead=3, cacheWrite=4, cost=0.001
    )
    ok = assistant("stop", text="hi", input=20, output=5, cacheRead=6, cacheWrite=8, cost=0.002)
    for message in (failed, ok):
        _feed(
            glasspane,
            line(type="agent_start"),
            line(type="message_end", message=message),
            line(type="turn_end", message=message, toolResults=[]),
            line(type="agent_end", messages=[message]),
        )
    usage = glasspane.pane("p").usage
    assert (usage.input, usage.output, usage.cache_read, usage.cache_write) == (30, 6, 9, 12)
    assert usage.cost_nanousd == 3_000_000


def test_agent_end_without_an_assistant_message_is_an_error(glasspane):
    _open(glasspane)
    _feed(glasspane, line(type="agent_start"), line(type="agent_end", messages=[]))
    assert glasspane.pane("p").reason == "run ended without an assistant message"


@pytest.mark.parametrize(
    ("process", "state", "reason"),
    [
        (ProcessState.exited(0), AgentState.DONE, None),
        (ProcessState.killed(15), AgentState.DONE, None),
        (ProcessState.exited(2), AgentState.ERROR, "exited 2"),
        (ProcessState.lost(), AgentState.DONE, None),
    ],
)
def test_process_end_after_a_successful_run(glasspane, process, state, reason):
    _open(glasspane)
    _feed(glasspane, run_lines("stop"))
    glasspane.set_process_state("p", process)
    pane = glasspane.pane("p")
    assert (pane.state, pane.reason) == (state, reason)


@pytest.mark.parametrize(
    ("process", "reason"),
    [
        (ProcessState.exited(0), "exited 0 without a final event"),
        (ProcessState.exited(1), "exited 1"),
        (ProcessState.exited(129), "killed by SIGHUP (exit 129)"),
        (ProcessState.exited(130), "killed by SIGINT (exit 130)"),
        (ProcessState.killed(9), "killed by SIGKILL"),
        (ProcessState.lost(), "process lost (exit status unknown)"),
    ],
)
def test_a_process_that_ends_mid_run_is_an_error_never_working(glasspane, process, reason):
    _open(glasspane)
    _feed(glasspane, line(type="agent_start"), line(type="turn_start"))
    _feed(glasspane, line(type="tool_execution_start", toolCallId="c", toolName="bash", args={}))
    glasspane.set_process_state("p", ProcessState.running())
    assert glasspane.pane("p").state is AgentState.WORKING
    glasspane.set_process_state("p", process)
    pane = glasspane.pane("p")
    assert (pane.state, pane.reason) == (AgentState.ERROR, reason)
    assert pane.current_tool is None
    assert pane.needs_attention


def test_blocked_pane_whose_process_dies_is_an_error(glasspane):
    _open(glasspane)
    _feed(glasspane, line(type="agent_start"))
    _feed(glasspane, line(type="queue_update", steering=["x"], followUp=["y"]))
    glasspane.set_process_state("p", ProcessState.killed(15))
    assert glasspane.pane("p").state is AgentState.ERROR


def test_rpc_error_then_a_new_prompt_works_again(glasspane):
    _open(glasspane, mode=StreamMode.RPC)
    _feed(glasspane, run_lines("error", error="500"))
    assert glasspane.pane("p").state is AgentState.ERROR
    _feed(
        glasspane,
        line(type="turn_start"),
        line(type="message_update", assistantMessageEvent={"type": "text_delta", "delta": "x"}),
    )
    assert glasspane.pane("p").state is AgentState.ERROR  # stray events do not revive it
    _feed(glasspane, run_lines("stop")[:2])
    assert glasspane.pane("p").state is AgentState.WORKING
    _feed(glasspane, run_lines("stop")[2:])
    assert glasspane.pane("p").state is AgentState.IDLE
    glasspane.set_process_state("p", ProcessState.exited(0))
    assert glasspane.pane("p").state is AgentState.DONE


def test_json_mode_with_two_prompts_works_through_both(glasspane):
    _open(glasspane, mode=StreamMode.JSON)
    _feed(glasspane, run_lines("stop", text="one"))
    assert glasspane.pane("p").state is AgentState.DONE
    _feed(glasspane, run_lines("stop", text="two")[:3])
    assert glasspane.pane("p").state is AgentState.WORKING
    _feed(glasspane, run_lines("stop", text="two")[3:])
    pane = glasspane.pane("p")
    assert (pane.state, pane.text_tail, pane.turns) == (AgentState.DONE, "two", 2)


def test_late_events_after_done_change_nothing(glasspane):
    _open(glasspane)
    _feed(glasspane, run_lines("stop"))
    before = glasspane.pane("p")
    _feed(
        glasspane,
        line(type="turn_start"),
        line(type="turn_end", message={"role": "assistant", "stopReason": "toolUse"}),
        line(type="queue_update", steering=["x"], followUp=[]),
        line(type="auto_retry_end", success=False, attempt=1, finalError="late"),
        line(type="agent_end", messages=[assistant("error", error="late")]),
    )
    after = glasspane.pane("p")
    assert after.state is AgentState.DONE
    assert (after.turns, after.stop_reason) == (before.turns, before.stop_reason)


def test_attached_mid_run_without_agent_start_shows_working(glasspane):
    updates = [
        raw
        for raw in capture_lines("tool_call")
        if raw.startswith(b'{"type":"tool_execution_update"')
    ]
    assert len(updates) == 2
    _open(glasspane)
    _feed(glasspane, updates)
    pane = glasspane.pane("p")
    assert pane.state is AgentState.WORKING
    assert pane.current_tool is not None and pane.current_tool.name == "bash"
    assert pane.current_tool.started_at is None


def test_failed_rpc_command_is_recorded(glasspane):
    _open(glasspane)
    _feed(
        glasspane,
        line(type="response", command="set_model", success=False, error="Model not found: x"),
    )
    pane = glasspane.pane("p")
    assert pane.last_error == "command set_model failed: Model not found: x"
    assert pane.state is AgentState.IDLE


def test_extension_error_is_recorded_without_changing_state(glasspane):
    _open(glasspane)
    _feed(glasspane, line(type="agent_start"))
    _feed(
        glasspane,
        line(type="extension_error", extensionPath="/x.ts", event="tool_call", error="bad"),
    )
    pane = glasspane.pane("p")
    assert pane.last_error == "extension error (/x.ts): bad"
    assert pane.state is AgentState.WORKING


def test_unknown_and_malformed_lines_are_counted_never_raised(glasspane):
    _open(glasspane)
    _feed(
        glasspane,
        line(type="brand_new_event", x=1),  # unknown (newer Pi)
        b"not json\n",
        b"\xff\xfe\n",  # invalid UTF-8
        b'{"type":"session","id":"\xff"}\n',  # invalid UTF-8 inside a string
        b"[1, 2]\n",  # not an object
        b'"agent_start"\n',
        b'{"no_type": 1}\n',
        b'{"type": 5}\n',
        b'{"type":"auto_retry_start","attempt":"one"}\n',  # known type, wrong field type
        b'{"type":"agent_start"}',  # unterminated at end of stream
    )
    pane = glasspane.pane("p")
    assert (pane.lines.unknown, pane.lines.malformed, pane.lines.events) == (1, 8, 0)
    glasspane.end_of_stream("p")
    pane = glasspane.pane("p")
    assert pane.lines.events == 1
    assert pane.state is AgentState.WORKING


def test_truncated_last_line_at_end_of_stream_is_malformed(glasspane):
    _open(glasspane)
    _feed(glasspane, b'{"type":"agent_start"}\n{"type":"message_upd')
    glasspane.end_of_stream("p")
    assert glasspane.pane("p").lines.malformed == 1


def test_zot_stream_is_normalised(glasspane):
    glasspane.open_pane("z", runtime=Runtime.ZOT)
    z = [
        line(type="response", id="1", success=True),
        line(type="turn_start"),
        line(type="user_message", text="working on it"),
        line(type="assistant_message", text="All done."),
        line(type="usage", input=10, output=3, cache_read=1, cache_write=2, cost_usd=0.5),
        line(type="turn_end"),
    ]
    _feed(glasspane, z[:2], pane="z")
    assert glasspane.pane("z").state is AgentState.WORKING
    _feed(glasspane, z[2:], pane="z")
    pane = glasspane.pane("z")
    assert pane.state is AgentState.WORKING  # assistant_message / turn_end do not end it
    assert pane.text_tail == "All done."
    _feed(glasspane, line(type="done"), pane="z")
    pane = glasspane.pane("z")
    assert pane.state is AgentState.IDLE  # zot is long-lived, like Pi rpc
    assert (pane.usage.input, pane.usage.output, pane.usage.cost_nanousd) == (10, 3, 500_000_000)
    glasspane.set_process_state("z", ProcessState.exited(0))
    assert glasspane.pane("z").state is AgentState.DONE


def test_zot_error_is_an_error(glasspane):
    glasspane.open_pane("z", runtime=Runtime.ZOT)
    _feed(
        glasspane,
        line(type="turn_start"),
        line(type="error", message="rate limited"),
        line(type="done"),
        pane="z",
    )
    pane = glasspane.pane("z")
    assert (pane.state, pane.reason) == (AgentState.ERROR, "agent error: rate limited")
    _feed(glasspane, line(type="turn_start"), pane="z")
    assert glasspane.pane("z").state is AgentState.WORKING


def test_pi_events_are_unknown_to_a_zot_pane(glasspane):
    glasspane.open_pane("z", runtime=Runtime.ZOT)
    _feed(glasspane, line(type="agent_start"), pane="z")
    assert glasspane.pane("z").lines.unknown == 1


def test_a_stray_compaction_end_that_will_retry_does_not_revive_a_failed_pane(glasspane):
    """Found by the stateful test: willRetry counts only after a compaction_start."""
    _open(glasspane)
    _feed(glasspane, run_lines("aborted", error="stop"))
    _feed(glasspane, line(type="compaction_end", reason="overflow", willRetry=True))
    assert glasspane.pane("p").state is AgentState.ERROR


def test_mode_is_not_redetected_after_a_run(glasspane):
    """Found by the stateful test: an rpc-looking line after a json run must not turn done idle."""
    _open(glasspane)
    _feed(glasspane, run_lines("stop"))
    _feed(glasspane, line(type="extension_ui_request", id="n", method="notify", message="m"))
    pane = glasspane.pane("p")
    assert (pane.state, pane.mode) == (AgentState.DONE, StreamMode.AUTO)


def test_every_kept_string_is_bounded(glasspane):
    _open(glasspane)
    huge = "x" * 100_000
    _feed(
        glasspane,
        line(type="session", version=3, id=huge, cwd=huge),
        line(type="agent_start"),
        line(type="tool_execution_start", toolCallId=huge, toolName=huge, args={"a": huge}),
        line(type="extension_error", extensionPath=huge, event="e", error=huge),
        line(type="extension_ui_request", id="u", method="input", title=huge),
    )
    pane = glasspane.pane("p")
    tool = pane.current_tool
    assert tool is not None
    sizes = [len(pane.session_id or ""), len(pane.cwd or ""), len(tool.name)]
    sizes += [len(tool.call_id or ""), len(tool.args), len(pane.last_error or "")]
    sizes += [len(pane.reason or "")]
    assert max(sizes) <= 1000
    assert len(pane.text_tail) <= glasspane.config.text_tail_chars


def test_absurd_usage_numbers_saturate_instead_of_raising(glasspane):
    _open(glasspane)
    message = assistant("stop", input=1e300, output=-5, cacheRead=2**70, cost=1e300)
    for _ in range(3):
        _feed(glasspane, line(type="message_end", message=message))
    glasspane.open_pane("z", runtime=Runtime.ZOT)
    _feed(glasspane, line(type="usage", input=1e300, cost_usd=1e300), pane="z")
    usage = glasspane.pane("p").usage
    assert (usage.input, usage.output, usage.cache_read) == (0, 0, 0)
    assert usage.cost_nanousd == 0
    assert glasspane.pane("z").usage.input == 0
    big = assistant("stop", input=2**62, cost=9e9)
    for _ in range(3):
        _feed(glasspane, line(type="message_end", message=big))
    usage = glasspane.pane("p").usage
    assert usage.input == 2**63 - 1
    assert usage.cost_nanousd == 2**63 - 1
    snapshot = glasspane.snapshot()
    assert Snapshot.from_json(snapshot.to_json()) == snapshot


@pytest.mark.parametrize("depth", [400, 5000, 100_000])
def test_deeply_nested_values_are_counted_never_raised(glasspane, depth):
    _open(glasspane)
    glasspane.register_secret("s3cret")
    deep = b"[" * depth + b"]" * depth
    lines = [
        b'{"type":"tool_execution_start","toolName":"x","args":%s}' % deep,
        b'{"type":"extension_error","error":%s}' % deep,
        b'{"type":"from_the_future","x":%s}' % deep,
        b'{"type":"message_update","assistantMessageEvent":{"type":"text_delta","delta":"a",'
        b'"partial":%s}}' % deep,
    ]
    _feed(glasspane, b"\n".join(lines) + b"\n")
    lines_seen = glasspane.pane("p").lines
    assert lines_seen.events + lines_seen.unknown + lines_seen.malformed == 4
    snapshot = glasspane.snapshot()
    assert Snapshot.from_json(snapshot.to_json()) == snapshot


def test_a_deeply_nested_snapshot_document_is_a_typed_error():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(SnapshotError):
        Snapshot.from_json('{"version": 1, "host": "", "generated_at": 0, "panes": ' + deep + "}")
    with pytest.raises(SnapshotError):
        Snapshot.from_json(deep)
