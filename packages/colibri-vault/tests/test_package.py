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


def test_every_public_name_is_importable() -> None:
    for name in colibri_vault.__all__:
        assert getattr(colibri_vault, name) is not None


def test_every_error_descends_from_the_one_root() -> None:
    import inspect

    from colibri_vault import errors

    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__
    ]
    assert len(classes) > 20
    for cls in classes:
        assert issubclass(cls, colibri_vault.VaultError), cls
        assert cls.__doc__, cls


def test_no_sibling_package_is_imported() -> None:
    import ast
    from pathlib import Path

    src = Path(colibri_vault.__file__).parent
    for path in src.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert not (top.startswith("colibri_") and top != "colibri_vault"), (path, name)


def test_a_failed_lock_file_open_is_a_vault_error(tmp_path) -> None:
    from colibri_vault._lock import appdata_lock
    from colibri_vault.errors import VaultConfigError

    with pytest.raises(VaultConfigError, match="lock file"):
        with appdata_lock(tmp_path / "missing-dir", 1.0):
            pass
