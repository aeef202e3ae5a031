"""The jail's etc/passwd parser (pure), property-tested."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colibri_vault._jail import parse_passwd, split_components
from colibri_vault.errors import JailUserMissing, TargetEscapesRoot, UnsafeJailUser

NAMES = st.from_regex(r"[a-z_][a-z0-9_-]{0,8}", fullmatch=True)
IDS = st.integers(1, 2**31)
ENTRY = st.tuples(NAMES, IDS, IDS)


def line(name: str, uid: int, gid: int) -> str:
    return f"{name}:*:{uid}:{gid}:Some One,room 1:/home/{name}:/bin/sh"


@given(st.lists(ENTRY, max_size=8, unique_by=lambda e: e[0]), ENTRY, st.data())
def test_the_user_is_found_wherever_it_stands(
    others: list[tuple[str, int, int]], me: tuple[str, int, int], data: st.DataObject
) -> None:
    others = [o for o in others if o[0] != me[0]]
    lines = [line(*o) for o in others]
    lines.insert(data.draw(st.integers(0, len(lines))), line(*me))
    comments = ["# $FreeBSD$", "", "+:::::::"]
    text = "\n".join(comments + lines) + "\n"
    user = parse_passwd(text, me[0], "passwd")
    assert (user.uid, user.gid, user.home) == (me[1], me[2], f"/home/{me[0]}")


def test_gecos_with_colons_is_a_malformed_entry() -> None:
    # passwd(5) has no escaping: an 8th field means the entry cannot be trusted.
    with pytest.raises(UnsafeJailUser, match="7 fields"):
        parse_passwd("agent:*:1001:1002:a:b:/home/agent:/bin/sh\n", "agent", "passwd")


@given(st.lists(ENTRY, max_size=6, unique_by=lambda e: e[0]), NAMES)
def test_an_absent_user_is_missing_never_guessed(
    entries: list[tuple[str, int, int]], wanted: str
) -> None:
    entries = [e for e in entries if e[0] != wanted]
    text = "".join(line(*e) + "\n" for e in entries)
    with pytest.raises(JailUserMissing):
        parse_passwd(text, wanted, "passwd")


@given(st.text(max_size=40))
def test_components_never_contain_dot_dotdot_slash_or_nul(path: str) -> None:
    try:
        parts = split_components(path, "path")
    except TargetEscapesRoot:
        return
    assert parts
    for part in parts:
        assert part not in ("", ".", "..") and "/" not in part and "\x00" not in part
