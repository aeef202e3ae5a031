"""Replace registered secret values in every string a pane keeps or exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

MASK = "[masked]"


class Masker:
    """Masks a fixed set of secret values; longest match wins, replacements are never rescanned."""

    __slots__ = ("_pattern", "max_len", "secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Each secret also in its JSON-escaped forms: text kept as JSON (a structured
        # error, tool arguments) holds a secret with '"', '\\' or a control character
        # escaped, and a secret registered after that text was kept must still match.
        found = set(secrets)
        found |= {json.dumps(v, ensure_ascii=a)[1:-1] for v in found for a in (False, True)}
        self.secrets = tuple(sorted(found, key=lambda s: (-len(s), s)))
        self.max_len = len(self.secrets[0]) if self.secrets else 0
        # One alternation, longest first: a single left-to-right pass, so a
        # replacement is never matched again and overlapping secrets mask fully.
        self._pattern = (
            re.compile("|".join(re.escape(s) for s in self.secrets)) if self.secrets else None
        )

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        """``text`` with every secret value replaced by ``[masked]``."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def mask_optional(self, text: str | None) -> str | None:
        return None if text is None else self.mask(text)

    def mask_stream(self, text: str) -> tuple[str, str]:
        """Split streamed ``text`` into (masked text safe to keep, raw tail to hold back).

        The tail is the shortest suffix that could still be the start of a secret
        completed by the next piece: at most ``max_len - 1`` characters, and
        never inside a secret already found.
        """
        if self._pattern is None:
            return text, ""
        cut = len(text) - (self.max_len - 1)
        pieces: list[str] = []
        last = 0
        for match in self._pattern.finditer(text):
            pieces.append(text[last : match.start()])
            pieces.append(MASK)
            last = match.end()
        cut = max(cut, last, 0)
        # Hold back only from the first position whose suffix is a secret's prefix.
        while cut < len(text) and not self.is_secret_prefix(text[cut:]):
            cut += 1
        pieces.append(text[last:cut])
        return "".join(pieces), text[cut:]

    def is_secret_prefix(self, text: str) -> bool:
        """True if ``text`` is a proper prefix of a registered secret."""
        return any(len(s) > len(text) and s.startswith(text) for s in self.secrets)

    def mask_held(self, held: str) -> str:
        """Export form of a held-back tail: a possible secret prefix is masked too."""
        if not held or self._pattern is None:
            return held
        for i in range(len(held)):
            if self.is_secret_prefix(held[i:]):
                return held[:i] + MASK
        return held

    def mask_value(self, value: Any) -> Any:
        """A JSON-like value with every string in it (keys too) masked."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {self.mask(str(k)): self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_value(v) for v in value]
        return value


class TextTail:
    """The last ``limit`` characters of streamed text, masked, with secrets split across pieces.

    ``kept`` is already masked. ``held`` is raw text shorter than the longest
    secret that might be the start of one; it is never exported unmasked.
    """

    __slots__ = ("held", "kept", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = ""
        self.held = ""

    def set(self, text: str, masker: Masker) -> None:
        """Replace the tail with the end of a complete text."""
        self.kept = masker.mask(text)[-self.limit :]
        self.held = ""

    def append(self, piece: str, masker: Masker) -> None:
        """Add a streamed piece (a delta)."""
        if masker:
            safe, self.held = masker.mask_stream(self.held + piece)
            kept = self.kept + safe
        else:
            kept = self.kept + self.held + piece
            self.held = ""
        self.kept = kept[-self.limit :] if len(kept) > self.limit else kept

    def remask(self, masker: Masker) -> None:
        """Apply a newly registered secret to what is kept."""
        safe, self.held = masker.mask_stream(self.kept + self.held)
        self.kept = safe[-self.limit :]

    def export(self, masker: Masker) -> str:
        text = self.kept + masker.mask_held(self.held)
        return text[-self.limit :]
