"""`kubeharden rbac review` and `kubeharden rbac diff` (guidance NSA-RBAC-8): the record an
RBAC review keeps — every subject with its bindings and the effective rules each grants — and
what changed since the last one (new subjects, new powers, removed ones).

Attached to the `rbac` group of kubeharden.commands.rbac; listed in cli.COMMAND_MODULES.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from kubeharden import safeio
from kubeharden.commands.rbac import rbac as rbac_group
from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, load_paths
from kubeharden.rbac.engine import RBAC_KINDS, RbacModel

REVIEW_KIND = "kubeharden-rbac-review"
REVIEW_VERSION = 1
MAX_REVIEW_BYTES = 256 * 1024 * 1024
COMMANDS: list[click.Command] = []  # the sub-commands are attached to `rbac` below


def build_review(model: RbacModel, inputs: Sequence[str], include_builtin: bool = False,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """subject -> bindings -> effective rules (aggregated roles expanded), sorted for stable diffs."""
    subjects: dict[tuple[str, str, str], dict[str, Any]] = {}
    for binding in model.bindings:
        if binding.builtin and not include_builtin:
            continue
        for _, subject in binding.subjects:
            key = (subject.kind, subject.namespace or "", subject.name)
            entry = subjects.setdefault(key, {"subject": subject.to_dict(), "bindings": []})
            role = binding.role
            entry["bindings"].append({
                "binding": binding.ref(),
                "role": role.ref() if role is not None else {"kind": binding.role_kind, "name": binding.role_name,
                                                              "missing": True},
                "scope": binding.scope or "cluster",
                "rules": [rule.to_dict() for rule in role.rules] if role is not None else [],
            })
    for entry in subjects.values():
        entry["bindings"].sort(key=lambda b: (b["binding"]["kind"], b["binding"].get("namespace") or "",
                                              b["binding"]["name"]))
    return {
        "kind": REVIEW_KIND,
        "version": REVIEW_VERSION,
        "generated": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "inputs": list(inputs),
        "subjects": [subjects[k] for k in sorted(subjects)],
    }


def _subject_key(subject: dict[str, Any]) -> str:
    ns = subject.get("namespace")
    return f"{subject.get('kind')} {ns + '/' if ns else ''}{subject.get('name')}"


def _powers(entry: dict[str, Any]) -> dict[str, list[str]]:
    """Each distinct (scope, rule) the subject holds, with the bindings granting it."""
    out: dict[str, list[str]] = {}
    for b in entry.get("bindings", []):
        binding = b.get("binding", {})
        via = f"{binding.get('kind')}/{binding.get('namespace') + '/' if binding.get('namespace') else ''}" \
              f"{binding.get('name')} -> {b.get('role', {}).get('kind')}/{b.get('role', {}).get('name')}"
        for rule in b.get("rules", []):
            key = f"[{b.get('scope')}] {_rule_text(rule)}"
            out.setdefault(key, []).append(via)
    return out


def _rule_text(rule: dict[str, Any]) -> str:
    verbs = ",".join(rule.get("verbs", []))
    if rule.get("nonResourceURLs"):
        return f"{verbs} {','.join(rule['nonResourceURLs'])}"
    groups = ",".join(g or "core" for g in rule.get("apiGroups", []))
    text = f"{verbs} {','.join(rule.get('resources', []))} [{groups}]"
    if rule.get("resourceNames"):
        text += f" names={','.join(rule['resourceNames'])}"
    return text


def diff_reviews(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    before = {_subject_key(e["subject"]): e for e in old.get("subjects", [])}
    after = {_subject_key(e["subject"]): e for e in new.get("subjects", [])}
    changes: list[dict[str, Any]] = []
    for key in sorted(set(before) | set(after)):
        old_powers = _powers(before[key]) if key in before else {}
        new_powers = _powers(after[key]) if key in after else {}
        status = "new subject" if key not in before else "removed subject" if key not in after else "changed"
        added = sorted(set(new_powers) - set(old_powers))
        removed = sorted(set(old_powers) - set(new_powers))
        if status == "changed" and not added and not removed:
            continue
        changes.append({"subject": key, "change": status,
                        "added": [{"power": p, "via": new_powers[p]} for p in added],
                        "removed": [{"power": p, "via": old_powers[p]} for p in removed]})
    return {"old": old.get("generated"), "new": new.get("generated"), "changes": changes,
            "counts": {c: sum(1 for x in changes if x["change"] == c)
                       for c in ("new subject", "removed subject", "changed")}}


def diff_markdown(diff: dict[str, Any]) -> str:
    lines = [f"# RBAC review: changes from {diff['old']} to {diff['new']}", ""]
    counts = diff["counts"]
    lines.append(f"{counts['new subject']} new subjects, {counts['removed subject']} removed, "
                 f"{counts['changed']} with changed powers.")
    for change in diff["changes"]:
        lines += ["", f"## {change['subject']} ({change['change']})"]
        for sign, items in (("+", change["added"]), ("-", change["removed"])):
            for item in items:
                lines.append(f"- {sign} `{item['power']}` via {'; '.join(item['via'])}")
    return "\n".join(lines) + "\n"


def print_diff(diff: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    counts = diff["counts"]
    table = Table(title=f"RBAC changes {diff['old']} → {diff['new']}: {counts['new subject']} new subjects, "
                  f"{counts['removed subject']} removed, {counts['changed']} changed", title_justify="left",
                  expand=True)
    table.add_column("Subject", ratio=2, overflow="fold")
    table.add_column("Change", no_wrap=True)
    table.add_column("Power", ratio=4, overflow="fold")
    table.add_column("Via", ratio=3, overflow="fold")
    for change in diff["changes"]:
        for sign, items in (("+", change["added"]), ("-", change["removed"])):
            for item in items:
                table.add_row(change["subject"], f"{sign} {change['change']}", item["power"], "; ".join(item["via"]))
    console.print(table)


def _read_review(path: str) -> dict[str, Any]:
    try:
        data = json.loads(safeio.read_regular(path, MAX_REVIEW_BYTES))
    except (OSError, ValueError, RecursionError) as exc:
        raise click.BadParameter(f"{path}: not a readable review file ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("kind") != REVIEW_KIND or not isinstance(data.get("subjects"), list):
        raise click.BadParameter(f"{path}: not a `kubeharden rbac review` file (kind {REVIEW_KIND})")
    return data


@click.command("review")
@click.argument("paths", nargs=-1, required=True)
@click.option("--output", "-o", "output", metavar="FILE", help="Write the review JSON to FILE (default stdout).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--include-builtin", is_flag=True, help="Also list Kubernetes' default bindings.")
def review(paths: tuple[str, ...], output: str | None, force: bool, include_builtin: bool) -> None:
    """Every subject of the input's bindings with the bindings and effective rules it holds (JSON)."""
    if output and output != "-":
        try:
            safeio.check_output_path(output, force=force, protected=paths, read_suffixes=(".yaml", ".yml", ".json"))
        except safeio.UnsafePathError as exc:
            raise click.UsageError(f"-o {output}: {exc}") from None
    result = load_paths(paths, LoadContext())
    for error in result.errors:
        click.echo(f"error: {error.where}: {error.message}", err=True)
    model = RbacModel(Inventory(result.resources).of_kind(*RBAC_KINDS))
    for problem in model.problems:
        click.echo(f"warning: {problem.message}", err=True)
    data = orjson.dumps(build_review(model, paths, include_builtin), option=orjson.OPT_INDENT_2) + b"\n"
    if output and output != "-":
        with safeio.atomic_output(output) as fp:
            fp.write(data)
        click.echo(f"wrote RBAC review to {output}", err=True)
    else:
        sys.stdout.buffer.write(data)
    sys.exit(2 if result.errors else 0)


@click.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table")
def diff(old: str, new: str, fmt: str) -> None:
    """What changed between two reviews: new and removed subjects, new and removed powers."""
    changes = diff_reviews(_read_review(old), _read_review(new))
    if fmt == "json":
        click.echo(orjson.dumps(changes, option=orjson.OPT_INDENT_2).decode())
    elif fmt == "markdown":
        click.echo(diff_markdown(changes), nl=False)
    else:
        print_diff(changes)


rbac_group.add_command(review)
rbac_group.add_command(diff)
