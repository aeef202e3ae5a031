"""The package's public surface: version from metadata, one error root."""

from __future__ import annotations

from importlib.metadata import version

import pytest

import colibri_vault


def test_version_comes_from_the_installed_distribution() -> None:
    assert colibri_vault.__version__ == version("colibri-vault")


def test_error_root_is_an_exception() -> None:
    assert issubclass(colibri_vault.VaultError, Exception)
    with pytest.raises(colibri_vault.VaultError, match="boom"):
        raise colibri_vault.VaultError("boom")


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = colibri_vault.no_such_name  # type: ignore[attr-defined]
