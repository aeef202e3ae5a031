"""Reading a session log line by line from a byte offset."""

from __future__ import annotations

import os
import stat

from colibri_spawner._spec import LogChunk
from colibri_spawner.errors import BadLog, InvalidSpec

_CHUNK = 1 << 20


def _check_count(name: str, value: object, minimum: int) -> int:
    # bool is an int, but True as an offset is a mistake, not byte 1.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidSpec(f"{name} must be an integer >= {minimum}, not {value!r}", field=name)
    return value


def read_lines(path: str | os.PathLike[str], offset: int, max_bytes: int = 8 << 20) -> LogChunk:
    """Complete ``\\n``-terminated lines of ``path`` from ``offset`` on.

    Returns at most about ``max_bytes`` of lines (always at least one complete line
    if there is one, however long), and the offset just past the last line returned.
    A missing file reads as empty. Lines are returned without their ``\\n``.

    ``offset`` must be 0 or just past a line of the file (as a ``LogChunk`` gives
    it): an offset mid-line or beyond the end (the log was truncated or replaced)
    raises BadLog rather than returning a piece of a line or waiting for ever. So
    does a path that is no regular file (a FIFO, a device, a directory).
    """
    _check_count("offset", offset, 0)
    _check_count("max_bytes", max_bytes, 1)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return LogChunk(lines=(), offset=offset)
    except (TypeError, ValueError) as exc:  # not a path, or a NUL in it
        raise InvalidSpec(f"log path {path!r} is not a usable path: {exc}", field="path") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadLog(os.fsdecode(path), offset, "it is not a regular file")
        if offset > info.st_size:
            raise BadLog(
                os.fsdecode(path),
                offset,
                f"the log holds only {info.st_size} bytes (truncated or replaced?)",
            )
        if offset and os.pread(fd, 1, offset - 1) != b"\n":
            raise BadLog(os.fsdecode(path), offset, "the offset is not just past a line end")
        buf = bytearray()
        pos = offset
        complete = False
        while True:
            chunk = os.pread(fd, _CHUNK, pos)
            if not chunk:
                break
            buf += chunk
            pos += len(chunk)
            # Only the new chunk is searched: searching all of buf each time made a
            # line of many megabytes cost quadratic time.
            complete = complete or b"\n" in chunk
            if complete and len(buf) >= max_bytes:
                break
    finally:
        os.close(fd)
    end = buf.rfind(b"\n")
    if end < 0:
        return LogChunk(lines=(), offset=offset)
    lines = bytes(buf[:end]).split(b"\n")
    return LogChunk(lines=tuple(lines), offset=offset + end + 1)
