"""colibri-daemon: see the package README for the public API."""

from __future__ import annotations

from typing import Any

from colibri_daemon.errors import DaemonError

__all__ = ["DaemonError", "__version__"]


def __getattr__(name: str) -> Any:
    # The version comes from the installed distribution's metadata, so there is
    # one source of truth (pyproject.toml) and no import-time cost.
    if name == "__version__":
        from importlib.metadata import version

        return version("colibri-daemon")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
