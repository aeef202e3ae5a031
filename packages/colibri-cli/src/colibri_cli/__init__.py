"""colibri-cli: the ``colibri`` command. See the package README."""

from __future__ import annotations

from typing import Any

from colibri_cli._app import app, main

__all__ = ["__version__", "app", "main"]


def __getattr__(name: str) -> Any:
    # The version comes from the installed distribution's metadata (one source of truth).
    if name == "__version__":
        from importlib.metadata import version

        return version("colibri-cli")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
