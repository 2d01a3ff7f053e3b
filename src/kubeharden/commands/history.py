"""Findings over time: `scan --baseline/--fail-on-new/--store/--label/--keep-runs` (results_options),
`kubeharden diff OLD.json NEW.json` and `kubeharden history --store URL`.

A finding is the same across runs when its fingerprint is (kubeharden.fingerprint): control,
resource, field path, file and value, not the line.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kubeharden import jsonout, safeio
from kubeharden.engine import ScanResult
from kubeharden.fingerprint import Comparison, compare, fingerprint, fingerprint_of_report_item
from kubeharden.model import Finding, Severity
from kubeharden.store import RunInfo, StoreError, open_store, parse_labels, redact_url, run_record, store_kind

MAX_REPORT_BYTES = 2 * 1024**3  # a JSON report of a million findings is about 1 GB
STORE_ENV = "KUBEHARDEN_STORE"


@dataclass
class ResultsOptions:
    baseline: str | None = None
    baseline_report: dict[str, Any] | None = None  # read before the scan: a bad file is a usage error
    fail_on_new: bool = False
    store: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    keep_runs: int | None = None


_RESULTS_OPTIONS = [
    click.option("--baseline", type=click.Path(dir_okay=False), metavar="FILE",
                 help="A previous JSON report: mark each finding new or existing (matched by fingerprint)."),
    click.option("--fail-on-new", is_flag=True,
                 help="With --baseline: exit 1 only for new findings at or above --fail-on."),
    click.option("--store", "store_url", metavar="URL", envvar=STORE_ENV, show_envvar=True,
                 help="Record the run in a results store: a file path, sqlite:///PATH or postgresql://..."),
    click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
                 help="Label of the stored run (e.g. cluster=prod-eu); runs with the same labels form a series."),
    click.option("--keep-runs", type=click.IntRange(min=1), metavar="N",
                 help="Keep only the newest N runs of this label set in the store."),
]


def results_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the baseline and store options to a command; it receives them as ``results: ResultsOptions``."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        kwargs["results"] = results_from(
            kwargs.pop("baseline"), kwargs.pop("fail_on_new"), kwargs.pop("store_url"), kwargs.pop("labels"),
            kwargs.pop("keep_runs"))
        return fn(*args, **kwargs)

    decorated: Callable[..., Any] = command
    for option in reversed(_RESULTS_OPTIONS):
        decorated = option(decorated)
    return decorated


def results_from(baseline: str | None, fail_on_new: bool, store: str | None, labels: Sequence[str],
                 keep_runs: int | None) -> ResultsOptions:
    if fail_on_new and baseline is None:
        raise click.UsageError("--fail-on-new needs --baseline FILE")
    if store is not None and not store.strip():
        store = None  # an empty KUBEHARDEN_STORE: no store
    if (labels or keep_runs is not None) and store is None:
        raise click.UsageError("--label and --keep-runs describe runs in a store: add --store URL")
    try:
        parsed = parse_labels(labels)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--label") from None
    if store is not None:
        try:
            store_kind(store)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--store") from None
    report = None
    if baseline is not None:
        try:
            report = read_report(baseline)
        except ReportError as exc:
            raise click.BadParameter(str(exc), param_hint="--baseline") from None
    return ResultsOptions(baseline, report, fail_on_new, store, parsed, keep_runs)


class ReportError(Exception):
    pass


def read_report(path: str) -> dict[str, Any]:
    """A kubeharden JSON report (`scan -f json`), checked enough to compare with."""
    try:
        data = safeio.read_regular(path, MAX_REPORT_BYTES)
    except safeio.UnsafePathError as exc:
        raise ReportError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        report = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:  # integers beyond 64 bits, which orjson refuses
            report = json.loads(data)
        except RecursionError:
            raise ReportError(f"{path}: JSON nested too deeply") from None
        except ValueError as exc:
            raise ReportError(f"{path}:{getattr(exc, 'lineno', 1)}: not JSON") from None
    if (not isinstance(report, dict) or not isinstance(report.get("findings"), list)
            or not isinstance(report.get("tool"), dict) or report["tool"].get("name") != "kubeharden"):
        raise ReportError(f"{path}: not a kubeharden JSON report (write one with `kubeharden scan -f json`)")
    report["findings"] = [f for f in report["findings"] if isinstance(f, dict)]
    for index, finding in enumerate(report["findings"]):
        problem = _finding_problem(finding)
        if problem is not None:
            raise ReportError(f"{path}: finding {index}: {problem}: not a kubeharden JSON report")
    return report


_REPORT_TEXT_FIELDS = ("control_id", "severity", "section", "path", "message", "fingerprint", "file")


def _finding_problem(item: Mapping[str, Any]) -> str | None:
    """What in one report finding has a type `scan -f json` never writes (None when nothing)."""
    for key in _REPORT_TEXT_FIELDS:
        if item.get(key) is not None and not isinstance(item[key], str):
            return f"{key!r} is not a string"
    for key in ("resource", "source"):
        value = item.get(key)
        if value is not None and not isinstance(value, dict):
            return f"{key!r} is not an object"
    resource, source = item.get("resource") or {}, item.get("source") or {}
    if any(v is not None and not isinstance(v, str) for v in resource.values()):
        return "'resource' holds a value that is not a string"
    if source.get("file") is not None and not isinstance(source["file"], str):
        return "'source.file' is not a string"
    line = source.get("line")
    if line is not None and (not isinstance(line, int) or isinstance(line, bool)):
        return "'source.line' is not a number"
    if item.get("excepted") is not None and not isinstance(item["excepted"], bool):
        return "'excepted' is not true or false"
    return None


# -- scan: baseline and store ------------------------------------------------------------------------


@dataclass
class NewFindingsResult(ScanResult):
    """A ScanResult whose exit code counts only findings new against the baseline (--fail-on-new)."""

    def exit_code(self, fail_on: Severity | None) -> int:
        code = super().exit_code(None)
        if code or fail_on is None:
            return code
        return 1 if any(f.severity >= fail_on and f.baseline == "new" for f in self.active_findings()) else 0

    @classmethod
    def of(cls, result: ScanResult) -> NewFindingsResult:
        return cls(**{f.name: getattr(result, f.name) for f in dataclasses.fields(ScanResult)})


def apply_baseline(result: ScanResult, report: Mapping[str, Any]) -> Comparison[dict[str, Any], Finding]:
    """Mark each finding `new` or `existing` against the baseline report's findings."""
    comparison = compare(report["findings"], result.findings, fingerprint_of_report_item, fingerprint)
    for f in comparison.new:
        f.baseline = "new"
    for f in comparison.unchanged:
        f.baseline = "existing"
    return comparison


def record_results(result: ScanResult, options: ResultsOptions) -> tuple[ScanResult, list[str]]:
    """After a scan: compare with the baseline, record the run in the store. Returns the result
    to report (its exit code follows --fail-on-new) and the errors (a store that cannot be written)."""
    errors: list[str] = []
    if options.baseline_report is not None:
        comparison = apply_baseline(result, options.baseline_report)
        click.echo(f"baseline {options.baseline}: {len(comparison.new)} new, {len(comparison.unchanged)} existing, "
                   f"{len(comparison.fixed)} fixed", err=True)
        if options.fail_on_new:
            result = NewFindingsResult.of(result)
    if options.store is not None:
        try:
            with open_store(options.store) as store:
                info = store.record(run_record(result, options.labels), options.keep_runs)
        except StoreError as exc:
            errors.append(f"store: {exc}")
        else:
            since = "" if info.new is None else f": {info.new} new, {info.fixed} fixed since run {info.previous}"
            click.echo(f"stored run {info.id} in {redact_url(options.store)}{since}", err=True)
    return result, errors


# -- output helpers --------------------------------------------------------------------------------


def _write_output(text: str | bytes, output: str | None, force: bool) -> None:
    data = text.encode() if isinstance(text, str) else text
    if output is None or output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        with safeio.atomic_output(output, force=force) as fp:
            fp.write(data)
    except (OSError, safeio.UnsafePathError) as exc:
        raise click.ClickException(f"{output}: cannot write: {getattr(exc, 'strerror', None) or exc}") from None
    click.echo(f"wrote {output}", err=True)


def _check_output(output: str | None, force: bool, inputs: Sequence[str] = ()) -> None:
    if output is None or output == "-":
        return
    try:
        safeio.check_output_path(output, force=force, protected=list(inputs))
    except safeio.UnsafePathError as exc:
        raise click.UsageError(f"-o {output}: {exc}") from None


def _console_text(render: Callable[[Console], None]) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=160, no_color=True)
    if sys.stdout.isatty():
        console = Console(file=buffer, width=Console().width, force_terminal=True)
    render(console)
    return buffer.getvalue()


def _resource_text(item: Mapping[str, Any]) -> str:
    res = item.get("resource") or {}
    if not res:
        return ""
    ns = f"{res.get('namespace')}/" if res.get("namespace") else ""
    return f"{res.get('kind')}/{ns}{res.get('name')}"


def _location_text(item: Mapping[str, Any]) -> str:
    source = item.get("source") or {}
    file, line = source.get("file"), source.get("line")
    return f"{file}:{line}" if file and line else (file or "")


def _severity_rank(item: Mapping[str, Any]) -> int:
    try:
        return int(Severity.parse(str(item.get("severity", "low"))))
    except ValueError:
        return 0


def _sorted(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: (-_severity_rank(i), str(i.get("control_id")), _resource_text(i),
                                        str(i.get("path"))))


# -- diff --------------------------------------------------------------------------------------------

DIFF_FORMATS = ("table", "json", "markdown")
_DIFF_KINDS = ("new", "fixed", "unchanged")


def diff_document(old_path: str, new_path: str, comparison: Comparison[dict[str, Any], dict[str, Any]]
                  ) -> dict[str, Any]:
    groups = {"new": comparison.new, "fixed": comparison.fixed, "unchanged": comparison.unchanged}
    by_control: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_DIFF_KINDS, 0))
    by_resource: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_DIFF_KINDS, 0))
    for kind, items in groups.items():
        for item in items:
            by_control[str(item.get("control_id"))][kind] += 1
            by_resource[_resource_text(item) or _location_text(item)][kind] += 1
    return {
        "old_report": old_path, "new_report": new_path,
        "summary": {kind: len(items) for kind, items in groups.items()},
        "by_control": dict(sorted(by_control.items())),
        "by_resource": dict(sorted(by_resource.items())),
        **{kind: [{**item, "fingerprint": fingerprint_of_report_item(item)} for item in _sorted(items)]
           for kind, items in groups.items()},
    }


def diff_table(doc: dict[str, Any], show_unchanged: bool) -> str:
    def render(console: Console) -> None:
        s = doc["summary"]
        console.print(f"{doc['old_report']} -> {doc['new_report']}: {s['new']} new, {s['fixed']} fixed, "
                      f"{s['unchanged']} unchanged", soft_wrap=True, markup=False, highlight=False)
        if doc["by_control"]:
            table = Table(title="By control", title_justify="left")
            for name in ("Control", "New", "Fixed", "Unchanged"):
                table.add_column(name, justify="left" if name == "Control" else "right")
            for control, counts in doc["by_control"].items():
                table.add_row(control, *(str(counts[k]) for k in _DIFF_KINDS))
            console.print(table)
        for kind in _DIFF_KINDS:
            if not doc[kind] or (kind == "unchanged" and not show_unchanged):
                continue
            table = Table(title=f"{kind.capitalize()} findings", title_justify="left", expand=True)
            table.add_column("Severity", no_wrap=True)
            table.add_column("Control", no_wrap=True)
            table.add_column("Resource / location", overflow="fold", ratio=2)
            table.add_column("Finding", overflow="fold", ratio=3)
            for item in doc[kind]:
                where = Text(_resource_text(item))
                if _location_text(item):
                    where.append("\n" + _location_text(item), style="dim")
                table.add_row(str(item.get("severity", "")).upper(), str(item.get("control_id")), where,
                              f"{item.get('message', '')}\n{item.get('path', '')}")
            console.print(table)

    return _console_text(render)


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def diff_markdown(doc: dict[str, Any], show_unchanged: bool) -> str:
    s = doc["summary"]
    out = ["# kubeharden diff", "",
           f"`{_md(doc['old_report'])}` → `{_md(doc['new_report'])}`: **{s['new']} new**, {s['fixed']} fixed, "
           f"{s['unchanged']} unchanged.", ""]
    if doc["by_control"]:
        out += ["| Control | New | Fixed | Unchanged |", "|---|---:|---:|---:|"]
        out += [f"| {_md(c)} | {n['new']} | {n['fixed']} | {n['unchanged']} |" for c, n in doc["by_control"].items()]
    for kind in _DIFF_KINDS:
        if not doc[kind] or (kind == "unchanged" and not show_unchanged):
            continue
        out += ["", f"## {kind.capitalize()} findings", "", "| Severity | Control | Resource | Location | Message |",
                "|---|---|---|---|---|"]
        out += [f"| {_md(i.get('severity', ''))} | {_md(i.get('control_id'))} | {_md(_resource_text(i))} | "
                f"{_md(_location_text(i))} | {_md(i.get('message', ''))} |" for i in doc[kind]]
    return "\n".join(out) + "\n"


@click.command("diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--format", "-f", "fmt", type=click.Choice(DIFF_FORMATS), default=None,
              help="Output format (default: from the -o extension, else table).")
@click.option("--output", "-o", "output", metavar="FILE", help="Write to FILE instead of standard output.")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--unchanged", "show_unchanged", is_flag=True, help="Table and Markdown: list unchanged findings too.")
@click.option("--fail-on", default="none", show_default=True, metavar="SEVERITY",
              help="Exit 1 when a new finding is at or above: low, medium, high, critical, none.")
def diff(old: str, new: str, fmt: str | None, output: str | None, force: bool, show_unchanged: bool,
         fail_on: str) -> None:
    """New, fixed and unchanged findings between two JSON reports (matched by fingerprint, not line)."""
    threshold = None if fail_on.lower() == "none" else _parse_severity(fail_on)
    fmt = fmt or _format_from_extension(output, {".json": "json", ".md": "markdown"}, "table")
    _check_output(output, force, [old, new])
    try:
        old_report, new_report = read_report(old), read_report(new)
    except ReportError as exc:
        raise click.UsageError(str(exc)) from None
    comparison = compare(old_report["findings"], new_report["findings"], fingerprint_of_report_item,
                         fingerprint_of_report_item)
    doc = diff_document(old, new, comparison)
    if fmt == "json":
        text: str | bytes = jsonout.dumps(doc, orjson.OPT_INDENT_2) + b"\n"
    elif fmt == "markdown":
        text = diff_markdown(doc, show_unchanged)
    else:
        text = diff_table(doc, show_unchanged)
    _write_output(text, output, force)
    failing = threshold is not None and any(_severity_rank(i) >= threshold and not i.get("excepted")
                                            for i in comparison.new)
    sys.exit(1 if failing else 0)


def _parse_severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fail-on") from None


def _format_from_extension(output: str | None, known: dict[str, str], default: str) -> str:
    if output is None or output == "-":
        return default
    return known.get(os.path.splitext(output)[1].lower(), default)


# -- history -----------------------------------------------------------------------------------------

HISTORY_FORMATS = ("table", "json", "html")


def series_of(runs: list[RunInfo]) -> dict[str, list[RunInfo]]:
    from kubeharden.store import label_key

    series: dict[str, list[RunInfo]] = defaultdict(list)
    for run in runs:
        series[label_key(run.labels) or "(no labels)"].append(run)
    return dict(sorted(series.items()))


def history_table(series: dict[str, list[RunInfo]]) -> str:
    def render(console: Console) -> None:
        if not series:
            console.print("no runs in the store match")
        for name, runs in series.items():
            table = Table(title=name, title_justify="left")
            for column in ("Run", "When (UTC)", "Score", "Findings", "Critical", "High", "Medium", "Low", "New",
                           "Fixed", "Resources"):
                table.add_column(column, justify="left" if column.startswith("When") else "right")
            for run in runs:
                table.add_row(str(run.id), run.started_at[:19].replace("T", " "),
                              "n/a" if run.score is None else f"{run.score:.0f}%", str(run.findings),
                              *(str(run.by_severity.get(s, 0)) for s in ("critical", "high", "medium", "low")),
                              "-" if run.new is None else str(run.new), "-" if run.fixed is None else str(run.fixed),
                              str(run.resources))
            console.print(table)

    return _console_text(render)


@click.command("history")
@click.option("--store", "store_url", required=True, metavar="URL", envvar=STORE_ENV, show_envvar=True,
              help="The results store: a file path, sqlite:///PATH or postgresql://...")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Only runs with these labels.")
@click.option("--last", "limit", type=click.IntRange(min=1), metavar="N", help="The newest N runs of each series.")
@click.option("--format", "-f", "fmt", type=click.Choice(HISTORY_FORMATS), default=None,
              help="Output format (default: from the -o extension, else table).")
@click.option("--output", "-o", "output", metavar="FILE", help="Write to FILE (trend.html: the trend chart).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def history(store_url: str, labels: tuple[str, ...], limit: int | None, fmt: str | None, output: str | None,
            force: bool) -> None:
    """Scores and findings over time, per label set, with what is new and fixed since each previous run."""
    try:
        wanted = parse_labels(labels)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--label") from None
    fmt = fmt or _format_from_extension(output, {".json": "json", ".html": "html", ".htm": "html"}, "table")
    _check_output(output, force)
    try:
        with open_store(store_url) as store:
            runs = store.runs(wanted, limit)
    except StoreError as exc:
        # exit 2 (bad input), as scan's store errors: 1 means findings to CI
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    series = series_of(runs)
    if fmt == "json":
        doc = {"store": redact_url(store_url), "labels": wanted,
               "series": [{"labels": runs[0].labels, "runs": [r.to_dict() for r in runs]}
                          for runs in series.values()]}
        text: str | bytes = jsonout.dumps(doc, orjson.OPT_INDENT_2) + b"\n"
    elif fmt == "html":
        from kubeharden.store.trend import trend_html

        text = trend_html(series, redact_url(store_url))
    else:
        text = history_table(series)
    _write_output(text, output, force)


COMMANDS = [diff, history]
