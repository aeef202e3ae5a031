"""The package's public surface: version from metadata, one error root."""

from __future__ import annotations

from importlib.metadata import version

import pytest

import colibri_spawner


def test_version_comes_from_the_installed_distribution() -> None:
    assert colibri_spawner.__version__ == version("colibri-spawner")


def test_error_root_is_an_exception() -> None:
    assert issubclass(colibri_spawner.SpawnError, Exception)
    with pytest.raises(colibri_spawner.SpawnError, match="boom"):
        raise colibri_spawner.SpawnError("boom")


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = colibri_spawner.no_such_name  # type: ignore[attr-defined]


def _imports(path):
    import ast

    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def test_no_sibling_imports_and_a_stdlib_only_shim():
    import sys
    from pathlib import Path

    src = Path(colibri_spawner.__file__).parent
    for path in src.glob("*.py"):
        for name in _imports(path):
            assert not (name.startswith("colibri_") and name != "colibri_spawner"), path
    shim = set(_imports(src / "_shim.py"))
    assert shim <= set(sys.stdlib_module_names) | {"__future__"}, shim


def test_public_names_are_exported():
    for name in colibri_spawner.__all__:
        assert getattr(colibri_spawner, name) is not None
