"""Command-line interface."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click

from kubeharden import __version__, safeio
from kubeharden.catalog import Settings, all_controls, get_control, profiles
from kubeharden.commands.history import ResultsOptions, record_results, results_options
from kubeharden.commands.images import image_options, image_settings
from kubeharden.commands.rbac import risk_setting_options
from kubeharden.commands.snapshot import cluster_options, cluster_source
from kubeharden.engine import ScanResult
from kubeharden.loader import JSON_SUFFIXES, YAML_SUFFIXES, LoadContext
from kubeharden.model import EXIT_INTERNAL, REPORT_BUGS, Severity, internal_error_site
from kubeharden.reporters import DEFAULT_VIEW, View
from kubeharden.scanner import ScanRequest, UsageError, run_scan
from kubeharden.sources.cluster import ClusterOptions
from kubeharden.versions import parse_minor
from kubeharden.yamlsafe import MAX_DEPTH_LIMIT, Limits

FORMATS = ("table", "json", "sarif", "junit", "markdown", "html", "prometheus", "gitlab")
_EXTENSION_FORMATS = {
    ".json": "json", ".sarif": "sarif", ".xml": "junit", ".md": "markdown", ".html": "html",
    ".htm": "html", ".txt": "table", ".prom": "prometheus",
}
_DEFAULT_LIMITS = Limits()
# Modules under kubeharden.commands that contribute sub-commands (each has COMMANDS: list).
COMMAND_MODULES = ("netpol", "rbac", "node", "generate", "snapshot", "audit", "fix", "images", "history", "webhook",
                   "rbac_review", "cis")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "KUBEHARDEN"})
@click.version_option(__version__, prog_name="kubeharden")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE", envvar="KUBEHARDEN_CONFIG",
              help="Defaults for scan and node options (default: ./.kubeharden.yaml when present). "
              "Flags > KUBEHARDEN_<COMMAND>_<OPTION> variables > this file > built-in defaults.")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """Harden Kubernetes with the NSA/CISA Kubernetes Hardening Guidance (v1.2)."""
    from kubeharden.config import CONFIG_COMMANDS, ConfigError, find_config, load_config

    path = find_config(config_file)
    if path is None or ctx.invoked_subcommand not in CONFIG_COMMANDS:
        return
    commands = {name: cli.commands[name] for name in CONFIG_COMMANDS if name in cli.commands}
    try:
        ctx.default_map = load_config(path, commands)  # below flags and environment variables (click)
    except ConfigError as exc:
        raise click.UsageError(f"config: {exc}") from None


def _fail_on(value: str) -> Severity | None:
    if value.lower() == "none":
        return None
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


Plan = list[tuple[str, str | None]]


def plan_outputs(formats: Sequence[str], outputs: Sequence[str],
                 extensions: dict[str, str] | None = None) -> Plan:
    """Pair formats with output files: in order; a file without a format takes it from its
    extension; formats without a file go to stdout. Returns (format, file-or-None)."""
    plan: Plan = []
    for i, out in enumerate(outputs):
        if i < len(formats):
            plan.append((formats[i], out))
        else:
            fmt = (extensions or _EXTENSION_FORMATS).get(Path(out).suffix.lower())
            if fmt is None:
                raise click.BadParameter(
                    f"cannot tell the format of {out!r} from its extension; add --format", param_hint="-o"
                )
            plan.append((fmt, out))
    plan.extend((fmt, None) for fmt in formats[len(outputs):])
    if not plan:
        plan.append(("table", None))
    if sum(1 for _, out in plan if out in (None, "-")) > 1:
        # two documents back to back on stdout parse as neither
        raise click.BadParameter("only one report can go to standard output; give -o FILE for the others",
                                 param_hint="--format")
    files = [os.path.realpath(out) for _, out in plan if out not in (None, "-")]
    if len(set(files)) < len(files):
        raise click.BadParameter("two reports are given the same file", param_hint="-o")
    return plan


def prepare_outputs(formats: Sequence[str], outputs: Sequence[str], force: bool, inputs: Iterable[str],
                    extensions: dict[str, str] | None = None) -> Plan:
    """The report plan, with every output file checked before any work is done: not a directory,
    in an existing directory, not an input (nor inside an input directory), not an existing
    file unless --force."""
    plan = plan_outputs(formats, outputs, extensions)
    protected = [p for p in inputs if p and p != "-"]
    for _, out in plan:
        if out in (None, "-"):
            continue
        try:
            safeio.check_output_path(out, force=force, protected=protected,
                                     read_suffixes=YAML_SUFFIXES + JSON_SUFFIXES)
        except safeio.UnsafePathError as exc:
            raise click.UsageError(f"-o {out}: {exc}") from None
    return plan


def write_reports(result: ScanResult, plan: Plan, view: View = DEFAULT_VIEW) -> list[str]:
    """Write every report; a failed write is an error for that report (the temporary file is
    removed, the real name untouched) and the others are still written. Returns the errors.
    Formats that are no reporter's (audit's streamed jsonl) are the calling command's."""
    from kubeharden.reporters import reporters

    available = reporters()
    failures: list[str] = []
    for fmt, out in plan:
        if fmt not in available:
            continue
        if fmt == "table" and out is None:
            from kubeharden.reporters.table import print_table

            print_table(result, view=view)
            continue
        if out is None or out == "-":
            try:
                available[fmt].write(result, sys.stdout.buffer, view)
                sys.stdout.buffer.flush()
            except BrokenPipeError:  # `| head`: the reader has what it wanted
                _silence_stdout()
            except OSError as exc:
                failures.append(f"standard output: cannot write the {fmt} report: {exc.strerror or exc}")
            continue
        try:
            # --force was checked before the scan; an input found during it is still refused.
            with safeio.atomic_output(out) as fp:
                available[fmt].write(result, fp, view)
        except OSError as exc:
            failures.append(f"{out}: cannot write the {fmt} report: {exc.strerror or exc}")
            continue
        click.echo(f"wrote {fmt} report to {out}", err=True)
    return failures


def _silence_stdout() -> None:
    # Python would report the broken pipe again when it flushes stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def report_options(fn: Any) -> Any:
    """Options shared by every command that produces a scan report (scan, node ...)."""
    options = [
        click.option("--format", "-f", "formats", multiple=True, type=click.Choice(FORMATS),
                     help="Report format; repeat for several (paired in order with -o)."),
        click.option("--output", "-o", "outputs", multiple=True, metavar="FILE",
                     help="Write a report to FILE (format from --format or the extension)."),
        click.option("--force", is_flag=True, help="Replace report files that already exist."),
        click.option("--fail-on", default="high", show_default=True, metavar="SEVERITY",
                     help="Exit 1 when a finding is at or above: low, medium, high, critical, none."),
        click.option("--exceptions", "exceptions_file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="YAML file of accepted risks (control, resource selector, reason, owner, expires)."),
        click.option("--show-unused-exceptions", is_flag=True,
                     help="List exceptions that matched no finding."),
        click.option("--control", "-c", "only", multiple=True, metavar="ID",
                     help="Run only these controls (ids or wildcards such as KH-POD-*)."),
        click.option("--skip", "skip", multiple=True, metavar="ID", help="Do not run these controls."),
        click.option("--kubernetes-version", metavar="X.Y",
                     help="Kubernetes version the controls assume (default: newest supported)."),
        *view_options,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


# How the report is shown (reporters.View); what was found and the exit code do not change.
view_options = [
    click.option("--details", is_flag=True, help="Table: every finding, not a summary per control."),
    click.option("--severity", "min_severity", metavar="SEVERITY",
                 help="Table and Markdown: show findings at or above this severity only."),
    click.option("--quiet", "-q", is_flag=True, help="Table: the summary line only."),
    click.option("--max-bytes", type=click.IntRange(min=1024), metavar="N",
                 help="Markdown: cut the report at N bytes with a note (GitHub comments take 65536)."),
]


def view_from(fail_on: str, details: bool = False, min_severity: str | None = None, quiet: bool = False,
              max_bytes: int | None = None) -> View:
    shown = None
    if min_severity is not None:
        try:
            shown = Severity.parse(min_severity)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--severity") from None
    return View(details=details, min_severity=shown, quiet=quiet, fail_on=_fail_on(fail_on), max_bytes=max_bytes)


def settings_from(kubernetes_version: str | None, **extra: Any) -> Settings:
    settings = Settings()
    if kubernetes_version:
        try:
            settings.kubernetes_version = parse_minor(kubernetes_version)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--kubernetes-version") from None
    settings.extra.update({k: v for k, v in extra.items() if v not in (None, ())})
    return settings


def finish(result: ScanResult, plan: Plan, fail_on: str, show_unused: bool, view: View | None = None,
           extra_errors: Iterable[str] = ()) -> None:
    threshold = _fail_on(fail_on)
    view = view or View(fail_on=threshold)
    failures = write_reports(result, plan, view) + list(extra_errors)
    if ("table", None) not in plan and hasattr(result, "controls"):
        from kubeharden.reporters.table import summary_line

        click.echo(summary_line(result).plain, err=True)  # reports in files: the one line a person still reads
    for error in result.errors:
        click.echo(f"error: {error.where}: {error.message}", err=True)
        if getattr(error, "tool_output", None):  # a render tool's own output (sources.render)
            click.echo(error.tool_output, err=True)  # type: ignore[attr-defined]
    for failure in failures:
        click.echo(f"error: {failure}", err=True)
    if ("table", None) not in plan:  # the table shows them itself
        for warning in result.warnings:
            click.echo(f"warning: {warning.where}: {warning.message}", err=True)
    for rule in result.exceptions.expired:
        click.echo(f"warning: exception expired on {rule.expires} ({rule.origin}); it no longer applies",
                   err=True)
    if show_unused:
        for rule in result.exceptions.unused:
            click.echo(f"unused exception: {rule.origin} ({rule.control})", err=True)
    code = result.exit_code(threshold)
    sys.exit(max(code, 2) if failures and code != EXIT_INTERNAL else code)


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--profile", "-p", default="nsa", show_default=True, help="Control profile.")
@report_options
@click.option("--pss-version", metavar="v1.N|latest", help="Pod Security Standards policy version.")
@click.option("--allowed-registry", "allowed_registries", multiple=True, metavar="HOST[/PATH]",
              help="Registries images may come from (off unless given).")
@risk_setting_options
@image_options
@results_options
@click.option("--as-cluster", is_flag=True,
              help="Treat the inputs as the complete contents of one cluster.")
@click.option("--no-builtin-exceptions", "no_builtin_exceptions", is_flag=True,
              help="Do not except the expected findings of system components (docs/node.md).")
@click.option("--cluster", "live", is_flag=True, help="Scan the live cluster of the kubeconfig.")
@cluster_options
@click.option("--values", "helm_values", multiple=True, type=click.Path(dir_okay=False),
              help="Helm values file for chart directories.")
@click.option("--set", "helm_set", multiple=True, metavar="KEY=VALUE", help="Helm --set for charts.")
@click.option("--max-file-size", type=click.IntRange(min=1), default=_DEFAULT_LIMITS.max_file_bytes,
              show_default=True, help="Largest input file in bytes.")
@click.option("--max-depth", type=click.IntRange(1, MAX_DEPTH_LIMIT), default=_DEFAULT_LIMITS.max_depth,
              show_default=True, help="Deepest YAML nesting accepted.")
@click.option("--max-aliases", type=click.IntRange(min=0), default=_DEFAULT_LIMITS.max_aliases, show_default=True,
              help="Most YAML alias uses accepted per document.")
@click.option("--strict", is_flag=True,
              help="Duplicate keys in the input are errors (exit 2), not warnings (kubectl's strict decoding).")
@click.option("--skip-dirs", "skip_dirs", multiple=True, metavar="GLOB",
              help="Leave out directories whose name or path below the scanned directory matches (vendor, "
              "charts/*/tests); repeatable.")
def scan(paths: tuple[str, ...], profile: str, formats: tuple[str, ...], outputs: tuple[str, ...],
         fail_on: str, exceptions_file: str | None, show_unused_exceptions: bool, only: tuple[str, ...],
         skip: tuple[str, ...], kubernetes_version: str | None, pss_version: str | None,
         allowed_registries: tuple[str, ...], rbac_system_namespaces: tuple[str, ...],
         rbac_expected_subjects: tuple[str, ...], as_cluster: bool, no_builtin_exceptions: bool, live: bool,
         cluster: ClusterOptions, helm_values: tuple[str, ...], helm_set: tuple[str, ...], max_file_size: int,
         max_depth: int, max_aliases: int, force: bool, details: bool, min_severity: str | None, quiet: bool,
         max_bytes: int | None, results: ResultsOptions, strict: bool, skip_dirs: tuple[str, ...],
         **image_args: Any) -> None:
    """Scan manifests (files, directories, '-' for stdin), snapshots or a live cluster."""
    view = view_from(fail_on, details, min_severity, quiet, max_bytes)
    if not paths and not live:
        raise click.UsageError("give at least one path ('-' for stdin) or --cluster")
    if pss_version is not None:
        from kubeharden.pss import parse_pss_version

        try:
            parse_pss_version(pss_version)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--pss-version") from None
    settings = settings_from(kubernetes_version, pss_version=pss_version,
                             rbac_system_namespaces=rbac_system_namespaces,
                             rbac_expected_subjects=rbac_expected_subjects, **image_settings(**image_args))
    # outputs are checked before the scan: a usage error now, not a traceback after the work
    plan = prepare_outputs(formats, outputs, force, [*paths, exceptions_file or "", *helm_values])
    settings.allowed_registries = allowed_registries
    settings.as_cluster = as_cluster
    settings.builtin_exceptions = not no_builtin_exceptions
    request = ScanRequest(
        paths=paths,
        profile=profile,
        settings=settings,
        load=LoadContext(
            Limits(max_file_bytes=max_file_size, max_depth=max_depth, max_aliases=max_aliases),
            {"helm_values": helm_values, "helm_set": helm_set},
            strict=strict, skip_dirs=skip_dirs,
        ),
        only=only,
        skip=skip,
        exceptions_file=exceptions_file,
    )
    if live:
        request.sources["cluster"] = cluster_source(cluster)
    elif cluster.kubeconfig or cluster.context or cluster.namespaces or cluster.label_selector:
        raise click.UsageError("--kubeconfig, --context, --namespace and --selector read a live cluster: "
                               "add --cluster")
    from kubeharden.commands.progress import FileProgress

    progress = FileProgress(None if paths and not quiet else False)  # a terminal's stderr only
    if progress.enabled:
        request.load.on_file = progress.file_done
    try:
        result = run_scan(request)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        progress.close()
    result, store_errors = record_results(result, results)
    finish(result, plan, fail_on, show_unused_exceptions, view, store_errors)


@cli.command("controls")
@click.option("--profile", "-p", default=None, help="Only controls of this profile.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--coverage", is_flag=True, help="Every guidance recommendation with what implements it.")
@click.option("--spec", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
              help="With --coverage: the ids of this guidance.md instead of the packaged list.")
def list_controls(profile: str | None, fmt: str, coverage: bool, spec: str | None) -> None:
    """List the control catalog."""
    from kubeharden.reporters.catalog import catalog_json, print_catalog

    if coverage or spec:
        from kubeharden.commands.coverage import show_coverage

        show_coverage(fmt, spec, profile)
        return
    if profile is not None and profile not in profiles():
        raise click.BadParameter(f"unknown profile {profile!r} (known: {', '.join(sorted(profiles()))})",
                                 param_hint="--profile")
    controls = [c for c in all_controls() if profile is None or profile in c.profiles]
    if fmt == "json":
        click.echo(catalog_json(controls))
    else:
        print_catalog(controls)


@cli.command()
@click.argument("control_id")
def explain(control_id: str) -> None:
    """Explain a control: what, why, how to fix, guidance references, examples."""
    from kubeharden.reporters.catalog import print_explanation

    ctrl = get_control(control_id)
    if ctrl is None:
        raise click.BadParameter(f"unknown control {control_id!r} (see `kubeharden controls`)",
                                 param_hint="CONTROL_ID")
    print_explanation(ctrl)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"kubeharden.commands.{name}")
        for command in module.COMMANDS:
            cli.add_command(command)


_register_commands()


def main() -> None:
    try:
        cli(prog_name="kubeharden")
    except Exception as exc:  # anything click did not turn into a usage error is a bug of ours
        if os.environ.get("KUBEHARDEN_DEBUG"):
            traceback.print_exc()
        # no str(exc): it can quote the input
        click.echo(f"kubeharden: internal error: {internal_error_site(exc)}; {REPORT_BUGS}"
                   " (set KUBEHARDEN_DEBUG=1 for the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)
