#!/usr/bin/env python3
"""Fail when a colibri-* distribution in a test environment came from the package index.

A distribution installed from a local path carries a PEP 610 ``direct_url.json``
whose URL is a ``file://`` URL inside this workspace; one installed from an index
has no ``direct_url.json``. The name ``colibri-cli`` on the public index belongs to
an unrelated project, so this check guards every install step.

    python3 scripts/check_workspace_installs.py .nox [.venv ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent


def problems_in(env_root: Path) -> tuple[int, list[str]]:
    checked = 0
    problems: list[str] = []
    for dist_info in sorted(env_root.glob("**/site-packages/colibri_*.dist-info")):
        checked += 1
        direct_url = dist_info / "direct_url.json"
        if not direct_url.is_file():
            problems.append(f"{dist_info}: installed from a package index, not the workspace")
            continue
        url = json.loads(direct_url.read_text()).get("url", "")
        parsed = urlparse(url)
        path = Path(unquote(parsed.path)).resolve()
        if parsed.scheme != "file" or not path.is_relative_to(ROOT / "packages"):
            problems.append(f"{dist_info}: installed from {url}, not from {ROOT / 'packages'}")
    return checked, problems


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [ROOT / ".nox"]
    total = 0
    all_problems: list[str] = []
    for root in roots:
        checked, problems = problems_in(root)
        total += checked
        all_problems += problems
    for line in all_problems:
        print(line, file=sys.stderr)
    if total == 0:
        print("check_workspace_installs: no colibri-* distribution found to check", file=sys.stderr)
        return 1
    print(f"check_workspace_installs: {total} colibri-* distributions, all from the workspace")
    return 1 if all_problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
