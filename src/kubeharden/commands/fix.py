"""`kubeharden fix`: minimal, proved edits of the manifests that remove findings."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import click
import yaml

from kubeharden.catalog import Settings
from kubeharden.fix.files import ensure_line_end, outside_of
from kubeharden.fix.plan import (
    FileChange,
    Fixer,
    FixReport,
    FixRequest,
    Outcome,
    apply_ops,
    parse_assignments,
    read_ops,
)
from kubeharden.loader import LoadContext
from kubeharden.model import FixLevel, Severity
from kubeharden.scanner import UsageError
from kubeharden.versions import parse_minor

COMMANDS: list[click.Command] = []
LEVELS = tuple(level.value for level in FixLevel)


def _fail_on(value: str) -> Severity | None:
    if value.lower() == "none":
        return None
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fail-on") from None


def _settings(kubernetes_version: str | None) -> Settings:
    settings = Settings()
    if kubernetes_version:
        try:
            settings.kubernetes_version = parse_minor(kubernetes_version)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--kubernetes-version") from None
    return settings


def _value(text: str) -> Any:
    """A --set value as YAML reads a scalar (10001 is a number, 512Mi a string, true a boolean)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, str | int | float | bool) else text


def print_diff(change: FileChange) -> None:
    out = sys.stdout
    out.write(f"--- a/{change.name}\n+++ b/{change.name}\n")
    for hunk, controls in change.hunks:
        out.write(hunk.header + (" " + ", ".join(controls) if controls else "") + "\n")
        for line in hunk.lines:
            out.write(ensure_line_end(line.replace("\r\n", "\n")))
    out.flush()


def _summary(report: FixReport, dry_run: bool) -> None:
    by_file: dict[str, list[Outcome]] = {}
    for o in report.outcomes:
        by_file.setdefault(o.file or "(no file)", []).append(o)
    changes = {c.name: c for c in report.changes}
    verb = "would fix" if dry_run else "fixed"
    for name in sorted(by_file):
        outcomes = by_file[name]
        counts = Counter(o.status for o in outcomes)
        parts = [f"{counts['fixed']} {verb}"]
        if counts["refused"]:
            parts.append(f"{counts['refused']} refused")
        if counts["needs-value"]:
            parts.append(f"{counts['needs-value']} need a value")
        if counts["skipped"]:
            parts.append(f"{counts['skipped']} skipped")
        change = changes.get(name)
        tail = ""
        if change is not None and change.written:
            tail = f" (written; backup {change.backup})" if change.backup else " (written)"
        click.echo(f"{name}: {', '.join(parts)}{tail}", err=True)
        for o in outcomes:
            if o.status == "refused":
                click.echo(f"  refused {o.finding.control_id} {o.finding.path}: {o.reason}", err=True)
        grouped = Counter((o.status, o.finding.control_id, o.reason) for o in outcomes
                          if o.status in ("needs-value", "skipped"))
        for (status, control_id, reason), n in sorted(grouped.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            times = f" ({n}x)" if n > 1 else ""
            click.echo(f"  {status} {control_id}{times}: {reason}", err=True)
    fixed = sum(1 for o in report.outcomes if o.status == "fixed")
    files = sum(1 for c in report.changes if c.written or dry_run)
    click.echo(f"{verb} {fixed} finding(s) in {files} file(s); {len(report.after.active_findings())} finding(s) "
               "remain", err=True)


@click.command("fix")
@click.argument("paths", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Print the diff of each file (with the controls each hunk fixes); "
              "write nothing.")
@click.option("--control", "-c", "controls", multiple=True, metavar="ID",
              help="Fix only these controls' findings (ids or wildcards; repeat or separate with commas).")
@click.option("--level", type=click.Choice(LEVELS), default="safe", show_default=True,
              help="Highest level applied: safe (nothing the workload does changes), tightening (may break an "
              "application that relied on the weaker setting). needs-value fixes apply only with --set.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="A value only you can choose: runAsUser=10001, runAsGroup=10001, fsGroup=10001, "
              "resources.limits.memory=512Mi, resources.limits.cpu=500m, resources.requests.cpu=100m ...")
@click.option("--no-backup", is_flag=True, help="Do not keep FILE.kubeharden-backup copies.")
@click.option("--ops", "ops_file", type=click.Path(dir_okay=False, exists=True), metavar="OPS.json",
              help="Apply a reviewed JSON list of operations ({file, doc, op, path, value}) as is.")
@click.option("--fail-on", default="none", show_default=True, metavar="SEVERITY",
              help="Exit 1 when findings at or above it remain after the fixes: low, medium, high, critical, none.")
@click.option("--profile", "-p", default="nsa", show_default=True, help="Control profile of the proof scans.")
@click.option("--kubernetes-version", metavar="X.Y", help="Kubernetes version the controls assume.")
@click.option("--helm", is_flag=True, help="The paths are charts: fix values.yaml where a template reads a value.")
@click.option("--kustomize", is_flag=True, help="The paths are overlays: write fixes as a patch in the overlay.")
@click.option("--values", "values_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="With --helm: the values file to edit (default: the chart's values.yaml).")
def fix(paths: tuple[str, ...], dry_run: bool, controls: tuple[str, ...], level: str,
        assignments: tuple[str, ...], no_backup: bool, ops_file: str | None, fail_on: str, profile: str,
        kubernetes_version: str | None, helm: bool, kustomize: bool, values_file: str | None) -> None:
    """Fix findings in manifests with minimal edits, each proved by a re-scan.

    Only the lines that must change are changed; a fix is written only when a re-scan shows
    its finding gone and no new one. Exit 0 when every requested fix was made, 1 when one
    could not be or findings at or above --fail-on remain, 2 on unreadable input.
    """
    threshold = _fail_on(fail_on)
    if helm and kustomize:
        raise click.UsageError("--helm and --kustomize exclude each other")
    if ops_file is not None:
        _run_ops(ops_file, paths, dry_run, not no_backup)
        return
    if not paths:
        raise click.UsageError("give at least one path")
    settings = _settings(kubernetes_version)
    try:
        request = FixRequest(
            paths=paths, profile=profile, settings=settings, load=LoadContext(),
            controls=[c for item in controls for c in item.split(",") if c.strip()],
            level=FixLevel(level), values=parse_assignments(assignments, _value),
            dry_run=dry_run, backup=not no_backup,
        )
        if helm or kustomize:
            from kubeharden.fix import rendered

            code = rendered.run(request, helm=helm, values_file=values_file, fail_on=threshold)
            sys.exit(code)
        report = Fixer(request).run()
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    for error in report.errors:
        where = error.source + (f":{error.line}" if error.line else "")
        click.echo(f"error: {where}: {error.message}", err=True)
    if dry_run:
        for change in report.changes:
            print_diff(change)
    _summary(report, dry_run)
    sys.exit(report.exit_code(threshold))


def _run_ops(ops_file: str, paths: tuple[str, ...], dry_run: bool, backup: bool) -> None:
    try:
        specs = read_ops(ops_file)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    if paths:
        outside = sorted({s.file for s in specs if outside_of(s.file, paths) is not None})
        if outside:
            raise click.UsageError(f"--ops names files not given as paths (or inside them): {', '.join(outside)}")
    changes, problems = apply_ops(specs, LoadContext(), dry_run, backup)
    for change in changes:
        if dry_run:
            print_diff(change)
        elif change.written:
            click.echo(f"{change.name}: written" + (f" (backup {change.backup})" if change.backup else ""), err=True)
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    sys.exit(1 if problems else 0)


COMMANDS.append(fix)
