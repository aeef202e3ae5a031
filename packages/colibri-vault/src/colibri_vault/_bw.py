"""Running the real ``bw`` CLI safely, and reading its ``--response`` envelopes.

Every call: an empty environment plus only what bw needs (secrets only there, never
in argv), stdin at /dev/null, ``--nointeraction --response``, a new session (its own
process group) and a timeout that kills the whole group. See reference/bw-cli.md.
"""

from __future__ import annotations

import json
import logging
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from colibri_vault._secret import Secret, redact
from colibri_vault.errors import (
    BadApiKey,
    BadMasterPassword,
    BwCommandFailed,
    BwError,
    BwTimeout,
    BwUnavailable,
    InsecureUrl,
    NotLoggedIn,
    UnparsableOutput,
    VaultLocked,
    VaultNetworkError,
    VaultServerError,
)

log = logging.getLogger("colibri_vault")

SESSION_KEY: Final = re.compile(r"[A-Za-z0-9+/]{86}==")
_MESSAGE_CAP: Final = 300
_KILL_WAIT: Final = 5.0
_REAP_POLL: Final = 0.02
_WAITID: Final = hasattr(os, "waitid")
# A duplicate key is named in the error only if it looks like one of bw's own schema
# keys ("name", "value", "collectionIds"): anything else might be data, so not shown.
_SCHEMA_KEY: Final = re.compile(r"[A-Za-z][A-Za-z0-9]{0,31}")

# (substring of bw's message, error class); first match wins. Texts from
# reference/bw-cli.md and fixtures/bw-2026.6.0/outcomes.json.
_CLASSIFY: Final[Sequence[tuple[str, type[BwError]]]] = (
    ("You are not logged in", NotLoggedIn),
    ("Vault is locked", VaultLocked),
    ("Insecure URL not allowed", InsecureUrl),
    ("Organization API Key currently not supported", BadApiKey),
    ("client_id or client_secret is incorrect", BadApiKey),
    ("Invalid client_id", BadApiKey),
    ("Incorrect client_secret", BadApiKey),
    ("client_id is required", BadApiKey),
    ("client_secret is required", BadApiKey),
    ("invalid_client", BadApiKey),
    ("Cryptography error", BadMasterPassword),
    ("decryption operation failed", BadMasterPassword),
    ("Master password is required", BadMasterPassword),
    ("Invalid master password", BadMasterPassword),
    ("FetchError", VaultNetworkError),
    ("ECONNREFUSED", VaultNetworkError),
    ("ENOTFOUND", VaultNetworkError),
    ("EAI_AGAIN", VaultNetworkError),
    ("ETIMEDOUT", VaultNetworkError),
    ("ECONNRESET", VaultNetworkError),
    ("socket hang up", VaultNetworkError),
    ("certificate", VaultNetworkError),
    ("Syncing failed", VaultServerError),
    ("Internal error", VaultServerError),
    ("Internal Server Error", VaultServerError),
    ("Service Unavailable", VaultServerError),
    ("Bad Gateway", VaultServerError),
)


def classify(command: str, message: str, exit_code: int) -> BwError:
    """The typed error for bw's (already redacted) message; long messages keep their end
    (a stack trace's last line says what went wrong)."""
    shown = message if len(message) <= _MESSAGE_CAP else "..." + message[-_MESSAGE_CAP:]
    for needle, cls in _CLASSIFY:
        if needle in message:
            return cls(command, shown)
    return BwCommandFailed(command, shown, exit_code)


def _tidy(text: str, secrets: list[str]) -> str:
    """bw's message on one line with secrets masked (classify() caps what it shows)."""
    text = redact(text, secrets)
    # The wrong-password case prints several "ERROR bitwarden_..." lines; the last
    # line is the message itself.
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


@attrs.frozen
class BwRunner:
    """Runs ``bw`` sub-commands against one appdata dir."""

    executable: Path
    appdata_dir: Path
    search_path: str
    timeout: float
    ca_cert: Path | None = None
    output_cap: int = 64 * 1024 * 1024

    def base_env(self) -> dict[str, str]:
        env = {
            "PATH": self.search_path,
            "HOME": str(self.appdata_dir),
            "BITWARDENCLI_APPDATA_DIR": str(self.appdata_dir),
            "LANG": "C.UTF-8",
        }
        if self.ca_cert is not None:
            env["NODE_EXTRA_CA_CERTS"] = str(self.ca_cert)
        return env

    def call(
        self,
        args: Sequence[str],
        secrets: Mapping[str, Secret] | None = None,
        *,
        known_secrets: Sequence[Secret] = (),
    ) -> Any:
        """Run ``bw ARGS --nointeraction --response``; return the envelope's ``data``.

        ``secrets`` go into the child's environment only. Raises a ``BwError`` leaf for
        any failure, with every value of ``secrets`` and ``known_secrets`` masked.
        """
        command = "bw " + " ".join(args)
        argv = [str(self.executable), *args, "--nointeraction", "--response"]
        env = self.base_env()
        masks = [s.reveal() for s in known_secrets]
        for name, secret in (secrets or {}).items():
            env[name] = secret.reveal()
            masks.append(secret.reveal())
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=str(self.appdata_dir),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise BwUnavailable(command, f"{type(exc).__name__}: {exc.strerror}") from None
        try:
            out, err = _collect(proc, self.timeout, self.output_cap)
        except subprocess.TimeoutExpired:
            log.warning("%s: killed after %.3g s without an answer", command, self.timeout)
            raise BwTimeout(command, self.timeout) from None
        except _TooMuchOutput:
            raise UnparsableOutput(command, f"more than {self.output_cap} bytes") from None
        finally:
            # The whole group goes: on a timeout or flood bw itself, and in every case
            # any child left in its group (it has none normally).
            _kill_group(proc)
        code = proc.returncode
        log.debug("%s -> exit %d in %.2f s", command, code, time.monotonic() - started)
        return _read_envelope(command, code, out, err, masks)


class _TooMuchOutput(Exception):
    pass


def _collect(proc: subprocess.Popen[bytes], timeout: float, cap: int) -> tuple[bytes, bytes]:
    """stdout and stderr until both close and the process exits, within ``timeout``
    seconds and ``cap`` bytes each (subprocess.communicate has no size cap)."""
    assert proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + timeout
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout)
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = buffers[key.fd]
                buffer += chunk
                if len(buffer) > cap:
                    raise _TooMuchOutput
    _await_exit_unreaped(proc, deadline, timeout)
    return bytes(buffers[proc.stdout.fileno()]), bytes(buffers[proc.stderr.fileno()])


def _await_exit_unreaped(proc: subprocess.Popen[bytes], deadline: float, timeout: float) -> None:
    """Wait until bw has exited, but leave it a zombie: while it is unreaped its pid
    (which is its process group's id) cannot be given to another process, so
    :func:`_kill_group` can signal the group without hitting a stranger that got the
    pid after bw was reaped (an agent spawned into its own session, say)."""
    if not _WAITID:  # macOS before Python 3.13: no way to wait without reaping
        proc.wait(timeout=max(deadline - time.monotonic(), 0.001))
        return
    pause = 0.001
    while True:
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return  # already reaped (not by us); _kill_group's wait copes
        if time.monotonic() >= deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        time.sleep(pause)
        pause = min(pause * 2, _REAP_POLL)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL bw's process group, reap bw, close our ends of its pipes.

    bw must not have been reaped yet (see :func:`_await_exit_unreaped`)."""
    # Once bw is reaped its pid may belong to someone else. Without waitid (macOS
    # before Python 3.13) bw is always reaped first; its group is signalled all the
    # same there, or what bw left running would live on (the older, racy order).
    if proc.returncode is None or not _WAITID:
        _signal_group(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=_KILL_WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=_KILL_WAIT)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


class _DuplicateKey(Exception):
    """A JSON object named ``key`` twice (carries the key only, never a value)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for bw's output: the object as a dict, or ``_DuplicateKey``.

    Plain ``json.loads`` keeps the last of two equal keys, so ``{"name":"A","name":"B"}``
    would be checked and used as "B" while another reader (or the web vault) sees "A".
    ``dict(pairs)`` runs in C; the slow scan runs only once a duplicate is certain.
    """
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _shown_key(key: str, masks: list[str]) -> str:
    if _SCHEMA_KEY.fullmatch(key) and redact(key, masks) == key:
        return repr(key)
    return f"of {len(key)} characters (not shown)"


def _read_envelope(command: str, code: int, out: bytes, err: bytes, masks: list[str]) -> Any:
    try:
        text = out.decode("utf-8").strip()
    except UnicodeDecodeError:
        text = None
    envelope: Any = None
    duplicate: str | None = None
    if text:
        try:
            envelope = json.loads(text, object_pairs_hook=_unique_keys)
        except _DuplicateKey as exc:
            duplicate = exc.key
        except (ValueError, RecursionError):  # RecursionError: nested deeper than json can
            envelope = None
    if duplicate is not None:  # raised outside the handler: no __context__ to carry along
        # Whatever the exit status: an answer that two readers can read two ways is
        # refused, not classified.
        raise UnparsableOutput(
            command,
            f"JSON with a key given twice in one object: key {_shown_key(duplicate, masks)}",
        )
    stderr = _tidy(err.decode("utf-8", "replace"), masks)
    if not (isinstance(envelope, dict) and isinstance(envelope.get("success"), bool)):
        if code != 0:
            raise classify(command, stderr or "(no message)", code)
        if not out:
            what = "no output"
        elif text is None:
            what = "output that is not UTF-8"
        elif not text:
            what = "only whitespace (a lone newline)"
        elif envelope is None:
            what = "output that is not JSON"
        else:
            what = "JSON without a response envelope"
        raise UnparsableOutput(command, what)
    if envelope["success"] is not True:
        message = envelope.get("message")
        message = _tidy(message, masks) if isinstance(message, str) else stderr
        # exit 0 with success false is what --cleanexit does: still a failure.
        raise classify(command, message or "(no message)", code)
    if code != 0:
        raise UnparsableOutput(command, f"a success envelope with exit status {code}")
    return envelope.get("data")


# -- reading the data of each answer --------------------------------------------------------


@attrs.frozen
class BwStatus:
    """What ``bw status`` reports (no network call)."""

    server_url: str | None
    status: str
    user_id: str | None
    user_email: str | None


def parse_status(command: str, data: Any) -> BwStatus:
    template = data.get("template") if isinstance(data, dict) else None
    if not isinstance(template, dict):
        raise UnparsableOutput(command, "no status template")
    status = template.get("status")
    if status not in ("unauthenticated", "locked", "unlocked"):
        raise UnparsableOutput(command, f"unknown status {status!r}")
    url = template.get("serverUrl")
    user_id = template.get("userId")
    email = template.get("userEmail")
    if not (url is None or isinstance(url, str)):
        raise UnparsableOutput(command, "serverUrl is not a string")
    return BwStatus(
        server_url=url,
        status=status,
        user_id=user_id if isinstance(user_id, str) else None,
        user_email=email if isinstance(email, str) else None,
    )


def parse_message(command: str, data: Any, expected_title: str | None = None) -> dict[str, Any]:
    if not (isinstance(data, dict) and data.get("object") == "message"):
        raise UnparsableOutput(command, "no message object")
    if expected_title is not None and data.get("title") != expected_title:
        raise UnparsableOutput(command, f"title is not {expected_title!r}")
    return data


def parse_session_key(command: str, data: Any) -> Secret:
    message = parse_message(command, data)
    raw = message.get("raw")
    if not (isinstance(raw, str) and SESSION_KEY.fullmatch(raw)):
        raise UnparsableOutput(command, "no session key of the expected form")
    return Secret(raw)


def parse_list(command: str, data: Any) -> list[dict[str, Any]]:
    if not (isinstance(data, dict) and data.get("object") == "list"):
        raise UnparsableOutput(command, "no list object")
    entries = data.get("data")
    if not (isinstance(entries, list) and all(isinstance(e, dict) for e in entries)):
        raise UnparsableOutput(command, "list data is not a list of objects")
    return entries


def normalize_server_url(url: str | None) -> str | None:
    """A server URL as bw stores and reports it (``bw status``'s ``serverUrl``).

    Mirrors the CLI's own rules (``config server`` and ``formatUrl`` in
    @bitwarden/cli 2026.6.0): the official cloud spellings read as ``None``, trailing
    slashes are dropped, ``https://`` is prefixed when neither ``http://`` nor
    ``https://`` starts the URL, then surrounding whitespace is trimmed.
    """
    if url is None or url in ("null", "bitwarden.com", "https://bitwarden.com"):
        return None
    if url == "":
        return None
    url = re.sub(r"/+$", "", url)
    if not url.startswith(("http://", "https://")):
        url = "https://" + url
    return url.strip()
