"""``python -m colibri_store demo``: a short tour of the board on a throwaway SQLite file."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from colibri_store import Store, TaskStatus


def demo(path: Path) -> None:
    with Store.open(f"sqlite:///{path}", actor="demo") as store:
        print(f"store: {store.url} (schema revision {store.schema_revision})")
        agent = store.register_agent(
            "demo-agent", ["freebsd", "zfs"], host="localhost", max_tasks=2
        )
        print(f"agent {agent.id}: {agent.name} capabilities={list(agent.capabilities)}")
        snap = store.create_task("snapshot the pool", required_capabilities=["zfs"], priority=5)
        store.create_task("write the report", depends_on=[snap.id])
        store.create_task("needs linux", required_capabilities=["linux"])
        ready = {t.id for t in store.list_tasks(ready=True)}
        for task in store.list_tasks():
            waits = f" waits for {list(task.depends_on)}" if task.depends_on else ""
            print(f"  task {task.id} [{task.status}] {task.title} ready={task.id in ready}{waits}")
        while (claimed := store.claim_next(agent.id, start=True)) is not None:
            print(f"claimed task {claimed.id} epoch {claimed.claim_epoch}: {claimed.title}")
            store.complete(
                claimed.id,
                claimed.claim_epoch,
                result={"ok": True},
                usage={"input_tokens": 1200, "output_tokens": 300, "cost_micros": 4200},
            )
        counts = store.counts()
        print("counts:", {status.value: counts[status] for status in TaskStatus})
        parked = store.list_tasks(status="queued")
        print("parked (no agent covers them):", [t.title for t in parked])
        chain = store.verify_chain()
        print(f"audit chain: {chain.events} events, ok={chain.ok}, head {chain.head_hash[:16]}...")


def main(argv: list[str]) -> int:
    if argv[:1] != ["demo"]:
        print("usage: python -m colibri_store demo", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="colibri-demo-") as tmp:
        demo(Path(tmp) / "colibri.sqlite")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
