"""One task through the real packages (DESIGN.md section 2), no daemon yet.

store.claim -> spawner starts the real ``colibri-test-agent`` (a real process under
its supervising shim) -> its session log -> glasspane pane -> store.complete or
store.fail with the usage the pane summed. The glue here is what the daemon will do.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from colibri_glasspane import AgentState, Glasspane, ProcessState
from colibri_spawner import AgentSpec, Spawner
from colibri_store import Store, TaskStatus


def _test_agent() -> str:
    found = shutil.which("colibri-test-agent") or str(
        Path(sys.executable).with_name("colibri-test-agent")
    )
    assert Path(found).exists(), "colibri-test-agent is not installed beside this interpreter"
    return found


def _run_task(tmp_path: Path, *agent_args: str) -> tuple[Store, int]:
    store = Store.open(f"sqlite:///{tmp_path / 'board.sqlite'}", actor="flow-test")
    agent = store.register_agent("test-agent", ["python"])
    task = store.create_task("say hello", required_capabilities=["python"])
    claimed = store.claim_next(agent.id, start=True)
    assert claimed is not None and claimed.id == task.id

    session = f"task-{claimed.id}"
    spawner = Spawner(str(tmp_path / "agents"))
    handle = spawner.spawn(
        AgentSpec(
            argv=[_test_agent(), "--session-id", session, *agent_args],
            session_id=session,
            cwd=str(tmp_path),
        )
    )
    record = handle.wait(timeout=60)

    pane = Glasspane(host="test")
    pane.open_pane(session, agent="test-agent", session_id=session)
    offset = 0
    while True:
        chunk = handle.read(offset=offset)
        if not chunk.lines:
            break
        pane.feed(
            session,
            b"".join(line if line.endswith(b"\n") else line + b"\n" for line in chunk.lines),
        )
        offset = chunk.offset
    state = (
        ProcessState.exited(record.code)
        if record.code is not None
        else ProcessState.killed(record.signal)
    )
    pane.set_process_state(session, state)
    view = pane.pane(session)

    if view.state is AgentState.DONE:
        usage = view.usage
        store.complete(
            claimed.id,
            claimed.claim_epoch,
            result={"text": view.text_tail},
            usage={
                "input_tokens": usage.input,
                "output_tokens": usage.output,
                "cache_read_tokens": usage.cache_read,
                "cache_write_tokens": usage.cache_write,
                "cost_micros": usage.cost_nanousd // 1000,
            },
        )
    else:
        store.fail(claimed.id, claimed.claim_epoch, error=view.reason or view.state.value)
    return store, claimed.id


def test_a_successful_agent_completes_its_task_with_usage(tmp_path: Path) -> None:
    store, task_id = _run_task(tmp_path, "--emit-usage")
    try:
        task = store.get_task(task_id)
        assert task.status is TaskStatus.DONE
        assert task.usage.input_tokens > 0 and task.usage.output_tokens > 0
        assert [e.verb for e in store.audit_events()][-2:] == ["claim", "complete"]
        assert store.verify_chain().ok
    finally:
        store.close()


def test_a_failing_agent_fails_its_task_with_the_reason(tmp_path: Path) -> None:
    store, task_id = _run_task(tmp_path, "--fail")
    try:
        task = store.get_task(task_id)
        assert task.status is TaskStatus.FAILED
        assert task.last_error
        assert store.verify_chain().ok
    finally:
        store.close()


def test_the_leaf_packages_import_no_sibling() -> None:
    """DESIGN.md section 1, checked on the installed modules too."""
    import ast
    import importlib.util

    for leaf in ("colibri_store", "colibri_glasspane", "colibri_spawner", "colibri_vault"):
        spec = importlib.util.find_spec(leaf)
        assert spec is not None and spec.submodule_search_locations
        for path in Path(next(iter(spec.submodule_search_locations))).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and node.level == 0
                    else []
                )
                for name in names:
                    top = name.split(".")[0]
                    if top.startswith("colibri_") and top != leaf:
                        pytest.fail(f"{path} imports {name}")
