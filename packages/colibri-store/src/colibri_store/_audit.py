"""The audit chain: canonical JSON, event hashes, and Merkle inclusion proofs.

``hash = sha256(prev_hash || canonical JSON of the event)``, where the event is
``{seq, at, actor, verb, subject, payload}``. Inclusion proofs follow RFC 6962
(Certificate Transparency): leaves are the event hashes, ``leaf = H(0x00 || h)``,
``node = H(0x01 || left || right)``, so a proof is checked with no database.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Any

from colibri_store._models import AuditEvent, InclusionProof

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f-\U0010ffff]*')


def json_str(value: str) -> str:
    """A string's canonical JSON; plain text needs no escaping, so skip json.dumps."""
    if _PLAIN.fullmatch(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


_json_str = functools.lru_cache(maxsize=4096)(json_str)  # actors, verbs, timestamps repeat


def body_parts(at: str, actor: str, verb: str, subject: str, payload_json: str) -> tuple[str, str]:
    """The canonical JSON of an event, split around its ``seq`` (which PostgreSQL fills in)."""
    return (
        f'{{"actor":{_json_str(actor)},"at":{_json_str(at)},"payload":{payload_json},"seq":',
        f',"subject":{_json_str(subject)},"verb":{_json_str(verb)}}}',
    )


def event_hash(
    prev_hash: str, seq: int, at: str, actor: str, verb: str, subject: str, payload_json: str
) -> str:
    """The chain hash of one event; ``payload_json`` is the payload's canonical JSON."""
    pre, post = body_parts(at, actor, verb, subject, payload_json)
    return hashlib.sha256(f"{prev_hash}{pre}{seq}{post}".encode()).hexdigest()


def chain(
    seq: int, prev_hash: str, at: str, actor: str, events: list[tuple[str, str, str]]
) -> list[tuple[int, str, str, str, str, str, str, str]]:
    """Rows ``(seq, at, actor, verb, subject, payload, prev_hash, hash)`` for ``events``
    (``(verb, subject, payload json)``), chained on from ``(seq, prev_hash)``.

    The same hashes as :func:`event_hash`, with the parts shared by a transaction's
    events (actor, time) encoded once.
    """
    head = f'{{"actor":{_json_str(actor)},"at":{_json_str(at)},"payload":'
    sha256 = hashlib.sha256
    plain = _PLAIN.fullmatch
    rows = []
    for verb, subject, payload in events:
        seq += 1
        subject_json = f'"{subject}"' if plain(subject) else json_str(subject)
        tail = f'"subject":{subject_json},"verb":{_json_str(verb)}}}'
        digest = sha256(f'{prev_hash}{head}{payload},"seq":{seq},{tail}'.encode()).hexdigest()
        rows.append((seq, at, actor, verb, subject, payload, prev_hash, digest))
        prev_hash = digest
    return rows


def chain_one(
    seq: int | None,
    prev_hash: str | None,
    at: str,
    actor: str,
    verb: str,
    subject: str,
    payload: str,
) -> tuple[int, str, str, str, str, str, str, str]:
    """The row of one event chained on from the head ``(seq, prev_hash)`` (both None:
    the chain is empty): :func:`chain` for a single event, with the fewest steps.

    ``at`` is the store's own timestamp text (digits and ``-:.TZ``), which JSON
    encodes as it is.
    """
    if seq is None or prev_hash is None:
        seq, prev_hash = 0, GENESIS_HASH
    seq += 1
    subject_json = f'"{subject}"' if _PLAIN.fullmatch(subject) else json_str(subject)
    digest = hashlib.sha256(
        f'{prev_hash}{{"actor":{_json_str(actor)},"at":"{at}","payload":{payload},'
        f'"seq":{seq},"subject":{subject_json},"verb":{_json_str(verb)}}}'.encode()
    ).hexdigest()
    return (seq, at, actor, verb, subject, payload, prev_hash, digest)


def recompute(event: AuditEvent) -> str:
    """The hash ``event`` should carry, from its own fields."""
    return event_hash(
        event.prev_hash,
        event.seq,
        event.at,
        event.actor,
        event.verb,
        event.subject,
        canonical_json(event.payload),
    )


def _leaf(h: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + h).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash of the given leaf data."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = [_leaf(h) for h in leaves]
    # Bottom-up: an odd node at the end is promoted unchanged, which gives the
    # same tree as RFC 6962's recursive split at the largest power of two.
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 audit path for leaf ``index``."""
    n = len(leaves)
    if n <= 1:
        return []
    k = _largest_power_of_two_below(n)
    if index < k:
        return [*audit_path(index, leaves[:k]), merkle_root(leaves[k:])]
    return [*audit_path(index - k, leaves[k:]), merkle_root(leaves[:k])]


def root_from_path(index: int, size: int, leaf_data: bytes, path: list[bytes]) -> bytes | None:
    """The root implied by an audit path (RFC 9162 2.1.3.2), or None if the path is malformed."""
    if index >= size or index < 0:
        return None
    fn, sn = index, size - 1
    r = _leaf(leaf_data)
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def make_proof(event: AuditEvent, index: int, hashes: list[str]) -> InclusionProof:
    """A proof that ``event`` (at position ``index``) is in the log of ``hashes``."""
    leaves = [bytes.fromhex(h) for h in hashes]
    return InclusionProof(
        seq=event.seq,
        leaf_index=index,
        tree_size=len(leaves),
        event_hash=event.hash,
        path=tuple(p.hex() for p in audit_path(index, leaves)),
        root=merkle_root(leaves).hex(),
    )


def verify_inclusion(proof: InclusionProof, event: AuditEvent, root: str | None = None) -> bool:
    """Check, without any database, that ``event`` is in the log whose Merkle root is ``root``.

    ``root`` defaults to the proof's own root; pass a root you obtained independently
    (e.g. published earlier) to make the check meaningful against a hostile store.
    """
    if event.seq != proof.seq or recompute(event) != event.hash or event.hash != proof.event_hash:
        return False
    try:
        path = [bytes.fromhex(p) for p in proof.path]
        leaf = bytes.fromhex(event.hash)
    except ValueError:
        return False
    computed = root_from_path(proof.leaf_index, proof.tree_size, leaf, path)
    return computed is not None and computed.hex() == (root if root is not None else proof.root)
