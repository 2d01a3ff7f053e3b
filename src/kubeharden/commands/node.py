"""Sub-commands of this area (owned by its issue; registered by kubeharden.cli)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
