"""provision() end to end against the fake bw: the sequence, outcomes and mapping."""

from __future__ import annotations

import os
import stat

import pytest
from conftest import (
    ACCOUNT,
    ALPHA,
    JAIL_GID,
    JAIL_UID,
    ORG_ID,
    SERVER,
    World,
    collection,
    fixture_vault,
    guid,
    login_item,
    note,
)
from dotenv import dotenv_values

from colibri_vault import ProvisionAction, Secret
from colibri_vault.errors import InvalidVariableName

ALPHA_EXPECTED = {
    "OPENROUTER_API_KEY": "sk-or-v1-0123456789abcdef",
    "DEEPSEEK_API_KEY": "sk-ds-fedcba9876543210",
    "MODEL_NAME": "deepseek/deepseek-chat",
    "WEIRD_VALUE": "has space $HOME \"q\" 'sq' #hash\nline2",
    "ENABLE_X": "true",
    "PGDATABASE": "alpha",
}


def test_fresh_appdata_logs_in_unlocks_syncs_and_writes_the_env(world: World) -> None:
    result = world.run("tenant-alpha")
    assert result.action is ProvisionAction.CREATED
    assert result.keys == tuple(sorted(ALPHA_EXPECTED))
    assert result.collection_id == ALPHA
    path = world.env_file("tenant-alpha")
    assert result.path == str(path)
    assert dotenv_values(path, interpolate=False) == ALPHA_EXPECTED
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert (st.st_uid, st.st_gid) == (JAIL_UID, JAIL_GID)
    assert result.content_sha256 is not None and result.content_sha256.startswith("sha256:")
    assert world.commands() == [
        "status",
        "config",
        "login",
        "unlock",
        "sync",
        "list organizations",
        "list collections",
        "list items",
        "lock",
    ]


def test_every_call_is_isolated_and_keeps_secrets_in_the_environment(world: World) -> None:
    world.run("tenant-alpha")
    for call in world.calls():
        assert call["stdin_devnull"], call["argv"]
        assert call["own_group"], call["argv"]
        assert "--nointeraction" in call["argv"] and "--response" in call["argv"]
        assert "--cleanexit" not in call["argv"] and "--session" not in call["argv"]
        allowed = {"PATH", "HOME", "BITWARDENCLI_APPDATA_DIR", "LANG"}
        secrets = set(call["env"]) - allowed
        command = call["argv"][0]
        expected = {
            "login": {"BW_CLIENTID", "BW_CLIENTSECRET"},
            "unlock": {"BW_PASSWORD"},
            "status": set(),
            "config": set(),
        }.get(command, {"BW_SESSION"})
        assert secrets == expected, (command, secrets)
        assert call["env"]["BITWARDENCLI_APPDATA_DIR"] == str(world.appdata)
    login = next(c for c in world.calls() if c["argv"][0] == "login")
    assert login["env"]["BW_CLIENTSECRET"] == ACCOUNT["client_secret"]


def test_second_run_with_the_same_secrets_rewrites_nothing(world: World) -> None:
    first = world.run("tenant-alpha")
    path = world.env_file("tenant-alpha")
    before = os.stat(path)
    second = world.run("tenant-alpha")
    after = os.stat(path)
    assert second.action is ProvisionAction.UNCHANGED
    assert second.content_sha256 == first.content_sha256
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_changed_secrets_replace_the_file(world: World) -> None:
    first = world.run("tenant-alpha")
    world.scenario["vault"]["items"][0]["fields"][0]["value"] = "sk-or-v1-rotated-000000"
    second = world.run("tenant-alpha")
    assert second.action is ProvisionAction.UPDATED
    assert second.content_sha256 != first.content_sha256
    values = dotenv_values(world.env_file("tenant-alpha"), interpolate=False)
    assert values["OPENROUTER_API_KEY"] == "sk-or-v1-rotated-000000"


def test_wrong_owner_or_mode_with_same_content_is_repaired(world: World) -> None:
    world.run("tenant-alpha")
    path = world.env_file("tenant-alpha")
    os.chmod(path, 0o644)
    result = world.run("tenant-alpha")
    assert result.action is ProvisionAction.UPDATED
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600


def test_tenant_without_collection_touches_nothing(world: World) -> None:
    world.make_jail("tenant-gamma")
    env = world.base / "tenant-gamma" / "root" / "home" / "agent" / ".env"
    env.write_text("OLD='kept'\n")
    before = os.stat(env)
    result = world.run("tenant-gamma")
    assert result.action is ProvisionAction.NO_COLLECTION
    assert result.keys == () and result.content_sha256 is None
    assert env.read_text() == "OLD='kept'\n"
    assert os.stat(env).st_mtime_ns == before.st_mtime_ns
    assert world.commands()[-1] == "lock"


def test_empty_collection_writes_an_empty_file(world: World) -> None:
    world.make_jail("tenant-empty")
    world.scenario["vault"]["collections"].append(collection("tenant-empty", guid("empty")))
    result = world.run("tenant-empty")
    assert result.action is ProvisionAction.CREATED and result.keys == ()
    assert (world.base / "tenant-empty/root/home/agent/.env").read_bytes() == b""


def test_the_real_fixture_vault_is_refused_for_its_invalid_key(world: World) -> None:
    world.scenario["vault"] = fixture_vault()
    exc = world.fail("tenant-alpha", InvalidVariableName)
    assert "WEIRD VALUE" in str(exc) and "alpha-llm-keys" in str(exc)
    assert not world.env_file("tenant-alpha").exists()
    assert world.commands()[-1] == "lock"


def test_already_logged_in_skips_login(world: World) -> None:
    world.scenario["initial"] = {"server": SERVER, "logged_in": True, "user_id": ACCOUNT["user_id"]}
    world.run("tenant-alpha")
    assert world.commands()[:2] == ["status", "unlock"]


def test_logged_in_without_api_key_works(world: World) -> None:
    world.scenario["initial"] = {"server": SERVER, "logged_in": True, "user_id": ACCOUNT["user_id"]}
    vault = world.vault_settings(client_id=None, client_secret=None)
    assert world.run("tenant-alpha", vault=vault).action is ProvisionAction.CREATED


def test_organization_by_id(world: World) -> None:
    vault = world.vault_settings(organization=ORG_ID)
    assert world.run("tenant-alpha", vault=vault).action is ProvisionAction.CREATED


def test_login_items_named_like_a_variable_give_their_password(world: World) -> None:
    world.make_jail("tenant-login")
    world.scenario["vault"]["collections"].append(collection("tenant-login", guid("L1")))
    world.scenario["vault"]["items"] += [
        login_item("DB_PASSWORD", "i1", guid("L1"), "p@ss w0rd$with'quote"),
        login_item("db-server", "i2", guid("L1"), "ignored-descriptive-name"),
        login_item("EMPTY_PW", "i3", guid("L1"), None),
    ]
    result = world.run("tenant-login")
    assert result.keys == ("DB_PASSWORD", "EMPTY_PW")
    values = dotenv_values(world.base / "tenant-login/root/home/agent/.env", interpolate=False)
    assert values == {"DB_PASSWORD": "p@ss w0rd$with'quote", "EMPTY_PW": ""}


def test_login_item_policy_ignore(world: World) -> None:
    from colibri_vault import LoginItemPolicy

    world.make_jail("tenant-login")
    world.scenario["vault"]["collections"].append(collection("tenant-login", guid("L1")))
    world.scenario["vault"]["items"].append(
        login_item("DB_PASSWORD", "i1", guid("L1"), "pw-123456")
    )
    vault = world.vault_settings(login_items=LoginItemPolicy.IGNORE)
    assert world.run("tenant-login", vault=vault).keys == ()


def test_configured_env_path_inside_the_jail(world: World) -> None:
    root = world.base / "tenant-alpha" / "root"
    (root / "usr/local/etc").mkdir(parents=True)
    jail = world.jail_settings(env_path="/usr/local/etc/agent.env")
    result = world.run("tenant-alpha", jail=jail)
    assert result.path == str(root / "usr/local/etc/agent.env")
    assert os.lstat(result.path).st_uid == JAIL_UID


def test_unset_field_value_is_empty_and_boolean_is_text(world: World) -> None:
    world.make_jail("tenant-b")
    world.scenario["vault"]["collections"].append(collection("tenant-b", guid("B1")))
    world.scenario["vault"]["items"].append(
        note(
            "n", "i9", guid("B1"), [(0, "UNSET", None), (2, "FLAG", "false"), (1, "H", "hidden-1")]
        )
    )
    world.run("tenant-b")
    values = dotenv_values(world.base / "tenant-b/root/home/agent/.env", interpolate=False)
    assert values == {"UNSET": "", "FLAG": "false", "H": "hidden-1"}


def test_secret_repr_hides_the_value() -> None:
    secret = Secret("hunter2-very-secret")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}" and "hunter2" not in f"{secret!r:>40}"
    assert secret.reveal() == "hunter2-very-secret"
    assert secret == Secret("hunter2-very-secret") and secret != Secret("other")
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)
