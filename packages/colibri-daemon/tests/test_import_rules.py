"""DESIGN.md section 1: the leaf packages import no sibling; the store is Core-only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGES_DIR = Path(__file__).resolve().parents[2]
LEAVES = ["store", "glasspane", "spawner", "vault"]
SIBLINGS = {f"colibri_{n}" for n in [*LEAVES, "daemon", "cli"]}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # "from sqlalchemy import orm" imports the submodule too.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaf_imports_no_sibling(leaf: str) -> None:
    src = PACKAGES_DIR / f"colibri-{leaf}" / "src"
    if not src.is_dir():
        pytest.skip(f"{src} is not in this checkout (installed package tests only)")
    offenders = []
    for path in sorted(src.rglob("*.py")):
        for module in _imported_modules(path):
            top = module.split(".")[0]
            if top in SIBLINGS and top != f"colibri_{leaf}":
                offenders.append(f"{path.relative_to(PACKAGES_DIR)}: {module}")
    assert offenders == []


def test_store_uses_sqlalchemy_core_only() -> None:
    src = PACKAGES_DIR / "colibri-store" / "src"
    if not src.is_dir():
        pytest.skip(f"{src} is not in this checkout")
    offenders = [
        str(path.relative_to(PACKAGES_DIR))
        for path in sorted(src.rglob("*.py"))
        if any(
            m == "sqlalchemy.orm" or m.startswith("sqlalchemy.orm.")
            for m in _imported_modules(path)
        )
    ]
    assert offenders == []
