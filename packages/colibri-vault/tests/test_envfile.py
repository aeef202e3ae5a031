"""The .env format: what python-dotenv and sh read back is exactly what was written,
and what cannot be written unambiguously is refused by name."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colibri_vault import EnvFileFormat, render_env_file
from colibri_vault._envfile import check_value, is_valid_key
from colibri_vault.errors import UnsafeValue

KEYS = st.from_regex(r"K[A-Za-z0-9_]{0,12}", fullmatch=True)
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
DOTENV_SAFE = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00\r"), max_size=40
).filter(lambda v: not v.endswith("\\"))
SHELL_SAFE = DOTENV_SAFE.filter(lambda v: "'" not in v and "\\" not in v and "${" not in v)

NASTY = {
    "QUOTES": "it's \"quoted\" 'twice'",
    "NEWLINES": "line1\nline2\n\nline4\n",
    "DOLLAR": "$HOME ${HOME} $(id) `id`",
    "HASH": "#not a comment # really",
    "SPACES": "  leading and trailing  ",
    "BACKSLASH": "a\\b\\'c\\d",
    "EQUALS": "a=b==",
    "EMPTY": "",
    "UNICODE": "päss wörd ✓ \u2028 \x85",
}


def dotenv_read(content: bytes, interpolate: bool) -> dict[str, str | None]:
    return dict(dotenv_values(stream=io.StringIO(content.decode("utf-8")), interpolate=interpolate))


def dotenv_read_file(path: Path, interpolate: bool) -> dict[str, str | None]:
    return dict(dotenv_values(path, interpolate=interpolate))


def sh_read(path: Path, keys: list[str]) -> dict[str, str]:
    """Source the file with sh (set -a) and print each variable NUL-terminated."""
    script = 'set -a; . "$1"; ' + " ".join(f'printf "%s\\0" "${k}";' for k in keys)
    out = subprocess.run(
        ["sh", "-c", script, "sh", str(path)], capture_output=True, timeout=30, check=True
    ).stdout
    values = out.split(b"\0")[:-1]
    return {k: v.decode("utf-8") for k, v in zip(keys, values, strict=True)}


def test_nasty_values_round_trip_through_python_dotenv(tmp_path: Path) -> None:
    content = render_env_file(NASTY)
    path = tmp_path / ".env"
    path.write_bytes(content)
    assert dotenv_read_file(path, interpolate=False) == NASTY


def test_shell_format_means_the_same_to_sh_and_to_dotenv(tmp_path: Path) -> None:
    safe = {k: v for k, v in NASTY.items() if k not in ("QUOTES", "BACKSLASH", "DOLLAR")}
    safe["DOLLAR"] = "$HOME $(id) `id` $"
    path = tmp_path / ".env"
    path.write_bytes(render_env_file(safe, EnvFileFormat.SHELL))
    assert sh_read(path, list(safe)) == safe
    assert dotenv_read_file(path, interpolate=True) == safe
    assert dotenv_read_file(path, interpolate=False) == safe


def test_output_is_sorted_single_quoted_lines() -> None:
    assert render_env_file({"B": "2", "A": "it's"}) == b"A='it\\'s'\nB='2'\n"
    assert render_env_file({}) == b""


@given(st.dictionaries(KEYS, DOTENV_SAFE, max_size=6))
@settings(max_examples=300, deadline=None)
def test_dotenv_round_trip(variables: dict[str, str]) -> None:
    assert dotenv_read(render_env_file(variables), interpolate=False) == variables


@given(st.dictionaries(KEYS, SHELL_SAFE, min_size=1, max_size=5))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_shell_round_trip(tmp_path: Path, variables: dict[str, str]) -> None:
    path = tmp_path / ".env"
    path.write_bytes(render_env_file(variables, EnvFileFormat.SHELL))
    assert dotenv_read_file(path, interpolate=True) == variables
    assert sh_read(path, list(variables)) == variables


@given(KEYS, ANY_TEXT, st.sampled_from(EnvFileFormat))
@settings(max_examples=300, deadline=None)
def test_a_value_is_either_refused_or_round_trips(key: str, value: str, fmt: EnvFileFormat) -> None:
    try:
        content = render_env_file({key: value}, fmt)
    except UnsafeValue as exc:
        assert exc.key == key
        if len(value) >= 3:
            assert value not in str(exc)
        return
    assert dotenv_read(content, interpolate=fmt is EnvFileFormat.SHELL) == {key: value}


@pytest.mark.parametrize(
    ("value", "fmt", "reason"),
    [
        ("a\x00b", EnvFileFormat.DOTENV, "NUL"),
        ("a\rb", EnvFileFormat.DOTENV, "carriage return"),
        ("a\ud800b", EnvFileFormat.DOTENV, "surrogate"),
        ("C:\\dir\\", EnvFileFormat.DOTENV, "ends with a backslash"),
        ("it's", EnvFileFormat.SHELL, "single quote"),
        ("a\\b", EnvFileFormat.SHELL, "backslash"),
        ("${HOME}", EnvFileFormat.SHELL, "${"),
    ],
)
def test_refused_values_name_the_key_and_the_reason(
    value: str, fmt: EnvFileFormat, reason: str
) -> None:
    with pytest.raises(UnsafeValue, match="MY_KEY") as info:
        check_value("MY_KEY", value, fmt)
    assert reason in str(info.value)


@given(st.text(max_size=20))
def test_key_validation_matches_the_documented_pattern(key: str) -> None:
    import re

    expected = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key, flags=re.ASCII) is not None
    assert is_valid_key(key) == expected


def test_invalid_key_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid variable name"):
        render_env_file({"A-B": "x"})
