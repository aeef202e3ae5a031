"""bw output with a key given twice in one JSON object is refused, not read last-wins.

``json.loads`` keeps the last of two equal keys: ``{"name":"A","name":"B"}`` reads as
"B", while another reader (bw's web vault, an auditor's jq) may take "A". What
colibri-vault checks and what it writes must be what bw meant, so any duplicate, at
any depth, is ``UnparsableOutput`` naming the key and never a value.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import ALPHA, ORG_ID, World, collection, note
from hypothesis import given
from hypothesis import strategies as st

from colibri_vault._bw import _read_envelope
from colibri_vault.errors import UnparsableOutput

FIRST = "sk-first-of-two-values-4f1c"
SECOND = "sk-second-of-two-values-9a2e"


def envelope(data: Any) -> str:
    return json.dumps({"success": True, "data": data}, separators=(",", ":"))


def list_envelope(rows: list[dict[str, Any]]) -> str:
    return envelope({"object": "list", "data": rows})


def duplicate_value_item() -> str:
    """The listing of alpha with one hidden field that has two ``value`` keys."""
    item = note("alpha-twice", "itwice", ALPHA, [(1, "TWICE", FIRST)])
    text = list_envelope([item])
    needle = json.dumps({"value": FIRST}, separators=(",", ":"))[1:-1]
    assert text.count(needle) == 1
    return text.replace(needle, needle + "," + needle.replace(FIRST, SECOND))


def assert_refused_naming(exc: Exception, key: str) -> None:
    assert isinstance(exc, UnparsableOutput)
    assert f"key {key!r}" in str(exc)
    for value in (FIRST, SECOND):
        assert value not in str(exc) and value not in repr(exc)
        assert not any(value in repr(a) for a in exc.args)


def test_two_values_in_one_field_are_refused_and_nothing_is_written(world: World) -> None:
    world.scenario["misbehave"] = {"list items": {"stdout": duplicate_value_item()}}
    exc = world.fail("tenant-alpha", UnparsableOutput)
    assert_refused_naming(exc, "value")
    assert "bw list items" in str(exc)
    assert not world.env_file("tenant-alpha").exists()
    assert world.commands()[-1] == "lock"


def test_a_collection_named_twice_is_refused(world: World) -> None:
    row = json.dumps(collection("decoy", ALPHA), separators=(",", ":"))
    row = row.replace('"name":"decoy"', '"name":"decoy","name":"tenant-alpha"')
    text = '{"success":true,"data":{"object":"list","data":[' + row + "]}}"
    args = f"list collections --organizationid {ORG_ID}"
    assert json.loads(text)["data"]["data"][0]["name"] == "tenant-alpha"  # last wins
    world.scenario["misbehave"] = {"list collections": {"stdout": text}}
    exc = world.fail("tenant-alpha", UnparsableOutput)
    assert_refused_naming(exc, "name")
    assert args in str(exc)
    assert not world.env_file("tenant-alpha").exists()


def test_a_second_success_key_in_the_envelope_is_refused() -> None:
    out = b'{"success":false,"success":true,"data":{"object":"message","title":"x"}}'
    for code in (0, 1):
        with pytest.raises(UnparsableOutput) as info:
            _read_envelope("bw sync", code, out, b"", [])
        assert "key 'success'" in str(info.value)


def test_a_key_that_is_not_a_schema_name_is_not_shown() -> None:
    # Only bw's own camelCase schema keys are named; anything else might be data.
    secret_like = "p@ss word-not-a-schema-key"
    out = f'{{"success":true,"data":{{"{secret_like}":1,"{secret_like}":2}}}}'.encode()
    with pytest.raises(UnparsableOutput) as info:
        _read_envelope("bw sync", 0, out, b"", [])
    assert secret_like not in str(info.value)
    assert f"of {len(secret_like)} characters (not shown)" in str(info.value)


def test_a_known_secret_as_a_key_is_not_shown() -> None:
    secret = "Zk3s9QvX1mN7pR2tY5uW8aB4cD6eF0"  # looks like a schema key
    out = f'{{"success":true,"data":{{"{secret}":1,"{secret}":2}}}}'.encode()
    with pytest.raises(UnparsableOutput) as info:
        _read_envelope("bw sync", 0, out, b"", [secret])
    assert secret not in str(info.value)


def test_the_refusal_carries_no_chained_exception() -> None:
    out = list_envelope([{"a": 1, "b": {"c": [{"d": 1}]}}]).replace('"d":1', '"d":1,"d":2')
    with pytest.raises(UnparsableOutput) as info:
        _read_envelope("bw list items", 0, out.encode(), b"", [])
    assert "key 'd'" in str(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=20,
)


@given(json_values)
def test_output_without_duplicates_reads_as_plain_json_does(data: Any) -> None:
    out = envelope(data).encode()
    assert _read_envelope("bw list items", 0, out, b"", []) == json.loads(out)["data"]


@given(st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), json_values, min_size=1))
def test_a_duplicate_at_any_depth_is_refused(obj: dict[str, Any]) -> None:
    key = next(iter(obj))
    inner = json.dumps(obj, separators=(",", ":"))
    doubled = "{" + json.dumps(key) + ":null," + inner[1:]  # the key once more, in front
    out = envelope({"object": "list", "data": [[0, {"x": None}]]})
    out = out.replace('{"x":null}', doubled)
    with pytest.raises(UnparsableOutput) as info:
        _read_envelope("bw list items", 0, out.encode(), b"", [])
    assert f"key {key!r}" in str(info.value)
