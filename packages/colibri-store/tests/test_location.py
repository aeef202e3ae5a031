"""Where the store lives: COLIBRI_DB_URL, COLIBRI_DB_PATH, the platform defaults."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from colibri_store import InvalidInput, Store, default_db_path
from colibri_store._location import resolve_url


def test_platform_defaults() -> None:
    assert default_db_path({}, "freebsd14") == Path("/var/db/colibri/colibri.sqlite")
    assert default_db_path({"XDG_DATA_HOME": "/x"}, "linux") == Path("/x/colibri/colibri.sqlite")
    assert default_db_path({"HOME": "/home/u"}, "darwin") == Path(
        "/home/u/.local/share/colibri/colibri.sqlite"
    )
    assert default_db_path({"XDG_DATA_HOME": "relative", "HOME": "/h"}, "linux") == Path(
        "/h/.local/share/colibri/colibri.sqlite"
    )
    assert default_db_path({}, "linux").name == "colibri.sqlite"


def test_resolution_order(tmp_path: Path) -> None:
    env = {"COLIBRI_DB_URL": "postgresql+psycopg://u@/db", "COLIBRI_DB_PATH": "/p.sqlite"}
    assert resolve_url("sqlite:////arg.sqlite", env) == "sqlite:////arg.sqlite"
    assert resolve_url(None, env) == "postgresql+psycopg://u@/db"
    assert resolve_url(None, {"COLIBRI_DB_PATH": "/p.sqlite"}) == "sqlite:////p.sqlite"
    with pytest.raises(InvalidInput, match="COLIBRI_DB_PATH"):
        resolve_url(None, {"COLIBRI_DB_PATH": " "})


def test_open_with_no_configuration_uses_the_default_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLIBRI_DB_URL", raising=False)
    monkeypatch.delenv("COLIBRI_DB_PATH", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with Store.open() as store:
        store.create_task("hello")
    db = tmp_path / "xdg" / "colibri" / "colibri.sqlite"
    assert db.is_file()
    assert stat.S_IMODE((tmp_path / "xdg" / "colibri").stat().st_mode) == 0o700


def test_colibri_db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLIBRI_DB_URL", raising=False)
    monkeypatch.setenv("COLIBRI_DB_PATH", str(tmp_path / "deep" / "er" / "board.sqlite"))
    with Store.open() as store:
        assert store.url.endswith("board.sqlite")
        store.create_task("x")
    assert (tmp_path / "deep" / "er" / "board.sqlite").is_file()


def test_url_hides_the_password() -> None:
    with pytest.raises(Exception) as info:
        Store.open("postgresql+psycopg://u:s3cret@/db?host=/nonexistent-dir")
    assert "s3cret" not in str(info.value)
