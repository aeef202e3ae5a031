"""Sessions for the Colibri workspace.

Each package's tests run in a fresh environment holding only that package, its
declared dependencies and its ``test`` extra, so an import the package does not
declare fails there. colibri-* siblings are always installed from their workspace
paths, never from the package index (``colibri-cli`` there is somebody else's).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "typecheck", "tests", "integration"]

ROOT = Path(__file__).parent
PACKAGES = ["store", "glasspane", "spawner", "vault", "daemon", "cli"]
LINT_TOOLS = ["ruff>=0.6"]
TYPE_TOOLS = ["mypy>=1.11"]


def _sibling_closure(package: str) -> list[str]:
    """The workspace packages ``package`` depends on, transitively, itself last."""
    seen: list[str] = []

    def visit(name: str) -> None:
        data = tomllib.loads((ROOT / "packages" / f"colibri-{name}" / "pyproject.toml").read_text())
        for dep in data["project"].get("dependencies", []):
            match = re.match(r"colibri-([a-z]+)\s*==", dep)
            if match and match.group(1) not in seen:
                visit(match.group(1))
        if name not in seen:
            seen.append(name)

    visit(package)
    return seen


def _install_workspace(session: nox.Session, package: str, extras: str = "test") -> None:
    closure = _sibling_closure(package)
    args: list[str] = []
    for name in closure:
        path = f"packages/colibri-{name}"
        # Editable, so tracebacks and mypy point at the workspace sources.
        args += ["-e", f"{path}[{extras}]" if name == package and extras else path]
    session.install(*args)


@nox.session
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """One package's own tests, alone in a fresh environment."""
    _install_workspace(session, package)
    session.run("pytest", f"packages/colibri-{package}/tests", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """Cross-package and end-to-end tests in tests/."""
    _install_workspace(session, "cli")
    session.install("pytest>=8", "hypothesis>=6.100", "psycopg[binary]>=3.1.18")
    session.run("pytest", "tests", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install(*LINT_TOOLS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every package's src/."""
    _install_workspace(session, "cli", extras="")
    session.install(*TYPE_TOOLS, "psycopg[binary]>=3.1.18")
    args: list[str] = []
    for name in PACKAGES:
        args += ["-p", f"colibri_{name}"]
    session.run("mypy", *args)


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Every benchmark script; each prints its same-run baseline and the ratio."""
    _install_workspace(session, "cli", extras="")
    session.install("psycopg[binary]>=3.1.18")
    scripts = sorted(ROOT.glob("packages/*/benchmarks/bench_*.py"))
    only = session.posargs
    for script in scripts:
        if only and not any(word in str(script.relative_to(ROOT)) for word in only):
            continue
        session.run("python", str(script))
