"""Fixtures: every store test runs on a real SQLite file and on a real PostgreSQL.

The PostgreSQL cluster is started once per test session from the server binaries
(see pgserver.py); tests that need it skip, naming what is missing, when the
binaries or psycopg are absent. CI installs both, so nothing skips there.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pgserver import PgServer, find_bindir

from colibri_store import Store

_pg: PgServer | None = None
_pg_error: str | None = None


def _postgres() -> PgServer:
    global _pg, _pg_error
    if _pg is None and _pg_error is None:
        if importlib.util.find_spec("psycopg") is None:
            _pg_error = "psycopg is not installed (pip install 'psycopg[binary]')"
        elif (bindir := find_bindir()) is None:
            _pg_error = (
                "PostgreSQL server binaries (initdb, pg_ctl) not found; "
                "install the 'postgresql' package"
            )
        else:
            server = PgServer(bindir)
            try:
                server.start()
            except Exception as exc:
                _pg_error = f"could not start PostgreSQL: {exc}"
            else:
                _pg = server
    if _pg is None:
        pytest.skip(_pg_error or "PostgreSQL unavailable")
    return _pg


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _pg is not None:
        _pg.stop()


class FakeClock:
    """An injectable clock: starts at a fixed moment, moves only when told."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'colibri.sqlite'}"
    server = _postgres()
    return server.url(server.new_schema())


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> str:
    return make_url(backend, tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[Store]:
    s = Store.open(db_url, clock=clock, actor="test", lease_seconds=60)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def pg_url(tmp_path: Path) -> str:
    return make_url("postgresql", tmp_path)
