"""`kubeharden generate ...`: hardened configuration files and the API server changes they need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

CommandFn = TypeVar("CommandFn", bound=Callable[..., Any])

COMMANDS: list[click.Command] = []


@click.group("generate")
def generate() -> None:
    """Generate hardened configuration (audit policy, encryption at rest)."""


def _emit(text: str, snippet: str, output: str | None, force: bool, show_flags: bool, flags_only: bool,
          secret: bool) -> None:
    if flags_only:
        click.echo(snippet, nl=False)
        return
    if output:
        _write(output, text, force, secret)
        click.echo(f"wrote {output}" + (" (mode 0600)" if secret else ""), err=True)
        if show_flags:
            click.echo(snippet, nl=False)
        return
    click.echo(text, nl=False)
    if show_flags:  # keep stdout a valid file; the snippet goes to stderr
        click.echo(snippet, nl=False, err=True)


def _write(path: str, text: str, force: bool, secret: bool) -> None:
    from kubeharden import safeio

    # atomic: a failed write never leaves a truncated file, and a planted link is never followed
    try:
        safeio.write_atomic(path, lambda fh: fh.write(text.encode("utf-8")), mode=0o600 if secret else 0o644,
                            force=force)
    except safeio.UnsafePathError as exc:
        raise click.UsageError(f"cannot write {path}: {exc}") from None
    except OSError as exc:
        raise click.UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _absolute_node_path(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """Paths on the control-plane node become hostPath volumes, which must be absolute."""
    if not value.startswith("/") or value.rstrip("/") == "":
        raise click.BadParameter(f"{value!r} is not an absolute file path on the node (e.g. /etc/kubernetes/...)")
    return value


def _resource_names(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    if any(not name.strip() for name in value):
        raise click.BadParameter("a resource name is empty (e.g. --resource secrets)")
    return value


_common = [
    click.option("--output", "-o", metavar="FILE", help="Write the file here (refuses to overwrite without --force)."),
    click.option("--force", is_flag=True, help="Overwrite an existing output file."),
    click.option("--flags", "show_flags", is_flag=True,
                 help="Also print the kube-apiserver flags and hostPath volumes/volumeMounts."),
    click.option("--flags-only", is_flag=True, help="Print only the kube-apiserver changes."),
]


def _common_options(fn: CommandFn) -> CommandFn:
    for option in reversed(_common):
        fn = option(fn)
    return fn


@generate.command("audit-policy")
@_common_options
@click.option("--policy-path", default="/etc/kubernetes/audit/audit-policy.yaml", show_default=True,
              callback=_absolute_node_path,
              help="Where the policy will live on the control-plane node.")
@click.option("--log-path", default="/var/log/kubernetes/audit/audit.log", show_default=True,
              callback=_absolute_node_path,
              help="Audit log file on the node.")
@click.option("--maxage", type=click.IntRange(min=1), default=30, show_default=True, help="Days to keep logs.")
@click.option("--maxbackup", type=click.IntRange(min=1), default=10, show_default=True, help="Rotated files kept.")
@click.option("--maxsize", type=click.IntRange(min=1), default=100, show_default=True, help="MB before rotation.")
def audit_policy_command(output: str | None, force: bool, show_flags: bool, flags_only: bool, policy_path: str,
                         log_path: str, maxage: int, maxbackup: int, maxsize: int) -> None:
    """An audit Policy per guidance v1.2 (Secrets at Metadata; RBAC at RequestResponse; exec at Request)."""
    from kubeharden.generators.audit_policy import AuditOptions, audit_snippet, render_audit_policy

    options = AuditOptions(policy_path, log_path, maxage, maxbackup, maxsize)
    _emit(render_audit_policy(), audit_snippet(options).render(), output, force, show_flags, flags_only, False)


@generate.command("encryption-config")
@_common_options
@click.option("--provider", type=click.Choice(["secretbox", "aesgcm", "aescbc", "kms"]), default="secretbox",
              show_default=True, help="Encryption provider (kms means KMS v2).")
@click.option("--resource", "resources", multiple=True, default=("secrets", "configmaps"), show_default=True,
              callback=_resource_names,
              help="Resources to encrypt (repeat).")
@click.option("--config-path", default="/etc/kubernetes/enc/encryption-config.yaml", show_default=True,
              callback=_absolute_node_path,
              help="Where the file will live on the control-plane node.")
@click.option("--kms-endpoint", metavar="unix:///PATH", help="KMS v2 plugin socket (needed with --provider kms).")
@click.option("--kms-name", default="kms-plugin", show_default=True, help="KMS provider name.")
def encryption_config_command(output: str | None, force: bool, show_flags: bool, flags_only: bool, provider: str,
                              resources: tuple[str, ...], config_path: str, kms_endpoint: str | None,
                              kms_name: str) -> None:
    """An EncryptionConfiguration with a fresh random 32-byte key (or KMS v2), identity last."""
    from kubeharden.generators.encryption_config import (
        EncryptionOptions,
        GeneratorError,
        encryption_snippet,
        render_encryption_config,
    )

    options = EncryptionOptions(provider, tuple(resources), config_path, kms_endpoint, kms_name)
    try:
        text = render_encryption_config(options)
    except GeneratorError as exc:
        raise click.UsageError(str(exc)) from None
    if not any(r in ("secrets", "*.", "*.*") for r in resources):
        click.echo("warning: secrets are not among --resource: Secrets stay unencrypted (KH-SEC-002)", err=True)
    if provider == "aescbc":
        click.echo("warning: aescbc is a legacy provider (KH-SEC-003); prefer secretbox, aesgcm or kms", err=True)
    if provider == "aesgcm":
        click.echo("note: rotate aesgcm keys well before 2^32 writes (Kubernetes advises every 200k writes)",
                   err=True)
    _emit(text, encryption_snippet(options).render(), output, force, show_flags, flags_only,
          secret=provider != "kms")


@generate.command("audit-webhook-config")
@_common_options
@click.option("--server", required=True, metavar="https://HOST:PORT/",
              help="URL of the webhook backend (kubeharden audit serve).")
@click.option("--ca-file", required=True, metavar="PATH", help="CA that signed the backend's certificate (node path).")
@click.option("--client-cert", metavar="PATH", help="API server client certificate (node path).")
@click.option("--client-key", metavar="PATH", help="API server client key (node path).")
@click.option("--config-path", default="/etc/kubernetes/audit/webhook.kubeconfig", show_default=True,
              callback=_absolute_node_path, help="Where the file will live on the control-plane node.")
def audit_webhook_config_command(output: str | None, force: bool, show_flags: bool, flags_only: bool, server: str,
                                 ca_file: str, client_cert: str | None, client_key: str | None,
                                 config_path: str) -> None:
    """The kubeconfig-format file for --audit-webhook-config-file, plus the --audit-webhook-* flags."""
    from kubeharden.audit.webhook_config import WebhookOptions, render_webhook_config, webhook_flags

    options = WebhookOptions(server, ca_file, client_cert, client_key, config_path)
    try:
        text = render_webhook_config(options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _emit(text, webhook_flags(options), output, force, show_flags, flags_only, False)


COMMANDS.append(generate)
