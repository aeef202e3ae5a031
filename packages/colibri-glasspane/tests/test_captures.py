"""The real Pi 0.73.1 captures: end states and the states along the way."""

from __future__ import annotations

import pytest
from conftest import CAPTURES, FakeClock, capture, capture_lines

from colibri_glasspane import (
    AgentState,
    Flag,
    Glasspane,
    ProcessKind,
    ProcessState,
    StreamMode,
)

IDLE, WORKING, BLOCKED, DONE, ERROR = (
    AgentState.IDLE,
    AgentState.WORKING,
    AgentState.BLOCKED,
    AgentState.DONE,
    AgentState.ERROR,
)

# name -> (exit code, state sequence while streaming (repeats collapsed), end state)
EXPECTED = {
    "text_reply": (0, [IDLE, WORKING, DONE], DONE),
    "tool_call": (0, [IDLE, WORKING, DONE], DONE),
    "provider_error": (
        0,
        [IDLE, WORKING, ERROR, WORKING, ERROR, WORKING, ERROR, WORKING, ERROR],
        ERROR,
    ),
    "provider_error_noretry": (0, [IDLE, WORKING, ERROR], ERROR),
    "no_api_key": (1, [IDLE], ERROR),
    "sigterm_streaming": (143, [IDLE, WORKING], ERROR),
    "rpc_tool_call": (0, [IDLE, WORKING, IDLE], DONE),
    "long_reply": (0, [IDLE, WORKING, DONE], DONE),
}


def _states_along(name: str) -> tuple[Glasspane, list[AgentState]]:
    glasspane = Glasspane(host="h", clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.set_process_state("p", ProcessState.running())
    states = [glasspane.pane("p").state]
    for raw in capture_lines(name):
        glasspane.feed("p", raw)
        state = glasspane.pane("p").state
        if state is not states[-1]:
            states.append(state)
    return glasspane, states


def test_every_capture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(CAPTURES)


@pytest.mark.parametrize("name", CAPTURES)
def test_states_along_the_stream_and_at_exit(name: str) -> None:
    code, along, end = EXPECTED[name]
    glasspane, states = _states_along(name)
    assert states == along
    glasspane.end_of_stream("p")
    glasspane.set_process_state("p", ProcessState.exited(code))
    pane = glasspane.pane("p")
    assert pane.state is end
    assert pane.lines.malformed == 0
    assert pane.lines.unknown == 0
    assert pane.lines.oversize == 0
    assert pane.lines.bytes == len(capture(name))
    assert pane.current_tool is None


def test_text_reply_is_done_with_its_text_and_usage() -> None:
    glasspane, _ = _states_along("text_reply")
    glasspane.set_process_state("p", ProcessState.exited(0))
    pane = glasspane.pane("p")
    assert pane.state is DONE
    assert pane.stop_reason == "stop"
    assert pane.text_tail == "Hello from the fake server."
    assert (pane.usage.input, pane.usage.output) == (42, 7)
    assert pane.session_id == "01a20829-ff69-7317-b443-a5369694d55a"
    assert pane.cwd == "/home/agent/work"
    assert pane.mode is StreamMode.JSON
    assert pane.turns == 1
    assert pane.flags == ()
    assert pane.reason is None


def test_tool_call_works_through_the_tool_and_two_turns() -> None:
    glasspane = Glasspane(clock=FakeClock(50.0))
    glasspane.open_pane("p")
    seen_tool = None
    after_tool_turn_end = None
    for raw in capture_lines("tool_call"):
        glasspane.feed("p", raw)
        pane = glasspane.pane("p")
        if raw.startswith(b'{"type":"tool_execution_start"'):
            seen_tool = pane.current_tool
        if raw.startswith(b'{"type":"turn_end"') and b'"toolUse"' in raw:
            after_tool_turn_end = pane
    assert seen_tool is not None
    assert seen_tool.name == "bash"
    assert seen_tool.call_id == "call_fake_1"
    assert seen_tool.started_at == 50.0
    assert seen_tool.args == '{"command":"echo hi"}'
    # A turn that ends in a tool call is not done.
    assert after_tool_turn_end is not None
    assert after_tool_turn_end.state is WORKING
    assert after_tool_turn_end.current_tool is None
    pane = glasspane.pane("p")
    assert pane.state is DONE
    assert pane.turns == 2
    assert pane.tool_calls == 1
    assert pane.last_tool is not None and pane.last_tool.name == "bash"
    assert pane.text_tail == "The command printed: hi"
    assert (pane.usage.input, pane.usage.output) == (84, 14)


def test_provider_error_counts_retries_and_keeps_the_provider_message() -> None:
    glasspane, _ = _states_along("provider_error")
    glasspane.set_process_state("p", ProcessState.exited(0))  # Pi exits 0 all the same
    pane = glasspane.pane("p")
    assert pane.state is ERROR
    assert pane.retries == 3
    assert pane.turns == 4
    assert pane.reason == "provider error: 500 fake internal server error"
    assert pane.last_error == "provider error: 500 fake internal server error (after 3 retries)"
    assert pane.stop_reason == "error"
    assert pane.needs_attention
    assert Flag.RETRYING not in pane.flags


def test_provider_error_shows_working_and_retrying_during_a_retry() -> None:
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    for raw in capture_lines("provider_error"):
        glasspane.feed("p", raw)
        if raw.startswith(b'{"type":"auto_retry_start"'):
            break
    pane = glasspane.pane("p")
    assert pane.state is WORKING
    assert Flag.RETRYING in pane.flags
    assert pane.retries == 1
    assert pane.last_error == "provider error: 500 fake internal server error"


def test_provider_error_noretry_is_an_error_although_pi_exits_0() -> None:
    glasspane, _ = _states_along("provider_error_noretry")
    glasspane.set_process_state("p", ProcessState.exited(0))
    pane = glasspane.pane("p")
    assert pane.state is ERROR
    assert pane.reason == "provider error: 500 fake internal server error"
    assert pane.retries == 0


def test_no_api_key_header_only_then_exit_1_is_an_error() -> None:
    glasspane, _ = _states_along("no_api_key")
    assert glasspane.pane("p").session_id == "01a2082c-4d3d-76c3-9ce5-8be2233186f7"
    glasspane.set_process_state("p", ProcessState.exited(1))
    pane = glasspane.pane("p")
    assert pane.state is ERROR
    assert pane.reason == "exited 1"


def test_sigterm_while_streaming_is_an_error_killed_never_working() -> None:
    glasspane, _ = _states_along("sigterm_streaming")
    assert glasspane.pane("p").text_tail == " tok0 tok1 tok2 tok3"
    glasspane.set_process_state("p", ProcessState.exited(143))
    pane = glasspane.pane("p")
    assert pane.state is ERROR
    assert pane.reason == "killed by SIGTERM (exit 143)"
    assert Flag.KILLED in pane.flags
    assert pane.process.kind is ProcessKind.EXITED


def test_sigterm_reported_as_a_signal_reads_the_same() -> None:
    glasspane, _ = _states_along("sigterm_streaming")
    glasspane.set_process_state("p", ProcessState.killed(15))
    pane = glasspane.pane("p")
    assert (pane.state, pane.reason) == (ERROR, "killed by SIGTERM")
    assert Flag.KILLED in pane.flags


def test_rpc_tool_call_is_idle_after_the_prompt_with_the_tool_seen() -> None:
    glasspane, _ = _states_along("rpc_tool_call")
    pane = glasspane.pane("p")
    assert pane.mode is StreamMode.RPC
    assert pane.state is IDLE
    assert pane.last_tool is not None and pane.last_tool.name == "bash"
    assert pane.tool_calls == 1
    assert pane.turns == 2
    assert pane.session_id == "01a2082c-bf98-7649-8082-949690be74ec"  # from get_state
    assert pane.text_tail == "The command printed: hi"
    assert not pane.needs_attention


def test_long_reply_is_done_with_the_end_of_the_text() -> None:
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.feed("p", capture("long_reply"))
    pane = glasspane.pane("p")
    assert pane.state is DONE
    assert pane.text_tail.endswith("word00498 word00499 ")
    assert len(pane.text_tail) == glasspane.config.text_tail_chars
    assert pane.lines.events == 511


def test_stream_before_a_process_report_is_still_judged() -> None:
    """Without any process report the stream alone decides (process: starting)."""
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.feed("p", capture("provider_error_noretry"))
    pane = glasspane.pane("p")
    assert pane.process.kind is ProcessKind.STARTING
    assert pane.state is ERROR
