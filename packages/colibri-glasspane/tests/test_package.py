"""The package's public surface: version, exports, README example, no sibling imports."""

from __future__ import annotations

import ast
import re
from importlib.metadata import version
from pathlib import Path

import pytest

import colibri_glasspane

PACKAGE = Path(__file__).resolve().parent.parent
SOURCES = PACKAGE / "src" / "colibri_glasspane"


def test_version_comes_from_the_installed_distribution() -> None:
    assert colibri_glasspane.__version__ == version("colibri-glasspane")


def test_error_root_is_an_exception() -> None:
    assert issubclass(colibri_glasspane.GlasspaneError, Exception)
    for leaf in ("UnknownPane", "DuplicatePane", "InvalidArgument", "SnapshotError"):
        assert issubclass(getattr(colibri_glasspane, leaf), colibri_glasspane.GlasspaneError)
    with pytest.raises(colibri_glasspane.GlasspaneError, match="boom"):
        raise colibri_glasspane.GlasspaneError("boom")


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = colibri_glasspane.no_such_name  # type: ignore[attr-defined]


def test_everything_in_all_exists() -> None:
    for name in colibri_glasspane.__all__:
        assert getattr(colibri_glasspane, name) is not None


def test_readme_example_runs() -> None:
    readme = (PACKAGE / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert blocks, "the README has no python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_no_sibling_package_and_no_io_module_is_imported() -> None:
    """A leaf: no other colibri package, and nothing that reads files, sockets or processes."""
    forbidden = {"socket", "subprocess", "asyncio", "os", "pathlib", "io", "select", "selectors"}
    for path in SOURCES.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert not (top.startswith("colibri_") and top != "colibri_glasspane"), (path, name)
                assert top not in forbidden, (path, name)
