"""``kubeharden webhook`` (serve, manifests, certs) and ``kubeharden vap`` (generate, --list, --check)."""

from __future__ import annotations

import datetime as dt
import gc
import os
import signal
import sys
import threading
from typing import Any

import click

from kubeharden import safeio
from kubeharden.admission import certs as certs_mod
from kubeharden.admission import manifests as manifests_mod
from kubeharden.admission import vap as vap_mod
from kubeharden.catalog import Control, Settings
from kubeharden.commands import echo_json
from kubeharden.loader import LoadContext, load_paths
from kubeharden.model import Severity
from kubeharden.scanner import UsageError, exception_rules, profile_controls
from kubeharden.versions import parse_minor


def _severity(_ctx: Any, param: Any, value: str) -> Severity:
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _listen(_ctx: Any, _param: Any, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter("expected HOST:PORT (e.g. 0.0.0.0:8443)")
    return host.strip("[]") or "0.0.0.0", int(port)


def _settings(kubernetes_version: str | None, pss_version: str | None,
              allowed_registries: tuple[str, ...]) -> Settings:
    settings = Settings(allowed_registries=allowed_registries)
    if kubernetes_version:
        try:
            settings.kubernetes_version = parse_minor(kubernetes_version)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--kubernetes-version") from None
    if pss_version:
        from kubeharden.pss import parse_pss_version

        try:
            parse_pss_version(pss_version)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--pss-version") from None
        settings.extra["pss_version"] = pss_version
    return settings


def _controls(profile: str, only: tuple[str, ...], skip: tuple[str, ...]) -> list[Control]:
    try:
        return profile_controls(profile, only, skip)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None


def control_options(fn: Any) -> Any:
    options = [
        click.option("--profile", "-p", default="nsa", show_default=True, help="Control profile."),
        click.option("--control", "-c", "only", multiple=True, metavar="ID", help="Only these controls."),
        click.option("--skip", multiple=True, metavar="ID", help="Not these controls."),
        click.option("--kubernetes-version", metavar="X.Y", help="Kubernetes version the controls assume."),
        click.option("--pss-version", metavar="v1.N|latest", help="Pod Security Standards policy version."),
        click.option("--allowed-registry", "allowed_registries", multiple=True, metavar="HOST[/PATH]",
                     help="Registries images may come from."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


# ---------------------------------------------------------------------------------------------
# kubeharden webhook


@click.group("webhook", invoke_without_command=True)
@click.option("--listen", default="0.0.0.0:8443", show_default=True, callback=_listen, metavar="HOST:PORT")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="Serving certificate (PEM); reloaded on change.")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="Its private key (PEM).")
@click.option("--client-ca", type=click.Path(dir_okay=False),
              help="Require API server client certificates from this CA.")
@control_options
@click.option("--mode", type=click.Choice(["enforce", "warn", "audit"]), default="enforce", show_default=True,
              help="enforce: deny at --deny-at; warn: only warnings; audit: only audit annotations.")
@click.option("--deny-at", default="high", show_default=True, callback=_severity, metavar="SEVERITY",
              help="Deny findings at or above this severity (enforce mode).")
@click.option("--warn-at", default="low", show_default=True, callback=_severity, metavar="SEVERITY",
              help="Warn about the findings at or above this severity that do not deny.")
@click.option("--exceptions", "exceptions_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Accepted risks, as for scan.")
@click.option("--exempt-namespace", multiple=True, metavar="NAME", help="Admit everything in this namespace.")
@click.option("--exempt-user", multiple=True, metavar="NAME", help="Admit everything this user sends.")
@click.option("--cluster-context", multiple=True, metavar="PATH",
              help="Snapshot (kubeharden snapshot) or manifests for the controls that read other objects, read "
              "once; or 'live': read the cluster at start and keep it fresh with a watch.")
@click.option("--deny-existing", is_flag=True, help="On UPDATE, also deny findings the old object already had.")
@click.option("--timeout-seconds", type=click.IntRange(1, 30), default=10, show_default=True,
              help="The webhook's timeoutSeconds: every review is answered before it.")
@click.option("--on-timeout", type=click.Choice(["deny", "allow"]), default="deny", show_default=True)
@click.option("--max-body-bytes", type=click.IntRange(min=1024), default=8 * 1024 * 1024, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes serving the port (SO_REUSEPORT): the controls hold the GIL, so one per core.")
@click.option("--max-connections", type=click.IntRange(1, 100_000), default=512, show_default=True,
              help="Connections per worker (one thread each); at the cap idle ones make room, else refused.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="For --cluster-context live.")
@click.option("--kube-context", metavar="NAME", help="Context of the kubeconfig, for --cluster-context live.")
@click.pass_context
def webhook(ctx: click.Context, listen: tuple[str, int], tls_cert: str | None, tls_key: str | None,
            client_ca: str | None, profile: str, only: tuple[str, ...], skip: tuple[str, ...],
            kubernetes_version: str | None, pss_version: str | None, allowed_registries: tuple[str, ...],
            mode: str, deny_at: Severity, warn_at: Severity, exceptions_file: str | None,
            exempt_namespace: tuple[str, ...], exempt_user: tuple[str, ...], cluster_context: tuple[str, ...],
            deny_existing: bool, timeout_seconds: int, on_timeout: str, max_body_bytes: int, workers: int,
            max_connections: int, kubeconfig: str | None, kube_context: str | None) -> None:
    """Admission webhook: AdmissionReview v1 over HTTPS on POST /validate, judged by the scan's controls.

    Also /healthz, /readyz and /metrics (Prometheus). SIGTERM drains the reviews in flight."""
    if ctx.invoked_subcommand is not None:
        return
    from kubeharden.admission.evaluate import AdmissionEvaluator, AdmissionPolicy, ClusterContext, ContextError
    from kubeharden.admission.server import WebhookServer

    if not tls_cert or not tls_key:
        raise click.UsageError("--tls-cert and --tls-key are required: the webhook serves HTTPS only")
    settings = _settings(kubernetes_version, pss_version, allowed_registries)
    controls = _controls(profile, only, skip)
    try:
        rules = exception_rules(exceptions_file)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    live = "live" in cluster_context
    if live and len(cluster_context) > 1:
        raise click.UsageError("--cluster-context live reads the cluster: give no files with it")
    if (kubeconfig or kube_context) and not live:
        raise click.UsageError("--kubeconfig and --kube-context go with --cluster-context live")
    context = None
    if cluster_context and not live:
        try:
            context = ClusterContext.load(cluster_context)
        except ContextError as exc:
            raise click.UsageError(f"--cluster-context: {exc}") from None
        click.echo(f"kubeharden webhook: cluster context of {len(context.resources)} objects from {context.origin}",
                   err=True)
    elif live:
        context = ClusterContext([], {"cluster": True}, "live cluster (not read yet)")  # read in each worker
    policy = AdmissionPolicy(mode=mode, deny_at=deny_at, warn_at=warn_at, exempt_namespaces=frozenset(exempt_namespace),
                             exempt_users=frozenset(exempt_user), deny_existing=deny_existing)
    evaluator = AdmissionEvaluator(controls, settings, rules, policy, context)

    def log(text: str) -> None:
        click.echo(text, err=True)

    def make_server(index: int | None = None, reuse_port: bool = False) -> WebhookServer:
        watch = None
        if live:
            from kubeharden.admission.watch import ContextWatch
            from kubeharden.sources.cluster import ClusterError, ClusterOptions

            try:
                watch = ContextWatch(ClusterOptions(kubeconfig=kubeconfig, context=kube_context), log=log)
                watch.start_and_wait()  # the first LISTs: the webhook is not ready before its context is
            except ClusterError as exc:
                raise click.UsageError(f"--cluster-context live: {exc}") from None
            watch.attach(evaluator)
        try:
            server = WebhookServer(evaluator, listen, tls_cert, tls_key, client_ca=client_ca,
                                   max_body=max_body_bytes, timeout_seconds=timeout_seconds, on_timeout=on_timeout,
                                   max_connections=max_connections, reuse_port=reuse_port, log=log,
                                   context_status=watch.metrics if watch else None)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a bad pair, a busy port
            if watch:
                watch.stop()
            raise click.UsageError(f"cannot serve on {listen[0]}:{listen[1]}: {exc}") from None
        if watch:
            server.on_stop = watch.stop
        return server

    # Latency: the catalog and context are long-lived (frozen out of the collector's scans), and a review
    # waiting for the GIL gets it after 1 ms rather than the default 5 ms switch interval.
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.001)
    described = (f"{len(controls)} controls, profile {profile}, mode {mode}, deny at {deny_at.label}")
    if workers > 1:
        from kubeharden.admission.workers import Supervisor, reserve_port

        try:
            reservation = reserve_port(*listen)
        except OSError as exc:
            raise click.UsageError(f"cannot serve on {listen[0]}:{listen[1]}: {exc}") from None
        listen = (listen[0], reservation.getsockname()[1])
        click.echo(f"kubeharden webhook: serving https://{listen[0]}:{listen[1]}/validate with {workers} workers "
                   f"({described})", err=True)
        try:
            code = Supervisor(workers, lambda index: make_server(index, reuse_port=True),
                              drain_timeout=max(1.0, timeout_seconds), log=log).run()
        finally:
            reservation.close()
        click.echo("kubeharden webhook: stopped" + ("" if code == 0 else " (some reviews were cut off)"), err=True)
        sys.exit(code)
    server = make_server()
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    host, port = server.address[:2]
    host = host.decode() if isinstance(host, bytes) else host
    click.echo(f"kubeharden webhook: serving https://{host}:{port}/validate ({described})", err=True)
    while not stop.wait(0.5):
        pass
    click.echo("kubeharden webhook: draining", err=True)
    clean = server.stop(timeout=max(1.0, timeout_seconds))
    click.echo("kubeharden webhook: stopped" + ("" if clean else " (some reviews were cut off)"), err=True)


def _check_output(path: str, force: bool) -> None:
    if path == "-":
        return
    try:
        safeio.check_output_path(path, force=force)
    except safeio.UnsafePathError as exc:
        raise click.UsageError(f"-o {path}: {exc}") from None


def _write(path: str, data: bytes, force: bool, mode: int = 0o644) -> None:
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        with safeio.atomic_output(path, mode=mode, force=force) as fp:
            fp.write(data)
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot write: {exc.strerror or exc}") from None


def _read_pem(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return safeio.read_regular(path, 1024 * 1024)
    except OSError as exc:
        raise click.UsageError(f"{what} {path}: {exc.strerror or exc}") from None


@webhook.command("certs")
@click.option("--service", default="kubeharden-webhook", show_default=True)
@click.option("--namespace", "-n", default="kubeharden", show_default=True)
@click.option("--cluster-domain", default="cluster.local", show_default=True)
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True,
              help="Validity of the serving certificate.")
@click.option("--ca-cert", type=click.Path(dir_okay=False), help="Sign with this CA (rotation) instead of a new one.")
@click.option("--ca-key", type=click.Path(dir_okay=False), help="The CA's private key.")
@click.option("--output", "-o", "out_dir", required=True, metavar="DIR",
              help="Directory for ca.crt, ca.key, tls.crt, tls.key.")
@click.option("--force", is_flag=True, help="Replace files that exist.")
def certs_command(service: str, namespace: str, cluster_domain: str, days: int, ca_cert: str | None,
                  ca_key: str | None, out_dir: str, force: bool) -> None:
    """A CA and a serving certificate for the webhook Service (SANs: every DNS name of the Service)."""
    if bool(ca_cert) != bool(ca_key):
        raise click.UsageError("--ca-cert and --ca-key go together")
    if not os.path.isdir(out_dir):
        raise click.UsageError(f"-o {out_dir}: not a directory")
    names = ["tls.crt", "tls.key"] if ca_cert else ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    for name in names:
        _check_output(os.path.join(out_dir, name), force)
    try:
        bundle = certs_mod.generate(certs_mod.service_dns_names(service, namespace, cluster_domain), days=days,
                                    ca_cert_pem=_read_pem(ca_cert, "--ca-cert"),
                                    ca_key_pem=_read_pem(ca_key, "--ca-key"))
    except ValueError as exc:
        raise click.UsageError(f"--ca-key: {exc}") from None
    files = {"tls.crt": (bundle.cert, 0o644), "tls.key": (bundle.key, 0o600)}
    if not ca_cert:
        files = {"ca.crt": (bundle.ca_cert, 0o644), "ca.key": (bundle.ca_key, 0o600), **files}
    for name, (data, mode) in files.items():
        _write(os.path.join(out_dir, name), data, force, mode)
    click.echo(f"wrote {', '.join(files)} to {out_dir} (SANs: {', '.join(bundle.dns_names)})", err=True)
    ca_path = ca_cert or os.path.join(out_dir, "ca.crt")
    from cryptography import x509

    ca_not_after = x509.load_pem_x509_certificate(bundle.ca_cert).not_valid_after_utc
    click.echo(certs_mod.ROTATION.format(service=service, namespace=namespace, out=out_dir,
                                         secret=f"{service}-tls", not_after=bundle.not_after.date(),
                                         ca_not_after=ca_not_after.date()).replace(f"{out_dir}/ca.crt", ca_path),
               err=True)


@webhook.command("manifests")
@click.option("--namespace", "-n", default="kubeharden", show_default=True)
@click.option("--image", required=True, help="The kubeharden image (pin it by digest).")
@click.option("--service", default="kubeharden-webhook", show_default=True)
@click.option("--certs", "certs_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="ca.crt/tls.crt/tls.key from `kubeharden webhook certs` (default: a new CA and certificate).")
@click.option("--failure-policy", type=click.Choice(list(manifests_mod.FAILURE_POLICIES)), default="Fail",
              show_default=True,
              help="Fail: deploys block while the webhook is down; Ignore: they go through unchecked.")
@click.option("--timeout-seconds", type=click.IntRange(1, 30), default=5, show_default=True)
@click.option("--profile", "-p", default="nsa", show_default=True)
@click.option("--mode", type=click.Choice(["enforce", "warn", "audit"]), default="enforce", show_default=True)
@click.option("--deny-at", default="high", show_default=True, callback=_severity, metavar="SEVERITY")
@click.option("--replicas", type=click.IntRange(1, 20), default=2, show_default=True)
@click.option("--apiserver-cidr", "apiserver_cidrs", multiple=True, required=True, metavar="CIDR",
              help="Where the API server connects from (control-plane nodes; 0.0.0.0/0 for anywhere): the "
              "NetworkPolicy admits only that.")
@click.option("--exempt-namespace", multiple=True, metavar="NAME")
@click.option("--exempt-user", multiple=True, metavar="NAME")
@click.option("--output", "-o", "output", required=True, metavar="FILE", help="Where to write ('-' for stdout).")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
def manifests_command(namespace: str, image: str, service: str, certs_dir: str | None, failure_policy: str,
                      timeout_seconds: int, profile: str, mode: str, deny_at: Severity, replicas: int,
                      apiserver_cidrs: tuple[str, ...], exempt_namespace: tuple[str, ...],
                      exempt_user: tuple[str, ...], output: str,
                      force: bool) -> None:
    """Namespace, NetworkPolicies, ServiceAccount, TLS Secret, Deployment, Service, PDB and the
    ValidatingWebhookConfiguration."""
    import ipaddress

    for cidr in apiserver_cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise click.BadParameter(f"{cidr!r} is not a CIDR", param_hint="--apiserver-cidr") from None
    _controls(profile, (), ())  # an unknown profile is a usage error now, not a crash-looping pod later
    _check_output(output, force)
    if certs_dir:
        ca, cert, key = (_read_pem(os.path.join(certs_dir, n), "--certs") for n in ("ca.crt", "tls.crt", "tls.key"))
        assert ca is not None and cert is not None and key is not None
        bundle = certs_mod.CertBundle(ca, b"", cert, key, (), dt.datetime.now(dt.UTC))
    else:
        bundle = certs_mod.generate(certs_mod.service_dns_names(service, namespace))
        click.echo("note: a new CA and serving certificate were made; the CA key is not kept (use "
                   "`kubeharden webhook certs` and --certs to keep it for rotation)", err=True)
    deployment = manifests_mod.WebhookDeployment(
        namespace=namespace, image=image, certs=bundle, service=service, profile=profile, mode=mode,
        deny_at=deny_at.label, failure_policy=failure_policy, timeout_seconds=timeout_seconds, replicas=replicas,
        apiserver_cidrs=apiserver_cidrs, exempt_namespaces=exempt_namespace, exempt_users=exempt_user)
    _write(output, manifests_mod.render(deployment), force, mode=0o600)  # it holds the serving key
    if output != "-":
        click.echo(f"wrote webhook manifests to {output}", err=True)


# ---------------------------------------------------------------------------------------------
# kubeharden vap


@click.command("vap")
@click.argument("paths", nargs=-1)
@control_options
@click.option("--deny-at", default="high", show_default=True, callback=_severity, metavar="SEVERITY",
              help="Bindings deny for controls at or above this severity, warn and audit below.")
@click.option("--exempt-namespace", multiple=True, metavar="NAME", help="Not bound in this namespace.")
@click.option("--list", "list_only", is_flag=True, help="List the controls without a policy, and why.")
@click.option("--check", "check_file", type=click.Path(dir_okay=False), metavar="VAP.yaml",
              help="Evaluate these policies offline against PATHS: the verdicts a cluster would give.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--output", "-o", "output", metavar="FILE", help="Where to write the policies (default stdout).")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
def vap(paths: tuple[str, ...], profile: str, only: tuple[str, ...], skip: tuple[str, ...],
        kubernetes_version: str | None, pss_version: str | None, allowed_registries: tuple[str, ...],
        deny_at: Severity, exempt_namespace: tuple[str, ...], list_only: bool, check_file: str | None, fmt: str,
        output: str | None, force: bool) -> None:
    """ValidatingAdmissionPolicies (CEL) for the per-object controls of a profile, one policy and binding each."""
    if check_file:
        _vap_check(check_file, paths, fmt)
        return
    if paths:
        raise click.UsageError("PATHS are read only with --check")
    settings = _settings(kubernetes_version, pss_version, allowed_registries)
    generated = vap_mod.generate(_controls(profile, only, skip), settings, deny_at, exempt_namespace)
    if list_only:
        if fmt == "json":
            echo_json([{"control": c.id, "title": c.title, "reason": reason} for c, reason in generated.skipped])
        else:
            for ctrl, reason in generated.skipped:
                click.echo(f"{ctrl.id:12} {reason}")
            click.echo(f"{len(generated.expressed)} controls have a policy, {len(generated.skipped)} do not", err=True)
        return
    if output:
        _check_output(output, force)
    header = (f"# kubeharden vap --profile {profile}: {len(generated.expressed)} ValidatingAdmissionPolicies "
              f"(admissionregistration.k8s.io/v1, Kubernetes 1.30+); `kubeharden vap --list` names the others\n")
    data = vap_mod.render(generated.documents, header)
    if output and output != "-":
        _write(output, data, force)
        click.echo(f"wrote {len(generated.expressed)} policies and bindings to {output}", err=True)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def _vap_check(check_file: str, paths: tuple[str, ...], fmt: str) -> None:
    from kubeharden.admission.celcheck import CelUnavailable, PolicyError, PolicySet

    if not paths:
        raise click.UsageError("give the manifests to check: kubeharden vap --check vap.yaml PATHS")
    policies = load_paths([check_file])
    if policies.errors:
        raise click.UsageError(f"{policies.errors[0].where}: {policies.errors[0].message}")
    try:
        policy_set = PolicySet(r.obj for r in policies.resources)
    except (CelUnavailable, PolicyError) as exc:
        raise click.UsageError(f"{check_file}: {exc}") from None
    if not policy_set.policies:
        raise click.UsageError(f"{check_file}: no ValidatingAdmissionPolicy in it")
    loaded = load_paths(paths, LoadContext())
    for error in loaded.errors:
        click.echo(f"error: {error.where}: {error.message}", err=True)
    rows: list[dict[str, Any]] = []
    denied = 0
    for res in loaded.resources:
        for verdict in policy_set.evaluate(res.obj):
            if verdict.allowed:
                continue
            deny = "Deny" in verdict.actions
            denied += deny
            where = f"{res.source.file}:{res.source.line}" if res.source.line else res.source.file
            rows.append({"object": res.display(), "where": where, "policy": verdict.policy, "control": verdict.control,
                         "action": "deny" if deny else "warn", "messages": verdict.messages, "error": verdict.error})
    if fmt == "json":
        echo_json(rows)
    else:
        for row in rows:
            detail = row["error"] or "; ".join(row["messages"])
            click.echo(f"{row['action']:5} {row['object']} ({row['where']}) {row['control']}: {detail}")
        click.echo(f"{len(rows)} policy failures ({denied} denials) on {len(loaded.resources)} objects", err=True)
    sys.exit(2 if loaded.errors else 1 if denied else 0)


COMMANDS = [webhook, vap]
