"""Rendering of the control catalog (`kubeharden controls`, `kubeharden explain`)."""

from __future__ import annotations

from typing import Any

import orjson
from rich.console import Console
from rich.markdown import Markdown
from rich.syntax import Syntax
from rich.table import Table

from kubeharden.catalog import Control
from kubeharden.coverage import Coverage, counts
from kubeharden.inventory import WORKLOAD_KINDS


def control_to_dict(c: Control) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "section": c.section.value,
        "guidance": list(c.guidance),
        "severity": c.severity.label,
        "kinds": list(c.kinds),
        "needs": c.needs or (", ".join(c.kinds) if c.kinds else ""),
        "profiles": sorted(c.profiles),
        "what": c.what,
        "why": c.why,
        "fix": c.fix,
        "manual": c.manual,
        "status": "not_assessed" if c.manual else None,
        "min_version": ".".join(map(str, c.min_version)) if c.min_version else None,
        "max_version": ".".join(map(str, c.max_version)) if c.max_version else None,
    }


def catalog_json(controls: list[Control]) -> str:
    return orjson.dumps([control_to_dict(c) for c in controls], option=orjson.OPT_INDENT_2).decode()


def print_catalog(controls: list[Control], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"{len(controls)} controls", title_justify="left", expand=True)
    table.add_column("ID", no_wrap=True)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Section", ratio=2, overflow="fold")
    # the wrapping columns share what is left, so that none is squeezed to one character
    table.add_column("Guidance", ratio=2, overflow="fold")
    table.add_column("Title", ratio=5, min_width=20, overflow="fold")
    table.add_column("Needs", ratio=3, overflow="fold")
    for c in controls:
        needs = c.needs or _kinds_text(c.kinds)
        if c.manual:
            needs = f"not assessed: {c.manual}"
        table.add_row(c.id, c.severity.label, c.section.value, ", ".join(c.guidance), c.title, needs)
    console.print(table)


def _kinds_text(kinds: tuple[str, ...]) -> str:
    if WORKLOAD_KINDS.issubset(kinds):
        rest = sorted(set(kinds) - WORKLOAD_KINDS)
        return ", ".join(["every pod-spec kind", *rest])
    return ", ".join(kinds)


def print_explanation(c: Control, console: Console | None = None) -> None:
    console = console or Console()
    lines = [
        f"# {c.id}: {c.title}",
        f"**Severity:** {c.severity.label}  **Section:** {c.section.label}  "
        f"**Guidance:** {', '.join(c.guidance)}",
        "",
        f"**What:** {c.what}",
        "",
        f"**Why:** {c.why}",
        "",
        f"**How to fix:** {c.fix}",
    ]
    if c.kinds or c.needs:
        lines += ["", f"**Applies to:** {c.needs or ', '.join(c.kinds)}"]
    if c.manual:
        lines += ["", f"**Not assessed automatically:** {c.manual}"]
    console.print(Markdown("\n".join(lines)))
    for ex in c.examples:
        console.print(f"\n[bold]{'Violates' if ex.bad else 'Complies'}[/bold]"
                      + (f": {ex.description}" if ex.description else ""))
        if console.is_terminal:
            console.print(Syntax(ex.yaml.strip("\n"), "yaml", theme="ansi_dark", word_wrap=True))
        else:  # piped: the snippet exactly as written, never cropped, so that it can be applied
            console.out(ex.yaml.strip("\n"), highlight=False)


def coverage_json(rows: list[Coverage]) -> str:
    doc = {
        "counts": counts(rows),
        "recommendations": [
            {
                "id": row.recommendation.id,
                "group": row.recommendation.group,
                "recommendation": row.recommendation.recommendation,
                "status": row.status,
                "controls": row.controls,
                "detectors": row.detectors,
                "tools": row.tools,
                "manual": [{"control": cid, "reason": reason} for cid, reason in row.manual],
            }
            for row in rows
        ],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()


def print_coverage(rows: list[Coverage], console: Console | None = None) -> None:
    console = console or Console()
    tally = counts(rows)
    table = Table(title=f"{tally['total']} recommendations: {tally['implemented']} implemented, "
                  f"{tally['manual']} manual, {tally['missing']} missing", title_justify="left", expand=True)
    table.add_column("ID", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Recommendation", ratio=4, overflow="fold")
    table.add_column("Implemented by", ratio=4, overflow="fold")
    for row in rows:
        parts = [*row.controls, *row.detectors, *row.tools]
        parts += [f"{cid} (manual: {reason})" for cid, reason in row.manual]
        status = {"implemented": "[green]implemented[/]", "manual": "[yellow]manual[/]",
                  "missing": "[red]missing[/]"}[row.status]
        table.add_row(row.recommendation.id, status, row.recommendation.recommendation, ", ".join(parts) or "-")
    console.print(table)
