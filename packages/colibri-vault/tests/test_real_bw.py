"""Smoke tests with the real @bitwarden/cli for what needs no server.

bw is found through $COLIBRI_TEST_NODE_BIN, then the CI cache
($HOME/.cache/colibri-ci/node-tools/node_modules/.bin), then PATH; node through
the same directories. Skipped, naming the tool, when absent. Nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import World

from colibri_vault import normalize_server_url
from colibri_vault._bw import BwRunner, parse_status
from colibri_vault.errors import BadApiKey, VaultNetworkError


def _find(tool: str) -> str | None:
    dirs = [
        os.environ.get("COLIBRI_TEST_NODE_BIN", ""),
        str(Path.home() / ".cache/colibri-ci/node-tools/node_modules/.bin"),
    ]
    for directory in dirs:
        if directory and os.access(os.path.join(directory, tool), os.X_OK):
            return os.path.join(directory, tool)
    return shutil.which(tool)


BW = _find("bw")
NODE = _find("node")
pytestmark = [
    pytest.mark.skipif(BW is None, reason="the real bw CLI (@bitwarden/cli) is not installed"),
    pytest.mark.skipif(NODE is None, reason="node (needed by the bw CLI) is not installed"),
]


def _search_path() -> str:
    assert NODE is not None
    return f"{os.path.dirname(os.path.realpath(NODE))}:/usr/bin:/bin"


def _runner(appdata: Path) -> BwRunner:
    assert BW is not None
    return BwRunner(Path(BW), appdata, _search_path(), timeout=60.0)


@pytest.fixture
def appdata(tmp_path: Path) -> Path:
    path = tmp_path / "bw-appdata"
    path.mkdir(mode=0o700)
    return path


def test_status_on_an_empty_appdata_dir(appdata: Path) -> None:
    status = parse_status("bw status", _runner(appdata).call(["status"]))
    assert (status.status, status.server_url, status.user_id) == ("unauthenticated", None, None)


@pytest.mark.parametrize("spelling", ["vault.example.test//", "vault.example.test:8443/x/"])
def test_our_normalisation_is_the_clis(appdata: Path, spelling: str) -> None:
    runner = _runner(appdata)
    runner.call(["config", "server", spelling])
    status = parse_status("bw status", runner.call(["status"]))
    assert status.server_url == normalize_server_url(spelling)


def test_the_interactive_trap_is_real_and_avoided(appdata: Path) -> None:
    assert BW is not None
    env = {"PATH": _search_path(), "HOME": str(appdata), "BITWARDENCLI_APPDATA_DIR": str(appdata)}
    trapped = subprocess.run(
        [BW, "login", "--apikey"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (trapped.returncode, trapped.stdout) == (0, b"\n")
    with pytest.raises(BadApiKey, match="client_id is required"):
        _runner(appdata).call(["login", "--apikey"])


def test_provision_against_an_unreachable_server(world: World) -> None:
    # A closed loopback port: status, config server, then login fails to connect.
    assert BW is not None
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = f"https://127.0.0.1:{port}"
    _runner(world.appdata).call(["config", "server", "https://other.example.test"])
    vault = world.vault_settings(
        bw_executable=BW, search_path=_search_path(), server_url=server, timeout=60.0
    )
    exc = world.fail("tenant-alpha", VaultNetworkError, vault=vault)
    assert "ECONNREFUSED" in str(exc) and "identity/connect/token" in str(exc)
    assert not world.env_file("tenant-alpha").exists()
    # It switched the logged-out appdata dir to the configured server first.
    status = parse_status("bw status", _runner(world.appdata).call(["status"]))
    assert (status.status, status.server_url) == ("unauthenticated", server)
