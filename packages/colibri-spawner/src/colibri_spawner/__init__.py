"""colibri-spawner: start, watch, stop and re-attach agents (local, jail, sandbox).

See the package README for the public API.
"""

from __future__ import annotations

from typing import Any

from colibri_spawner._argv import (
    jail_create_argv,
    jail_remove_argv,
    jail_wrap,
    resolve_binary,
    sandbox_env,
    sandbox_wrap,
)
from colibri_spawner._log import read_lines
from colibri_spawner._pi import PiMode, pi_argv, pi_prompt, pi_spec
from colibri_spawner._providers import (
    JailProvider,
    LocalProvider,
    Prepared,
    Provider,
    SandboxProvider,
)
from colibri_spawner._spawner import AgentHandle, ProvisionHook, Spawner
from colibri_spawner._spec import (
    AgentSpec,
    AgentState,
    AgentStatus,
    ExitRecord,
    LogChunk,
    ProvisionContext,
    ProvisionOutcome,
    ProvisionPolicy,
    Runtime,
    StdinMode,
)
from colibri_spawner.errors import SpawnError

__all__ = [
    "AgentHandle",
    "AgentSpec",
    "AgentState",
    "AgentStatus",
    "ExitRecord",
    "JailProvider",
    "LocalProvider",
    "LogChunk",
    "PiMode",
    "Prepared",
    "Provider",
    "ProvisionContext",
    "ProvisionHook",
    "ProvisionOutcome",
    "ProvisionPolicy",
    "Runtime",
    "SandboxProvider",
    "SpawnError",
    "Spawner",
    "StdinMode",
    "__version__",
    "jail_create_argv",
    "jail_remove_argv",
    "jail_wrap",
    "pi_argv",
    "pi_prompt",
    "pi_spec",
    "read_lines",
    "resolve_binary",
    "sandbox_env",
    "sandbox_wrap",
]


def __getattr__(name: str) -> Any:
    # The version comes from the installed distribution's metadata, so there is
    # one source of truth (pyproject.toml) and no import-time cost.
    if name == "__version__":
        from importlib.metadata import version

        return version("colibri-spawner")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
