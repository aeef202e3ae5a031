"""The colibri command as a user runs it: a real subprocess of the console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from typer.testing import CliRunner

from colibri_cli import app


def test_version_flag_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"colibri {version('colibri-cli')}"


def test_version_command_lists_the_packages() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert f"colibri-store {version('colibri-store')}" in result.output


def test_console_script_runs() -> None:
    exe = shutil.which("colibri") or str(Path(sys.executable).with_name("colibri"))
    completed = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("colibri ")
