"""The bounded line reader: any chunking, oversize lines skipped without buffering."""

from __future__ import annotations

from conftest import FakeClock, capture, line

from colibri_glasspane import AgentState, Glasspane, GlasspaneConfig
from colibri_glasspane._lines import LineReader


def _collect(reader: LineReader, *chunks: bytes) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        reader.feed(chunk, lambda raw: out.append(bytes(raw)))
    return out


def test_lines_split_on_newline_only():
    reader = LineReader(100)
    assert _collect(reader, b"a\r\nb\x0bc\x1cd\n\ne\n") == [b"a\r", b"b\x0bc\x1cd", b"", b"e"]
    assert reader.consumed == 12


def test_partial_lines_are_joined_across_chunks():
    reader = LineReader(100)
    assert _collect(reader, b"ab", b"c", b"d\nef", b"", b"g\nh") == [b"abcd", b"efg"]
    assert reader.pending == 1
    assert reader.finish() == b"h"
    assert reader.pending == 0


def test_a_line_exactly_at_the_bound_passes_one_byte_more_is_skipped():
    reader = LineReader(4)
    assert _collect(reader, b"1234\n12345\nok\n") == [b"1234", b"ok"]
    assert reader.oversize == 1


def test_an_oversize_line_is_dropped_as_it_arrives_never_buffered():
    reader = LineReader(10)
    out: list[bytes] = []
    reader.feed(b"start", out.append)
    for _ in range(1000):
        reader.feed(b"x" * 1000, out.append)
        assert reader.pending <= 10
    reader.feed(b"tail\nnext\n", lambda raw: out.append(bytes(raw)))
    assert out == [b"next"]
    assert reader.oversize == 1
    assert reader.consumed == 5 + 1000 * 1000 + 5 + 5


def test_oversize_counts_once_per_line_whatever_the_chunking():
    data = b"short\n" + b"y" * 50 + b"\n" + b"z" * 50 + b"\nshort\n"
    for size in (1, 3, 7, 50, 51, len(data)):
        reader = LineReader(20)
        lines = _collect(reader, *(data[i : i + size] for i in range(0, len(data), size)))
        assert lines == [b"short", b"short"]
        assert reader.oversize == 2


def test_pane_skips_oversize_message_update_and_still_finishes():
    """A small bound: Pi's multi-kilobyte message_update lines are skipped, not fatal."""
    glasspane = Glasspane(clock=FakeClock(), config=GlasspaneConfig(max_line_bytes=6000))
    glasspane.open_pane("p")
    data = capture("long_reply")
    for i in range(0, len(data), 1000):
        glasspane.feed("p", data[i : i + 1000])
    pane = glasspane.pane("p")
    assert pane.state is AgentState.DONE
    longer = sum(1 for raw in data.split(b"\n") if len(raw) > 6000)
    assert longer > 200
    assert pane.lines.oversize == longer
    assert pane.lines.events + pane.lines.oversize == 511
    assert pane.lines.bytes == len(data)
    assert pane.text_tail.endswith("word00499 ")  # from message_end, which is small enough


def test_memoryview_and_bytearray_input_are_accepted():
    glasspane = Glasspane(clock=FakeClock())
    glasspane.open_pane("p")
    glasspane.feed("p", bytearray(line(type="agent_start")))
    glasspane.feed("p", memoryview(line(type="turn_start")))
    assert glasspane.pane("p").lines.events == 2


def test_a_line_exactly_at_the_bound_passes_however_it_is_chunked():
    data = b"a" * 20 + b"\n" + b"b" * 21 + b"\n"
    for size in range(1, len(data) + 1):
        reader = LineReader(20)
        lines = _collect(reader, *(data[i : i + size] for i in range(0, len(data), size)))
        assert lines == [b"a" * 20], size
        assert reader.oversize == 1
