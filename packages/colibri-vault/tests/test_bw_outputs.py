"""The real CLI's captured outputs (tests/data, from fixtures/bw-2026.6.0) through the
real parser, and the fake bw checked against them."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from typing import Any

import pytest
from conftest import ACCOUNT, DATA, SERVER, World
from hypothesis import given
from hypothesis import strategies as st

from colibri_vault import Secret, normalize_server_url
from colibri_vault._bw import _read_envelope, parse_list, parse_session_key, parse_status
from colibri_vault.errors import (
    BadApiKey,
    BadMasterPassword,
    BwCommandFailed,
    BwError,
    InsecureUrl,
    NotLoggedIn,
    UnparsableOutput,
    VaultLocked,
    VaultNetworkError,
    VaultServerError,
)

OUTCOMES: list[dict[str, Any]] = json.loads((DATA / "outcomes.json").read_text())

# What each real failure text must become (first matching prefix wins).
EXPECTED = [
    ("You are not logged in.", NotLoggedIn),
    ("Vault is locked.", VaultLocked),
    ("Invalid API Key; Organization API Key", BadApiKey),
    ("client_id", BadApiKey),
    ("client_secret is required", BadApiKey),
    ("Incorrect client_secret", BadApiKey),
    ("Invalid client_id", BadApiKey),
    ("FetchError", VaultNetworkError),
    ("Error: Insecure URL", InsecureUrl),
    ("ERROR bitwarden_crypto", BadMasterPassword),
    ("Master password is required", BadMasterPassword),
    ("Warning: Provided passwordenv", BadMasterPassword),
    ("Syncing failed: FetchError", VaultNetworkError),
    ("Syncing failed: Internal error", VaultServerError),
    ("", BwCommandFailed),
]


def _message(outcome: dict[str, Any]) -> str:
    stdout = outcome["stdout"]
    if stdout.startswith('{"success":false'):
        return str(json.loads(stdout)["message"])
    return str(outcome["stderr"])


FAILURES = [o for o in OUTCOMES if o["exit_code"] != 0]
RESPONSES_OK = [o for o in OUTCOMES if o["exit_code"] == 0 and "--response" in o["command"]]


@pytest.mark.parametrize("outcome", FAILURES, ids=lambda o: o["capture"])
def test_every_captured_failure_is_classified(outcome: dict[str, Any]) -> None:
    message = _message(outcome)
    expected = next(cls for prefix, cls in EXPECTED if message.startswith(prefix))
    with pytest.raises(BwError) as info:
        _read_envelope(
            outcome["command"],
            outcome["exit_code"],
            outcome["stdout"].encode(),
            outcome["stderr"].encode(),
            [],
        )
    assert type(info.value) is expected


@pytest.mark.parametrize("outcome", RESPONSES_OK, ids=lambda o: o["capture"])
def test_every_captured_success_envelope_parses(outcome: dict[str, Any]) -> None:
    data = _read_envelope(outcome["command"], 0, outcome["stdout"].encode(), b"", [])
    assert isinstance(data, dict)


@pytest.mark.parametrize(
    "outcome",
    [o for o in OUTCOMES if o["exit_code"] == 0 and o["stdout"] in ("", "\n")],
    ids=lambda o: o["capture"],
)
def test_captured_exit_0_without_output_is_unparsable(outcome: dict[str, Any]) -> None:
    # The interactive trap (a lone newline) and --cleanexit (nothing at all).
    with pytest.raises(UnparsableOutput):
        _read_envelope(
            outcome["command"], 0, outcome["stdout"].encode(), outcome["stderr"].encode(), []
        )


def test_captured_status_envelope() -> None:
    data = _read_envelope(
        "bw status", 0, (DATA / "status_response_envelope.json").read_bytes(), b"", []
    )
    status = parse_status("bw status", data)
    assert (status.status, status.server_url, status.user_id) == (
        "unauthenticated",
        "https://vault.example.test",
        None,
    )


def test_captured_unlock_envelope_gives_the_session_key() -> None:
    outcome = next(o for o in OUTCOMES if o["capture"] == "fake/f50_unlock_ok_response.txt")
    data = _read_envelope("bw unlock", 0, outcome["stdout"].encode(), b"", [])
    key = parse_session_key("bw unlock", data)
    assert isinstance(key, Secret) and key.reveal() in outcome["stdout"]
    assert len(key.reveal()) == 88


def test_captured_list_envelope() -> None:
    data = _read_envelope(
        "bw list items", 0, (DATA / "list_items_response_envelope.json").read_bytes(), b"", []
    )
    items = parse_list("bw list items", data)
    assert [i["name"] for i in items] == ["beta-llm-keys"]


def test_bw_messages_are_masked_and_capped() -> None:
    secret = "sup3r-s3cret-value"
    stderr = f"FetchError: something about {secret} " + "x" * 1000
    with pytest.raises(VaultNetworkError) as info:
        _read_envelope("bw sync", 1, b"", stderr.encode(), [secret])
    assert secret not in str(info.value)
    assert len(info.value.bw_message) < 400


def test_secret_in_an_error_envelope_is_masked() -> None:
    secret = "sup3r-s3cret-value"
    body = json.dumps({"success": False, "message": f"Incorrect client_secret {secret}"})
    with pytest.raises(BadApiKey) as info:
        _read_envelope("bw login --apikey", 1, body.encode(), b"", [secret])
    assert secret not in str(info.value)
    assert "<redacted>" in str(info.value)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://vault.example.test", "https://vault.example.test"),
        ("https://vault.example.test///", "https://vault.example.test"),
        ("vault.example.test/", "https://vault.example.test"),
        ("vault.example.test:8443/path/", "https://vault.example.test:8443/path"),
        ("http://vault.example.test", "http://vault.example.test"),
        ("bitwarden.com", None),
        ("https://bitwarden.com", None),
        ("null", None),
        ("", None),
        (None, None),
    ],
)
def test_server_url_normalisation(given: str | None, stored: str | None) -> None:
    assert normalize_server_url(given) == stored


def _run_fake(
    world: World, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    world.save()
    full = {"BITWARDENCLI_APPDATA_DIR": str(world.appdata), **(env or {})}
    return subprocess.run(
        [str(world.bw), *args], env=full, capture_output=True, timeout=30, check=False
    )


def test_fake_status_is_byte_identical_to_the_real_one(world: World) -> None:
    proc = _run_fake(world, "status", "--nointeraction")
    assert proc.stdout == (DATA / "status_unauthenticated_fresh_no_server.json").read_bytes()
    world.scenario["initial"] = {"server": SERVER, "logged_in": True, "user_id": ACCOUNT["user_id"]}
    (world.appdata / "fake-bw-state.json").unlink(missing_ok=True)
    world.scenario["initial"]["last_sync"] = "2026-11-23T11:31:49.176Z"
    real = json.loads((DATA / "status_locked.json").read_text())
    fake = json.loads(_run_fake(world, "status", "--nointeraction").stdout)
    assert list(fake) == list(real)
    assert fake["status"] == "locked"


def test_fake_status_envelope_is_byte_identical(world: World) -> None:
    world.scenario["initial"] = {"server": "https://vault.example.test", "logged_in": False}
    proc = _run_fake(world, "status", "--response", "--nointeraction")
    assert proc.stdout == (DATA / "status_response_envelope.json").read_bytes()


def test_fake_errors_match_the_real_envelopes(world: World) -> None:
    world.scenario["initial"] = {"server": SERVER, "logged_in": True, "user_id": ACCOUNT["user_id"]}
    proc = _run_fake(world, "list", "items", "--response", "--nointeraction")
    assert proc.returncode == 1
    assert proc.stdout == (DATA / "error_response_envelope_locked.json").read_bytes()
    proc = _run_fake(world, "list", "items", "--nointeraction")
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, b"", b"Vault is locked.")


def test_fake_lists_like_the_real_cli(world: World) -> None:
    world.scenario["initial"] = {"server": SERVER, "logged_in": True, "user_id": ACCOUNT["user_id"]}
    world.scenario["vault"] = __import__("conftest").fixture_vault()
    env = {"BW_PASSWORD": ACCOUNT["master_password"]}
    unlock = _run_fake(
        world, "unlock", "--passwordenv", "BW_PASSWORD", "--raw", "--nointeraction", env=env
    )
    key = unlock.stdout.decode()
    proc = _run_fake(
        world,
        "list",
        "items",
        "--collectionid",
        "c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8",
        "--nointeraction",
        env={"BW_SESSION": key},
    )
    assert proc.stdout == (DATA / "list_items_collection.json").read_bytes()
    proc = _run_fake(world, "list", "organizations", "--nointeraction", env={"BW_SESSION": key})
    assert proc.stdout == (DATA / "list_organizations.json").read_bytes()


@given(st.text(st.characters(codec="utf-8"), max_size=30))
def test_normalisation_is_stable_once_it_names_a_server(url: str) -> None:
    # What bw stores (normalised once) must read back as itself, or server-match
    # would flip-flop between runs.
    once = normalize_server_url(url.strip())
    if once is None:
        return
    try:
        host = urllib.parse.urlsplit(once).hostname
    except ValueError:
        return
    if host:
        assert normalize_server_url(once) == once


@pytest.mark.parametrize(
    "url", ["/", "https:///path", "https://:8443", " https://vault.example.test/ "]
)
def test_server_url_without_a_host_is_refused(world: World, url: str) -> None:
    from colibri_vault.errors import VaultConfigError

    outcome = world.attempt("tenant-alpha", vault=world.vault_settings(server_url=url))
    if url.strip() == "https://vault.example.test/":
        assert not isinstance(outcome, Exception)
    else:
        assert isinstance(outcome, VaultConfigError)
