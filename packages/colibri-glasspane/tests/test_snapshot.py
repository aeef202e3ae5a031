"""Snapshot documents: versioned, stable order, round trip, filters, bad input refused."""

from __future__ import annotations

import json

import pytest
from conftest import CAPTURES, FakeClock, capture, line

from colibri_glasspane import (
    SNAPSHOT_VERSION,
    AgentState,
    DuplicatePane,
    Glasspane,
    GlasspaneConfig,
    InvalidArgument,
    ProcessState,
    Snapshot,
    SnapshotError,
    UnknownPane,
)


def _busy_glasspane() -> Glasspane:
    glasspane = Glasspane(host="host-1", clock=FakeClock(1234.5))
    exits = {"no_api_key": 1, "sigterm_streaming": 143}
    for name in reversed(CAPTURES):  # opened out of order on purpose
        glasspane.open_pane(name, agent=f"agent-{name}", tenant="t")
        glasspane.feed(name, capture(name))
        if name in exits:
            glasspane.set_process_state(name, ProcessState.exited(exits[name]))
    glasspane.open_pane("blocked", agent="b")
    glasspane.feed("blocked", line(type="agent_start"))
    glasspane.feed("blocked", line(type="queue_update", steering=["s"], followUp=[]))
    glasspane.open_pane("zz-tool", agent="t")
    glasspane.feed(
        "zz-tool",
        line(type="agent_start")
        + line(type="tool_execution_start", toolCallId="c", toolName="read", args={"path": "é"}),
    )
    return glasspane


def test_snapshot_document_shape_and_order():
    snapshot = _busy_glasspane().snapshot()
    document = json.loads(snapshot.to_json())
    assert list(document) == ["version", "host", "generated_at", "panes"]
    assert document["version"] == SNAPSHOT_VERSION == 1
    assert document["host"] == "host-1"
    assert document["generated_at"] == 1234.5
    ids = [p["id"] for p in document["panes"]]
    assert ids == sorted(ids)
    text_reply = next(p for p in document["panes"] if p["id"] == "text_reply")
    assert text_reply["state"] == "done"
    assert text_reply["process"] == {"kind": "starting", "code": None, "signal": None}
    assert text_reply["usage"]["input"] == 42
    sigterm = next(p for p in document["panes"] if p["id"] == "sigterm_streaming")
    assert sigterm["state"] == "error"
    assert sigterm["flags"] == ["killed", "needs_attention"]


def test_snapshot_round_trips_to_an_equal_snapshot():
    snapshot = _busy_glasspane().snapshot()
    text = snapshot.to_json()
    again = Snapshot.from_json(text)
    assert again == snapshot
    assert again.to_json() == text
    assert Snapshot.from_json(text.encode()) == snapshot


def test_snapshot_is_stable_for_the_same_state():
    glasspane = _busy_glasspane()
    assert glasspane.snapshot().to_json() == glasspane.snapshot().to_json()


def test_filters_attention_only_and_by_session():
    glasspane = _busy_glasspane()
    attention = glasspane.snapshot(attention_only=True)
    assert {p.id for p in attention.panes} == {
        "blocked",
        "no_api_key",
        "provider_error",
        "provider_error_noretry",
        "sigterm_streaming",
    }
    assert all(p.needs_attention for p in attention.panes)
    by_session = glasspane.snapshot(session_id="01a20829-ff69-7317-b443-a5369694d55a")
    assert [p.id for p in by_session.panes] == ["text_reply"]
    assert glasspane.snapshot(session_id="nope").panes == ()
    whole = glasspane.snapshot()
    assert whole.filtered(attention_only=True) == attention


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not a JSON object"),
        ("[1]", "not a JSON object"),
        (
            '{"version": 2, "host": "", "generated_at": 0, "panes": []}',
            "version 2 is not supported",
        ),
        ('{"host": "", "generated_at": 0, "panes": []}', "version None is not supported"),
        ('{"version": true, "host": "", "generated_at": 0, "panes": []}', "not supported"),
        ('{"version": 1, "host": 3, "generated_at": 0, "panes": []}', "host"),
        ('{"version": 1, "host": "", "generated_at": 0, "panes": [{"id": "x"}]}', "panes"),
    ],
)
def test_bad_documents_are_refused_with_a_typed_error(document, message):
    with pytest.raises(SnapshotError, match=message):
        Snapshot.from_json(document)


def test_a_pane_with_a_bad_field_is_refused_naming_the_field():
    document = json.loads(_busy_glasspane().snapshot().to_json())
    document["panes"][0]["state"] = "sleeping"
    with pytest.raises(SnapshotError, match=r"panes\[0\]\.state"):
        Snapshot.from_json(json.dumps(document))
    document = json.loads(_busy_glasspane().snapshot().to_json())
    document["panes"][0]["process"] = {"kind": "exited", "code": None, "signal": None}
    with pytest.raises(SnapshotError):
        Snapshot.from_json(json.dumps(document))


def test_panes_out_of_order_are_refused():
    document = json.loads(_busy_glasspane().snapshot().to_json())
    document["panes"].reverse()
    with pytest.raises(SnapshotError, match="sorted"):
        Snapshot.from_json(json.dumps(document))


def test_api_errors_are_typed_and_change_nothing():
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    with pytest.raises(DuplicatePane, match="already open"):
        glasspane.open_pane("p")
    with pytest.raises(UnknownPane, match="no pane 'q'"):
        glasspane.feed("q", b"{}\n")
    with pytest.raises(UnknownPane):
        glasspane.pane("q")
    with pytest.raises(InvalidArgument, match="data"):
        glasspane.feed("p", "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="process"):
        glasspane.set_process_state("p", "exited")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="pane_id"):
        glasspane.open_pane("")
    with pytest.raises(InvalidArgument, match="process"):
        ProcessState.killed(0)
    with pytest.raises(InvalidArgument, match="max_line_bytes"):
        GlasspaneConfig(max_line_bytes=0)
    with pytest.raises(InvalidArgument, match="stall_after"):
        GlasspaneConfig(stall_after=-1)
    assert glasspane.pane_ids() == ("p",)
    assert glasspane.pane("p").lines.events == 0


def test_close_pane_returns_its_last_view_and_forgets_it():
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.feed("p", capture("text_reply"))
    last = glasspane.close_pane("p")
    assert last.state is AgentState.DONE
    assert glasspane.pane_ids() == ()
    with pytest.raises(UnknownPane):
        glasspane.pane("p")
