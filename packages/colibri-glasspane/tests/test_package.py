"""The package's public surface: version from metadata, one error root."""

from __future__ import annotations

from importlib.metadata import version

import pytest

import colibri_glasspane


def test_version_comes_from_the_installed_distribution() -> None:
    assert colibri_glasspane.__version__ == version("colibri-glasspane")


def test_error_root_is_an_exception() -> None:
    assert issubclass(colibri_glasspane.GlasspaneError, Exception)
    with pytest.raises(colibri_glasspane.GlasspaneError, match="boom"):
        raise colibri_glasspane.GlasspaneError("boom")


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = colibri_glasspane.no_such_name  # type: ignore[attr-defined]
