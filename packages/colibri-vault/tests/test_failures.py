"""Fail-closed: every way bw or the vault data can go wrong raises a typed error and
writes nothing (and bw is locked again on every path after login)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import ACCOUNT, ALPHA, ORG_ID, SERVER, World, collection, guid, note

from colibri_vault import ProvisionAction, Secret
from colibri_vault.errors import (
    AccountMismatch,
    AmbiguousCollection,
    AmbiguousOrganization,
    BadApiKey,
    BadMasterPassword,
    BwCommandFailed,
    BwTimeout,
    DuplicateVariable,
    InsecureServerUrl,
    InsecureUrl,
    InvalidVariableName,
    NotLoggedIn,
    OrganizationMissing,
    ServerMismatch,
    UnparsableOutput,
    UnsupportedField,
    VaultConfigError,
    VaultError,
    VaultLocked,
    VaultNetworkError,
    VaultServerError,
)


def existing_env(world: World) -> Path:
    path = world.env_file("tenant-alpha")
    path.write_text("OLD='keep me'\n")
    return path


def assert_kept(path: Path) -> None:
    assert path.read_text() == "OLD='keep me'\n"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("command", "how", "error"),
    [
        ("status", "newline", UnparsableOutput),
        ("unlock", "newline", UnparsableOutput),
        ("sync", "newline", UnparsableOutput),
        ("list items", "newline", UnparsableOutput),
        ("list collections", "empty", UnparsableOutput),
        ("sync", "not-json", UnparsableOutput),
        ("list organizations", "no-envelope", UnparsableOutput),
        ("list items", "success-exit1", UnparsableOutput),
        ("list items", "cleanexit", VaultLocked),
        ("unlock", "bad-session-key", UnparsableOutput),
        ("sync", "crash", BwCommandFailed),
        (
            "login",
            {"error": "Error: Insecure URL not allowed. All URLs must use HTTPS."},
            InsecureUrl,
        ),
    ],
)
def test_misbehaving_bw_writes_nothing(
    world: World, command: str, how: object, error: type[VaultError]
) -> None:
    path = existing_env(world)
    world.scenario["misbehave"] = {command: how}
    world.fail("tenant-alpha", error)
    assert_kept(path)
    if "unlock" in world.commands():
        assert world.commands()[-1] == "lock"


def test_interactive_trap_is_what_the_fake_does_without_nointeraction(world: World) -> None:
    # The fake reproduces the trap, so the tests above mean something: without
    # --nointeraction a locked list exits 0 with a lone newline.
    import subprocess

    world.scenario["initial"] = {"server": SERVER, "logged_in": True, "user_id": ACCOUNT["user_id"]}
    world.save()
    env = {"BITWARDENCLI_APPDATA_DIR": str(world.appdata)}
    proc = subprocess.run(
        [str(world.bw), "list", "items"], env=env, capture_output=True, timeout=30, check=False
    )
    assert (proc.returncode, proc.stdout) == (0, b"\n")


def test_hanging_bw_is_killed_with_its_process_group(world: World) -> None:
    path = existing_env(world)
    world.scenario["misbehave"] = {"sync": "hang"}
    started = time.monotonic()
    exc = world.fail("tenant-alpha", BwTimeout, vault=world.vault_settings(timeout=2.0))
    assert time.monotonic() - started < 30
    assert "bw sync" in str(exc)
    assert_kept(path)
    pids = [int(p) for p in world.pid_file.read_text().split()]
    assert len(pids) == 2  # the fake bw and the child it started
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)
    assert world.commands()[-1] == "lock"  # the lock after the timeout still ran


def test_the_process_group_is_signalled_only_while_bw_is_unreaped(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bw's pid is its group's id. Once bw is reaped (and its group empty) the kernel may
    # give that pid to a new process, e.g. an agent spawned into its own session: a
    # killpg then would SIGKILL it. So every killpg must come while bw is still a zombie.
    real_killpg = os.killpg
    seen: list[tuple[int, str]] = []

    def spy(pgid: int, sig: int) -> None:
        try:
            state = os.waitid(os.P_PID, pgid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            seen.append((pgid, "running" if state is None else "zombie"))
        except ChildProcessError:
            seen.append((pgid, "reaped"))
        real_killpg(pgid, sig)

    monkeypatch.setattr(os, "killpg", spy)
    assert world.run("tenant-alpha").action is ProvisionAction.CREATED
    assert len(seen) == len(world.calls()) == 9
    assert {state for _, state in seen} == {"zombie"}, seen


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_failed_sync_with_stale_data_still_listable_writes_nothing(world: World) -> None:
    world.run("tenant-alpha")
    path = world.env_file("tenant-alpha")
    before = path.read_bytes()
    world.scenario["server_down"] = True
    world.scenario["vault"]["items"][0]["fields"][0]["value"] = "stale-but-listable-value"
    exc = world.fail("tenant-alpha", VaultNetworkError)
    assert "ECONNREFUSED" in str(exc)
    assert path.read_bytes() == before
    tail = world.commands()[-3:]
    assert tail == ["unlock", "sync", "lock"]


def test_sync_internal_error(world: World) -> None:
    world.scenario["server_error"] = True
    world.fail("tenant-alpha", VaultServerError)
    assert not world.env_file("tenant-alpha").exists()


def test_server_down_at_login(world: World) -> None:
    world.scenario["server_down"] = True
    exc = world.fail("tenant-alpha", VaultNetworkError)
    assert "identity/connect/token" in str(exc)


def test_logged_in_to_another_server_is_refused(world: World) -> None:
    world.scenario["initial"] = {
        "server": "https://other.example.test",
        "logged_in": True,
        "user_id": ACCOUNT["user_id"],
    }
    exc = world.fail("tenant-alpha", ServerMismatch)
    assert "other.example.test" in str(exc) and "bw logout" in str(exc)
    assert world.commands() == ["status"]
    assert not world.env_file("tenant-alpha").exists()


def test_logged_out_with_another_server_is_reconfigured(world: World) -> None:
    world.scenario["initial"] = {"server": "https://other.example.test", "logged_in": False}
    assert world.run("tenant-alpha").action is ProvisionAction.CREATED
    config = next(c for c in world.calls() if c["argv"][0] == "config")
    assert config["argv"][:3] == ["config", "server", SERVER]


def test_server_match_uses_the_cli_normalisation(world: World) -> None:
    world.scenario["initial"] = {"server": SERVER, "logged_in": True, "user_id": ACCOUNT["user_id"]}
    vault = world.vault_settings(server_url="vault.example.test//")
    assert world.run("tenant-alpha", vault=vault).action is ProvisionAction.CREATED


def test_logged_in_as_another_account_is_refused(world: World) -> None:
    other = "00000000-1111-4222-8333-444444444444"
    world.scenario["initial"] = {"server": SERVER, "logged_in": True, "user_id": other}
    world.scenario["other_account"] = {"email": "intruder@example.test"}
    world.fail("tenant-alpha", AccountMismatch)
    assert world.commands() == ["status"]


def test_wrong_master_password(world: World) -> None:
    vault = world.vault_settings(master_password=Secret("wrong horse battery"))
    exc = world.fail("tenant-alpha", BadMasterPassword, vault=vault)
    assert "Cryptography error" in str(exc)
    assert world.commands()[-1] == "lock"


def test_wrong_client_secret(world: World) -> None:
    vault = world.vault_settings(client_secret=Secret("not-the-client-secret"))
    exc = world.fail("tenant-alpha", BadApiKey, vault=vault)
    assert "Incorrect client_secret" in str(exc)


def test_failed_login_still_ends_with_lock(world: World) -> None:
    vault = world.vault_settings(client_secret=Secret("not-the-client-secret"))
    world.fail("tenant-alpha", BadApiKey, vault=vault)
    assert world.commands() == ["status", "config", "login", "lock"]


def test_unknown_client_id(world: World) -> None:
    vault = world.vault_settings(client_id="user.00000000-0000-4000-8000-000000000000")
    world.fail("tenant-alpha", BadApiKey, vault=vault)


def test_organization_api_key_is_refused_before_any_call(world: World) -> None:
    vault = world.vault_settings(client_id=f"organization.{ORG_ID}")
    exc = world.fail("tenant-alpha", VaultConfigError, vault=vault)
    assert "organization API keys" in str(exc)
    assert world.calls() == []


def test_logged_out_without_api_key(world: World) -> None:
    vault = world.vault_settings(client_id=None, client_secret=None)
    exc = world.fail("tenant-alpha", NotLoggedIn, vault=vault)
    assert "logged out and no API key" in str(exc)
    assert world.commands() == ["status"]


def test_organization_missing(world: World) -> None:
    vault = world.vault_settings(organization="NoSuchOrg")
    exc = world.fail("tenant-alpha", OrganizationMissing, vault=vault)
    assert "Tenants" in str(exc)
    assert world.commands()[-1] == "lock"


def test_organization_name_given_twice(world: World) -> None:
    orgs = world.scenario["vault"]["organizations"]
    orgs.append(dict(orgs[0], id="99999999-9999-4999-8999-999999999999"))
    world.fail("tenant-alpha", AmbiguousOrganization)


def test_substring_neighbour_collection_is_not_taken(world: World) -> None:
    # tenant-alpha exists beside tenant-a; bw's name search would match both.
    world.make_jail("tenant-a")
    world.scenario["vault"]["collections"].append(collection("tenant-a", guid("A-SHORT")))
    world.scenario["vault"]["items"].append(
        note("a", "ia", guid("A-SHORT"), [(1, "ONLY_A", "a-secret-1")])
    )
    result = world.run("tenant-a")
    assert result.keys == ("ONLY_A",)
    assert result.collection_id == guid("A-SHORT")
    # A prefix of an existing name, or another case, is no collection at all.
    world.make_jail("tenant")
    assert world.run("tenant").action is ProvisionAction.NO_COLLECTION
    world.make_jail("TENANT-ALPHA")
    assert world.run("TENANT-ALPHA").action is ProvisionAction.NO_COLLECTION


def test_collection_of_another_organization_is_not_taken(world: World) -> None:
    world.make_jail("tenant-x")
    world.scenario["vault"]["collections"].append(
        collection("tenant-x", guid("X1"), org="99999999-9999-4999-8999-999999999999")
    )
    assert world.run("tenant-x").action is ProvisionAction.NO_COLLECTION


def test_two_collections_with_the_exact_name(world: World) -> None:
    world.scenario["vault"]["collections"].append(collection("tenant-alpha", guid("dup-id")))
    exc = world.fail("tenant-alpha", AmbiguousCollection)
    assert guid("dup-id") in str(exc) and ALPHA in str(exc)


def test_items_bw_lists_outside_the_collection_are_dropped(world: World) -> None:
    world.scenario["misbehave"] = {"list items": "ignore-filter"}
    result = world.run("tenant-alpha")
    # beta's OPENROUTER_API_KEY would otherwise be a duplicate (or a leak across tenants).
    assert "sk-or-v1-beta" not in world.env_file("tenant-alpha").read_text()
    assert result.keys.count("OPENROUTER_API_KEY") == 1
    assert any("ignored 1 item" in r.getMessage() for r in world.caplog.records)


def test_duplicate_items(world: World) -> None:
    world.scenario["vault"]["items"].append(
        note("alpha-dup", "idup", ALPHA, [(1, "OPENROUTER_API_KEY", "sk-or-v1-different")])
    )
    exc = world.fail("tenant-alpha", DuplicateVariable)
    assert exc.key == "OPENROUTER_API_KEY"  # type: ignore[attr-defined]
    assert "alpha-dup" in str(exc)
    assert not world.env_file("tenant-alpha").exists()


def test_duplicate_with_identical_value_is_still_an_error(world: World) -> None:
    world.scenario["vault"]["items"].append(
        note("alpha-dup", "idup", ALPHA, [(1, "OPENROUTER_API_KEY", "sk-or-v1-0123456789abcdef")])
    )
    world.fail("tenant-alpha", DuplicateVariable)


def test_linked_field(world: World) -> None:
    world.scenario["vault"]["items"].append(
        note("alpha-linked", "il", ALPHA, [(3, "LINKED", None)])
    )
    exc = world.fail("tenant-alpha", UnsupportedField)
    assert "linked" in str(exc)


@pytest.mark.parametrize("key", ["1ABC", "A-B", "A B", "", "ÄB", "A=B", "A\nB"])
def test_invalid_keys(world: World, key: str) -> None:
    world.scenario["vault"]["items"].append(note("alpha-bad", "ib", ALPHA, [(0, key, "value-xyz")]))
    world.fail("tenant-alpha", InvalidVariableName)
    assert not world.env_file("tenant-alpha").exists()


def test_lock_failure_after_fetch_writes_nothing(world: World) -> None:
    world.scenario["misbehave"] = {"lock": {"error": "Syncing failed: Internal error"}}
    world.fail("tenant-alpha", VaultServerError)
    assert not world.env_file("tenant-alpha").exists()


def test_insecure_server_url_runs_nothing(world: World) -> None:
    vault = world.vault_settings(server_url="http://vault.example.test")
    exc = world.fail("tenant-alpha", InsecureServerUrl, vault=vault)
    assert isinstance(exc, ValueError)
    assert world.calls() == []


def test_missing_bw_executable(world: World, tmp_path: Path) -> None:
    vault = world.vault_settings(bw_executable=tmp_path / "no-such-bw")
    world.fail("tenant-alpha", VaultConfigError, vault=vault)


def test_appdata_readable_by_others_is_refused(world: World) -> None:
    os.chmod(world.appdata, 0o755)
    exc = world.fail("tenant-alpha", VaultConfigError)
    assert "chmod 700" in str(exc)
    assert world.calls() == []


def test_bw_data_beside_the_executable_is_refused(world: World) -> None:
    (world.bin / "bw-data").mkdir()
    exc = world.fail("tenant-alpha", VaultConfigError)
    assert "bw-data" in str(exc)


@pytest.mark.parametrize("tenant", ["../x", "a/b", "", ".hidden", "-x", "a\x00b"])
def test_tenant_must_be_a_jail_name(world: World, tenant: str) -> None:
    world.fail(tenant, VaultConfigError)
    assert world.calls() == []


def test_flooding_bw_is_cut_off_at_the_output_cap(world: World) -> None:
    from colibri_vault._bw import BwRunner

    world.scenario["misbehave"] = {"status": "flood"}
    world.save()
    runner = BwRunner(world.bw, world.appdata, "/usr/bin:/bin", timeout=20.0, output_cap=1 << 20)
    with pytest.raises(UnparsableOutput, match="more than 1048576 bytes"):
        runner.call(["status"])
    # Under the cap the same output is merely not JSON.
    runner = BwRunner(world.bw, world.appdata, "/usr/bin:/bin", timeout=20.0)
    with pytest.raises(UnparsableOutput, match="not JSON"):
        runner.call(["status"])


def test_ca_cert_is_passed_to_bw_and_must_exist(world: World, tmp_path: Path) -> None:
    world.fail(
        "tenant-alpha", VaultConfigError, vault=world.vault_settings(ca_cert=tmp_path / "no.pem")
    )
    assert world.calls() == []
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    world.run("tenant-alpha", vault=world.vault_settings(ca_cert=pem))
    assert {c["env"].get("NODE_EXTRA_CA_CERTS") for c in world.calls()} == {str(pem)}


def test_an_id_that_could_read_as_an_option_never_reaches_argv(world: World) -> None:
    world.make_jail("tenant-opt")
    world.scenario["vault"]["collections"].append(
        collection("tenant-opt", "--passwordfile=/etc/master.passwd")
    )
    exc = world.fail("tenant-opt", UnparsableOutput)
    assert "not a GUID" in str(exc)
    assert not any("--passwordfile=/etc/master.passwd" in c["argv"] for c in world.calls())
    assert world.commands()[-1] == "lock"


def test_foreign_login_logged_out_by_policy(world: World) -> None:
    from colibri_vault import ForeignLoginPolicy

    world.scenario["initial"] = {
        "server": "https://other.example.test",
        "logged_in": True,
        "user_id": "00000000-1111-4222-8333-444444444444",
    }
    vault = world.vault_settings(foreign_login=ForeignLoginPolicy.LOGOUT)
    assert world.run("tenant-alpha", vault=vault).action is ProvisionAction.CREATED
    assert world.commands()[:5] == ["status", "logout", "status", "config", "login"]


def test_foreign_login_policy_needs_an_api_key(world: World) -> None:
    from colibri_vault import ForeignLoginPolicy

    world.scenario["initial"] = {
        "server": "https://other.example.test",
        "logged_in": True,
        "user_id": ACCOUNT["user_id"],
    }
    vault = world.vault_settings(
        foreign_login=ForeignLoginPolicy.LOGOUT, client_id=None, client_secret=None
    )
    world.fail("tenant-alpha", ServerMismatch, vault=vault)
    assert world.commands() == ["status"]


def test_a_failed_directory_fsync_after_the_rename_does_not_claim_the_old_file_stayed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stat

    from colibri_vault.errors import EnvWriteFailed

    path = existing_env(world)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    exc = world.fail("tenant-alpha", EnvWriteFailed)
    assert isinstance(exc, EnvWriteFailed)
    # The rename had happened: the new secrets are what the jail sees.
    assert "PGDATABASE='alpha'" in path.read_text()
    assert "unchanged" not in str(exc)
    assert exc.replaced and exc.errno == 5
