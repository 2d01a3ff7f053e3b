"""`kubeharden snapshot`: save what a live scan reads, to scan it later or elsewhere.

Also the options of a cluster read, shared with `kubeharden scan --cluster`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import click

from kubeharden import safeio
from kubeharden.loader import LoadResult
from kubeharden.sources.cluster import ClusterError, ClusterOptions, read_cluster, to_load_result
from kubeharden.sources.snapshot import write_snapshot

_DEFAULTS = ClusterOptions()
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MIN_TIMEOUT = 0.1


class Duration(click.ParamType):
    """Seconds, as kubectl's --request-timeout: ``30`` (seconds), ``30s``, ``500ms``, ``2m``, ``1m30s``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            text = str(value).strip().lower()
            try:
                seconds = float(text)
            except ValueError:
                parts = _DURATION_PART.findall(text)
                if not parts or "".join(n + u for n, u in parts) != text:
                    self.fail(f"{value!r} is not a duration: give seconds (30) or a number with a unit "
                              "(30s, 500ms, 2m, 1m30s)", param, ctx)
                seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
        if not seconds >= MIN_TIMEOUT or seconds == float("inf"):
            self.fail(f"{value!r}: the timeout must be at least {MIN_TIMEOUT:g}s", param, ctx)
        return seconds


_CONNECTION_OPTIONS = (
    click.option("--kubeconfig", type=click.Path(dir_okay=False),
                 help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the pod's service account)."),
    click.option("--context", "kube_context", help="Kubeconfig context (default: its current context)."),
    click.option("--request-timeout", type=Duration(), default=_DEFAULTS.timeout, show_default=True,
                 help="Time per API request (connect and read): seconds, or with a unit (30s, 500ms, 2m)."),
    click.option("--retries", type=click.IntRange(min=0), default=_DEFAULTS.retries, show_default=True,
                 help="Retries of an API request on 429, 5xx, timeouts and dropped connections."),
    click.option("--page-size", type=click.IntRange(min=1), default=_DEFAULTS.page_size, show_default=True,
                 help="Objects per LIST page."),
    click.option("--workers", type=click.IntRange(1, 32), default=_DEFAULTS.workers, show_default=True,
                 help="Concurrent LIST requests."),
)
_SCOPE_OPTIONS = (
    click.option("--namespace", "-n", "namespaces", multiple=True,
                 help="Read only these namespaces of the cluster (repeatable); cluster-scoped kinds are read in full."),
    click.option("--all-namespaces", "-A", "all_namespaces", is_flag=True,
                 help="Read every namespace (the default; kubectl's -A)."),
    click.option("--selector", "-l", "label_selector", metavar="SELECTOR",
                 help="Read only the workloads (pods and pod templates) with these labels (kubectl's -l, e.g. "
                 "app=web,tier!=db); policies, RBAC and namespaces are read in full."),
)
_CLUSTER_OPTIONS = _CONNECTION_OPTIONS[:2] + _SCOPE_OPTIONS + _CONNECTION_OPTIONS[2:]


def _options_from(kwargs: dict[str, Any], scoped: bool) -> ClusterOptions:
    namespaces: tuple[str, ...] = ()
    selector = None
    if scoped:
        namespaces = tuple(kwargs.pop("namespaces"))
        if kwargs.pop("all_namespaces") and namespaces:
            raise click.UsageError("give -n/--namespace or -A/--all-namespaces, not both")
        selector = kwargs.pop("label_selector")
        if selector is not None and not selector.strip():
            raise click.BadParameter("give a label selector such as app=web", param_hint="--selector")
    return ClusterOptions(
        kubeconfig=kwargs.pop("kubeconfig"), context=kwargs.pop("kube_context"), namespaces=namespaces,
        timeout=kwargs.pop("request_timeout"), retries=kwargs.pop("retries"), page_size=kwargs.pop("page_size"),
        workers=kwargs.pop("workers"), label_selector=selector,
    )


def cluster_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the cluster-read options to a command (connection, -n, -A, -l); it receives them as
    ``cluster: ClusterOptions``."""
    return _decorate(fn, _CLUSTER_OPTIONS, scoped=True)


def cluster_connection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The connection options only, for commands whose -n is a question's namespace (rbac, netpol):
    they read the whole cluster. The command receives ``cluster: ClusterOptions``."""
    return _decorate(fn, _CONNECTION_OPTIONS, scoped=False)


def _decorate(fn: Callable[..., Any], options: tuple[Any, ...], scoped: bool) -> Callable[..., Any]:
    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        kwargs["cluster"] = _options_from(kwargs, scoped)
        return fn(*args, **kwargs)

    decorated: Callable[..., Any] = command
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def load_live(cluster: ClusterOptions) -> LoadResult:
    """What `--cluster` of rbac and netpol reads: the live cluster as resources (and facts), through the
    same reader as `scan --cluster`; an unreachable cluster is a usage error (exit 2)."""
    try:
        read = read_cluster(cluster)
    except ClusterError as exc:
        raise click.UsageError(f"cluster: {exc}") from None
    return to_load_result(read)


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
