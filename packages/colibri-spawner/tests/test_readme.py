"""The README example runs as written."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_example_runs(monkeypatch, capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert code is not None
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    exec(compile(code.group(1), str(README), "exec"), {})
    assert "events, exit code 0" in capsys.readouterr().out
