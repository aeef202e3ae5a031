"""Reading a session log line by line from a byte offset."""

from __future__ import annotations

import os

from colibri_spawner._spec import LogChunk

_CHUNK = 1 << 20


def read_lines(path: str | os.PathLike[str], offset: int, max_bytes: int = 8 << 20) -> LogChunk:
    """Complete ``\\n``-terminated lines of ``path`` from ``offset`` on.

    Returns at most about ``max_bytes`` of lines (always at least one complete line
    if there is one, however long), and the offset just past the last line returned.
    A missing file reads as empty. Lines are returned without their ``\\n``.
    """
    if offset < 0:
        raise ValueError("offset must be >= 0")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return LogChunk(lines=(), offset=offset)
    try:
        buf = bytearray()
        pos = offset
        while True:
            chunk = os.pread(fd, _CHUNK, pos)
            if not chunk:
                break
            buf += chunk
            pos += len(chunk)
            if len(buf) >= max_bytes and b"\n" in buf:
                break
    finally:
        os.close(fd)
    end = buf.rfind(b"\n")
    if end < 0:
        return LogChunk(lines=(), offset=offset)
    lines = bytes(buf[:end]).split(b"\n")
    return LogChunk(lines=tuple(lines), offset=offset + end + 1)
