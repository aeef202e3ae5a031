"""The README's example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text()
    match = re.search(r"<!-- readme-example -->\n```python\n(.*?)```", text, re.S)
    assert match, "the README lost its example"
    monkeypatch.delenv("COLIBRI_DB_URL", raising=False)
    monkeypatch.setenv("COLIBRI_DB_PATH", str(tmp_path / "readme.sqlite"))
    exec(compile(match.group(1), str(README), "exec"), {})
    assert (tmp_path / "readme.sqlite").is_file()


def test_demo_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from colibri_store.__main__ import main

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "audit chain: 8 events, ok=True" in out
    assert "parked (no agent covers them): ['needs linux']" in out
