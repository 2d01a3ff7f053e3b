"""`kubeharden cis KUBE_BENCH.json [--report kubeharden.json]` (NSA-UPG-5): kube-bench results next
to ours, mapped to the NSA ids where they overlap, with the CIS items kubeharden checks itself."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from kubeharden import safeio
from kubeharden.cis import MAX_REPORT_BYTES, CisResult, ReportError, parse_report


def _our_statuses(path: str) -> dict[str, str]:
    try:
        doc = json.loads(safeio.read_regular(path, MAX_REPORT_BYTES))
    except (OSError, ValueError, RecursionError) as exc:
        raise click.BadParameter(f"{path}: not a readable kubeharden JSON report ({type(exc).__name__})",
                                 param_hint="--report") from None
    controls = doc.get("controls") if isinstance(doc, dict) else None
    if not isinstance(controls, list):
        raise click.BadParameter(f"{path}: not a kubeharden JSON report (no controls)", param_hint="--report")
    return {str(c.get("id")): str(c.get("status")) for c in controls if isinstance(c, dict)}


def _row(result: CisResult, ours: dict[str, str] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"cis": result.number, "status": result.status, "description": result.description,
                           "node_type": result.node_type, "scored": result.scored, "guidance": result.guidance,
                           "kubeharden": result.controls}
    if ours is not None:
        row["kubeharden_status"] = {c: ours.get(c, "not run") for c in result.controls}
    return row


@click.command("cis")
@click.argument("report")
@click.option("--report", "ours_path", metavar="FILE", help="A kubeharden JSON report to show our verdicts beside.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--only-failed", is_flag=True, help="Only FAIL and WARN items.")
def cis(report: str, ours_path: str | None, fmt: str, only_failed: bool) -> None:
    """Import kube-bench JSON (`kube-bench run --json`): each CIS item with its NSA ids and the
    kubeharden control that checks the same. Exit 1 when an item failed."""
    try:
        results = parse_report(safeio.read_regular(report, MAX_REPORT_BYTES).decode("utf-8", "replace"))
    except OSError as exc:
        raise click.BadParameter(f"{report}: {exc.strerror or exc}", param_hint="REPORT") from None
    except ReportError as exc:
        raise click.BadParameter(f"{report}: {exc}", param_hint="REPORT") from None
    ours = _our_statuses(ours_path) if ours_path else None
    shown = [r for r in results if not only_failed or r.status in ("FAIL", "WARN")]
    covered = sorted({r.number for r in results if r.controls})
    summary = {s: sum(1 for r in results if r.status == s) for s in ("PASS", "FAIL", "WARN", "INFO")}
    if fmt == "json":
        click.echo(orjson.dumps({"summary": summary, "checked_by_kubeharden": covered,
                                 "results": [_row(r, ours) for r in shown]}, option=orjson.OPT_INDENT_2).decode())
    else:
        table = Table(title=f"kube-bench: {summary['PASS']} pass, {summary['FAIL']} fail, {summary['WARN']} warn, "
                      f"{summary['INFO']} info; kubeharden checks {len(covered)} of {len(results)} items itself",
                      title_justify="left", expand=True)
        table.add_column("CIS", no_wrap=True)
        table.add_column("Status", no_wrap=True)
        table.add_column("Description", ratio=5, overflow="fold")
        table.add_column("NSA", ratio=2, overflow="fold")
        table.add_column("kubeharden", ratio=2, overflow="fold")
        for r in shown:
            ourtext = ", ".join(f"{c} ({ours.get(c, 'not run')})" if ours is not None else c for c in r.controls)
            table.add_row(r.number, r.status, r.description, ", ".join(r.guidance) or "-", ourtext or "-")
        Console().print(table)
    sys.exit(1 if summary["FAIL"] else 0)


COMMANDS: list[click.Command] = [cis]
