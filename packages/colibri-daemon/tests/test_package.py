"""The package's public surface: version from metadata, one error root."""

from __future__ import annotations

from importlib.metadata import version

import pytest

import colibri_daemon


def test_version_comes_from_the_installed_distribution() -> None:
    assert colibri_daemon.__version__ == version("colibri-daemon")


def test_error_root_is_an_exception() -> None:
    assert issubclass(colibri_daemon.DaemonError, Exception)
    with pytest.raises(colibri_daemon.DaemonError, match="boom"):
        raise colibri_daemon.DaemonError("boom")


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = colibri_daemon.no_such_name  # type: ignore[attr-defined]
