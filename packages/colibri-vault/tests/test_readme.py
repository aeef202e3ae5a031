"""The README's example runs (against the fake bw, its paths mapped into the test tree)."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ACCOUNT, World

README = Path(__file__).parent.parent / "README.md"


def test_readme_example_runs(world: World, tmp_path: Path) -> None:
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert code is not None
    source = code.group(1)
    (tmp_path / "client_secret").write_text(ACCOUNT["client_secret"] + "\n")
    (tmp_path / "pw.txt").write_text(ACCOUNT["master_password"] + "\n")
    replacements = {
        '"/var/db/colibri/bw"': repr(str(world.appdata)),
        '"/usr/local/bin/bw"': repr(str(world.bw)),
        '"/usr/local/etc/colibri/bw/client_secret"': repr(str(tmp_path / "client_secret")),
        '"/usr/local/etc/colibri/bw/pw.txt"': repr(str(tmp_path / "pw.txt")),
        'JailSettings(user="agent")': (
            f'JailSettings(user="agent", allowed_base={str(world.base)!r})'
        ),
    }
    for old, new in replacements.items():
        assert old in source, old
        source = source.replace(old, new)
    world.save()
    namespace: dict[str, object] = {}
    exec(compile(source, str(README), "exec"), namespace)
    assert world.env_file("tenant-alpha").exists()
    assert namespace["result"].keys  # type: ignore[attr-defined]
