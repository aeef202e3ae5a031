"""Worker processes for the multi-process tests (run as scripts, not imported by pytest).

python workers.py drain URL AGENT_NAME BATCH   -> JSON {"claimed": [...], "errors": [...]}
python workers.py writer URL                   -> prints each committed task id, forever
"""

from __future__ import annotations

import json
import sys

from colibri_store import Store


def drain(url: str, agent_name: str, batch: int) -> None:
    claimed: list[int] = []
    errors: list[str] = []
    with Store.open(url, actor=agent_name) as store:
        agent = store.register_agent(agent_name)
        while True:
            try:
                tasks = store.claim_batch(agent.id, batch, start=True)
            except Exception as exc:  # any error, "database is locked" included, is a failure
                errors.append(repr(exc))
                break
            if not tasks:
                break
            for task in tasks:
                claimed.append(task.id)
                try:
                    store.complete(task.id, task.claim_epoch, usage={"cost_micros": 1})
                except Exception as exc:
                    errors.append(repr(exc))
    print(json.dumps({"claimed": claimed, "errors": errors}))


def writer(url: str) -> None:
    with Store.open(url, actor="writer") as store:
        agent = store.register_agent("writer-agent")
        i = 0
        while True:
            task = store.create_task(f"task {i}")
            if i % 3 == 0:
                claimed = store.claim(task.id, agent.id, start=True)
                store.complete(claimed.id, claimed.claim_epoch)
            print(task.id, flush=True)  # only after the commit returned
            i += 1


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "drain":
        drain(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif command == "writer":
        writer(sys.argv[2])
    else:
        sys.exit(f"unknown command {command}")
