"""Fuzzing the public API with hostile arguments, on both backends.

The property, for every call: it succeeds (and the chain still verifies), or it
raises a ``StoreError`` and changes nothing (``export_json()`` equal before and
after, chain verified). Exceptions raised by the caller's own objects (``Boom``,
from an ``__iter__`` or ``__eq__`` that raises) may pass through, but must change
nothing either. Anything else (a raw ``TypeError``, a driver error, a hang) fails.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeClock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colibri_store import (
    InvalidInput,
    Store,
    StoreError,
    Task,
)


class Boom(Exception):
    """Raised by the hostile objects below: the caller's own exception."""


class EvilIter:
    def __iter__(self) -> Iterator[Any]:
        raise Boom("__iter__")

    def __len__(self) -> int:
        raise Boom("__len__")


class EvilEq:
    def __eq__(self, other: object) -> bool:
        raise Boom("__eq__")

    def __hash__(self) -> int:
        return 1


class EvilMapping(dict[Any, Any]):
    def keys(self) -> Any:
        raise Boom("keys")


class Dict(dict[Any, Any]):
    """A dict subclass: must behave as a mapping."""


FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text with everything in it: NUL, lone surrogates, combining marks, huge strings.
any_char = st.characters(codec=None, categories=None)
nasty_text = st.one_of(
    st.text(any_char, max_size=20),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "\ud800",
            "x\udfff",
            "e\u0301",
            "\u00e9",
            "\ufeff",
            "\u202e",
            "x" * 501,
            "y" * 100_001,
        ]
    ),
)
nasty_int = st.one_of(
    st.integers(-5, 5),
    st.sampled_from([2**31 - 1, 2**31, 2**32, 2**62, 2**63, -(2**63), 10**100, -1]),
)
nasty_float = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-300, 1e300]),
)
nasty_dt = st.one_of(
    st.datetimes(),  # naive
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from(
        [
            datetime.max.replace(tzinfo=UTC),
            datetime.min.replace(tzinfo=UTC),
            datetime.min.replace(tzinfo=timezone(timedelta(hours=14))),
            datetime.max.replace(tzinfo=timezone(timedelta(hours=-14))),
        ]
    ),
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    nasty_int,
    nasty_float,
    nasty_text,
    st.binary(max_size=8),
    nasty_dt,
    st.builds(EvilIter),
    st.builds(EvilEq),
    st.builds(object),
)
hostile = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.lists(inner, max_size=4).map(iter),
        st.dictionaries(st.one_of(nasty_text, nasty_int), inner, max_size=3),
        st.dictionaries(nasty_text, inner, max_size=3).map(Dict),
        st.frozensets(st.one_of(nasty_text, nasty_int), max_size=3),
    ),
    max_leaves=6,
)


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly sensible values, sometimes hostile ones."""
    return st.one_of(good, good, hostile)


def check(store: Store, call: Callable[[], Any]) -> Any:
    """Run ``call``; a refusal must be typed and leave the store exactly as it was."""
    before = store.export_json()
    try:
        result = call()
    except (StoreError, Boom) as exc:
        after = store.export_json()
        assert after == before, f"{type(exc).__name__} ({exc}) but the store changed"
        report = store.verify_chain()
        assert report.ok, report
        if isinstance(exc, InvalidInput):
            assert exc.field and str(exc).startswith(exc.field)
        return exc
    report = store.verify_chain()
    assert report.ok, report
    return result


@pytest.fixture
def board(store: Store) -> dict[str, Any]:
    """A store with an agent, a claimed task, a started one and a queued one."""
    agent = store.register_agent("fuzzer", ["x", "y"])
    queued = store.create_task("queued", required_capabilities=["x"])
    claimed = store.claim(store.create_task("claimed").id, agent.id)
    started = store.claim(store.create_task("started").id, agent.id, start=True)
    return {
        "store": store,
        "agent": agent,
        "queued": queued,
        "claimed": claimed,
        "started": started,
    }


# ---------------------------------------------------------------- tasks

task_kwargs = st.fixed_dictionaries(
    {},
    optional={
        "description": maybe(st.none() | st.text(max_size=5)),
        "required_capabilities": maybe(st.lists(st.sampled_from(["x", "y", "z"]), max_size=3)),
        "priority": maybe(st.integers(-10, 10)),
        "max_attempts": maybe(st.integers(1, 5)),
        "depends_on": maybe(st.lists(st.integers(1, 6), max_size=2)),
        "session_id": maybe(st.none() | st.text(max_size=5)),
        "dedupe_key": maybe(st.none() | st.sampled_from(["d1", "d2", ""])),
        "concurrency_key": maybe(st.none() | st.sampled_from(["k1", ""])),
        "concurrency_limit": maybe(st.none() | st.integers(1, 3)),
        "not_before": maybe(st.none() | st.datetimes(timezones=st.just(UTC))),
        "lease_seconds": maybe(st.none() | st.floats(1, 1000)),
    },
)


@FUZZ
@given(title=maybe(st.text(min_size=1, max_size=10)), kwargs=task_kwargs)
def test_create_task(board: dict[str, Any], title: Any, kwargs: dict[str, Any]) -> None:
    store = board["store"]
    got = check(store, lambda: store.create_task(title, **kwargs))
    if isinstance(got, Task):
        again = store.get_task(got.id)
        assert again == got
        assert (got.concurrency_key is None) == (got.concurrency_limit is None)


@FUZZ
@given(
    items=st.one_of(
        hostile,
        st.lists(
            st.one_of(
                st.builds(lambda t, k: {"title": t, **k}, maybe(st.text(min_size=1)), task_kwargs),
                st.dictionaries(st.one_of(nasty_text, nasty_int), hostile, max_size=3),
                hostile,
            ),
            max_size=4,
        ),
    )
)
def test_create_tasks(board: dict[str, Any], items: Any) -> None:
    store = board["store"]
    got = check(store, lambda: store.create_tasks(items))
    if isinstance(got, list):
        assert [store.get_task(i).id for i in got] == got


@FUZZ
@given(
    task_id=maybe(st.integers(1, 5)),
    list_args=st.fixed_dictionaries(
        {},
        optional={
            "status": maybe(st.sampled_from(["queued", "done"])),
            "capability": maybe(st.sampled_from(["x", "q"])),
            "ready": maybe(st.booleans()),
            "agent_id": maybe(st.integers(1, 3)),
            "limit": maybe(st.integers(1, 10)),
            "after_id": maybe(st.integers(0, 3)),
        },
    ),
)
def test_reads(board: dict[str, Any], task_id: Any, list_args: dict[str, Any]) -> None:
    store = board["store"]
    check(store, lambda: store.get_task(task_id))
    check(store, lambda: store.list_tasks(**list_args))
    check(store, lambda: store.add_dependency(task_id, board["queued"].id))


# ---------------------------------------------------------------- claims and moves


@FUZZ
@given(
    agent_id=maybe(st.integers(1, 3)),
    task_id=maybe(st.integers(1, 5)),
    n=maybe(st.integers(1, 3)),
    lease=maybe(st.none() | st.floats(1, 1000)),
    start=maybe(st.booleans()),
)
def test_claims(
    board: dict[str, Any], agent_id: Any, task_id: Any, n: Any, lease: Any, start: Any
) -> None:
    store = board["store"]
    check(store, lambda: store.claim(task_id, agent_id, lease_seconds=lease, start=start))
    check(store, lambda: store.claim_next(agent_id, lease_seconds=lease, start=start))
    check(store, lambda: store.claim_batch(agent_id, n, lease_seconds=lease, start=start))
    store.create_task("more work")


@FUZZ
@given(
    which=st.sampled_from(["claimed", "started", "queued"]),
    epoch_delta=maybe(st.sampled_from([0, 0, 1, -1])),
    action=st.sampled_from(["start", "heartbeat", "extend", "complete", "fail", "release"]),
    extra=maybe(st.none() | st.text(max_size=5) | st.floats(1, 100)),
    usage=maybe(st.none() | st.fixed_dictionaries({"input_tokens": st.integers(0, 9)})),
)
def test_fenced_moves(
    board: dict[str, Any], which: str, epoch_delta: Any, action: str, extra: Any, usage: Any
) -> None:
    store = board["store"]
    task = store.get_task(board[which].id)
    epoch = task.claim_epoch + epoch_delta if type(epoch_delta) is int else epoch_delta
    calls: dict[str, Callable[[], Any]] = {
        "start": lambda: store.start(task.id, epoch, lease_seconds=extra),
        "heartbeat": lambda: store.heartbeat(task.id, epoch, lease_seconds=extra),
        "extend": lambda: store.extend_lease(task.id, epoch, extra),
        "complete": lambda: store.complete(task.id, epoch, result=extra, usage=usage),
        "fail": lambda: store.fail(task.id, epoch, error=extra),
        "release": lambda: store.release(task.id, epoch, error=extra),
    }
    check(store, calls[action])


@FUZZ
@given(
    items=st.one_of(
        hostile,
        st.lists(
            st.one_of(
                st.tuples(maybe(st.integers(1, 5)), maybe(st.integers(0, 2))),
                st.tuples(maybe(st.integers(1, 5)), maybe(st.integers(0, 2)), hostile),
                hostile,
            ),
            max_size=4,
        ),
    ),
    action=st.sampled_from(["complete_many", "fail_many"]),
)
def test_batch_moves(board: dict[str, Any], items: Any, action: str) -> None:
    store = board["store"]
    check(store, lambda: getattr(store, action)(items))


@FUZZ
@given(
    task_id=maybe(st.integers(1, 5)),
    now=maybe(st.none() | st.datetimes(timezones=st.just(UTC))),
    limit=maybe(st.integers(1, 10)),
)
def test_retry_and_expiry(board: dict[str, Any], task_id: Any, now: Any, limit: Any) -> None:
    store = board["store"]
    check(store, lambda: store.retry(task_id))
    check(store, lambda: store.expire_leases(now, limit=limit))


# ---------------------------------------------------------------- agents, skills, tenants


@FUZZ
@given(
    name=maybe(st.sampled_from(["a1", "a2", "fuzzer"])),
    caps=maybe(st.lists(st.sampled_from(["x", "y", "\u00e9", "e\u0301"]), max_size=3)),
    host=maybe(st.none() | st.text(max_size=5)),
    max_tasks=maybe(st.none() | st.integers(1, 5)),
    status=maybe(st.sampled_from(["idle", "active", "offline"])),
    agent_id=maybe(st.integers(1, 3)),
)
def test_agents(
    board: dict[str, Any],
    name: Any,
    caps: Any,
    host: Any,
    max_tasks: Any,
    status: Any,
    agent_id: Any,
) -> None:
    store = board["store"]
    check(
        store,
        lambda: store.register_agent(name, caps, host=host, max_tasks=max_tasks, status=status),
    )
    check(store, lambda: store.get_agent(agent_id))
    check(store, lambda: store.list_agents(status))
    check(store, lambda: store.agent_heartbeat(agent_id, host=host))
    check(store, lambda: store.set_agent_status(agent_id, status))


@FUZZ
@given(
    name=maybe(st.sampled_from(["s1", "s2"])),
    description=maybe(st.none() | st.text(max_size=5)),
    category=maybe(st.none() | st.text(max_size=5)),
    tenant=maybe(st.sampled_from(["t1", "t2"])),
    root=maybe(st.sampled_from(["/jail/1", "/jail/2", "relative"])),
    collection=maybe(st.sampled_from(["c1", "c2"])),
    status=maybe(st.sampled_from(["active", "stopped", "destroyed"])),
)
def test_skills_and_tenants(
    board: dict[str, Any],
    name: Any,
    description: Any,
    category: Any,
    tenant: Any,
    root: Any,
    collection: Any,
    status: Any,
) -> None:
    store = board["store"]
    check(store, lambda: store.register_skill(name, description, category))
    check(store, lambda: store.register_tenant(tenant, root, collection))
    check(store, lambda: store.get_tenant(tenant))
    check(store, lambda: store.set_tenant_status(tenant, status))
    check(store, store.list_skills)
    check(store, store.list_tenants)


# ---------------------------------------------------------------- audit


@FUZZ
@given(
    after=maybe(st.integers(0, 5)),
    limit=maybe(st.none() | st.integers(1, 5)),
    seq=maybe(st.integers(1, 5)),
    anchor=maybe(st.none() | st.tuples(st.integers(1, 5), st.text(max_size=3))),
)
def test_audit_reads(board: dict[str, Any], after: Any, limit: Any, seq: Any, anchor: Any) -> None:
    store = board["store"]
    check(store, lambda: store.audit_events(after, limit))
    check(store, lambda: store.prove(seq))
    got = check(store, lambda: store.verify_chain(anchor))
    if anchor is None:
        assert got.ok


# ---------------------------------------------------------------- hand-written nasties


def _deep(levels: int) -> Any:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


HAND: dict[str, Callable[[dict[str, Any]], Any]] = {
    "usage keys of mixed types": lambda b: b["store"].complete(
        b["started"].id, b["started"].claim_epoch, usage={1: 2, "a": 3}
    ),
    "create_tasks keys of mixed types": lambda b: b["store"].create_tasks(
        [{"title": "x", 1: 2, "zz": 3}]
    ),
    "create_tasks of None": lambda b: b["store"].create_tasks(None),  # type: ignore[arg-type]
    "create_tasks of an int": lambda b: b["store"].create_tasks(5),  # type: ignore[arg-type]
    "create_tasks of a mapping": lambda b: b["store"].create_tasks({"title": "x"}),  # type: ignore[arg-type]
    # The second claim takes PostgreSQL's one-round-trip path (no lease sweep due).
    "claim_next with start=None": lambda b: (
        b["store"].create_task("two"),
        b["store"].claim_next(b["agent"].id),
        b["store"].claim_next(b["agent"].id, start=None),  # type: ignore[arg-type]
    ),
    "claim_batch with start='yes'": lambda b: (
        b["store"].create_tasks([{"title": "two"}, {"title": "three"}]),
        b["store"].claim_next(b["agent"].id),
        b["store"].claim_batch(b["agent"].id, 2, start="yes"),  # type: ignore[arg-type]
    ),
    "result nested too deep": lambda b: b["store"].complete(
        b["started"].id, b["started"].claim_epoch, result=_deep(100_000)
    ),
    "complete_many result nested too deep": lambda b: b["store"].complete_many(
        [(b["started"].id, b["started"].claim_epoch, _deep(100_000))]
    ),
    "capability with a lone surrogate": lambda b: b["store"].create_task(
        "x", required_capabilities=["\ud800"]
    ),
    "agent capability with a lone surrogate": lambda b: b["store"].register_agent(
        "s", ["ok", "\udfff"]
    ),
    "list_tasks capability with a lone surrogate": lambda b: b["store"].list_tasks(
        capability="\ud800"
    ),
    "empty concurrency key with a limit": lambda b: b["store"].create_task(
        "x", concurrency_key="", concurrency_limit=2
    ),
    "verify_chain anchor not a pair": lambda b: b["store"].verify_chain(anchor=5),  # type: ignore[arg-type]
    "verify_chain anchor of wrong types": lambda b: b["store"].verify_chain(anchor=("a", "b")),  # type: ignore[arg-type]
    "depends_on raising __iter__": lambda b: b["store"].create_task("x", depends_on=EvilIter()),
    "depends_on raising __eq__": lambda b: b["store"].create_task("x", depends_on=EvilEq()),
    "create_tasks item whose keys() raises": lambda b: b["store"].create_tasks(
        [EvilMapping(title="x")]
    ),
    "not_before at datetime.max": lambda b: b["store"].create_task(
        "x", not_before=datetime.max.replace(tzinfo=UTC)
    ),
    "not_before below year 1 in UTC": lambda b: b["store"].create_task(
        "x", not_before=datetime.min.replace(tzinfo=timezone(timedelta(hours=14)))
    ),
}


@pytest.mark.parametrize("case", sorted(HAND))
def test_hand_written(board: dict[str, Any], case: str) -> None:
    got = check(board["store"], lambda: HAND[case](board))
    if isinstance(got, Task):
        assert (got.concurrency_key is None) == (got.concurrency_limit is None)
    if case.startswith("verify_chain"):
        assert isinstance(got, InvalidInput), got


# ---------------------------------------------------------------- import


def _source_document(store: Store) -> dict[str, Any]:
    agent = store.register_agent("exporter", ["x"])
    first = store.create_task("first", lease_seconds=30.0, required_capabilities=["x"])
    store.create_task("second", depends_on=[first.id], concurrency_key="k")
    store.claim(first.id, agent.id)
    store.register_skill("sk")
    store.register_tenant("tn", "/jail/tn", "col")
    return store.export_json()


@pytest.fixture
def document(tmp_path: Path) -> dict[str, Any]:
    with Store.open(f"sqlite:///{tmp_path / 'source.sqlite'}", actor="src") as src:
        return _source_document(src)


def _poke(document: dict[str, Any], table: str, index: int | None, column: str, value: Any) -> Any:
    """A copy with ``column`` of row ``index`` (every row when None) set to ``value``."""
    doc = copy.deepcopy(document)
    rows = doc["tables"][table]
    for row in rows if index is None else [rows[index % len(rows)]]:
        row[column] = value
    return doc


def _use_after_import(store: Store) -> None:
    """What a worker does next: each must work or refuse with a typed error."""
    for call in (
        lambda: store.claim_next(1),
        lambda: store.claim_batch(1, 5),
        lambda: store.wait_for_work(0),
        lambda: store.list_tasks(),
        lambda: store.list_agents(),
        lambda: store.expire_leases(),
        lambda: store.create_task("after import", depends_on=[1]),
        lambda: store.export_json(),
    ):
        check(store, call)
    assert store.verify_chain().ok


_COLUMNS = [
    (table, column)
    for table, columns in {
        "tasks": [
            "id",
            "agent_id",
            "status",
            "title",
            "created_at",
            "required_capabilities",
            "priority",
            "claim_epoch",
            "lease_expires_at",
            "result",
            "cost_micros",
            "concurrency_limit",
            "not_before",
            "lease_seconds",
        ],
        "agents": ["id", "name", "capabilities", "status", "max_tasks", "last_seen"],
        "tenants": ["tenant_id", "status", "created_at"],
        "task_dependencies": ["task_id", "depends_on"],
        "audit_events": ["seq", "at", "payload", "hash"],
    }.items()
    for column in columns
]


@FUZZ
@given(
    where=st.sampled_from(_COLUMNS),
    index=st.integers(0, 3),
    value=st.one_of(
        hostile,
        st.sampled_from(
            [
                "[NaN]",
                "NaN",
                '["\\ud800"]',
                '"\\ud800"',
                "[" * 5000 + "]" * 5000,
                "{}",
                "not a time",
                "9999-99-99T99:99:99.999999Z",
                2**31,
                -(2**31) - 1,
                2**62,
                10**400,
                -1.0,
                1e300,
            ]
        ),
    ),
)
def test_import_one_bad_value(
    store: Store, document: dict[str, Any], where: tuple[str, str], index: int, value: Any
) -> None:
    table, column = where
    doc = _poke(document, table, index, column, value)
    got = check(store, lambda: store.import_json(doc))
    if isinstance(got, dict):
        _use_after_import(store)


IMPORT_CASES = [
    ("audit_events", "payload", "NaN"),
    ("audit_events", "payload", "[1e400]"),
    ("audit_events", "payload", '"\\ud800"'),
    ("audit_events", "payload", "[" * 100_000 + "]" * 100_000),
    ("tasks", "not_before", "not a time"),
    ("tasks", "lease_expires_at", "9999-99-99T99:99:99.999999Z"),
    ("tasks", "created_at", ""),
    ("agents", "last_seen", "yesterday"),
    ("tasks", "lease_seconds", -1.0),
    ("tasks", "lease_seconds", math.inf),
    ("tasks", "lease_seconds", math.nan),
    ("tasks", "lease_seconds", 10**400),
    ("tasks", "id", 2**31),
    ("tasks", "priority", 2**40),
    ("tasks", "claim_epoch", 2**31),
    ("tasks", "cost_micros", 2**63),
    ("agents", "max_tasks", 2**31),
    ("agents", "capabilities", "[NaN]"),
    ("agents", "capabilities", '["\\ud800"]'),
    ("tasks", "required_capabilities", '["\\ud800"]'),
    ("tasks", "result", "NaN"),
    ("tasks", "result", '"\\ud800"'),
]


@pytest.mark.parametrize(
    ("table", "column", "value"),
    IMPORT_CASES,
    ids=[f"{t}.{c}={str(v)[:16]}" for t, c, v in IMPORT_CASES],
)
def test_import_hand_written(
    store: Store, document: dict[str, Any], table: str, column: str, value: Any
) -> None:
    doc = _poke(document, table, None, column, value)
    got = check(store, lambda: store.import_json(doc))
    if isinstance(got, dict):
        _use_after_import(store)


@FUZZ
@given(doc=hostile)
def test_import_wrong_shapes(store: Store, doc: Any) -> None:
    check(store, lambda: store.import_json(doc))


@FUZZ
@given(
    tables=st.dictionaries(
        st.one_of(st.sampled_from(["tasks", "agents", "audit_events", "nope"]), nasty_int),
        st.one_of(hostile, st.lists(hostile, max_size=2)),
        max_size=3,
    )
)
def test_import_wrong_tables(store: Store, tables: Any) -> None:
    doc = {"format": "colibri-store-export", "version": 1, "tables": tables}
    check(store, lambda: store.import_json(doc))


def test_import_round_trip_then_work(store: Store, document: dict[str, Any]) -> None:
    assert store.import_json(document)["tasks"] == 2
    assert store.export_json()["tables"] == document["tables"]
    _use_after_import(store)


# ---------------------------------------------------------------- wait_for_work


def _returns_within(seconds: float, call: Callable[[], Any]) -> Any:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung"
    return out[0]


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -math.inf, -1, True, "1", None, 2**63])
def test_wait_for_work_hostile_timeouts(store: Store, timeout: Any) -> None:
    got = _returns_within(10, lambda: store.wait_for_work(timeout))
    assert isinstance(got, InvalidInput), got


# ---------------------------------------------------------------- Store.open


open_kwargs = st.fixed_dictionaries(
    {},
    optional={
        "lease_seconds": maybe(st.floats(1, 1000)),
        "busy_timeout": maybe(st.floats(0.1, 100)),
        "actor": maybe(st.none() | st.text(min_size=1, max_size=5)),
        "clock": st.one_of(st.none(), hostile),
        "retry_backoff": maybe(st.floats(0, 100)),
        "retry_backoff_cap": maybe(st.floats(0, 1000)),
        "retry_jitter": maybe(st.floats(0, 0.9)),
        "fifo_every": maybe(st.integers(0, 20)),
    },
)


@FUZZ
@given(kwargs=open_kwargs)
def test_open_arguments(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    url = f"sqlite:///{tmp_path / 'open.sqlite'}"
    try:
        opened = Store.open(url, **kwargs)
    except StoreError:
        return
    # Whatever open accepted must give a store that works.
    with opened as store:
        agent = store.register_agent("w")
        task = store.create_task("t")
        claimed = store.claim(task.id, agent.id)
        store.release(claimed.id, claimed.claim_epoch)
        assert store.verify_chain().ok


@pytest.mark.parametrize(
    "url",
    [b"sqlite:///x.sqlite", 5, "sqlite:///a\x00b.sqlite", "sqlite:///\ud800.sqlite", "mysql://x/y"],
)
def test_open_hostile_urls(tmp_path: Path, url: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError):
        Store.open(url)


def test_fake_clock_is_used(tmp_path: Path) -> None:
    # Sanity of the harness: a store opened with the test clock stamps its time.
    clock = FakeClock()
    with Store.open(f"sqlite:///{tmp_path / 'c.sqlite'}", clock=clock) as store:
        assert store.create_task("t").created_at.startswith("2026-11-23T12:00:00")
