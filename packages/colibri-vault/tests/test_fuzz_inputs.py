"""Fuzzing the parts of colibri-vault that read untrusted input: bw's outputs, the
items of a collection, and the values written into the jail's .env.

Every hostile input must end in a ``VaultError`` leaf (or be handled as the README
says), never a raw TypeError/KeyError/RecursionError, and never show a secret.
"""

from __future__ import annotations

import pytest

from colibri_vault._bw import _read_envelope
from colibri_vault.errors import BwCommandFailed, UnparsableOutput

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
