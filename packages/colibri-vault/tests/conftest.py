"""A fake bw, a fake jail tree and a leak check shared by colibri-vault's tests."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import stat
import sys
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from colibri_vault import JailSettings, ProvisionResult, Secret, VaultSettings, provision

HERE = Path(__file__).parent
DATA = HERE / "data"
FAKE = HERE / "fake_bw.py"

ORG_ID = "2b9d4e61-7c3a-4f58-8e12-a6b0c9d3e745"
ALPHA = "c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8"
BETA = "d2b3c4d5-e6f7-4081-92a3-b4c5d6e7f809"
USER_ID = "6f1c7a52-3b8e-4c2d-9a41-0d5e8b7c1f20"
ACCOUNT = {
    "client_id": f"user.{USER_ID}",
    "client_secret": "Zk3s9QvX1mN7pR2tY5uW8aB4cD6eF0",
    "master_password": "correct horse battery staple",
    "user_id": USER_ID,
    "email": "svc-provisioner@example.test",
}
SERVER = "https://vault.example.test"
JAIL_UID = 1001
JAIL_GID = 1002


def guid(tag: str) -> str:
    """A stable GUID for a test's made-up collection (bw ids are always GUIDs)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, tag))


def fixture_json(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def fixture_vault() -> dict[str, Any]:
    """The vault exactly as the real captures show it (alpha's note holds an invalid key)."""
    beta = fixture_json("list_items_response_envelope.json")["data"]["data"]
    return {
        "organizations": fixture_json("list_organizations.json"),
        "collections": fixture_json("list_collections.json"),
        "items": fixture_json("list_items_collection.json") + beta,
    }


def clean_vault() -> dict[str, Any]:
    """The fixture vault with the one field whose name is not a variable name renamed."""
    vault = fixture_vault()
    for field in vault["items"][0]["fields"]:
        if field["name"] == "WEIRD VALUE":
            field["name"] = "WEIRD_VALUE"
    return vault


def collection(name: str, ident: str, org: str = ORG_ID) -> dict[str, Any]:
    return {
        "object": "collection",
        "id": ident,
        "organizationId": org,
        "name": name,
        "externalId": None,
    }


def note(name: str, ident: str, collection_id: str, fields: list[tuple[int, str, Any]]) -> dict:
    """A secure-note item shaped like the real ones (unset value -> key absent)."""
    out = []
    for ftype, fname, value in fields:
        field: dict[str, Any] = {"type": ftype, "name": fname}
        if value is not None:
            field["value"] = value
        out.append(field)
    return {
        "type": 2,
        "name": name,
        "favorite": False,
        "reprompt": 0,
        "id": ident,
        "collectionIds": [collection_id],
        "object": "item",
        "organizationId": ORG_ID,
        "fields": out,
        "secureNote": {"type": 0},
        "passwordHistory": [],
        "creationDate": "2026-11-23T10:00:00.000Z",
        "revisionDate": "2026-11-23T10:00:00.000Z",
        "attachments": [],
    }


def login_item(name: str, ident: str, collection_id: str, password: str | None) -> dict:
    login: dict[str, Any] = {"uris": [], "fido2Credentials": [], "username": "u"}
    if password is not None:
        login["password"] = password
    login["passwordRevisionDate"] = None
    return {
        "type": 1,
        "name": name,
        "favorite": False,
        "reprompt": 0,
        "id": ident,
        "collectionIds": [collection_id],
        "object": "item",
        "organizationId": ORG_ID,
        "login": login,
        "passwordHistory": [],
        "creationDate": "2026-11-23T10:00:00.000Z",
        "revisionDate": "2026-11-23T10:00:00.000Z",
        "attachments": [],
    }


def frame_local_texts(exc: BaseException, depth: int = 6) -> list[str]:
    """What a crash reporter that records frame locals (Sentry-style) would see of
    ``exc``: the locals of every frame in its traceback and in those of its causes and
    contexts, as text (strings and bytes, into containers; other objects by repr).

    The first frame of ``exc``'s own traceback is the caller's (which is still running
    and holds only what it passed in): it is left out.
    """
    texts: list[str] = []
    seen: set[int] = set()

    def value(v: Any, left: int) -> None:
        if id(v) in seen or left <= 0:
            return
        seen.add(id(v))
        if isinstance(v, str):
            texts.append(v)
        elif isinstance(v, bytes | bytearray | memoryview):
            texts.append(bytes(v).decode("utf-8", "replace"))
        elif isinstance(v, dict):
            for k, item in list(v.items()):
                value(k, left - 1)
                value(item, left - 1)
        elif isinstance(v, list | tuple | set | frozenset):
            for item in list(v):
                value(item, left - 1)
        elif not isinstance(v, BaseException):  # exceptions are walked below
            try:
                texts.append(repr(v))
            except Exception:  # a reporter would skip it too
                pass

    def walk(e: BaseException | None, skip_first: bool) -> None:
        if e is None or id(e) in seen:
            return
        seen.add(id(e))
        tb = e.__traceback__
        if skip_first and tb is not None:
            tb = tb.tb_next
        while tb is not None:
            for item in list(tb.tb_frame.f_locals.values()):
                value(item, depth)
            tb = tb.tb_next
        walk(e.__cause__, False)
        walk(e.__context__, False)

    walk(exc, True)
    return texts


def secret_values(scenario: dict[str, Any]) -> set[str]:
    """Every value in the scenario that must never show (short ones cannot be told apart
    from ordinary words, so they are left out)."""
    found = {ACCOUNT["client_secret"], ACCOUNT["master_password"]}
    for item in scenario["vault"]["items"]:
        for field in item.get("fields", []):
            if isinstance(field.get("value"), str):
                found.add(field["value"])
        password = (item.get("login") or {}).get("password")
        if isinstance(password, str):
            found.add(password)
    return {s for s in found if len(s) >= 6}


def snapshot(top: Path, skip: list[Path]) -> dict[str, tuple]:
    """Everything under ``top`` (type, mode, owner, size, mtime, content, link target)."""
    out: dict[str, tuple] = {}
    skipped = {str(p) for p in skip}
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skipped]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if path in skipped:
                continue
            st = os.lstat(path)
            extra: object = None
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            out[path] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, extra)
    return out


class World:
    """One test's host: appdata dir, fake bw, jail base, host files, call log."""

    def __init__(self, tmp: Path, caplog: pytest.LogCaptureFixture) -> None:
        self.tmp = tmp
        self.caplog = caplog
        self.appdata = tmp / "appdata"
        self.appdata.mkdir(mode=0o700)
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.base = tmp / "jails"
        self.base.mkdir()
        self.host = tmp / "host"
        self.host.mkdir()
        (self.host / "precious.txt").write_text("host data\n")
        (self.host / "dir").mkdir()
        self.log = tmp / "calls.jsonl"
        self.pid_file = tmp / "pids.txt"
        self.scenario: dict[str, Any] = {
            "account": dict(ACCOUNT),
            "initial": {"server": None, "logged_in": False},
            "vault": clean_vault(),
            "misbehave": {},
            "log": str(self.log),
            "pid_file": str(self.pid_file),
        }
        self.bw = self.bin / "bw"
        self.scenario_path = tmp / "scenario.json"
        # A Python script, not a shell wrapper: the fake must see exactly the
        # environment provision() gives bw (a shell would add PWD).
        self.bw.write_text(
            f"#!{sys.executable} -IS\n"
            "import sys\n"
            f"sys.path.insert(0, {str(HERE)!r})\n"
            f"sys.argv[1:1] = [{str(self.scenario_path)!r}]\n"
            "import fake_bw\n"
            "sys.exit(fake_bw.main())\n"
        )
        self.bw.chmod(0o755)
        self.outputs: list[str] = []

    def save(self) -> None:
        self.scenario_path.write_text(json.dumps(self.scenario))

    # -- jails ---------------------------------------------------------------------------
    def make_jail(
        self,
        tenant: str,
        *,
        user: str = "agent",
        uid: int = JAIL_UID,
        gid: int = JAIL_GID,
        home: str = "/home/agent",
        passwd: str | None = None,
    ) -> Path:
        root = self.base / tenant / "root"
        (root / "etc").mkdir(parents=True)
        if passwd is None:
            passwd = (
                f"root:*:0:0:Charlie &:/root:/bin/sh\n{user}:*:{uid}:{gid}:Agent:{home}:/bin/sh\n"
            )
        (root / "etc" / "passwd").write_text(passwd)
        home_dir = root / home.lstrip("/")
        home_dir.mkdir(parents=True)
        os.chown(home_dir, uid, gid)
        return root

    def env_file(self, tenant: str) -> Path:
        return self.base / tenant / "root" / "home" / "agent" / ".env"

    # -- settings and runs ----------------------------------------------------------------
    def vault_settings(self, **overrides: Any) -> VaultSettings:
        kwargs: dict[str, Any] = {
            "server_url": SERVER,
            "organization": "Tenants",
            "appdata_dir": self.appdata,
            "bw_executable": self.bw,
            "master_password": Secret(ACCOUNT["master_password"]),
            "client_id": ACCOUNT["client_id"],
            "client_secret": Secret(ACCOUNT["client_secret"]),
            "timeout": 20.0,
        }
        kwargs.update(overrides)
        return VaultSettings(**kwargs)

    def jail_settings(self, **overrides: Any) -> JailSettings:
        kwargs: dict[str, Any] = {"user": "agent", "allowed_base": str(self.base)}
        kwargs.update(overrides)
        return JailSettings(**kwargs)

    def child_settings(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The settings as plain, picklable dicts (a Secret refuses to be pickled), for
        a child process to rebuild with :func:`settings_from`."""
        vault = self.vault_settings()
        vault_kwargs = {
            "server_url": vault.server_url,
            "organization": vault.organization,
            "appdata_dir": str(vault.appdata_dir),
            "bw_executable": str(vault.bw_executable),
            "master_password": vault.master_password.reveal(),
            "client_id": vault.client_id,
            "client_secret": vault.client_secret.reveal() if vault.client_secret else None,
            "timeout": vault.timeout,
        }
        return vault_kwargs, {"user": "agent", "allowed_base": str(self.base)}

    def attempt(
        self,
        tenant: str,
        *,
        vault: VaultSettings | None = None,
        jail: JailSettings | None = None,
        jail_root: str | None = None,
    ) -> ProvisionResult | Exception:
        """provision() once; returns its result or the exception it raised, after checking
        that no secret shows in the exception, the result, the settings or the log."""
        self.save()
        vault = vault or self.vault_settings()
        jail = jail or self.jail_settings()
        self.caplog.set_level(logging.DEBUG, logger="colibri_vault")
        outcome: ProvisionResult | Exception
        try:
            outcome = provision(tenant, vault=vault, jail=jail, jail_root=jail_root)
        except Exception as exc:
            outcome = exc
        texts = [repr(vault), str(vault), repr(jail), repr(outcome), str(outcome)]
        if isinstance(outcome, Exception):
            texts.append("".join(traceback.format_exception(outcome)))
            texts.extend(repr(a) for a in outcome.args)
            texts.extend(repr(v) for v in vars(outcome).values())
            texts.extend(frame_local_texts(outcome))
        for record in self.caplog.records:
            texts.append(record.getMessage())
            if record.exc_info:
                texts.append("".join(traceback.format_exception(*record.exc_info)))
        self.outputs.extend(texts)
        self.assert_no_leak(texts)
        return outcome

    def run(self, tenant: str, **kwargs: Any) -> ProvisionResult:
        outcome = self.attempt(tenant, **kwargs)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def fail(self, tenant: str, error: type[Exception], **kwargs: Any) -> Exception:
        outcome = self.attempt(tenant, **kwargs)
        assert isinstance(outcome, error), f"expected {error.__name__}, got {outcome!r}"
        return outcome

    def secrets(self) -> set[str]:
        found = secret_values(self.scenario)
        found.update(c["issued_session"] for c in self.calls() if "issued_session" in c)
        return found

    def assert_no_leak(self, texts: list[str]) -> None:
        secrets = self.secrets()
        for text in texts:
            for value in secrets:
                assert value not in text, f"a secret value leaked into: {text[:200]!r}"
        for call in self.calls():
            for value in secrets:
                assert not any(value in arg for arg in call["argv"]), "secret in bw argv"

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[str]:
        out = []
        for call in self.calls():
            words = [a for a in call["argv"] if not a.startswith("--")]
            out.append(" ".join(words[:2] if words[:1] == ["list"] else words[:1]))
        return out

    def set_vault(self, **parts: Any) -> None:
        vault = copy.deepcopy(self.scenario["vault"])
        vault.update(parts)
        self.scenario["vault"] = vault


@pytest.fixture
def world(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[World]:
    w = World(tmp_path, caplog)
    w.make_jail("tenant-alpha")
    yield w


def settings_from(
    vault_kwargs: dict[str, Any], jail_kwargs: dict[str, Any]
) -> tuple[VaultSettings, JailSettings]:
    """In a child process: the settings :meth:`World.child_settings` described."""
    vault_kwargs = dict(vault_kwargs)
    for name in ("master_password", "client_secret"):
        vault_kwargs[name] = Secret(vault_kwargs[name])
    return VaultSettings(**vault_kwargs), JailSettings(**jail_kwargs)
