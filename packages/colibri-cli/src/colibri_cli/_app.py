"""The typer application behind ``colibri``."""

from __future__ import annotations

from importlib.metadata import version

import typer

app = typer.Typer(
    name="colibri",
    help="Colibri: a control plane for teams of AI coding agents.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"colibri {version('colibri-cli')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """Colibri: a control plane for teams of AI coding agents."""


@app.command("version")
def version_command() -> None:
    """Print the versions of every installed colibri package."""
    for dist in ("colibri-cli", "colibri-daemon", "colibri-store"):
        typer.echo(f"{dist} {version(dist)}")


def main() -> None:
    """Console-script entry point."""
    app()
