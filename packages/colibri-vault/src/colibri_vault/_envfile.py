"""The .env file format: key validation, quoting, rendering and hashing (pure).

Every line is ``KEY='value'``. Inside the single quotes a backslash and a single
quote are escaped with a backslash, which is what python-dotenv (>= 1.0) decodes;
a newline is kept literally (python-dotenv and POSIX ``sh`` both read multi-line
single-quoted values). Two formats:

- ``EnvFileFormat.DOTENV`` (default): for python-dotenv and compatible loaders with
  interpolation turned off. Refuses NUL, carriage returns (text-mode readers turn
  them into newlines), a final backslash (python-dotenv < 1.2.3 misreads it) and
  text that is not valid Unicode.
- ``EnvFileFormat.SHELL``: the file also means the same when sourced by ``sh``
  (``set -a; . ./.env``) and when loaded by python-dotenv with interpolation on.
  Additionally refuses ``'`` and ``\\`` (no escape exists inside sh single quotes)
  and ``${`` (python-dotenv would expand it).
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from typing import Final

from colibri_vault.errors import UnsafeValue

KEY_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvFileFormat(enum.Enum):
    """Which readers the written .env must mean the same thing to."""

    DOTENV = "dotenv"
    SHELL = "shell"


def is_valid_key(key: str) -> bool:
    """Whether ``key`` matches ``^[A-Za-z_][A-Za-z0-9_]*$`` (ASCII only)."""
    return KEY_PATTERN.fullmatch(key) is not None and key.isascii()


def check_value(key: str, value: str, fmt: EnvFileFormat) -> None:
    """Raise :class:`UnsafeValue` (naming the key, never the value) if ``value`` cannot
    be written unambiguously in ``fmt``."""
    if "\x00" in value:
        raise UnsafeValue(key, "contains a NUL character")
    if "\r" in value:
        raise UnsafeValue(key, "contains a carriage return")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeValue(key, "is not valid Unicode text (a lone surrogate)") from None
    if value.endswith("\\"):
        # python-dotenv before 1.2.3 reads the escaped final backslash and the closing
        # quote as an escaped quote, and then the rest of the file as this value.
        raise UnsafeValue(key, "ends with a backslash")
    if fmt is not EnvFileFormat.DOTENV:  # SHELL, or (fail closed) anything that is not DOTENV
        if "'" in value:
            raise UnsafeValue(key, "contains a single quote (')")
        if "\\" in value:
            raise UnsafeValue(key, "contains a backslash")
        if "${" in value:
            raise UnsafeValue(key, "contains '${' (python-dotenv would expand it)")


def quote_value(value: str) -> str:
    """``value`` as a single-quoted dotenv value (no validation: see check_value)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render_env_file(
    variables: Mapping[str, str], fmt: EnvFileFormat = EnvFileFormat.DOTENV
) -> bytes:
    """The .env content for ``variables``, keys sorted, UTF-8, one ``KEY='value'`` a line.

    Raises :class:`~colibri_vault.errors.UnsafeValue` for a value ``fmt`` cannot hold
    and ``ValueError`` for an invalid key (callers validate keys first, with names).
    """
    lines = []
    for key in sorted(variables):
        if not is_valid_key(key):
            raise ValueError(f"invalid variable name {key!r}")
        value = variables[key]
        check_value(key, value, fmt)
        lines.append(f"{key}={quote_value(value)}\n")
    return "".join(lines).encode("utf-8")


def content_hash(content: bytes) -> str:
    """``sha256:<hex>`` of the file content, for the audit trail."""
    return "sha256:" + hashlib.sha256(content).hexdigest()
