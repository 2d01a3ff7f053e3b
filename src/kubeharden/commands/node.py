"""`kubeharden node` (judge a node's control-plane and kubelet configuration),
`kubeharden node probe etcd` and `kubeharden collect-node`."""

from __future__ import annotations

import sys
from typing import Any

import click

COMMANDS: list[click.Command] = []


def _report_options(fn: Any) -> Any:
    from kubeharden.cli import report_options

    return report_options(fn)


@click.group("node", invoke_without_command=True)
@click.option("--root", type=click.Path(file_okay=False), metavar="DIR",
              help="Node root to read (/ on the node itself, or a copy with the same layout).")
@click.option("--bundle", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
              help="Bundle made by `kubeharden collect-node`.")
@click.option("--processes/--no-processes", default=None,
              help="Read running command lines from /proc (default: only when --root is /).")
@click.option("--no-builtin-exceptions", "no_builtin_exceptions", is_flag=True,
              help="Do not except the expected findings of control-plane static pods (docs/node.md).")
@click.option("--strict", is_flag=True,
              help="Duplicate keys in node files are errors (exit 2), not warnings (kubectl's strict decoding).")
@_report_options
@click.pass_context
def node(click_ctx: click.Context, root: str | None, bundle: str | None, processes: bool | None,
         no_builtin_exceptions: bool, strict: bool,
         formats: tuple[str, ...], outputs: tuple[str, ...], fail_on: str, exceptions_file: str | None,
         show_unused_exceptions: bool, only: tuple[str, ...], skip: tuple[str, ...],
         kubernetes_version: str | None, force: bool, details: bool, min_severity: str | None, quiet: bool,
         max_bytes: int | None) -> None:
    """Judge control-plane and kubelet configuration from a node's files (--root) or a bundle."""
    if click_ctx.invoked_subcommand is not None:
        return
    from kubeharden.cli import finish, prepare_outputs, settings_from, view_from
    from kubeharden.loader import LoadContext
    from kubeharden.scanner import ScanRequest, UsageError, run_scan

    if bool(root) == bool(bundle):
        raise click.UsageError("give exactly one of --root DIR (e.g. --root /) or --bundle FILE")
    view = view_from(fail_on, details, min_severity, quiet, max_bytes)
    settings = settings_from(kubernetes_version)
    # node files read under --root are refused as outputs by inode when written (safeio)
    plan = prepare_outputs(formats, outputs, force, [bundle or "", exceptions_file or ""])
    settings.as_cluster = False
    settings.builtin_exceptions = not no_builtin_exceptions
    source: dict[str, Any] = {"bundle": bundle} if bundle else {"root": root, "processes": processes}
    request = ScanRequest(settings=settings, only=only, skip=skip, exceptions_file=exceptions_file,
                          sources={"node": source}, load=LoadContext(strict=strict))
    try:
        result = run_scan(request)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    finish(result, plan, fail_on, show_unused_exceptions, view)


@node.group("probe")
def probe() -> None:
    """Actively probe a control-plane endpoint (connects only to the URL given)."""


@probe.command("etcd")
@click.argument("url")
@click.option("--cacert", type=click.Path(dir_okay=False, exists=True),
              help="CA that signed etcd's server certificate.")
@click.option("--cert", type=click.Path(dir_okay=False, exists=True), help="Client certificate (etcd client).")
@click.option("--key", type=click.Path(dir_okay=False, exists=True), help="Key of the client certificate.")
@click.option("--timeout", type=float, default=3.0, show_default=True, help="Seconds per connection.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--fail-on", default="high", show_default=True, metavar="SEVERITY",
              help="Exit 1 when an insecure result is at or above: low, medium, high, critical, none.")
@click.option("--secrets", is_flag=True,
              help="Read /registry/secrets/ keys and report Secrets stored without encryption (values never shown).")
@click.option("--encryption-config", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
              help="With --secrets: the API server's EncryptionConfiguration, to find Secrets under an old key.")
def probe_etcd_command(url: str, cacert: str | None, cert: str | None, key: str | None, timeout: float,
                       fmt: str, fail_on: str, secrets: bool, encryption_config: str | None) -> None:
    """Actively test an etcd client URL: plain HTTP, TLS without client certificate, TLS 1.0/1.1.

    Connects only to URL's host and port."""
    from kubeharden.nodeconf.probe import ProbeUsageError, probe_etcd

    threshold = _probe_threshold(fail_on)
    if bool(cert) != bool(key):
        raise click.UsageError("--cert and --key go together")
    try:
        result = probe_etcd(url, cacert, cert, key, timeout)
    except ProbeUsageError as exc:
        raise click.BadParameter(str(exc), param_hint="URL") from None
    if (secrets or encryption_config) and result.reachable:
        from kubeharden.nodeconf.probe import probe_secrets

        result.checks += probe_secrets(url, cacert, cert, key, _encryption_config(encryption_config),
                                       max(timeout, 10.0), config_given=bool(encryption_config))
    if fmt == "json":
        click.echo(result.to_json())
    else:
        click.echo(f"etcd probe of {result.host}:{result.port}")
        if result.error:
            click.echo(f"  error: {result.error}")
        _print_checks(result.checks)
    if result.error:
        click.echo(f"error: {result.error}", err=True)
        sys.exit(2)
    sys.exit(_probe_exit(result.checks, threshold))


def _print_checks(checks: list[Any]) -> None:
    for check in checks:
        mark = {"insecure": "FAIL", "secure": "ok", "not_assessed": "n/a"}[check.status]
        click.echo(f"  {mark:<5} {check.severity.label:<8} {check.title}: {check.detail}")


def _probe_exit(checks: list[Any], threshold: Any) -> int:
    from kubeharden.nodeconf.probe import INSECURE

    return 1 if threshold is not None and any(c.status == INSECURE and c.severity >= threshold for c in checks) else 0


def _probe_threshold(fail_on: str) -> Any:
    from kubeharden.model import Severity

    if fail_on.lower() == "none":
        return None
    try:
        return Severity.parse(fail_on)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fail-on") from None


@probe.command("exposure")
@click.argument("host")
@click.option("--timeout", type=float, default=2.0, show_default=True, help="Seconds per connection.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--fail-on", default="high", show_default=True, metavar="SEVERITY",
              help="Exit 1 when an exposed port is at or above: low, medium, high, critical, none.")
def probe_exposure_command(host: str, timeout: float, fmt: str, fail_on: str) -> None:
    """Which control-plane and kubelet ports of HOST answer from here, and to anonymous requests:
    6443, 8080, 2379, 2380, 10250, 10255, 10257, 10259 (NSA-CP-1/2/3/5, NODE-2/4/6).

    Connects only to HOST; sends no credentials."""
    import json

    from kubeharden.nodeconf.exposure import probe_exposure

    threshold = _probe_threshold(fail_on)
    if not host or "/" in host or any(c.isspace() for c in host):
        raise click.BadParameter("a host name or IP address, without scheme or port", param_hint="HOST")
    checks = probe_exposure(host.strip("[]"), timeout)
    if fmt == "json":
        click.echo(json.dumps({"host": host, "checks": [c.to_dict() for c in checks]}, indent=2))
    else:
        click.echo(f"exposure probe of {host} (anonymous, from this machine)")
        _print_checks(checks)
    sys.exit(_probe_exit(checks, threshold))


def _encryption_config(path: str | None) -> dict[str, object] | None:
    """The EncryptionConfiguration file (its keys are only compared by name, never shown)."""
    if path is None:
        return None
    import yaml

    from kubeharden import safeio

    try:
        data = yaml.load(safeio.read_regular(path, 4 * 1024 * 1024), Loader=yaml.CSafeLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"{path}: cannot read ({type(exc).__name__})", param_hint="--encryption-config") \
            from None
    if not isinstance(data, dict) or data.get("kind") != "EncryptionConfiguration":
        raise click.BadParameter(f"{path}: not an EncryptionConfiguration", param_hint="--encryption-config")
    return data


@click.command("collect-node")
@click.option("--output", "-o", "output", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Bundle to write (.tar.gz).")
@click.option("--root", default="/", show_default=True, type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="Node root to read.")
@click.option("--processes/--no-processes", default=None,
              help="Record running command lines from /proc (default: only when --root is /).")
@click.option("--force", is_flag=True, help="Overwrite an existing bundle.")
def collect_node(output: str, root: str, processes: bool | None, force: bool) -> None:
    """Collect what `kubeharden node --bundle` needs from a node: config files, file modes and owners,
    command lines. Keys, tokens and kubeconfigs are not copied; encryption keys are reduced to their length."""
    from kubeharden import safeio
    from kubeharden.nodeconf.snapshot import collect_root, has_node_configuration, write_bundle

    # before the node is read; the files read are refused as outputs by inode when writing
    try:
        safeio.check_output_path(output, force=force)
    except safeio.UnsafePathError as exc:
        raise click.UsageError(f"cannot write {output}: {exc}") from None
    snapshot = collect_root(root, processes)
    for error in snapshot.errors:
        click.echo(f"error: {error.where}: {error.message}", err=True)
    if not has_node_configuration(snapshot):
        click.echo(f"error: no bundle written to {output}", err=True)
        sys.exit(2)
    try:
        withheld = write_bundle(snapshot, output, force=force)
    except OSError as exc:  # UnsafePathError included (an input, or created meanwhile)
        raise click.UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    for path in withheld:
        click.echo(f"warning: {snapshot.display(path)}: not valid YAML; its content is withheld from the bundle",
                   err=True)
    copied = sum(1 for r in snapshot.files.values() if r.text is not None)
    present = sum(1 for r in snapshot.files.values() if r.exists)
    click.echo(f"wrote {output}: {present} files recorded ({copied} copied), "
               f"{sum(len(p) for p in snapshot.processes.values())} process command lines", err=True)
    sys.exit(2 if snapshot.errors else 0)


COMMANDS.extend([node, collect_node])
