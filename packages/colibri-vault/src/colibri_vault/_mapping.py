"""Vault items of one collection -> variables (pure).

Policy:
- Custom fields of type 0 (text), 1 (hidden) and 2 (boolean, value ``"true"`` or
  ``"false"``) of every item become variables named after the field; a field with no
  value becomes the empty string. Type 3 (linked) has no value of its own and any
  other type is unknown: both are errors, as is a field name that is not a variable
  name.
- Login items (type 1), under ``LoginItemPolicy.PASSWORD_BY_NAME`` (the default):
  an item whose *name* is a valid variable name also gives ``NAME=<its password>``;
  an item with a descriptive name (``alpha-postgres``) gives only its custom fields.
  ``LoginItemPolicy.IGNORE`` uses custom fields only.
- A variable defined twice (by two fields, or a field and a login item) is an error,
  whatever the values.
- Items are re-checked: only those whose ``organizationId`` is the organization and
  whose ``collectionIds`` hold the collection count (``bw list items`` filters are
  not to be trusted, reference/bw-cli.md trap 4). Notes are never used.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from colibri_vault._envfile import EnvFileFormat, check_value, is_valid_key
from colibri_vault.errors import (
    DuplicateVariable,
    InvalidVariableName,
    UnsafeValue,
    UnsupportedField,
)

_VALUE_FIELD_TYPES = (0, 1, 2)
_LOGIN_ITEM = 1


class LoginItemPolicy(enum.Enum):
    """Whether a login item named like a variable gives ``NAME=<password>``."""

    PASSWORD_BY_NAME = "password-by-name"
    IGNORE = "ignore"


def item_belongs(item: Mapping[str, Any], organization_id: str, collection_id: str) -> bool:
    """Whether ``item`` is really in the organization and the collection."""
    collections = item.get("collectionIds")
    return (
        item.get("organizationId") == organization_id
        and isinstance(collections, list)
        and collection_id in collections
    )


def _label(item: Mapping[str, Any]) -> str:
    name = item.get("name")
    ident = item.get("id")
    return f"{name} ({ident})" if isinstance(name, str) else f"item {ident}"


def map_items(
    tenant: str,
    items: Iterable[Mapping[str, Any]],
    *,
    policy: LoginItemPolicy = LoginItemPolicy.PASSWORD_BY_NAME,
    fmt: EnvFileFormat = EnvFileFormat.DOTENV,
) -> dict[str, str]:
    """The variables the items define; raises a ``VaultContentError`` leaf on any doubt."""
    variables: dict[str, str] = {}
    sources: dict[str, str] = {}

    def define(key: str, value: str, source: str) -> None:
        if key in variables:
            raise DuplicateVariable(tenant, key, [sources[key], source])
        try:
            check_value(key, value, fmt)
        except UnsafeValue as exc:
            raise UnsafeValue(key, exc.reason, tenant=tenant) from None
        variables[key] = value
        sources[key] = source

    for item in items:
        label = _label(item)
        fields = item.get("fields")
        if fields is None:  # absent or null: no custom fields (false, 0, "" or {} are not)
            fields = []
        if not isinstance(fields, list):
            raise UnsupportedField(tenant, "fields", label, type(fields).__name__)
        for field in fields:
            if not isinstance(field, Mapping):
                raise UnsupportedField(tenant, "?", label, type(field).__name__)
            name = field.get("name")
            ftype = field.get("type")
            if not isinstance(name, str):
                raise InvalidVariableName(tenant, repr(name), label)
            if type(ftype) is not int or ftype not in _VALUE_FIELD_TYPES:  # not True, not 0.0
                raise UnsupportedField(tenant, name, label, ftype)
            if not is_valid_key(name):
                raise InvalidVariableName(tenant, name, label)
            value = field.get("value")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise UnsupportedField(tenant, name, label, f"{ftype} with a non-text value")
            define(name, value, label)
        item_type = item.get("type")
        is_login = type(item_type) is int and item_type == _LOGIN_ITEM  # not True, not 1.0
        if policy is LoginItemPolicy.PASSWORD_BY_NAME and is_login:
            name = item.get("name")
            if isinstance(name, str) and is_valid_key(name):
                login = item.get("login")
                password = login.get("password") if isinstance(login, Mapping) else None
                if password is not None and not isinstance(password, str):
                    raise UnsupportedField(tenant, name, label, "login with a non-text password")
                define(name, password or "", f"{label} password")
    return variables
