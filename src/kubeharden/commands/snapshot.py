"""`kubeharden snapshot`: save what a live scan reads, to scan it later or elsewhere.

Also the options of a cluster read, shared with `kubeharden scan --cluster`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from kubeharden import safeio
from kubeharden.sources.cluster import ClusterError, ClusterOptions, read_cluster
from kubeharden.sources.snapshot import write_snapshot

_DEFAULTS = ClusterOptions()
_CLUSTER_OPTIONS = (
    click.option("--kubeconfig", type=click.Path(dir_okay=False),
                 help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the pod's service account)."),
    click.option("--context", "kube_context", help="Kubeconfig context (default: its current context)."),
    click.option("--namespace", "-n", "namespaces", multiple=True,
                 help="Read only these namespaces of the cluster (repeatable); cluster-scoped kinds are read in full."),
    click.option("--request-timeout", type=click.FloatRange(min=0.1), default=_DEFAULTS.timeout, show_default=True,
                 help="Seconds per API request (connect and read)."),
    click.option("--retries", type=click.IntRange(min=0), default=_DEFAULTS.retries, show_default=True,
                 help="Retries of an API request on 429, 5xx, timeouts and dropped connections."),
    click.option("--page-size", type=click.IntRange(min=1), default=_DEFAULTS.page_size, show_default=True,
                 help="Objects per LIST page."),
    click.option("--workers", type=click.IntRange(1, 32), default=_DEFAULTS.workers, show_default=True,
                 help="Concurrent LIST requests."),
)


def cluster_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the cluster-read options to a command; it receives them as ``cluster: ClusterOptions``."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        kwargs["cluster"] = ClusterOptions(
            kubeconfig=kwargs.pop("kubeconfig"), context=kwargs.pop("kube_context"),
            namespaces=tuple(kwargs.pop("namespaces")), timeout=kwargs.pop("request_timeout"),
            retries=kwargs.pop("retries"), page_size=kwargs.pop("page_size"), workers=kwargs.pop("workers"),
        )
        return fn(*args, **kwargs)

    decorated: Callable[..., Any] = command
    for option in reversed(_CLUSTER_OPTIONS):
        decorated = option(decorated)
    return decorated


def cluster_source(cluster: ClusterOptions) -> dict[str, Any]:
    """The options as ScanRequest.sources["cluster"]."""
    return dataclasses.asdict(cluster)


@click.command("snapshot")
@click.option("--cluster", "live", is_flag=True, default=True,
              help="Read the live cluster of the kubeconfig (the only source; kept for symmetry with scan).")
@cluster_options
@click.option("--output", "-o", "output", required=True, type=click.Path(dir_okay=False),
              metavar="FILE", help="Snapshot file to write (gzip'd when it ends in .gz, e.g. cluster.json.gz).")
@click.option("--force", is_flag=True, help="Overwrite an existing snapshot file.")
def snapshot(live: bool, cluster: ClusterOptions, output: str, force: bool) -> None:
    """Save a cluster's objects (Secrets as metadata only) to FILE for `kubeharden scan FILE`."""
    # before the cluster read: an earlier snapshot may be the only record of a cluster that is gone,
    # and the kubeconfig is an input
    try:
        safeio.check_output_path(output, force=force, protected=_kubeconfig_paths(cluster))
    except safeio.UnsafePathError as exc:
        raise click.UsageError(f"cannot write {output}: {exc}") from None
    try:
        read = read_cluster(cluster)
    except ClusterError as exc:
        raise click.UsageError(f"cluster: {exc}") from None
    try:
        count = write_snapshot(read, output, force=force)
    except OSError as exc:  # UnsafePathError included; the temporary file is gone, the target untouched
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


def _kubeconfig_paths(cluster: ClusterOptions) -> list[str]:
    """The kubeconfig files the read uses (--kubeconfig, else $KUBECONFIG's list, else ~/.kube/config)."""
    if cluster.kubeconfig:
        return [cluster.kubeconfig]
    listed = os.environ.get("KUBECONFIG")
    if listed:
        return [name for name in listed.split(os.pathsep) if name]
    return [os.path.expanduser("~/.kube/config")]


COMMANDS: list[click.Command] = [snapshot]
