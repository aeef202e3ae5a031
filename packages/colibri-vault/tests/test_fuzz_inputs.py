"""Fuzzing the parts of colibri-vault that read untrusted input: bw's outputs, the
items of a collection, and the values written into the jail's .env.

Every hostile input must end in a ``VaultError`` leaf (or be handled as the README
says), never a raw TypeError/KeyError/RecursionError, and never show a secret.
"""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import traceback
from pathlib import Path
from typing import Any

import pytest
from conftest import ALPHA, World, fixture_json, login_item, note
from dotenv import dotenv_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colibri_vault import (
    EnvFileFormat,
    LoginItemPolicy,
    ProvisionAction,
    map_items,
    render_env_file,
)
from colibri_vault._bw import (
    _read_envelope,
    parse_list,
    parse_message,
    parse_session_key,
    parse_status,
)
from colibri_vault._envfile import check_value, is_valid_key
from colibri_vault._jail import parse_passwd
from colibri_vault.errors import (
    BwCommandFailed,
    BwError,
    JailUserMissing,
    TargetEscapesRoot,
    UnparsableOutput,
    UnsafeJailUser,
    UnsafeValue,
    UnsupportedField,
    VaultConfigError,
    VaultContentError,
)

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


# -- the campaign ------------------------------------------------------------------------

_FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Recognisable secret values: whatever they pass through, they must not be shown.
_SECRETS = st.builds(
    lambda body, extra: f"s3cr3t-{body}{extra}",
    st.text("0123456789abcdef", min_size=8, max_size=12),
    st.sampled_from(["", '"', "\\", "\n", "'", "=", " ", "\u2028", "é", "\t"]),
)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def _texts_of(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts += [repr(v) for v in vars(exc).values()]
    return texts


@st.composite
def _bw_stdout(draw: st.DrawFn, secret: str) -> bytes:
    """What a broken, hostile or foreign bw could print on stdout."""
    envelope = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "success": _json_values,
                "message": st.sampled_from([secret, f"Vault is locked. {secret}", None])
                | _json_values,
                "data": _json_values,
            },
        )
    )
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return draw(st.binary(max_size=60))
    if choice == 1:
        return json.dumps(draw(_json_values)).encode()
    text = json.dumps(envelope)
    if choice == 3:  # truncated, or with junk around it
        text = text[: draw(st.integers(0, len(text)))]
    if choice == 4:
        text = draw(st.sampled_from(["\n", " ", "\ufeff", "\x00"])) + text + "\n\n"
    return text.encode("utf-8", "surrogatepass")


@_FUZZ
@given(data=st.data(), secret=_SECRETS, code=st.sampled_from([0, 1, 2, 127, -9]))
def test_any_bw_output_is_data_or_a_bw_error_that_hides_the_secrets(
    data: st.DataObject, secret: str, code: int
) -> None:
    out = data.draw(_bw_stdout(secret))
    err = data.draw(
        st.sampled_from(
            [b"", f"Error: {secret}\n".encode(), b"\xff\xfe", f"a\r\n{secret}".encode()]
        )
    )
    try:
        result = _read_envelope("bw list items", code, out, err, [secret])
    except BwError as exc:
        for text in _texts_of(exc):
            assert secret not in text
        return
    assert code == 0  # only a success envelope with exit 0 gives data
    for parse in (parse_status, parse_message, parse_session_key, parse_list):
        try:
            parse("bw x", result)
        except UnparsableOutput:
            pass


_ITEMS = fixture_json("list_items_collection.json")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replaced(value[head], tuple(rest), new)
    return copy


# Values meant to break out of KEY='value': quotes, escapes, newlines, '=', comments.
_INJECTIONS = st.lists(
    st.sampled_from(
        ["'", "\\", "\n", "=", "#", "EVIL=1", "export ", '"', "\\'", "${X}", "$(id)", " "]
    )
    | st.text(max_size=4),
    max_size=8,
).map("".join)


@_FUZZ
@given(
    mutations=st.lists(st.tuples(st.data(), st.booleans()), min_size=1, max_size=4),
    policy=st.sampled_from(list(LoginItemPolicy)),
    fmt=st.sampled_from(list(EnvFileFormat)),
)
def test_real_items_mutated_field_by_field_map_or_refuse(
    mutations: list[tuple[st.DataObject, bool]], policy: LoginItemPolicy, fmt: EnvFileFormat
) -> None:
    items: Any = _ITEMS
    for data, injection in mutations:
        path = data.draw(st.sampled_from(_paths(items)))
        items = _replaced(items, path, data.draw(_INJECTIONS if injection else _json_values))
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return  # parse_list refuses these before map_items sees them
    try:
        variables = map_items("t", items, policy=policy, fmt=fmt)
    except VaultContentError:
        return
    for key, value in variables.items():
        assert is_valid_key(key) and isinstance(value, str)
        check_value(key, value, fmt)
    content = render_env_file(variables, fmt)
    # Exactly the variables come back: no value injected a line or a key.
    read = dotenv_values(stream=io.StringIO(content.decode("utf-8")), interpolate=False)
    assert dict(read) == variables


@_FUZZ
@given(secret=_SECRETS, slot=st.sampled_from(["value", "password"]), data=st.data())
def test_a_refused_item_never_shows_its_secret_value(
    secret: str, slot: str, data: st.DataObject
) -> None:
    bad_value = data.draw(
        st.sampled_from([secret + "\x00", secret + "\r", secret + "\\", secret + "\ud800"])
    )
    name = data.draw(st.sampled_from(["KEY", "1BAD", "BAD NAME", "K\u00e9"]))
    if slot == "value":
        items = [
            note("n", "1", ALPHA, [(data.draw(st.sampled_from([0, 1, 2, 3, 9])), name, bad_value)])
        ]
    else:
        items = [login_item(name, "1", ALPHA, bad_value)]
    fmt = data.draw(st.sampled_from(list(EnvFileFormat)))
    try:
        map_items("t", items, fmt=fmt)
    except VaultContentError as exc:
        for text in _texts_of(exc):
            assert secret not in text
    else:
        assert name in ("1BAD", "BAD NAME", "K\u00e9") and slot == "password"  # not a login key


# -- end to end, through the fake bw: hostile collections write nothing ------------------

_MARKER = "s3cr3t-e2e-4f1b9c"


def _hostile(fields: list[dict[str, Any]]) -> dict[str, Any]:
    item = note("hostile", "9f3e0c2a-7b1d-4e6f-8a9b-0c1d2e3f4a5b", ALPHA, [])
    item["fields"] = fields
    return item


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ([{"type": 1, "name": "A\x00B", "value": _MARKER}], "InvalidVariableName"),
        ([{"type": 1, "name": "A=B", "value": _MARKER}], "InvalidVariableName"),
        ([{"type": 1, "name": "A\nB", "value": _MARKER}], "InvalidVariableName"),
        ([{"type": 1, "name": ["A"], "value": _MARKER}], "InvalidVariableName"),
        ([{"type": 1, "name": "KEY", "value": _MARKER + "\x00"}], "UnsafeValue"),
        ([{"type": 1, "name": "KEY", "value": _MARKER + "\r\nEVIL=1"}], "UnsafeValue"),
        ([{"type": 1, "name": "KEY", "value": {"v": _MARKER}}], "UnsupportedField"),
        ([{"type": "1", "name": "KEY", "value": _MARKER}], "UnsupportedField"),
        ([{"type": 1.0, "name": "KEY", "value": _MARKER}], "UnsupportedField"),
        ([{"type": 1, "name": "KEY", "value": "x" * (17 * 1024 * 1024)}], "EnvWriteFailed"),
    ],
)
def test_a_hostile_collection_raises_its_error_writes_nothing_and_hides_values(
    world: World, fields: list[dict[str, Any]], error: str
) -> None:
    path = world.env_file("tenant-alpha")
    path.write_text("OLD='keep me'\n")
    world.set_vault(items=[_hostile(fields)])
    outcome = world.attempt("tenant-alpha")  # checks every text for the scenario's secrets
    assert type(outcome).__name__ == error
    assert _MARKER not in "".join(_texts_of(outcome))  # type: ignore[arg-type]
    assert path.read_text() == "OLD='keep me'\n"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_values_that_try_to_inject_lines_come_back_exactly(world: World) -> None:
    values = {
        "A": "x'\nEVIL='1",
        "B": "\\'\n#\nC=2",
        "C": "$(id) ${HOME} `id`",
        "D": "'" * 5 + "=" * 5,
        "E": "\n\n",
        "F": "\u2028\x85\x0b\x0c",
    }
    fields = [{"type": 1, "name": k, "value": v} for k, v in values.items()]
    world.set_vault(items=[_hostile(fields)])
    world.run("tenant-alpha")
    assert dotenv_values(world.env_file("tenant-alpha"), interpolate=False) == values


# -- hostile jail: special files where the .env, passwd or home should be ---------------


def _make_special(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    elif kind == "symlink-loop":
        path.symlink_to(path.name)


@pytest.mark.parametrize("kind", ["fifo", "socket", "symlink-loop"])
def test_a_special_file_at_the_env_path_is_replaced_without_blocking(
    world: World, kind: str
) -> None:
    path = world.env_file("tenant-alpha")
    _make_special(path, kind)
    result = world.run("tenant-alpha")
    assert result.action in (ProvisionAction.CREATED, ProvisionAction.UPDATED)
    st_ = os.lstat(path)
    assert stat.S_ISREG(st_.st_mode) and stat.S_IMODE(st_.st_mode) == 0o600
    assert world.run("tenant-alpha").action is ProvisionAction.UNCHANGED


# socket: opening it as passwd failed with ENXIO, which was EnvWriteFailed
# ("could not write .../etc/passwd"), not TargetEscapesRoot like a FIFO there.
@pytest.mark.parametrize("kind", ["fifo", "socket", "symlink-loop"])
def test_a_special_file_as_passwd_or_home_is_refused_without_blocking(
    world: World, kind: str
) -> None:
    root = world.base / "tenant-alpha" / "root"
    (root / "etc" / "passwd").unlink()
    _make_special(root / "etc" / "passwd", kind)
    world.fail("tenant-alpha", TargetEscapesRoot)
    assert world.calls() == []  # refused before bw ran

    world.make_jail("tenant-beta")
    home = world.base / "tenant-beta" / "root" / "home" / "agent"
    home.rmdir()
    _make_special(home, kind)
    world.fail("tenant-beta", TargetEscapesRoot)
    assert world.calls() == []


@pytest.mark.parametrize("sep", ["\x1c", "\x1d", "\x1e", "\x0b", "\x0c", "\x85", "\u2028", "\r"])
def test_a_passwd_entry_hidden_behind_a_unicode_line_break_is_not_the_user(sep: str) -> None:
    # str.splitlines() broke the gecos field there and found an entry libc does not see.
    hidden = f"other:*:1001:1001:x{sep}agent:*:1002:1002::/home/agent:/bin/sh"
    text = f"root:*:0:0::/root:/bin/sh\n{hidden}\n"
    with pytest.raises(JailUserMissing):
        parse_passwd(text, "agent", "/jail/etc/passwd")
    # A real entry after it is found, and only once.
    entry = parse_passwd(text + "agent:*:1003:1003::/home/agent:/bin/sh\n", "agent", "p")
    assert (entry.uid, entry.gid) == (1003, 1003)


@pytest.mark.parametrize(
    "number",
    [
        " 1001",
        "1001 ",
        "+1001",
        "1_001",
        "\u0661\u0660\u0660\u0661",
        "\uff11\uff10\uff10\uff11",
        "",
    ],
)
def test_a_uid_or_gid_that_is_not_plain_ascii_digits_is_refused(number: str) -> None:
    # int() read all of these as 1001 (or refused only ""), unlike libc.
    for entry in (
        f"agent:*:{number}:1001::/home/agent:/bin/sh",
        f"agent:*:1001:{number}::/h:/bin/sh",
    ):
        with pytest.raises(UnsafeJailUser, match="not a number"):
            parse_passwd(entry + "\n", "agent", "p")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("env_format", "shell"),
        ("env_format", "dotenv"),
        ("login_items", "ignore"),
        ("foreign_login", "logout"),
        ("env_format", None),
    ],
)
def test_a_policy_setting_that_is_not_its_enum_is_refused_before_bw_runs(
    world: World, setting: str, value: object
) -> None:
    # env_format="shell" (a string from a config file) silently meant DOTENV: a value
    # holding "'" was written, and sourcing the file with sh ran what followed it.
    world.set_vault(items=[_hostile([{"type": 1, "name": "K", "value": "a'; id; '"}])])
    error = world.fail(
        "tenant-alpha", VaultConfigError, vault=world.vault_settings(**{setting: value})
    )
    assert setting in str(error)
    assert world.calls() == []
    assert not world.env_file("tenant-alpha").exists()


def test_the_pure_writer_fails_closed_on_a_format_that_is_not_an_env_file_format() -> None:
    with pytest.raises(UnsafeValue):
        render_env_file({"K": "a'; id; '"}, "shell")  # type: ignore[arg-type]
