"""Sub-command modules of the CLI (each exports COMMANDS) and the output helpers they share."""

from __future__ import annotations

from typing import Any

import click
import orjson
from rich.console import Console

from kubeharden import jsonout


def report_console() -> Console:
    """A console for tables; pipes and CI logs get a fixed width wide enough to stay readable."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def echo_json(data: Any) -> None:
    click.echo(jsonout.dumps(data, orjson.OPT_INDENT_2).decode())
