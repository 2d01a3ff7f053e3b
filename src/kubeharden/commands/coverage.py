"""`kubeharden controls --coverage`: every guidance recommendation with what implements it."""

from __future__ import annotations

import click

from kubeharden.catalog import all_controls, profiles
from kubeharden.coverage import coverage, load_recommendations


def show_coverage(fmt: str, spec: str | None, profile: str | None) -> None:
    from kubeharden.reporters.catalog import coverage_json, print_coverage

    if profile is not None and profile not in profiles():
        raise click.BadParameter(f"unknown profile {profile!r} (known: {', '.join(sorted(profiles()))})",
                                 param_hint="--profile")
    try:
        recommendations = load_recommendations(spec)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--spec") from None
    controls = [c for c in all_controls() if profile is None or profile in c.profiles]
    rows = coverage(recommendations, controls)
    if fmt == "json":
        click.echo(coverage_json(rows))
    else:
        print_coverage(rows)
