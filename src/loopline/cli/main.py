"""The root ``loopline`` command group.

Command modules are imported only when their command is invoked (or when help lists them),
so ``loopline run`` does not pay for the model server's imports, and a command group whose
optional extra is missing does not break the rest of the CLI.
"""

from __future__ import annotations

import importlib

import click

from loopline import __version__

# command name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "run": "loopline.cli.run:run",
    "runs": "loopline.cli.runs:runs",
    "why-rerun": "loopline.cli.runs:why_rerun",
    "serve": "loopline.cli.serve:serve",
    "lineage": "loopline.cli.lineage:lineage",
    "artifacts": "loopline.cli.artifacts:artifacts",
    "models": "loopline.cli.models:models",
    "gc": "loopline.cli.gc:gc",
    "controlplane": "loopline.cli.controlplane:controlplane",
    "up": "loopline.cli.controlplane:controlplane",
    "down": "loopline.cli.controlplane:down",
    "apply": "loopline.cli.deploy:apply",
    "create": "loopline.cli.deploy:create",
    "delete": "loopline.cli.deploy:delete",
    "scale": "loopline.cli.deploy:scale",
    "set": "loopline.cli.deploy:set_",
    "get": "loopline.cli.get:get",
    "describe": "loopline.cli.get:describe_cmd",
    "logs": "loopline.cli.get:logs",
    "rollout": "loopline.cli.rollout:rollout",
    "autoscale": "loopline.cli.autoscale:autoscale",
    "triggers": "loopline.cli.triggers:triggers",
    "monitor": "loopline.cli.monitor:monitor",
    "render": "loopline.cli.render:render",
    "build": "loopline.cli.build:build",
    "compile": "loopline.cli.kubeflow:compile_",
    "step": "loopline.cli.kubeflow:step",
    "submit": "loopline.cli.kubeflow:submit",
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, _, attr = spec.partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{spec} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="loopline")
def cli() -> None:
    """loopline: pipelines, lineage, registry, serving and deployments in one system."""


def main() -> None:
    """Console-script entry point."""
    cli()
