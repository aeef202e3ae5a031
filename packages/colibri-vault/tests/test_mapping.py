"""Items -> variables (pure): the documented policy, property-tested."""

from __future__ import annotations

import pytest
from conftest import ALPHA, ORG_ID, login_item, note
from hypothesis import given
from hypothesis import strategies as st

from colibri_vault import LoginItemPolicy, map_items
from colibri_vault._mapping import item_belongs
from colibri_vault.errors import DuplicateVariable, UnsafeValue, UnsupportedField

KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
VALUES = st.text(st.characters(codec="utf-8", exclude_characters="\x00\r\\"), max_size=20)


@given(st.dictionaries(KEYS, st.tuples(st.sampled_from([0, 1, 2]), VALUES), max_size=8), st.data())
def test_fields_spread_over_items_give_exactly_their_variables(
    fields: dict[str, tuple[int, str]], data: st.DataObject
) -> None:
    n_items = data.draw(st.integers(1, 3))
    items = [note(f"n{i}", f"id{i}", ALPHA, []) for i in range(n_items)]
    for key, (ftype, value) in fields.items():
        target = data.draw(st.integers(0, n_items - 1))
        items[target]["fields"].append({"type": ftype, "name": key, "value": value})
    assert map_items("t", items) == {k: v for k, (_, v) in fields.items()}


@given(KEYS, VALUES, VALUES)
def test_a_name_defined_twice_is_an_error_whatever_the_values(key: str, a: str, b: str) -> None:
    items = [note("one", "1", ALPHA, [(1, key, a)]), note("two", "2", ALPHA, [(0, key, b)])]
    with pytest.raises(DuplicateVariable) as info:
        map_items("t", items)
    assert info.value.key == key and "one (1)" in str(info.value) and "two (2)" in str(info.value)


def test_login_item_name_clashing_with_a_field() -> None:
    items = [
        note("n", "1", ALPHA, [(1, "DB_PASSWORD", "from-field")]),
        login_item("DB_PASSWORD", "2", ALPHA, "from-login"),
    ]
    with pytest.raises(DuplicateVariable):
        map_items("t", items)
    assert map_items("t", items[1:], policy=LoginItemPolicy.IGNORE) == {}


@pytest.mark.parametrize("ftype", [3, 4, None, "1", True])
def test_field_types_without_a_value_of_their_own(ftype: object) -> None:
    items = [note("n", "1", ALPHA, [])]
    items[0]["fields"].append({"type": ftype, "name": "X", "value": "v"})
    with pytest.raises(UnsupportedField):
        map_items("t", items)


def test_unsafe_value_names_tenant_and_key() -> None:
    items = [note("n", "1", ALPHA, [(1, "TOKEN", "abc\x00def")])]
    with pytest.raises(UnsafeValue) as info:
        map_items("tenant-z", items)
    assert info.value.tenant == "tenant-z" and info.value.key == "TOKEN"
    assert "abc" not in str(info.value)


def test_item_membership_is_rechecked() -> None:
    item = note("n", "1", ALPHA, [])
    assert item_belongs(item, ORG_ID, ALPHA)
    assert not item_belongs(item, ORG_ID, "other")
    assert not item_belongs(item, "other-org", ALPHA)
    assert not item_belongs({**item, "collectionIds": None}, ORG_ID, ALPHA)
