"""A string that never shows itself in a repr, str, log line or traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from colibri_vault.errors import VaultConfigError

_MASK: Final = "<redacted>"


class Secret:
    """A secret string (API key, master password, session key).

    ``repr()``, ``str()`` and ``format()`` print ``Secret(<redacted>)``; only
    :meth:`reveal` gives the value, and colibri-vault calls it solely to build a
    child process's environment. Equality compares values in constant time.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        self._value = value

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Secret:
        """Read a secret from a file (one trailing newline is dropped).

        A file that is not UTF-8 raises :class:`~colibri_vault.errors.VaultConfigError`
        naming the path only: the ``UnicodeDecodeError`` it replaces carries the whole
        file content in its ``args`` (and so in its repr).
        """
        text: str | None
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None:  # raised outside the handler: no __context__ holding the bytes
            raise VaultConfigError("secret file", f"{os.fspath(path)} is not UTF-8 text")
        return cls(text[:-1] if text.endswith("\n") else text)

    @classmethod
    def from_env(cls, name: str) -> Secret:
        """Read a secret from this process's environment; KeyError names the variable."""
        return cls(os.environ[name])

    def reveal(self) -> str:
        """The value itself. Never log it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        import hmac

        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __reduce__(self) -> str | tuple[object, ...]:
        # Pickling would copy the value somewhere we do not control.
        raise TypeError("Secret cannot be pickled")


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of each non-empty secret replaced by a mask."""
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(value, _MASK)
    return text
