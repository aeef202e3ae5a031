"""colibri-vault: a tenant's Vaultwarden collection -> a 0600 .env inside its jail.

See the package README for an example. Everything public is importable from here.
"""

from __future__ import annotations

from typing import Any

from colibri_vault._bw import normalize_server_url
from colibri_vault._envfile import EnvFileFormat, content_hash, render_env_file
from colibri_vault._mapping import LoginItemPolicy, map_items
from colibri_vault._provision import (
    DEFAULT_ALLOWED_BASE,
    ForeignLoginPolicy,
    JailSettings,
    ProvisionAction,
    ProvisionResult,
    VaultSettings,
    provision,
)
from colibri_vault._secret import Secret
from colibri_vault.errors import VaultError

__all__ = [
    "DEFAULT_ALLOWED_BASE",
    "EnvFileFormat",
    "ForeignLoginPolicy",
    "JailSettings",
    "LoginItemPolicy",
    "ProvisionAction",
    "ProvisionResult",
    "Secret",
    "VaultError",
    "VaultSettings",
    "__version__",
    "content_hash",
    "map_items",
    "normalize_server_url",
    "provision",
    "render_env_file",
]


def __getattr__(name: str) -> Any:
    # The version comes from the installed distribution's metadata, so there is
    # one source of truth (pyproject.toml) and no import-time cost.
    if name == "__version__":
        from importlib.metadata import version

        return version("colibri-vault")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
