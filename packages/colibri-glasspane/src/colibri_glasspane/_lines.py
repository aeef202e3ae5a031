"""Split a byte stream fed in arbitrary chunks into lines, with a bound on line length.

``\\n`` is the only separator. A line longer than the bound is counted once and
skipped: its bytes are dropped as they arrive, so memory per reader stays at
most the bound whatever the stream holds. A long line that lies wholly inside
one chunk is handed on as a memoryview of that chunk, without copying it.
"""

from __future__ import annotations

from collections.abc import Callable

LineSink = Callable[[memoryview | bytes], None]

# Short lines are handed on as bytes (a copy costs less than a view's overhead);
# long ones as a memoryview of the chunk, so a megabyte line is never copied.
_COPY_BELOW = 2048


class LineReader:
    """Incremental ``\\n`` splitter; oversize lines are skipped, never buffered whole."""

    __slots__ = ("_buffer", "_discarding", "_fed", "consumed", "max_line_bytes", "oversize")

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self._discarding = False
        self._fed = 0
        self.oversize = 0
        self.consumed = 0
        """Bytes up to and including the last newline seen (a resumable offset)."""

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held in memory."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview, sink: LineSink) -> None:
        """Call ``sink`` with every line that ``data`` completes, in order.

        ``sink`` gets bytes or a memoryview; it must not keep a memoryview past the call.
        """
        if not isinstance(data, bytes):
            data = bytes(data)  # one copy of the chunk; lines are then cut from bytes
        limit = self.max_line_bytes
        buffer = self._buffer
        view = memoryview(data)
        find = data.find
        base = self._fed
        size = len(data)
        self._fed = base + size
        start = 0
        while True:
            end = find(b"\n", start)
            if end < 0:
                break
            self.consumed = base + end + 1
            if self._discarding:
                self._discarding = False
            elif buffer:
                if len(buffer) + (end - start) > limit:
                    self.oversize += 1
                    buffer.clear()
                else:
                    buffer += view[start:end]
                    line = bytes(buffer)
                    buffer.clear()
                    sink(line)
            elif end - start > limit:
                self.oversize += 1
            elif end - start < _COPY_BELOW:
                sink(data[start:end])
            else:
                sink(view[start:end])
            start = end + 1
        rest = size - start
        if rest and not self._discarding:
            if len(buffer) + rest > limit:
                # Too long already: count it now and drop the rest as it comes.
                self.oversize += 1
                buffer.clear()
                self._discarding = True
            else:
                buffer += view[start:]

    def finish(self) -> bytes | None:
        """End of stream: return an unterminated last line, if any, and reset."""
        self._discarding = False
        if not self._buffer:
            return None
        line = bytes(self._buffer)
        self._buffer.clear()
        return line
