"""colibri-glasspane: agent JSONL event streams to truthful pane state and snapshots.

See the package README for the public API and an example.
"""

from __future__ import annotations

from typing import Any

from colibri_glasspane._glasspane import Glasspane
from colibri_glasspane._model import (
    SNAPSHOT_VERSION,
    AgentState,
    Flag,
    GlasspaneConfig,
    LineCounters,
    Pane,
    ProcessKind,
    ProcessState,
    Runtime,
    Snapshot,
    StreamMode,
    ToolCall,
    Usage,
)
from colibri_glasspane.errors import (
    DuplicatePane,
    GlasspaneError,
    InvalidArgument,
    SnapshotError,
    UnknownPane,
)

__all__ = [
    "SNAPSHOT_VERSION",
    "AgentState",
    "DuplicatePane",
    "Flag",
    "Glasspane",
    "GlasspaneConfig",
    "GlasspaneError",
    "InvalidArgument",
    "LineCounters",
    "Pane",
    "ProcessKind",
    "ProcessState",
    "Runtime",
    "Snapshot",
    "SnapshotError",
    "StreamMode",
    "ToolCall",
    "UnknownPane",
    "Usage",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # The version comes from the installed distribution's metadata, so there is
    # one source of truth (pyproject.toml) and no import-time cost.
    if name == "__version__":
        from importlib.metadata import version

        return version("colibri-glasspane")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
