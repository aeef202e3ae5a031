"""export_json / import_json round-trip exactly, into an empty store only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FakeClock, make_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colibri_store import Conflict, InvalidInput, Store

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=20,
).filter(str.strip)
_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("task"), _text, st.integers(-3, 3), st.lists(st.sampled_from("abc"), max_size=2)
        ),
        st.tuples(st.just("agent"), _text, st.lists(st.sampled_from("abc"), max_size=3)),
        st.tuples(st.just("skill"), _text),
        st.tuples(st.just("claim"), st.integers(0, 5)),
        st.tuples(st.just("tenant"), _text),
    ),
    max_size=12,
)


def _apply(store: Store, ops: list) -> None:
    agents: list[int] = []
    for op in ops:
        try:
            if op[0] == "task":
                store.create_task(op[1], required_capabilities=op[3], priority=op[2])
            elif op[0] == "agent":
                agents.append(store.register_agent(op[1], op[2]).id)
            elif op[0] == "skill":
                store.register_skill(op[1])
            elif op[0] == "tenant":
                store.register_tenant(op[1], "/j/" + op[1], "c-" + op[1])
            elif op[0] == "claim" and agents:
                t = store.claim_next(agents[op[1] % len(agents)], start=True)
                if t is not None and op[1] % 2:
                    store.complete(
                        t.id, t.claim_epoch, result={"n": op[1]}, usage={"cost_micros": 5}
                    )
        except Conflict:
            pass


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_ops)
def test_round_trip_is_exact(
    backend: str, tmp_path_factory: pytest.TempPathFactory, ops: list
) -> None:
    base = tmp_path_factory.mktemp("rt")
    with Store.open(make_url(backend, base / "a"), clock=FakeClock()) as src:
        _apply(src, ops)
        doc = src.export_json()
    text = json.dumps(doc)
    (base / "b").mkdir()
    with Store.open(make_url(backend, base / "b")) as dst:
        counts = dst.import_json(json.loads(text))
        assert counts["audit_events"] == len(doc["tables"]["audit_events"])
        assert dst.export_json() == doc
        assert dst.verify_chain().ok
        # ids continue after the imported ones
        new = dst.create_task("after import")
        assert new.id == len(doc["tables"]["tasks"]) + 1


def test_import_needs_an_empty_store(store: Store) -> None:
    store.create_task("x")
    doc = store.export_json()
    with pytest.raises(Conflict, match="needs an empty store"):
        store.import_json(doc)


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"format": "other"},
        {"format": "colibri-store-export", "version": 9, "tables": {}},
        {"format": "colibri-store-export", "version": 1, "tables": {"nope": []}},
        {"format": "colibri-store-export", "version": 1, "tables": {"tasks": [{"id": 1}]}},
        {"format": "colibri-store-export", "version": 1, "tables": {"tasks": "x"}},
    ],
)
def test_bad_documents_are_refused_and_change_nothing(store: Store, doc: object) -> None:
    with pytest.raises(InvalidInput):
        store.import_json(doc)  # type: ignore[arg-type]
    assert store.export_json()["tables"]["tasks"] == []


def test_export_is_json(store: Store, tmp_path: Path) -> None:
    store.create_task("t", "d")
    text = json.dumps(store.export_json())
    assert json.loads(text)["tables"]["tasks"][0]["title"] == "t"
