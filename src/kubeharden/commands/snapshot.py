"""`kubeharden snapshot`: save what a live scan reads, to scan it later or elsewhere."""

from __future__ import annotations

import sys

import click

from kubeharden.sources.cluster import ClusterError, ClusterOptions, read_cluster
from kubeharden.sources.snapshot import write_snapshot

_DEFAULTS = ClusterOptions()


@click.command("snapshot")
@click.option("--cluster", "live", is_flag=True, default=True,
              help="Read the live cluster of the kubeconfig (the only source; kept for symmetry with scan).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig file.")
@click.option("--context", "kube_context", help="Kubeconfig context.")
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Only these namespaces (repeatable).")
@click.option("--output", "-o", "output", required=True, type=click.Path(dir_okay=False),
              metavar="FILE", help="Snapshot file to write (gzip'd when it ends in .gz, e.g. cluster.json.gz).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=_DEFAULTS.timeout, show_default=True,
              help="Seconds per API request.")
@click.option("--retries", type=click.IntRange(min=0), default=_DEFAULTS.retries, show_default=True,
              help="Retries of a request on 429, 5xx, timeouts and dropped connections.")
@click.option("--page-size", type=click.IntRange(min=1), default=_DEFAULTS.page_size, show_default=True,
              help="Objects per LIST page.")
@click.option("--workers", type=click.IntRange(1, 32), default=_DEFAULTS.workers, show_default=True,
              help="Concurrent LIST requests.")
def snapshot(live: bool, kubeconfig: str | None, kube_context: str | None, namespaces: tuple[str, ...],
             output: str, timeout: float, retries: int, page_size: int, workers: int) -> None:
    """Save a cluster's objects (Secrets as metadata only) to FILE for `kubeharden scan FILE`."""
    options = ClusterOptions(
        kubeconfig=kubeconfig, context=kube_context, namespaces=namespaces, timeout=timeout,
        retries=retries, page_size=page_size, workers=workers,
    )
    try:
        read = read_cluster(options)
    except ClusterError as exc:
        raise click.UsageError(f"cluster: {exc}") from None
    try:
        count = write_snapshot(read, output)
    except OSError as exc:
        raise click.UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(
        f"wrote snapshot of {count} objects from {read.source_name} "
        f"(server {read.server_version or 'unknown'}) to {output}",
        err=True,
    )
    code = 0
    for outcome in read.lists:
        if outcome.forbidden:
            click.echo(f"warning: cannot list {outcome.target.label}: {outcome.forbidden}", err=True)
        if outcome.failed:
            click.echo(f"error: cannot list {outcome.target.label}: {outcome.failed}", err=True)
            code = 2
    sys.exit(code)


COMMANDS: list[click.Command] = [snapshot]
