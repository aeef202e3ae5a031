"""Errors raised by colibri-vault.

Every error is a ``VaultError``; catch that one root to handle them all. No error
text ever holds a secret value: leaves carry names (tenant, keys, item names, paths,
the ``bw`` command without its environment), never values::

    VaultError
    ├── VaultConfigError (ValueError)        settings that cannot be used as given
    │   └── InsecureServerUrl                 the server URL is not https://
    ├── BwError                               a ``bw`` call failed or answered nonsense
    │   ├── BwUnavailable                     the executable cannot be run
    │   ├── NotLoggedIn                       no account and no API key to log in with
    │   ├── VaultLocked                       the session key was refused
    │   ├── BadMasterPassword                 unlock refused the master password
    │   ├── BadApiKey                         login refused the user API key
    │   ├── ServerMismatch                    the appdata dir belongs to another server
    │   ├── AccountMismatch                   ... or to another account
    │   ├── InsecureUrl                       bw refused a non-HTTPS server
    │   ├── VaultNetworkError (ConnectionError)  server unreachable, DNS, TLS
    │   ├── VaultServerError                  the server answered with an error
    │   ├── BwTimeout (TimeoutError)          the call ran past its timeout and was killed
    │   ├── UnparsableOutput                  exit 0 without the expected answer
    │   └── BwCommandFailed                   any other refusal, with bw's own message
    ├── VaultContentError                     the vault's data cannot become a .env
    │   ├── OrganizationMissing (LookupError)
    │   ├── AmbiguousOrganization
    │   ├── AmbiguousCollection
    │   ├── DuplicateVariable
    │   ├── InvalidVariableName
    │   ├── UnsupportedField                  linked (type 3) or unknown field types
    │   └── UnsafeValue                       a value the file format cannot hold
    ├── JailTargetError                       the jail side is unusable or hostile
    │   ├── TargetEscapesRoot                 a path leaves the jail root or the base
    │   ├── JailUserMissing (LookupError)
    │   ├── UnsafeJailUser                    uid 0, or an unusable passwd entry
    │   └── EnvWriteFailed (OSError-backed)   the file could not be written
    └── LockTimeout (TimeoutError)            another provision holds the appdata lock
"""

from __future__ import annotations

from collections.abc import Sequence


class VaultError(Exception):
    """Root of every error colibri-vault raises."""


# -- configuration ----------------------------------------------------------------------


class VaultConfigError(VaultError, ValueError):
    """Settings that cannot be used as given (nothing was run or written)."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"vault setting {setting}: {problem}")


class InsecureServerUrl(VaultConfigError):
    """The configured server URL does not use HTTPS."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            "server_url",
            f"{url!r} is not an https:// URL; bw refuses plain HTTP. Put the Vaultwarden "
            "server behind TLS (a private CA works through ca_cert=...)",
        )


# -- the bw CLI -------------------------------------------------------------------------


class BwError(VaultError):
    """A ``bw`` call failed, or answered something that cannot be trusted.

    ``command`` is the bw sub-command as run (no environment, so no secrets);
    ``bw_message`` is bw's own message with any known secret masked, or ``""``.
    """

    hint = "see bw_message"

    def __init__(self, command: str, bw_message: str = "", *, hint: str | None = None) -> None:
        self.command = command
        self.bw_message = bw_message
        if hint is not None:
            self.hint = hint
        if bw_message:
            super().__init__(f"`{command}` failed: bw said {bw_message!r}. {self.hint}")
        else:
            super().__init__(f"`{command}`: {self.hint}")


class BwUnavailable(BwError):
    """The bw executable (or the node it needs) cannot be run."""

    hint = (
        "Install @bitwarden/cli and point bw_executable at it (an absolute path); "
        "node must be on search_path"
    )


class NotLoggedIn(BwError):
    """The appdata dir holds no login and no API key was given to log in with."""

    hint = (
        "The appdata dir is logged out and no API key is configured: give the bootstrap "
        "user's personal API key (client_id 'user.<uuid>' and client_secret) so "
        "provisioning can log in"
    )


class VaultLocked(BwError):
    """bw answered "Vault is locked." although we had just unlocked it."""

    hint = (
        "Another process unlocked the same appdata dir and invalidated our session key; "
        "make every bw user of this appdata dir go through colibri-vault's lock"
    )


class BadMasterPassword(BwError):
    """unlock refused the master password (wrong, empty or missing)."""

    hint = "Check the bootstrap user's master password (master_password setting)"


class BadApiKey(BwError):
    """login refused the API key."""

    hint = (
        "Use the bootstrap user's personal API key (client_id 'user.<uuid>' and its "
        "client_secret, from the web vault: Account settings > Security > Keys); "
        "organization API keys cannot log in"
    )


class ServerMismatch(BwError):
    """The appdata dir is logged in to another server than the configured one."""

    def __init__(self, command: str, expected: str, actual: str | None) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            command,
            hint=(
                f"The appdata dir is logged in to {actual!r}, not the configured {expected!r}; "
                "fix server_url, or run `bw logout` with this BITWARDENCLI_APPDATA_DIR"
            ),
        )


class AccountMismatch(BwError):
    """The appdata dir is logged in as another user than the API key's."""

    def __init__(self, command: str, expected_user_id: str, actual_user_id: str | None) -> None:
        self.expected_user_id = expected_user_id
        self.actual_user_id = actual_user_id
        super().__init__(
            command,
            hint=(
                f"The appdata dir is logged in as user {actual_user_id!r}, not the API key's "
                f"{expected_user_id!r}; use a dedicated appdata dir or run `bw logout` in it"
            ),
        )


class InsecureUrl(BwError):
    """bw refused the server because it is not HTTPS."""

    hint = "Configure an https:// server URL"


class VaultNetworkError(BwError, ConnectionError):
    """The server could not be reached (refused, DNS, TLS verification)."""

    hint = (
        "Check that the Vaultwarden server is up and reachable from this host; with a "
        "private CA set ca_cert to its PEM file"
    )


class VaultServerError(BwError):
    """The server answered with an error (e.g. ``Syncing failed: Internal error``)."""

    hint = "Look at the Vaultwarden server's log; nothing was written"


class BwTimeout(BwError, TimeoutError):
    """The call ran past its timeout; its whole process group was killed."""

    def __init__(self, command: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(
            command,
            hint=(
                f"No answer within {timeout:g} s; the server may accept connections but "
                "never answer. Check it, or raise the timeout setting"
            ),
        )


class UnparsableOutput(BwError):
    """bw exited 0 but did not print the expected answer (e.g. only a newline)."""

    def __init__(self, command: str, what: str) -> None:
        self.what = what
        super().__init__(
            command,
            hint=(
                f"Its output could not be trusted ({what}); this is how an interactive "
                "prompt or an unsupported bw version looks. Nothing was written"
            ),
        )


class BwCommandFailed(BwError):
    """Any other refusal from bw; ``exit_code`` is its exit status."""

    def __init__(self, command: str, bw_message: str, exit_code: int) -> None:
        self.exit_code = exit_code
        super().__init__(command, bw_message, hint=f"bw exited with status {exit_code}")


# -- vault content ----------------------------------------------------------------------


class VaultContentError(VaultError):
    """The tenant's vault data cannot be turned into a .env; nothing was written."""


class OrganizationMissing(VaultContentError, LookupError):
    """The bootstrap user sees no organization with the configured name or id."""

    def __init__(self, organization: str, visible: Sequence[str]) -> None:
        self.organization = organization
        self.visible = tuple(visible)
        super().__init__(
            f"organization {organization!r} is not visible to the bootstrap user (it sees "
            f"{list(self.visible)!r}); confirm the user as a member of it, or fix the "
            "organization setting"
        )


class AmbiguousOrganization(VaultContentError):
    """More than one organization carries the configured name."""

    def __init__(self, organization: str, ids: Sequence[str]) -> None:
        self.organization = organization
        self.ids = tuple(ids)
        super().__init__(
            f"{len(self.ids)} organizations are named {organization!r}; configure the "
            f"organization by id instead (one of {list(self.ids)!r})"
        )


class AmbiguousCollection(VaultContentError):
    """More than one collection of the organization is named exactly like the tenant."""

    def __init__(self, tenant: str, ids: Sequence[str]) -> None:
        self.tenant = tenant
        self.ids = tuple(ids)
        super().__init__(
            f"{len(self.ids)} collections are named exactly {tenant!r} ({list(self.ids)!r}); "
            "rename or merge them so the tenant has one collection"
        )


class DuplicateVariable(VaultContentError):
    """Two fields (or items) of the tenant's collection give the same variable."""

    def __init__(self, tenant: str, key: str, sources: Sequence[str]) -> None:
        self.tenant = tenant
        self.key = key
        self.sources = tuple(sources)
        super().__init__(
            f"variable {key!r} of tenant {tenant!r} is defined more than once (by "
            f"{list(self.sources)!r}); keep one definition in the collection"
        )


class InvalidVariableName(VaultContentError):
    """A field name is not a valid variable name (``^[A-Za-z_][A-Za-z0-9_]*$``)."""

    def __init__(self, tenant: str, key: str, source: str) -> None:
        self.tenant = tenant
        self.key = key
        self.source = source
        super().__init__(
            f"field {key!r} of item {source!r} (tenant {tenant!r}) is not a valid variable "
            "name; use letters, digits and '_' only, not starting with a digit"
        )


class UnsupportedField(VaultContentError):
    """A custom field of a type that has no value of its own (linked, type 3) or unknown."""

    def __init__(self, tenant: str, key: str, source: str, field_type: object) -> None:
        self.tenant = tenant
        self.key = key
        self.source = source
        self.field_type = field_type
        kind = "a linked field (type 3)" if field_type == 3 else f"of type {field_type!r}"
        super().__init__(
            f"field {key!r} of item {source!r} (tenant {tenant!r}) is {kind}; only text (0), "
            "hidden (1) and boolean (2) fields can become variables. Replace it by a "
            "hidden field holding the value"
        )


class UnsafeValue(VaultContentError):
    """A value the chosen .env format cannot represent unambiguously."""

    def __init__(self, key: str, reason: str, *, tenant: str | None = None) -> None:
        self.tenant = tenant
        self.key = key
        self.reason = reason
        of = f" of tenant {tenant!r}" if tenant is not None else ""
        super().__init__(
            f"the value of {key!r}{of} {reason}; the .env format cannot hold it "
            "unambiguously. Change the value, or choose EnvFileFormat.DOTENV if the file is "
            "never sourced by a shell"
        )


# -- the jail side ----------------------------------------------------------------------


class JailTargetError(VaultError):
    """The jail side is unusable or hostile; nothing outside the jail was touched."""


class TargetEscapesRoot(JailTargetError):
    """A path leaves the allowed base or the jail root, or goes through a symlink."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"refusing {path!r}: {reason}. The jail root must lie strictly inside the "
            "allowed base and every component inside it must be a real directory"
        )


class JailUserMissing(JailTargetError, LookupError):
    """The jail user is not in the jail's own etc/passwd."""

    def __init__(self, user: str, passwd: str) -> None:
        self.user = user
        self.passwd = passwd
        super().__init__(
            f"user {user!r} is not in {passwd}; create it inside the jail or fix the "
            "jail user setting"
        )


class UnsafeJailUser(JailTargetError):
    """The jail's passwd maps the user to uid 0, or its entry is unusable."""

    def __init__(self, user: str, passwd: str, reason: str) -> None:
        self.user = user
        self.passwd = passwd
        self.reason = reason
        super().__init__(
            f"refusing jail user {user!r} from {passwd}: {reason}. Secrets are only "
            "written for an unprivileged jail user"
        )


class EnvWriteFailed(JailTargetError):
    """The .env could not be written; ``errno`` is the OS error number if any.

    ``replaced`` is true in the one case where the new file already took the old one's
    place (only the directory's fsync failed): it is visible but may not survive a crash.
    """

    def __init__(
        self, path: str, reason: str, errno: int | None = None, *, replaced: bool = False
    ) -> None:
        self.path = path
        self.reason = reason
        self.errno = errno
        self.replaced = replaced
        if replaced:
            super().__init__(
                f"wrote {path}, but {reason}; the new file is in place but may not survive "
                "a crash: provision again"
            )
        else:
            super().__init__(f"could not write {path}: {reason}; the previous file is unchanged")


# -- serialisation ----------------------------------------------------------------------


class LockTimeout(VaultError, TimeoutError):
    """Another provision held the appdata dir's lock for longer than the wait allowed."""

    def __init__(self, lock_path: str, waited: float) -> None:
        self.lock_path = lock_path
        self.waited = waited
        super().__init__(
            f"{lock_path} stayed locked for {waited:g} s; another provision (or a stuck bw) "
            "holds it. Retry later or raise lock_timeout"
        )
