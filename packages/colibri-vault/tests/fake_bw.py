"""A fake ``bw`` (CLI 2026.6.0) for colibri-vault's tests.

Run as ``python fake_bw.py SCENARIO.json ARGS...`` (tests wrap it in an executable
``bw`` script). It reproduces the real CLI's output shapes, texts and exit codes as
captured in tests/data/ (from fixtures/bw-2026.6.0): JSON without a trailing newline,
``--response`` envelopes, errors on stderr with exit 1, the interactive trap without
``--nointeraction``, session keys that a later ``unlock`` invalidates, ``list``
answering from the local cache whatever ``sync`` did, OR-ed item filters and
case-insensitive substring ``--search``.

State (server, login, current session key) lives in ``$BITWARDENCLI_APPDATA_DIR``.
The scenario file gives the account, the vault data and misbehaviour per command
(``"misbehave": {"sync": "hang", "list items": "ignore-filter", ...}``). Every call
is appended to the scenario's ``log`` as one JSON line (argv, environment, whether
stdin was /dev/null, whether it led its own process group, overlapping calls).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import stat
import subprocess
import sys
import time

VALUE_OPTIONS = {
    "--organizationid",
    "--collectionid",
    "--passwordenv",
    "--passwordfile",
    "--search",
    "--session",
    "--folderid",
}

NOT_LOGGED_IN = "You are not logged in."
LOCKED = "Vault is locked."
MASTER_REQUIRED = (
    "Master password is required. Try again in interactive mode or provide a password "
    "file or environment variable."
)
CRYPTO_LINES = (
    "ERROR bitwarden_crypto::keys::master_key: error=The decryption operation failed\n\n"
    "ERROR bitwarden_core::client::internal: error=Cryptography error, The decryption "
    "operation failed\n\nERROR bitwarden_core::key_management::crypto: error=Cryptography "
    "error, The decryption operation failed\n\n"
)
CRYPTO = "Cryptography error, The decryption operation failed"


class Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class Fake:
    def __init__(self, scenario: dict, args: list[str]) -> None:
        self.sc = scenario
        self.args = args
        self.flags = {a for a in args if a.startswith("--") and a not in VALUE_OPTIONS}
        self.opts: dict[str, str] = {}
        self.pos: list[str] = []
        it = iter(args)
        for a in it:
            if a in VALUE_OPTIONS:
                self.opts[a] = next(it, "")
            elif a.startswith("-"):
                continue
            else:
                self.pos.append(a)
        self.response = "--response" in self.flags
        self.interactive = "--nointeraction" not in self.flags
        self.appdata = os.environ.get("BITWARDENCLI_APPDATA_DIR", "/nonexistent")
        self.state_path = os.path.join(self.appdata, "fake-bw-state.json")

    # -- state -------------------------------------------------------------------------
    def load_state(self) -> dict:
        try:
            with open(self.state_path) as f:
                return json.load(f)
        except FileNotFoundError:
            init = self.sc.get("initial", {})
            return {
                "server": init.get("server"),
                "user_id": init.get("user_id") if init.get("logged_in") else None,
                "session": None,
                "last_sync": init.get("last_sync"),
            }

    def save_state(self, state: dict) -> None:
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self.state_path)

    # -- output ------------------------------------------------------------------------
    def ok(self, data: dict) -> None:
        if self.response:
            out = json.dumps({"success": True, "data": data}, separators=(",", ":"))
        elif data["object"] == "template":
            out = json.dumps(data["template"], separators=(",", ":"))
        elif data["object"] == "list":
            out = json.dumps(data["data"], separators=(",", ":"))
        elif data["object"] == "message":
            if "--raw" in self.flags and data.get("raw"):
                out = data["raw"]
            else:
                out = data["title"] + (("\n" + data["message"]) if data.get("message") else "")
        else:
            out = json.dumps(data, separators=(",", ":"))
        sys.stdout.write(out)
        raise Exit(0)

    def fail(self, message: str, stderr_extra: str = "") -> None:
        if stderr_extra:
            sys.stderr.write(stderr_extra)
        if self.response:
            sys.stdout.write(
                json.dumps({"success": False, "message": message}, separators=(",", ":"))
            )
        else:
            sys.stderr.write(message)
        raise Exit(1)

    def prompt_trap(self, prompt: str) -> None:
        # What the real CLI does without --nointeraction and a closed stdin.
        sys.stderr.write(f"? {prompt}: ")
        sys.stdout.write("\n")
        raise Exit(0)

    @staticmethod
    def message(title: str, message: str | None = None, raw: str | None = None) -> dict:
        data = {"noColor": False, "object": "message", "title": title, "message": message}
        if raw is not None:
            data["raw"] = raw
        return data

    # -- commands ----------------------------------------------------------------------
    def account(self) -> dict:
        return self.sc["account"]

    def require_unlocked(self, state: dict, prompt: bool = True) -> None:
        if state["user_id"] is None:
            self.fail(NOT_LOGGED_IN)
        session = self.opts.get("--session") or os.environ.get("BW_SESSION")
        if state["session"] is None or session != state["session"]:
            if self.interactive and prompt:
                self.prompt_trap("Master password: [input is hidden] ")
            self.fail(LOCKED)

    def run(self) -> None:
        state = self.load_state()
        cmd = self.pos[0] if self.pos else ""
        if cmd == "status":
            session = self.opts.get("--session") or os.environ.get("BW_SESSION")
            template: dict = {"serverUrl": state["server"], "lastSync": state.get("last_sync")}
            if state["user_id"] is None:
                template["status"] = "unauthenticated"
            else:
                acct = (
                    self.sc.get("other_account")
                    if state["user_id"] != self.account()["user_id"]
                    else self.account()
                )
                template["userEmail"] = (acct or {}).get("email", "someone@example.test")
                template["userId"] = state["user_id"]
                unlocked = state["session"] is not None and session == state["session"]
                template["status"] = "unlocked" if unlocked else "locked"
            self.ok({"object": "template", "template": template})
        if cmd == "config":
            if state["user_id"] is not None:
                self.fail("Logout required before server config update.")
            url = self.pos[2] if len(self.pos) > 2 else ""
            url = None if url in ("null", "bitwarden.com", "https://bitwarden.com") else url
            if url:
                url = url.rstrip("/")
                if not url.startswith(("http://", "https://")):
                    url = "https://" + url
                url = url.strip()
            state["server"] = url
            self.save_state(state)
            self.ok(self.message("Saved setting `config`."))
        if cmd == "login":
            if state["user_id"] is not None:
                self.fail(f"You are already logged in as {self.account()['email']}.")
            cid = os.environ.get("BW_CLIENTID")
            secret = os.environ.get("BW_CLIENTSECRET")
            if self.interactive and not cid:
                self.prompt_trap("client_id")
            if not cid:
                self.fail("client_id is required.")
            if cid.startswith("organization."):
                self.fail("Invalid API Key; Organization API Key currently not supported")
            if not secret:
                self.fail("client_secret is required.")
            server = state["server"] or "https://vault.bitwarden.com"
            if server.startswith("http://"):
                self.fail("Error: Insecure URL not allowed. All URLs must use HTTPS.")
            if self.sc.get("server_down"):
                self.fail(
                    f"FetchError: request to {server}/identity/connect/token failed, reason: "
                    "connect ECONNREFUSED 127.0.0.1:18443"
                )
            if cid != self.account()["client_id"]:
                self.fail("Invalid client_id")
            if secret != self.account()["client_secret"]:
                self.fail("Incorrect client_secret")
            state["user_id"] = self.account()["user_id"]
            self.save_state(state)
            self.ok(
                self.message(
                    "You are logged in!",
                    "\nTo unlock your vault, use the `unlock` command. ex:\n$ bw unlock",
                )
            )
        if cmd == "unlock":
            if state["user_id"] is None:
                self.fail(NOT_LOGGED_IN)
            name = self.opts.get("--passwordenv")
            password = os.environ.get(name) if name else None
            warn = (
                f"Warning: Provided passwordenv {name} is not set\n"
                if name and password is None
                else ""
            )
            if password is None:
                if self.interactive:
                    self.prompt_trap("Master password: [input is hidden] ")
                self.fail(MASTER_REQUIRED, warn)
            if (
                password != self.account()["master_password"]
                or state["user_id"] != self.account()["user_id"]
            ):
                self.fail(CRYPTO, CRYPTO_LINES)
            key = base64.b64encode(os.urandom(64)).decode()
            state["session"] = key  # a new unlock invalidates every earlier key
            self.save_state(state)
            self.log_extra["issued_session"] = key
            text = (
                "\nTo unlock your vault, set your session key to the `BW_SESSION` environment "
                f'variable. ex:\n$ export BW_SESSION="{key}"'
            )
            self.ok(self.message("Your vault is now unlocked!", text, raw=key))
        if cmd == "sync":
            self.require_unlocked(state, prompt=False)
            server = state["server"]
            if self.sc.get("server_down"):
                self.fail(
                    f"Syncing failed: FetchError: request to {server}/api/accounts/revision-date "
                    "failed, reason: connect ECONNREFUSED 127.0.0.1:18443"
                )
            if self.sc.get("server_error"):
                self.fail("Syncing failed: Internal error")
            state["last_sync"] = "2026-11-23T11:34:42.538Z"
            self.save_state(state)
            self.ok(self.message("Syncing complete."))
        if cmd == "lock":
            if state["user_id"] is None:
                self.fail(NOT_LOGGED_IN)
            state["session"] = None
            self.save_state(state)
            self.ok(self.message("Your vault is locked."))
        if cmd == "logout":
            if state["user_id"] is None:
                self.fail(NOT_LOGGED_IN)
            state["user_id"] = None
            state["session"] = None
            self.save_state(state)
            self.ok(self.message("You have logged out."))
        if cmd == "list":
            obj = self.pos[1] if len(self.pos) > 1 else ""
            if state["user_id"] is None:
                self.fail(NOT_LOGGED_IN)
            self.require_unlocked(state)
            vault = self.sc["vault"]
            search = self.opts.get("--search", "").lower()
            if obj == "organizations":
                rows = vault["organizations"]
            elif obj == "collections":
                rows = vault["collections"]
                org = self.opts.get("--organizationid")
                if org:
                    rows = [c for c in rows if c["organizationId"] == org]
            elif obj == "items":
                rows = vault["items"]
                col = self.opts.get("--collectionid")
                org = self.opts.get("--organizationid")
                if (col or org) and self.misbehaving() != "ignore-filter":
                    # The real CLI ORs the two filters.
                    rows = [
                        i
                        for i in rows
                        if (col and col in i.get("collectionIds", []))
                        or (org and i.get("organizationId") == org)
                    ]
            else:
                self.fail(
                    f'Unknown object "{obj}". Allowed objects are: items, folders, collections, '
                    "org-collections, org-members, organizations."
                )
            if search:
                rows = [r for r in rows if search in r.get("name", "").lower()]
            self.ok({"object": "list", "data": rows})
        self.fail(f"unknown command {cmd!r} (fake bw)")

    def misbehaving(self) -> object:
        table = self.sc.get("misbehave", {})
        key = (
            " ".join(self.pos[:2])
            if self.pos[:1] == ["list"]
            else (self.pos[0] if self.pos else "")
        )
        return table.get(key)

    def misbehave(self) -> None:
        how = self.misbehaving()
        if how is None or how == "ignore-filter":
            return
        if how == "newline":
            sys.stdout.write("\n")
            raise Exit(0)
        if how == "empty":
            raise Exit(0)
        if how == "not-json":
            sys.stdout.write("Syncing complete.")
            raise Exit(0)
        if how == "no-envelope":
            sys.stdout.write("[]")
            raise Exit(0)
        if how == "success-exit1":
            sys.stdout.write('{"success":true,"data":{"object":"list","data":[]}}')
            raise Exit(1)
        if how == "cleanexit":
            sys.stdout.write('{"success":false,"message":"Vault is locked."}')
            raise Exit(0)
        if how == "crash":
            sys.stderr.write(
                "node:internal/process/promises:391\n    triggerUncaughtException(err, true);\n"
                "    ^\n\n[Error: ENOENT: no such file or directory, open '/nope']\n"
            )
            raise Exit(1)
        if how == "flood":
            chunk = "x" * 65536
            for _ in range(64):  # 4 MiB, then a valid answer
                sys.stdout.write(chunk)
            raise Exit(0)
        if how == "bad-session-key":
            self.ok(self.message("Your vault is now unlocked!", "", raw="not-a-key"))
        if how == "hang":
            child = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", "import time; time.sleep(600)"],
                stdin=subprocess.DEVNULL,
            )
            pid_file = self.sc.get("pid_file")
            if pid_file:
                with open(pid_file, "a") as f:
                    f.write(f"{os.getpid()} {child.pid}\n")
            time.sleep(600)
            raise Exit(0)
        if isinstance(how, dict) and "error" in how:
            self.fail(how["error"], how.get("stderr", ""))
        if isinstance(how, dict) and "stdout" in how:  # verbatim, e.g. hand-written JSON
            sys.stdout.write(how["stdout"])
            raise Exit(how.get("exit", 0))
        raise SystemExit(f"fake bw: unknown misbehaviour {how!r}")


def main() -> int:
    scenario_path, *args = sys.argv[1:]
    with open(scenario_path) as f:
        scenario = json.load(f)
    fake = Fake(scenario, args)
    fake.log_extra = {}
    try:
        st = os.fstat(0)
        devnull = os.stat("/dev/null")
        stdin_devnull = stat.S_ISCHR(st.st_mode) and st.st_rdev == devnull.st_rdev
    except OSError:
        stdin_devnull = False
    entry = {
        "argv": args,
        "env": dict(os.environ),
        "stdin_devnull": stdin_devnull,
        "own_group": os.getpgrp() == os.getpid(),
        "pid": os.getpid(),
        "overlap": False,
    }
    # Detect two bw processes at work on one appdata dir at the same time.
    busy = None
    if os.path.isdir(fake.appdata):
        busy = os.open(os.path.join(fake.appdata, "fake-bw-busy"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(busy, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            entry["overlap"] = True
            fcntl.flock(busy, fcntl.LOCK_EX)
    code = 0
    try:
        time.sleep(float(scenario.get("delay", 0)))
        fake.misbehave()
        fake.run()
    except Exit as e:
        code = e.code
    finally:
        entry.update(fake.log_extra)
        entry["exit"] = code
        log = scenario.get("log")
        if log:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(fd, (json.dumps(entry) + "\n").encode())
            os.close(fd)
        if busy is not None:
            os.close(busy)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
