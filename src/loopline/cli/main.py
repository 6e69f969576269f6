"""The root ``loopline`` command group."""

from __future__ import annotations

import importlib

import click

from loopline import __version__

# Each entry is "module:attribute" of a click command or group. Modules are imported lazily
# on start-up of the CLI, so a command group whose optional extra is missing still lets the
# rest of the CLI work.
COMMANDS: list[str] = [
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="loopline")
def cli() -> None:
    """loopline: pipelines, lineage, registry, serving and deployments in one system."""


def _register() -> None:
    for spec in COMMANDS:
        module_name, _, attr = spec.partition(":")
        module = importlib.import_module(module_name)
        cli.add_command(getattr(module, attr))


def main() -> None:
    """Console-script entry point."""
    _register()
    cli()
