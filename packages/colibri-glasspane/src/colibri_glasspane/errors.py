"""Errors raised by colibri-glasspane.

Every error is a ``GlasspaneError``; catch that one root to handle them all::

    GlasspaneError
    ├── UnknownPane      (also LookupError)  no pane with that id
    ├── DuplicatePane    (also ValueError)   a pane with that id is already open
    ├── InvalidArgument  (also ValueError)   a bad value passed to the API
    └── SnapshotError    (also ValueError)   a snapshot document that cannot be read

Malformed agent output is never an error: it is counted on the pane.
"""

from __future__ import annotations


class GlasspaneError(Exception):
    """Root of every error colibri-glasspane raises."""


class UnknownPane(GlasspaneError, LookupError):
    """No pane with this id is open."""

    def __init__(self, pane_id: str) -> None:
        self.pane_id = pane_id
        super().__init__(
            f"no pane {pane_id!r} is open; open it with Glasspane.open_pane() before feeding it"
        )


class DuplicatePane(GlasspaneError, ValueError):
    """A pane with this id is already open."""

    def __init__(self, pane_id: str) -> None:
        self.pane_id = pane_id
        super().__init__(f"pane {pane_id!r} is already open; close it first or choose another id")


class InvalidArgument(GlasspaneError, ValueError):
    """A value passed to the API is not acceptable; the message names it."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"{name}: {message}")


class SnapshotError(GlasspaneError, ValueError):
    """A snapshot document is not valid JSON or not a snapshot this version can read."""

    def __init__(self, message: str) -> None:
        super().__init__(f"cannot read glasspane snapshot: {message}")
