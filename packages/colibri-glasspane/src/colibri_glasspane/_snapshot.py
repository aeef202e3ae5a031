"""Snapshot documents: JSON out, and back in with every field checked."""

from __future__ import annotations

from typing import Any

import msgspec

from colibri_glasspane._model import SNAPSHOT_VERSION, Pane, Snapshot
from colibri_glasspane.errors import SnapshotError


class _Head(msgspec.Struct):
    version: Any = None


_HEAD_DECODER = msgspec.json.Decoder(_Head)
_PANES_DECODER = msgspec.json.Decoder(tuple[Pane, ...])


def snapshot_to_json(snapshot: Snapshot) -> str:
    document = {
        "version": snapshot.version,
        "host": snapshot.host,
        "generated_at": snapshot.generated_at,
        "panes": [msgspec.to_builtins(pane) for pane in snapshot.panes],
    }
    return msgspec.json.encode(document).decode()


class _Document(msgspec.Struct):
    version: int
    host: str
    generated_at: float
    panes: msgspec.Raw


def snapshot_from_json(document: str | bytes) -> Snapshot:
    if not isinstance(document, str | bytes):
        raise SnapshotError(f"expected a str or bytes document, got {type(document).__name__}")
    try:
        head = _HEAD_DECODER.decode(document)
    except (
        msgspec.DecodeError,
        msgspec.ValidationError,
        UnicodeDecodeError,
        RecursionError,
    ) as exc:
        raise SnapshotError(f"not a JSON object ({exc})") from None
    if head.version != SNAPSHOT_VERSION or isinstance(head.version, bool):
        raise SnapshotError(
            f"version {head.version!r} is not supported; this colibri-glasspane reads "
            f"version {SNAPSHOT_VERSION}: produce the snapshot with a matching version"
        )
    try:
        whole = msgspec.json.decode(document, type=_Document)
    except msgspec.ValidationError as exc:
        raise SnapshotError(f"invalid field: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise SnapshotError(str(exc)) from None
    try:
        panes = _PANES_DECODER.decode(whole.panes)
    except msgspec.ValidationError as exc:
        message = str(exc).replace("`$", "`$.panes", 1)
        raise SnapshotError(f"invalid field: {message}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise SnapshotError(f"invalid pane: {exc}") from None
    ids = [pane.id for pane in panes]
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        raise SnapshotError("panes must have unique ids in sorted order")
    return Snapshot(
        version=whole.version, host=whole.host, generated_at=whole.generated_at, panes=panes
    )
