"""`kubeharden audit`: threat detection over Kubernetes audit logs (detectors D01–D20).

    kubeharden audit FILE... | -            judge audit log files (JSON lines, gzip, EventList)
    kubeharden audit --follow FILE          tail a growing log, surviving rotation
    kubeharden audit --list                 the twenty detectors and their status
    kubeharden audit learn FILE... -o B     record a baseline for D04/D15/D20
    kubeharden audit serve ...              HTTPS audit webhook backend
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, BinaryIO

import click
import orjson

COMMANDS: list[click.Command] = []
FORMATS = ("table", "json", "sarif", "junit", "markdown", "html", "jsonl")
# the scan's report formats plus alerts streamed as JSON lines
_EXTENSIONS = {".json": "json", ".sarif": "sarif", ".xml": "junit", ".md": "markdown", ".html": "html",
               ".htm": "html", ".txt": "table", ".jsonl": "jsonl", ".ndjson": "jsonl"}
Plan = list[tuple[str, str | None]]


class AuditGroup(click.Group):
    """`kubeharden audit FILE...` runs the detectors; `learn` and `serve` are sub-commands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("audit", cls=AuditGroup)
def audit() -> None:
    """Threat detection over Kubernetes audit logs (guidance §3, detectors D01–D20).

    `kubeharden audit FILE...` (or `-` for stdin) is the same as `kubeharden audit run FILE...`."""


# ---------------------------------------------------------------------------------------------
# Shared option parsing


def parse_when(value: str | None, option: str) -> float | None:
    if not value:
        return None
    text = value.strip()
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z) or a date",
                                 param_hint=option) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def load_common(settings_file: str | None, exceptions_file: str | None,
                baseline_file: str | None) -> tuple[Any, Any, Any]:
    from kubeharden.audit.baseline import Baseline, BaselineError
    from kubeharden.audit.runner import AuditExceptions
    from kubeharden.audit.settings import AuditSettings, SettingsError, load_settings
    from kubeharden.safeio import read_regular

    try:
        settings = load_settings(settings_file) if settings_file else AuditSettings()
    except SettingsError as exc:
        where = f":{exc.line}" if exc.line and settings_file and not exc.message.startswith(settings_file) else ""
        raise click.UsageError(f"--settings: {exc.message}{where}") from None
    exceptions = AuditExceptions()
    if exceptions_file:
        exceptions = _load_exceptions(exceptions_file)
    baseline = None
    if baseline_file:
        try:
            baseline = Baseline.from_json(read_regular(baseline_file, 512 * 1024 * 1024), baseline_file)
        except (OSError, BaselineError) as exc:
            raise click.UsageError(f"--baseline: {exc}") from None
    return settings, exceptions, baseline


def _load_exceptions(path: str) -> Any:
    """The scan's exceptions format; each entry may also carry ``user:`` (wildcards)."""
    from fnmatch import fnmatchcase

    from kubeharden.audit.runner import AuditExceptions
    from kubeharden.catalog import all_controls
    from kubeharden.exceptions import ExceptionsFileError, load_exceptions_file
    from kubeharden.safeio import read_regular
    from kubeharden.yamlsafe import Limits, iter_yaml_documents

    try:
        rules = load_exceptions_file(path)
    except ExceptionsFileError as exc:
        line = f":{exc.line}" if exc.line else ""
        raise click.UsageError(f"--exceptions {path}{line}: {exc.message}") from None
    known = [c.id for c in all_controls()]
    for rule in rules:
        if not any(fnmatchcase(i, rule.control) for i in known):
            raise click.UsageError(f"--exceptions {rule.origin}: unknown control or detector {rule.control!r}")
    users = ["*"] * len(rules)
    try:
        docs = list(iter_yaml_documents(read_regular(path, Limits().max_file_bytes), Limits(), []))
        data = docs[0].data if docs else None
        entries = data.get("exceptions") if isinstance(data, dict) else data
        if isinstance(entries, list) and len(entries) == len(rules):
            users = [str(e.get("user") or "*") if isinstance(e, dict) else "*" for e in entries]
    except OSError:
        pass
    return AuditExceptions(list(zip(rules, users, strict=True)))


class JsonlSink:
    """Alerts as JSON lines, one per alert as it is found (for SIEMs)."""

    def __init__(self, fp: BinaryIO, flush_each: bool) -> None:
        self.fp = fp
        self.flush_each = flush_each
        self.count = 0

    def __call__(self, finding: Any) -> None:
        from kubeharden.reporters.json_report import finding_to_dict

        self.fp.write(orjson.dumps(finding_to_dict(finding), default=str) + b"\n")
        self.count += 1
        if self.flush_each:
            self.fp.flush()


def _sinks(stack: ExitStack, plan: Plan, streaming: bool) -> list[Callable[[Any], None]]:
    from kubeharden import safeio

    sinks: list[Callable[[Any], None]] = []
    for fmt, out in plan:
        if fmt != "jsonl":
            continue
        if out in (None, "-"):
            sinks.append(JsonlSink(sys.stdout.buffer, True))
        elif streaming:  # a live feed: the file grows as alerts come (atomic rename would hide them)
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            sinks.append(JsonlSink(stack.enter_context(os.fdopen(fd, "wb")), True))
        else:
            sinks.append(JsonlSink(stack.enter_context(safeio.atomic_output(out)), False))
    return sinks


def print_list(fmt: str) -> None:
    from rich.table import Table

    from kubeharden.audit.detectors import all_detectors
    from kubeharden.commands import echo_json, report_console

    dets = all_detectors()
    if fmt == "json":
        echo_json([{"id": d.id, "title": d.title, "status": "implemented" if d.implemented else "needs other input",
                    "severity": d.severity.label, "guidance": list(d.guidance), "minLevel": d.min_level or None,
                    "stages": list(d.stages), "needs": d.needs_text, "inputNeeded": d.input_needed or None}
                   for d in dets])
        return
    table = Table(title=f"{len(dets)} detectors ({sum(d.implemented for d in dets)} implemented over audit "
                  "events)", title_justify="left", expand=True)
    for name, kw in (("ID", {"no_wrap": True}), ("Status", {"no_wrap": True}), ("Severity", {"no_wrap": True}),
                     ("Title", {"ratio": 4}), ("Needs", {"ratio": 4}), ("Guidance", {"ratio": 2})):
        table.add_column(name, overflow="fold", **kw)
    for d in dets:
        table.add_row(d.id, "implemented" if d.implemented else "not audit data", d.severity.label, d.title,
                      d.needs_text, ", ".join(d.guidance))
    report_console().print(table)


def _report_options(fn: Any) -> Any:
    options = [
        click.option("--format", "-f", "formats", multiple=True, type=click.Choice(FORMATS),
                     help="Report format; repeat for several (paired in order with -o). jsonl streams alerts."),
        click.option("--output", "-o", "outputs", multiple=True, metavar="FILE",
                     help="Write a report to FILE (format from --format or the extension)."),
        click.option("--force", is_flag=True, help="Replace report files that already exist."),
        click.option("--fail-on", default="high", show_default=True, metavar="SEVERITY",
                     help="Exit 1 when an alert is at or above: low, medium, high, critical, none."),
        click.option("--settings", "settings_file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Detector settings (YAML; see docs/audit.md)."),
        click.option("--exceptions", "exceptions_file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Accepted risks, the scan's format (+ optional user: selector)."),
        click.option("--show-unused-exceptions", is_flag=True, help="List exceptions that matched no alert."),
        click.option("--detector", "-d", "only", multiple=True, metavar="ID", help="Run only these (D01, D0*)."),
        click.option("--skip", multiple=True, metavar="ID", help="Do not run these detectors."),
        click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Baseline from `kubeharden audit learn` (D04, D13, D15, D20)."),
        click.option("--policy", "policy_file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="The API server's audit Policy: say which detectors it blinds."),
        click.option("--root", "node_root", type=click.Path(file_okay=False, exists=True), metavar="DIR",
                     help="A control-plane node's root (/ or a copy): the audit Policy its kube-apiserver "
                     "--audit-policy-file names, for policy coverage without --policy."),
        click.option("--node-bundle", "node_bundle", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
                     help="The same from a `kubeharden collect-node` bundle of a control-plane node."),
        click.option("--cluster-state", "cluster_state", multiple=True, metavar="PATH",
                     help="Snapshot or manifests: join alerts with the scan's findings."),
        click.option("--alertmanager", metavar="URL", help="Post alerts to this Alertmanager (API v2)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


class Pipeline:
    """Everything a run needs besides its events (shared by files, --follow and serve)."""

    def __init__(self, *, formats: tuple[str, ...], outputs: tuple[str, ...], force: bool, fail_on: str,
                 settings_file: str | None, exceptions_file: str | None, only: tuple[str, ...],
                 skip: tuple[str, ...], baseline_file: str | None, policy_file: str | None,
                 cluster_state: tuple[str, ...], alertmanager: str | None, inputs: Iterable[str],
                 node_root: str | None = None, node_bundle: str | None = None,
                 since: float | None = None, until: float | None = None, streaming: bool = False) -> None:
        from kubeharden.audit.alertmanager import AlertmanagerSink
        from kubeharden.audit.policy import (
            FoundPolicy,
            PolicyError,
            coverage_findings,
            load_policy,
            node_inventory,
            policies_in,
        )
        from kubeharden.audit.posture import Posture
        from kubeharden.audit.runner import AuditRun, select_detectors
        from kubeharden.cli import _fail_on, prepare_outputs

        _fail_on(fail_on)
        inputs_read = [*inputs, settings_file or "", exceptions_file or "", baseline_file or "", policy_file or "",
                       node_bundle or "", *cluster_state]
        self.plan = prepare_outputs(formats, outputs, force, inputs_read, extensions=_EXTENSIONS)
        settings, exceptions, baseline = load_common(settings_file, exceptions_file, baseline_file)
        try:
            detectors = select_detectors(only, skip)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        self.notes: list[str] = []
        self.errors: list[str] = []
        posture = None
        if cluster_state:
            posture, problems = Posture.from_paths(cluster_state)
            self.notes.append(f"posture: {posture.findings} findings of the scan joined from "
                              f"{', '.join(cluster_state)}")
            self.errors += [f"--cluster-state: {p}" for p in problems]
        self.alertmanager = None
        if alertmanager:
            try:
                self.alertmanager = AlertmanagerSink(alertmanager)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--alertmanager") from None
        self.stack = ExitStack()
        sinks: list[Callable[[Any], None]] = _sinks(self.stack, self.plan, streaming)
        if self.alertmanager is not None:
            sinks.append(self.alertmanager)

        def on_finding(finding: Any) -> None:
            for sink in sinks:
                sink(finding)

        self.run = AuditRun(detectors, settings, exceptions=exceptions, baseline=baseline, posture=posture,
                            since=since, until=until, on_finding=on_finding if sinks else None)
        # The audit policy: given (--policy), or the one the API server names, from a node root
        # (--root) or from the cluster state when it holds the static pod and the file.
        policies: list[FoundPolicy] = []
        reasons: list[str] = []
        if policy_file:
            try:
                policy, line = load_policy(policy_file)
            except PolicyError as exc:
                raise click.UsageError(f"--policy: {exc}") from None
            policies.append(FoundPolicy(policy, policy_file, line, "--policy"))
        elif node_root or node_bundle:
            if node_root and node_bundle:
                raise click.UsageError("give one of --root DIR and --node-bundle FILE")
            try:
                inventory, problems = node_inventory(node_root, node_bundle)
            except PolicyError as exc:
                raise click.UsageError(str(exc)) from None
            policies, reasons = policies_in(inventory)
            given = f"--root {node_root}" if node_root else f"--node-bundle {node_bundle}"
            reasons = [f"{given}: {r}" for r in [*problems, *reasons]]
        elif posture is not None:
            policies, reasons = posture.audit_policies, [f"--cluster-state: {r}" for r in posture.policy_reasons]
        for found in policies:
            prelude = list(coverage_findings(found.policy, detectors, settings, found.where, found.line))
            via = "" if found.via == "--policy" else f" (named by {found.via})"
            self.notes.append(f"policy coverage: {len(prelude)} detector(s) blinded by {found.where}{via}")
            for finding in prelude:
                self.run.emit(finding)
        self.run.prelude, self.run.findings = self.run.findings, []
        if not policies:
            why = "; ".join(reasons) if reasons else "give --policy FILE, the API server's audit policy, or --root DIR"
            self.notes.append(f"policy coverage: not assessed ({why})")

    def finish(self, stats: Any, fail_on: str, show_unused: bool) -> None:
        self.run.flush()
        if self.alertmanager is not None:
            self.alertmanager.flush()
            self.notes.append(f"alertmanager: {self.alertmanager.sent} alerts sent, {self.alertmanager.lost} lost")
            self.errors += self.alertmanager.errors
        from kubeharden.cli import finish

        result = self.run.result(stats, self.notes)
        self.stack.close()
        for fmt, out in self.plan:
            if fmt == "jsonl" and out not in (None, "-"):
                click.echo(f"wrote jsonl alerts to {out}", err=True)
        finish(result, self.plan, fail_on, show_unused, extra_errors=self.errors)


@audit.command("run")
@click.argument("files", nargs=-1)
@_report_options
@click.option("--since", metavar="TIME", help="Only events at or after this RFC 3339 time (or date).")
@click.option("--until", metavar="TIME", help="Only events at or before this time.")
@click.option("--follow", is_flag=True, help="Tail FILE as it grows; survives rotation (rename, copytruncate).")
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=0.5, show_default=True,
              help="--follow: seconds between checks for new data.")
@click.option("--idle-exit", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="--follow: stop (and report) after this long without new data.")
@click.option("--max-line-bytes", type=click.IntRange(min=1024), default=16 * 1024 * 1024, show_default=True,
              help="Longest event line read; longer ones are skipped and reported.")
@click.option("--list", "list_only", is_flag=True, help="List the twenty detectors with their status.")
def run_command(files: tuple[str, ...], formats: tuple[str, ...], outputs: tuple[str, ...], force: bool,
                fail_on: str, settings_file: str | None, exceptions_file: str | None, show_unused_exceptions: bool,
                only: tuple[str, ...], skip: tuple[str, ...], baseline_file: str | None, policy_file: str | None,
                cluster_state: tuple[str, ...], alertmanager: str | None, node_root: str | None,
                node_bundle: str | None, since: str | None, until: str | None,
                follow: bool, poll_interval: float, idle_exit: float | None, max_line_bytes: int,
                list_only: bool) -> None:
    """Judge audit log files (JSON lines, .gz, EventList; '-' for stdin) with detectors D01–D20."""
    from kubeharden.audit.reader import ReaderLimits, ReaderStats, iter_events

    if list_only:
        print_list("json" if "json" in formats else "table")
        return
    if not files:
        raise click.UsageError("give at least one audit log file ('-' for stdin), or --list")
    if files.count("-") > 1:
        raise click.UsageError("'-' (stdin) can be given once")
    if follow and (len(files) != 1 or files[0] == "-"):
        raise click.UsageError("--follow takes exactly one file (not stdin)")
    pipeline = Pipeline(formats=formats, outputs=outputs, force=force, fail_on=fail_on, settings_file=settings_file,
                        exceptions_file=exceptions_file, only=only, skip=skip, baseline_file=baseline_file,
                        policy_file=policy_file, cluster_state=cluster_state, alertmanager=alertmanager,
                        node_root=node_root, node_bundle=node_bundle, inputs=files, since=parse_when(since, "--since"),
                        until=parse_when(until, "--until"), streaming=follow)
    stats = ReaderStats()
    limits = ReaderLimits(max_line_bytes=max_line_bytes)
    try:
        if follow:
            from kubeharden.audit.follow import follow as tail

            flush = pipeline.alertmanager.flush if pipeline.alertmanager is not None else None
            with _stop_on_signals() as stopped:
                pipeline.run.feed_all(tail(files[0], stats, limits, poll=poll_interval, idle_timeout=idle_exit,
                                           on_idle=flush, stop=lambda: bool(stopped)))
            if stopped:
                pipeline.notes.append(f"stopped by {stopped[0]}: the report covers the events read so far")
        else:
            pipeline.run.feed_all(iter_events(files, stats, limits))
    except KeyboardInterrupt:
        pipeline.notes.append("interrupted: the report covers the events read so far")
    pipeline.finish(stats, fail_on, show_unused_exceptions)


@contextmanager
def _stop_on_signals() -> Iterator[list[str]]:
    """SIGTERM (a service manager, kubectl delete) and SIGINT end --follow like the end of input:
    the line being judged is finished, the report written. The list names the signal once set;
    the previous handlers come back afterwards."""
    import signal

    received: list[str] = []

    def handler(signum: int, _frame: Any) -> None:
        if not received:
            received.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@audit.command("learn")
@click.argument("files", nargs=-1, required=True)
@click.option("--output", "-o", required=True, metavar="FILE", help="Baseline file to write (JSON).")
@click.option("--force", is_flag=True, help="Replace an existing baseline file.")
@click.option("--since", metavar="TIME", help="Only events at or after this time.")
@click.option("--until", metavar="TIME", help="Only events at or before this time.")
def learn_command(files: tuple[str, ...], output: str, force: bool, since: str | None, until: str | None) -> None:
    """Record per-identity behaviour (verb/resource pairs, networks, clients, hours) for --baseline."""
    from kubeharden import safeio
    from kubeharden.audit.baseline import Baseline
    from kubeharden.audit.reader import ReaderStats, iter_events

    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    try:
        safeio.check_output_path(output, force=force, protected=[f for f in files if f != "-"])
    except safeio.UnsafePathError as exc:
        raise click.UsageError(f"-o {output}: {exc}") from None
    stats = ReaderStats()
    baseline = Baseline()
    for event in iter_events(files, stats):
        t = event.time
        if t is not None and ((start is not None and t < start) or (end is not None and t > end)):
            continue
        if event.stage in ("ResponseComplete", "ResponseStarted"):
            baseline.learn(event)
    for problem in stats.unreadable:
        click.echo(f"error: {problem.source}: {problem.message}", err=True)
    for problem in stats.reported:
        click.echo(f"warning: {problem.source}:{problem.line}: {problem.message}", err=True)
    try:
        with safeio.atomic_output(output, force=True) as fp:
            fp.write(baseline.to_json())
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc}") from None
    click.echo(f"wrote baseline of {len(baseline.identities)} identities ({stats.events} events) to {output}",
               err=True)
    sys.exit(2 if stats.unreadable else 0)


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{value!r}: give HOST:PORT (e.g. 127.0.0.1:8443)", param_hint="--listen")
    return host.strip("[]") or "127.0.0.1", int(port)


@audit.command("serve")
@click.option("--listen", default="127.0.0.1:8443", show_default=True, metavar="HOST:PORT",
              help="Address to listen on (loopback by default).")
@click.option("--tls-cert", required=True, type=click.Path(dir_okay=False, exists=True), help="Server certificate.")
@click.option("--tls-key", required=True, type=click.Path(dir_okay=False, exists=True), help="Server key.")
@click.option("--client-ca", type=click.Path(dir_okay=False, exists=True),
              help="Require API server client certificates signed by this CA.")
@click.option("--queue-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="Batches held before new ones are refused (503).")
@click.option("--max-seconds", type=click.FloatRange(min=0), default=None,
              help="Stop after this long (tests, one-off captures).")
@_report_options
def serve_command(listen: str, tls_cert: str, tls_key: str, client_ca: str | None, queue_size: int,
                  max_seconds: float | None, formats: tuple[str, ...], outputs: tuple[str, ...], force: bool,
                  fail_on: str, settings_file: str | None, exceptions_file: str | None, show_unused_exceptions: bool,
                  only: tuple[str, ...], skip: tuple[str, ...], baseline_file: str | None, policy_file: str | None,
                  cluster_state: tuple[str, ...], alertmanager: str | None, node_root: str | None,
                  node_bundle: str | None) -> None:
    """Receive audit.k8s.io/v1 EventList batches over HTTPS (--audit-webhook-config-file) and judge them."""
    import signal
    import ssl
    import threading

    from kubeharden.audit.serve import WebhookBackend

    pipeline = Pipeline(formats=formats or ("jsonl",), outputs=outputs, force=force, fail_on=fail_on,
                        settings_file=settings_file, exceptions_file=exceptions_file, only=only, skip=skip,
                        baseline_file=baseline_file, policy_file=policy_file, cluster_state=cluster_state,
                        node_root=node_root, node_bundle=node_bundle, alertmanager=alertmanager, inputs=(),
                        streaming=True)
    try:
        backend = WebhookBackend(pipeline.run, _listen(listen), tls_cert, tls_key, client_ca=client_ca,
                                 queue_size=queue_size)
    except (OSError, ssl.SSLError) as exc:
        raise click.UsageError(f"cannot serve on {listen}: {exc}") from None
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    # The consumer thread judges batches in pure Python while the connection threads read the next
    # ones: a short GIL switch interval keeps each TLS read's wait for the GIL (and so the API
    # server's response time) short; this process does nothing else.
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        backend.start()
        host, port = str(backend.address[0]), int(backend.address[1])
        click.echo(f"kubeharden audit serve: listening on https://{host}:{port}/", err=True)
        stopping.wait(max_seconds)
        backend.stop()
    finally:
        sys.setswitchinterval(previous_interval)
    s = backend.stats
    pipeline.notes.append(f"webhook: {s.batches} batches, {s.events} events, {s.dropped_batches} refused (queue "
                          f"full), {s.rejected} rejected")
    pipeline.finish(backend.reader_stats, fail_on, show_unused_exceptions)


COMMANDS.append(audit)
