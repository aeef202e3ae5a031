"""Fuzzing the parts of colibri-vault that read untrusted input: bw's outputs, the
items of a collection, and the values written into the jail's .env.

Every hostile input must end in a ``VaultError`` leaf (or be handled as the README
says), never a raw TypeError/KeyError/RecursionError, and never show a secret.
"""

from __future__ import annotations

import pytest

from colibri_vault import map_items
from colibri_vault._bw import _read_envelope
from colibri_vault.errors import BwCommandFailed, UnparsableOutput, UnsupportedField

# -- regression cases found by the campaign --------------------------------------------


@pytest.mark.parametrize("code", [0, 1])
@pytest.mark.parametrize(
    "out",
    [
        b"[" * 100_000,
        b'{"success":true,"data":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_output_nested_deeper_than_json_reads_is_unparsable_not_recursion(
    out: bytes, code: int
) -> None:
    # Was a raw RecursionError out of json.loads.
    with pytest.raises(UnparsableOutput if code == 0 else BwCommandFailed):
        _read_envelope("bw list items", code, out, b"", [])


@pytest.mark.parametrize("ftype", [0.0, 1.0, 2.0, True, False])
def test_a_field_type_code_that_is_not_an_int_is_unsupported(ftype: object) -> None:
    # 0.0 == 0 and False == 0: a float or bool type code used to pass as text/hidden.
    item = {"type": 2, "name": "n", "fields": [{"type": ftype, "name": "KEY", "value": "v"}]}
    with pytest.raises(UnsupportedField):
        map_items("t", [item])


@pytest.mark.parametrize("itype", [True, 1.0])
def test_an_item_type_that_is_not_the_int_1_is_not_a_login_item(itype: object) -> None:
    # True == 1: such an item used to give KEY=<its password>.
    item = {"type": itype, "name": "KEY", "login": {"password": "pw"}, "fields": []}
    assert map_items("t", [item]) == {}
    assert map_items("t", [dict(item, type=1)]) == {"KEY": "pw"}


@pytest.mark.parametrize("fields", [False, 0, "", {}, 0.0])
def test_fields_of_a_falsy_wrong_type_are_unsupported_not_read_as_none(fields: object) -> None:
    # `item.get("fields") or []` read these as "no fields" instead of refusing them.
    with pytest.raises(UnsupportedField):
        map_items("t", [{"type": 2, "name": "n", "fields": fields}])


@pytest.mark.parametrize(
    "item", [{"type": 2, "name": "n"}, {"type": 2, "name": "n", "fields": None}]
)
def test_absent_or_null_fields_are_no_fields(item: dict[str, object]) -> None:
    assert map_items("t", [item]) == {}
