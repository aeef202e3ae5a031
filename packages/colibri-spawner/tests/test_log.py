"""Reading a growing log from an offset: every complete line exactly once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from colibri_spawner import read_lines

_line = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"x"))


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(_line, max_size=12), cuts=st.lists(st.integers(0, 400), max_size=12),
       small=st.integers(1, 64))  # fmt: skip
def test_any_chunking_of_writes_yields_each_complete_line_once(tmp_path_factory, lines, cuts,
                                                               small):  # fmt: skip
    path = tmp_path_factory.mktemp("log") / "out.jsonl"
    data = b"".join(line + b"\n" for line in lines) + b"partial-without-newline"
    points = sorted({min(c, len(data)) for c in cuts} | {len(data)})
    got: list[bytes] = []
    offset = 0
    written = 0
    with open(path, "wb", buffering=0) as fh:
        for point in points:
            fh.write(data[written:point])
            written = point
            chunk = read_lines(path, offset, max_bytes=small)
            got += chunk.lines
            assert chunk.offset >= offset
            offset = chunk.offset
    while True:
        chunk = read_lines(path, offset, max_bytes=small)
        if not chunk.lines:
            break
        got += chunk.lines
        offset = chunk.offset
    assert got == lines
    assert offset == len(data) - len(b"partial-without-newline")


def test_missing_file_reads_empty(tmp_path):
    chunk = read_lines(tmp_path / "none", 5)
    assert chunk.lines == () and chunk.offset == 5
