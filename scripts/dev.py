#!/usr/bin/env python3
"""Set up and run Colibri from a fresh clone with nothing but Python 3.11+.

    python3 scripts/dev.py demo    # set up .venv and run the main job
    python3 scripts/dev.py test    # set up the tools and run every test session

Everything lands in ``.venv`` (the project) and ``.venv-dev`` (nox and uv) inside the
clone. colibri-* packages are installed from the workspace paths only: the name
``colibri-cli`` on the package index belongs to an unrelated project.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["store", "glasspane", "spawner", "vault", "daemon", "cli"]
DEV_TOOLS = ["nox>=2024.10.9", "uv>=0.4"]


def _bin(env: Path, name: str) -> Path:
    return env / ("Scripts" if os.name == "nt" else "bin") / name


def _ensure_venv(env: Path) -> Path:
    python = _bin(env, "python")
    if not python.exists():
        if sys.version_info < (3, 11):  # noqa: UP036 - this script may run on an old python3
            sys.exit(f"Colibri needs Python 3.11 or newer; this is {sys.version.split()[0]}")
        print(f"creating {env.relative_to(ROOT)}", flush=True)
        venv.EnvBuilder(with_pip=True).create(env)
    return python


def _run(*argv: str | Path) -> None:
    completed = subprocess.run([str(a) for a in argv], cwd=ROOT, check=False)
    if completed.returncode:
        sys.exit(completed.returncode)


def _pip(python: Path, *args: str) -> None:
    _run(python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *args)


def demo() -> None:
    python = _ensure_venv(ROOT / ".venv")
    # All workspace paths in one resolution, so the exact sibling pins are met
    # by the local packages and never looked up on the index.
    _pip(python, *(f"./packages/colibri-{name}" for name in PACKAGES))
    _run(python, "-m", "colibri_store", "demo")


def test() -> None:
    python = _ensure_venv(ROOT / ".venv-dev")
    _pip(python, *DEV_TOOLS)
    _run(python, "-m", "nox", *sys.argv[2:])


def main() -> None:
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]]()


if __name__ == "__main__":
    main()
