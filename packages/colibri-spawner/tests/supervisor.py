"""A minimal supervisor for the re-attach tests, run as its own process.

``supervisor.py DATA_DIR SESSION_ID spawn|resume CONSUMED [agent args...]``

It reads the agent's session log and, for every line, appends ONE record
``{"o": offset_after_line, "line": ...}`` to CONSUMED in a single write: what was
derived from a line and the offset after it are made durable together, as the
daemon will do in one transaction. On start it continues from the last complete
record (a torn last record is cut off). When the agent has ended it appends
``{"exit": returncode}``.
"""

from __future__ import annotations

import json
import os
import sys

from colibri_spawner import AgentSpec, Spawner


def last_offset(path: str) -> int:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return 0
    end = data.rfind(b"\n")
    with open(path, "r+b") as fh:
        fh.truncate(end + 1)  # a record torn by the kill is dropped, then redone
    offset = 0
    for raw in data[: end + 1].splitlines():
        record = json.loads(raw)
        offset = record.get("o", offset)
    return offset


def main() -> int:
    data_dir, session_id, mode, consumed = sys.argv[1:5]
    spawner = Spawner(data_dir)
    if mode == "spawn":
        spec = AgentSpec(
            argv=(sys.argv[5], "--session-id", session_id, *sys.argv[6:]),
            session_id=session_id,
            cwd=os.path.dirname(consumed),
        )
        handle = spawner.spawn(spec)
    else:
        handle = spawner.agent(session_id)
    offset = last_offset(consumed)
    fd = os.open(consumed, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    while True:
        chunk = handle.wait_lines(offset, timeout=60)
        if not chunk.lines:
            record = handle.wait(30)
            os.write(fd, json.dumps({"exit": record.returncode}).encode() + b"\n")
            return 0
        for line in chunk.lines:
            offset += len(line) + 1
            os.write(fd, json.dumps({"o": offset, "line": line.decode()}).encode() + b"\n")
        assert offset == chunk.offset


if __name__ == "__main__":
    sys.exit(main())
