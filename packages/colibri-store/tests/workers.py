"""Worker processes for the multi-process tests (run as scripts, not imported by pytest).

python workers.py drain URL AGENT_NAME BATCH [GO_FILE] -> JSON {"claimed": [...], "errors": [...]}
python workers.py writer URL                   -> prints each committed task id, forever
python workers.py forked URL N                 -> a Store used across fork(): JSON report
"""

from __future__ import annotations

import json
import os
import sys
import time

from colibri_store import Store


def drain(url: str, agent_name: str, batch: int, go_file: str | None = None) -> None:
    """claim_batch + complete one by one until the board is empty.

    With ``go_file``: print "ready" and start only once that file exists, so that the
    processes drain together (a fast first process could otherwise drain it alone).
    The wall-clock start and end of the drain itself are reported too.
    """
    claimed: list[int] = []
    errors: list[str] = []
    with Store.open(url, actor=agent_name) as store:
        agent = store.register_agent(agent_name)
        if go_file:
            print("ready", flush=True)
            deadline = time.monotonic() + 120
            while not os.path.exists(go_file) and time.monotonic() < deadline:
                time.sleep(0.001)
        started = time.time()
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
        ended = time.time()
    print(json.dumps({"claimed": claimed, "errors": errors, "started": started, "ended": ended}))


def drain_batches(url: str, agent_name: str, batch: int, go_file: str | None = None) -> None:
    """claim_batch + complete_many until the board is empty.

    With ``go_file``: print "ready", wait for that file, and report the wall-clock
    start and end of the drain itself (benchmarks exclude interpreter start-up).
    """
    claimed: list[int] = []
    errors: list[str] = []
    with Store.open(url, actor=agent_name) as store:
        agent = store.register_agent(agent_name)
        if go_file:
            print("ready", flush=True)
            deadline = time.monotonic() + 120
            while not os.path.exists(go_file) and time.monotonic() < deadline:
                time.sleep(0.001)
        started = time.time()
        while True:
            try:
                tasks = store.claim_batch(agent.id, batch, start=True)
                if not tasks:
                    break
                claimed += [t.id for t in tasks]
                outcome = store.complete_many([(t.id, t.claim_epoch) for t in tasks])
                errors += [f"refused {r}" for r in outcome.refused]
            except Exception as exc:
                errors.append(repr(exc))
                break
        ended = time.time()
    print(json.dumps({"claimed": claimed, "errors": errors, "started": started, "ended": ended}))


def dedupe(url: str, key: str, go_file: str | None = None) -> None:
    """Create the same deduplicated task; print the id we got.

    With ``go_file``: open the store, print "ready", and create only once the file
    exists, so that every process's create overlaps the others'.
    """
    with Store.open(url, actor="dedupe") as store:
        if go_file:
            print("ready", flush=True)
            deadline = time.monotonic() + 120
            while not os.path.exists(go_file) and time.monotonic() < deadline:
                time.sleep(0.0005)
        print(store.create_task("same intake", dedupe_key=key).id, flush=True)


def keyed(url: str, agent_name: str, probe_every: int) -> None:
    """Claim tasks that share a concurrency key; report the most ever running at once."""
    most = 0
    done = 0
    with Store.open(url, actor=agent_name) as store:
        agent = store.register_agent(agent_name)
        idle = 0
        while idle < 50:
            task = store.claim_next(agent.id, start=True)
            if task is None:
                idle += 1
                time.sleep(0.005)
                if not store.list_tasks(status="queued", limit=1):
                    break
                continue
            idle = 0
            running = len(store.list_tasks(status="started"))
            most = max(most, running)
            time.sleep(0.001 * probe_every)
            store.complete(task.id, task.claim_epoch)
            done += 1
    print(json.dumps({"most": most, "done": done}))


def batch_writer(url: str, size: int) -> None:
    """create_tasks in batches forever, printing each committed batch's first id."""
    with Store.open(url, actor="batch-writer") as store:
        i = 0
        while True:
            ids = store.create_tasks([{"title": f"b{i} t{j}"} for j in range(size)])
            print(ids[0], flush=True)
            i += 1


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


def forked(url: str, per_process: int) -> None:
    """Open a store, use it, fork two children that write with it while this parent
    does too; one child runs the exit handlers (finalizers included) before it ends.
    Then the parent writes again. Prints a JSON report; any error is in it."""
    import atexit

    report: dict[str, object] = {"errors": []}
    errors: list[str] = report["errors"]  # type: ignore[assignment]
    with Store.open(url) as store:
        store.create_task("before the fork")  # the parent's connection is open
        parents = store._conn()
        pids = []
        for n in range(2):
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    if store._conn() is parents:  # SQLite would mostly get by; still wrong
                        raise AssertionError("the child uses its parent's connection")
                    for i in range(per_process):
                        store.create_task(f"child{n} {i}")
                    agent = store.register_agent(f"child{n}")
                    task = store.claim_next(agent.id, start=True)
                    if task is not None:
                        store.complete(task.id, task.claim_epoch)
                except BaseException as exc:
                    os.write(2, f"child{n}: {type(exc).__name__}: {exc}\n".encode())
                    code = 1
                if n == 1:
                    atexit._run_exitfuncs()  # what a normal exit runs
                os._exit(code)
            pids.append(pid)
        try:
            for i in range(per_process):
                store.create_task(f"parent {i}")
        except BaseException as exc:
            errors.append(f"parent: {type(exc).__name__}: {exc}")
        report["children"] = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
        try:
            store.create_task("after the children")  # the parent's session still works
            tasks = store.list_tasks(limit=100_000)
            report["titles"] = sorted(t.title for t in tasks)
            report["done"] = sum(t.status.value == "done" for t in tasks)
            report["events"] = len(store.audit_events())
            report["chain_ok"] = store.verify_chain().ok
        except BaseException as exc:
            errors.append(f"parent after: {type(exc).__name__}: {exc}")
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "drain":
        drain(sys.argv[2], sys.argv[3], int(sys.argv[4]), *sys.argv[5:6])
    elif command == "writer":
        writer(sys.argv[2])
    elif command == "drain_batches":
        drain_batches(sys.argv[2], sys.argv[3], int(sys.argv[4]), *sys.argv[5:6])
    elif command == "dedupe":
        dedupe(sys.argv[2], sys.argv[3], *sys.argv[4:5])
    elif command == "keyed":
        keyed(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif command == "batch_writer":
        batch_writer(sys.argv[2], int(sys.argv[3]))
    elif command == "forked":
        forked(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(f"unknown command {command}")
