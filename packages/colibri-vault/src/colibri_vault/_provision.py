"""provision(): one tenant's Vaultwarden collection -> a 0600 .env inside its jail."""

from __future__ import annotations

import enum
import logging
import os
import re
import shutil
import stat
import traceback
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from colibri_vault._bw import (
    BwRunner,
    BwStatus,
    normalize_server_url,
    parse_list,
    parse_message,
    parse_session_key,
    parse_status,
)
from colibri_vault._envfile import EnvFileFormat, content_hash, render_env_file
from colibri_vault._jail import JailTarget, default_jail_root
from colibri_vault._lock import appdata_lock
from colibri_vault._mapping import LoginItemPolicy, item_belongs, map_items
from colibri_vault._secret import Secret
from colibri_vault.errors import (
    AccountMismatch,
    AmbiguousCollection,
    AmbiguousOrganization,
    BwError,
    EnvWriteFailed,
    InsecureServerUrl,
    NotLoggedIn,
    OrganizationMissing,
    ServerMismatch,
    UnparsableOutput,
    VaultConfigError,
)

log = logging.getLogger("colibri_vault")

DEFAULT_ALLOWED_BASE: Final = "/usr/local/bastille/jails"
_TENANT: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_USER_CLIENT_ID: Final = re.compile(r"user\.[0-9a-fA-F-]{36}")
_USER_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_GUID: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _path(value: str | os.PathLike[str]) -> Path:
    return Path(value)


def _optional_path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value)


class ForeignLoginPolicy(enum.Enum):
    """What to do when the appdata dir is logged in to another server or account."""

    REFUSE = "refuse"  # raise ServerMismatch / AccountMismatch (default)
    LOGOUT = "logout"  # `bw logout`, then log in with the configured API key


@attrs.frozen
class VaultSettings:
    """How to reach the vault. Secrets are :class:`Secret` and never shown.

    ``client_id``/``client_secret`` are the bootstrap *user's* personal API key (only
    needed while the appdata dir is logged out); ``master_password`` unlocks it on
    every call. ``organization`` is the organization's exact name or its id.
    ``appdata_dir`` is bw's state (it holds the API secret while logged in): a host
    directory of mode 0700, never inside a jail.
    """

    server_url: str
    organization: str
    appdata_dir: Path = attrs.field(converter=_path)
    bw_executable: Path = attrs.field(converter=_path)
    master_password: Secret
    client_id: str | None = None
    client_secret: Secret | None = None
    ca_cert: Path | None = attrs.field(default=None, converter=_optional_path)
    search_path: str = "/usr/local/bin:/usr/bin:/bin"
    timeout: float = 60.0
    lock_timeout: float = 600.0
    login_items: LoginItemPolicy = LoginItemPolicy.PASSWORD_BY_NAME
    env_format: EnvFileFormat = EnvFileFormat.DOTENV
    foreign_login: ForeignLoginPolicy = ForeignLoginPolicy.REFUSE


@attrs.frozen
class JailSettings:
    """Where the .env goes. ``env_path`` is a path inside the jail (default: the jail
    user's home from the jail's passwd, plus ``/.env``)."""

    user: str
    allowed_base: str = DEFAULT_ALLOWED_BASE
    env_path: str | None = None


class ProvisionAction(enum.Enum):
    """What provision() did."""

    NO_COLLECTION = "no-collection"  # the tenant has no collection: nothing touched
    UNCHANGED = "unchanged"  # the file already held exactly these secrets
    CREATED = "created"
    UPDATED = "updated"


@attrs.frozen
class ProvisionResult:
    """For the audit trail: names and a hash, never values."""

    tenant: str
    action: ProvisionAction
    path: str
    keys: tuple[str, ...] = ()
    content_sha256: str | None = None
    collection_id: str | None = None


def _check_settings(vault: VaultSettings, jail: JailSettings) -> tuple[BwRunner, str]:
    # Surrounding whitespace would survive one normalisation ("https://h/ " keeps its
    # slash) but not bw's second one, when it stores the URL: drop it first.
    expected = normalize_server_url(vault.server_url.strip())
    if expected is None or not expected.startswith("https://"):
        raise InsecureServerUrl(vault.server_url)
    try:
        host = urllib.parse.urlsplit(expected).hostname
    except ValueError:
        host = None
    if not host or expected != normalize_server_url(expected):
        raise VaultConfigError("server_url", f"{vault.server_url!r} names no server")
    if not vault.bw_executable.is_absolute():
        raise VaultConfigError("bw_executable", "must be an absolute path")
    if not os.access(vault.bw_executable, os.X_OK):
        raise VaultConfigError("bw_executable", f"{vault.bw_executable} is not executable")
    if vault.client_id is not None and not _USER_CLIENT_ID.fullmatch(vault.client_id):
        raise VaultConfigError(
            "client_id",
            "must be a user API key ('user.<uuid>'); organization API keys cannot log in",
        )
    if (vault.client_id is None) != (vault.client_secret is None):
        raise VaultConfigError("client_id/client_secret", "give both or neither")
    if vault.ca_cert is not None and not os.access(vault.ca_cert, os.R_OK):
        # node only warns about a missing NODE_EXTRA_CA_CERTS, then fails on TLS.
        raise VaultConfigError("ca_cert", f"{vault.ca_cert} is not a readable PEM file")
    for setting, value, kind in (
        ("login_items", vault.login_items, LoginItemPolicy),
        ("env_format", vault.env_format, EnvFileFormat),
        ("foreign_login", vault.foreign_login, ForeignLoginPolicy),
    ):
        # A plain string ("shell") compares unequal to every member: env_format would
        # silently fall back to the DOTENV rules and write what sh cannot source safely.
        if not isinstance(value, kind):
            raise VaultConfigError(setting, f"must be a {kind.__name__}, got {value!r}")
    for setting, secret in (
        ("master_password", vault.master_password),
        ("client_secret", vault.client_secret),
    ):
        if secret is not None:
            _check_env_secret(setting, secret)
    if not (vault.timeout > 0 and vault.lock_timeout >= 0):
        raise VaultConfigError("timeout", "must be positive")
    if not _USER_NAME.fullmatch(jail.user):
        raise VaultConfigError("jail user", f"{jail.user!r} is not a user name")
    _check_appdata(vault.appdata_dir)
    # A bw-data directory beside node (or a standalone bw) silently replaces the
    # appdata dir (reference/bw-cli.md).
    candidates = [Path(os.path.realpath(vault.bw_executable)).parent]
    node = shutil.which("node", path=vault.search_path)
    if node is not None:
        candidates.append(Path(os.path.realpath(node)).parent)
    for directory in candidates:
        if (directory / "bw-data").exists():
            raise VaultConfigError(
                "bw_executable",
                f"{directory / 'bw-data'} exists and would override appdata_dir; remove it",
            )
    runner = BwRunner(
        executable=vault.bw_executable,
        appdata_dir=vault.appdata_dir,
        search_path=vault.search_path,
        timeout=vault.timeout,
        ca_cert=vault.ca_cert,
    )
    return runner, expected


def _check_env_secret(setting: str, secret: Secret) -> None:
    """A secret that bw's environment can carry. Otherwise Popen raises ValueError (a
    NUL) or UnicodeEncodeError (a lone surrogate, which os.fsencode cannot encode),
    and the latter holds the whole value in its args and repr."""
    if not isinstance(secret, Secret):
        raise VaultConfigError(setting, f"must be a Secret, got a {type(secret).__name__}")
    value = secret.reveal()
    problem = None
    if "\x00" in value:
        problem = "contains a NUL character (an environment variable cannot hold it)"
    else:
        try:
            os.fsencode(value)
        except UnicodeEncodeError:
            problem = "is not valid Unicode text (a lone surrogate)"
    if problem is not None:  # raised outside the handler: no __context__ with the value
        raise VaultConfigError(setting, problem)


def _check_appdata(path: Path) -> None:
    if not path.is_absolute():
        raise VaultConfigError("appdata_dir", "must be an absolute path")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise VaultConfigError("appdata_dir", f"cannot create {path}: {exc.strerror}") from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise VaultConfigError("appdata_dir", f"{path} is not a directory (or is a symlink)")
    if st.st_uid != os.geteuid():
        raise VaultConfigError("appdata_dir", f"{path} is not owned by uid {os.geteuid()}")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise VaultConfigError(
            "appdata_dir", f"{path} is readable by others; it holds the API secret: chmod 700"
        )


@attrs.frozen
class _Fetched:
    organization_id: str
    collection_id: str
    items: list[dict[str, Any]]


class _Sequence:
    """The bw calls of one provision, in reference/bw-cli.md's order."""

    def __init__(self, runner: BwRunner, vault: VaultSettings, expected_url: str) -> None:
        self.runner = runner
        self.vault = vault
        self.expected_url = expected_url
        self.known: list[Secret] = [vault.master_password]
        if vault.client_secret is not None:
            self.known.append(vault.client_secret)
        self.session: Secret | None = None

    def call(self, args: Sequence[str], env: Mapping[str, Secret] | None = None) -> Any:
        return self.runner.call(args, env, known_secrets=self.known)

    def session_env(self) -> dict[str, Secret]:
        return {} if self.session is None else {"BW_SESSION": self.session}

    def fetch(self, tenant: str) -> _Fetched | None:
        status = parse_status("bw status", self.call(["status"]))
        if status.status != "unauthenticated":
            try:
                self.check_login(status)
            except (ServerMismatch, AccountMismatch):
                # Someone else's login: refused before we touch it (not even a lock),
                # unless the policy says to log it out and log in as ourselves.
                if self.vault.foreign_login is not ForeignLoginPolicy.LOGOUT:
                    raise
                if self.vault.client_id is None or self.vault.client_secret is None:
                    raise
                parse_message("bw logout", self.call(["logout"]), "You have logged out.")
                log.warning("logged out the foreign login of %s", self.runner.appdata_dir)
                status = parse_status("bw status", self.call(["status"]))
                if status.status != "unauthenticated":
                    raise UnparsableOutput("bw status", "still logged in after bw logout") from None
        if status.status == "unauthenticated" and (
            self.vault.client_id is None or self.vault.client_secret is None
        ):
            raise NotLoggedIn("bw status")
        try:
            if status.status == "unauthenticated":
                self.login(status.server_url)
            fetched = self.fetch_unlocked(tenant)
        except BaseException:
            self.lock(strict=False)
            raise
        self.lock(strict=True)
        return fetched

    def check_login(self, status: BwStatus) -> None:
        if normalize_server_url(status.server_url) != self.expected_url:
            raise ServerMismatch("bw status", self.expected_url, status.server_url)
        if self.vault.client_id is not None:
            expected_user = self.vault.client_id.removeprefix("user.").lower()
            if (status.user_id or "").lower() != expected_user:
                raise AccountMismatch("bw status", expected_user, status.user_id)

    def login(self, server_url: str | None) -> None:
        if normalize_server_url(server_url) != self.expected_url:
            parse_message(
                "bw config server",
                self.call(["config", "server", self.expected_url]),
                "Saved setting `config`.",
            )
        assert self.vault.client_id is not None and self.vault.client_secret is not None
        parse_message(
            "bw login --apikey",
            self.call(
                ["login", "--apikey"],
                {
                    "BW_CLIENTID": Secret(self.vault.client_id),
                    "BW_CLIENTSECRET": self.vault.client_secret,
                },
            ),
            "You are logged in!",
        )

    def fetch_unlocked(self, tenant: str) -> _Fetched | None:
        command = "bw unlock --passwordenv BW_PASSWORD"
        data = self.call(
            ["unlock", "--passwordenv", "BW_PASSWORD"], {"BW_PASSWORD": self.vault.master_password}
        )
        self.session = parse_session_key(command, data)
        self.known.append(self.session)
        env = self.session_env()
        parse_message("bw sync", self.call(["sync"], env), "Syncing complete.")
        orgs = parse_list("bw list organizations", self.call(["list", "organizations"], env))
        org_id = self.pick_organization(orgs)
        args = ["list", "collections", "--organizationid", org_id]
        collections = parse_list("bw " + " ".join(args), self.call(args, env))
        matches = [
            c for c in collections if c.get("name") == tenant and c.get("organizationId") == org_id
        ]
        if not matches:
            return None
        ids = [str(c.get("id")) for c in matches]
        if len(matches) > 1:
            raise AmbiguousCollection(tenant, ids)
        collection_id = ids[0]
        if not _GUID.fullmatch(collection_id):
            # Ids go into bw's argv: only a GUID can never read as an option.
            raise UnparsableOutput("bw list collections", "a collection id that is not a GUID")
        args = ["list", "items", "--collectionid", collection_id]
        items = parse_list("bw " + " ".join(args), self.call(args, env))
        kept = [i for i in items if item_belongs(i, org_id, collection_id)]
        if len(kept) != len(items):
            log.warning(
                "tenant %s: ignored %d item(s) bw listed outside collection %s",
                tenant,
                len(items) - len(kept),
                collection_id,
            )
        return _Fetched(org_id, collection_id, kept)

    def pick_organization(self, orgs: list[dict[str, Any]]) -> str:
        wanted = self.vault.organization
        by_id = [o for o in orgs if o.get("id") == wanted]
        if by_id and _GUID.fullmatch(wanted):
            return wanted
        by_name = [o for o in orgs if o.get("name") == wanted and isinstance(o.get("id"), str)]
        if not by_name:
            raise OrganizationMissing(wanted, [str(o.get("name")) for o in orgs])
        if len(by_name) > 1:
            raise AmbiguousOrganization(wanted, [str(o["id"]) for o in by_name])
        org_id = str(by_name[0]["id"])
        if not _GUID.fullmatch(org_id):
            raise UnparsableOutput("bw list organizations", "an organization id that is not a GUID")
        return org_id

    def lock(self, *, strict: bool) -> None:
        """``bw lock``; with ``strict`` a failure is raised (fail closed), else logged."""
        try:
            parse_message("bw lock", self.call(["lock"], self.session_env()))
        except NotLoggedIn:
            pass
        except BwError as exc:
            if strict:
                raise
            log.warning("bw lock failed after an earlier error: %s", exc)
        finally:
            self.session = None


def provision(
    tenant: str,
    *,
    vault: VaultSettings,
    jail: JailSettings,
    jail_root: str | None = None,
) -> ProvisionResult:
    """Write tenant ``tenant``'s secrets (its Vaultwarden collection of the same name)
    into ``<jail root>/<home>/.env`` (or ``jail.env_path``), mode 0600, owned by the
    jail user.

    ``jail_root`` defaults to Bastille's ``<allowed_base>/<tenant>/root``. Fail-closed:
    any doubt raises a :class:`~colibri_vault.errors.VaultError` leaf and writes
    nothing. A tenant without a collection is a no-op (an existing file is kept); the
    same secrets as on disk leave the file (and its mtime) alone.
    """
    try:
        return _provision(tenant, vault, jail, jail_root)
    except BaseException as exc:
        # The frames below this one held bw's environment, its output and the secrets
        # themselves in their locals, which a crash reporter that records locals would
        # send away: clear them (this frame holds only Secret wrappers and settings).
        _clear_frames(exc)
        raise


def _clear_frames(exc: BaseException) -> None:
    """Clear the locals of the finished frames in ``exc``'s traceback, and in those of
    its causes and contexts (the chain is walked once; a running frame is skipped)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        e = pending.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)
        pending += [e.__cause__, e.__context__]


def _provision(
    tenant: str, vault: VaultSettings, jail: JailSettings, jail_root: str | None
) -> ProvisionResult:
    if not _TENANT.fullmatch(tenant):
        raise VaultConfigError("tenant", f"{tenant!r} is not a jail name")
    runner, expected_url = _check_settings(vault, jail)
    root = jail_root if jail_root is not None else default_jail_root(jail.allowed_base, tenant)
    with JailTarget(
        allowed_base=jail.allowed_base, jail_root=root, user=jail.user, env_path=jail.env_path
    ) as target:
        with appdata_lock(vault.appdata_dir, vault.lock_timeout):
            fetched = _Sequence(runner, vault, expected_url).fetch(tenant)
            if fetched is None:
                log.info(
                    "tenant %s: no collection named so; %s left alone", tenant, target.path_shown
                )
                return ProvisionResult(tenant, ProvisionAction.NO_COLLECTION, target.path_shown)
            variables = map_items(
                tenant, fetched.items, policy=vault.login_items, fmt=vault.env_format
            )
            content = render_env_file(variables, vault.env_format)
            target.check_in_place()
            try:
                # Before the write: if they cannot go, nothing is written either.
                leftovers = target.remove_leftovers()
                if target.is_current(content):
                    action = ProvisionAction.UNCHANGED
                else:
                    existed = target.exists()
                    target.write(content)
                    action = ProvisionAction.UPDATED if existed else ProvisionAction.CREATED
            except OSError as exc:
                raise EnvWriteFailed(
                    target.path_shown, exc.strerror or str(exc), exc.errno
                ) from None
        if leftovers:
            log.warning(
                "tenant %s: removed %d temporary file(s) an interrupted write left beside %s",
                tenant,
                len(leftovers),
                target.path_shown,
            )
        result = ProvisionResult(
            tenant,
            action,
            target.path_shown,
            keys=tuple(sorted(variables)),
            content_sha256=content_hash(content),
            collection_id=fetched.collection_id,
        )
    log.info(
        "tenant %s: %s %s (%d keys: %s; %s)",
        tenant,
        action.value,
        result.path,
        len(result.keys),
        ", ".join(result.keys),
        result.content_sha256,
    )
    return result
