"""`kubeharden netpol`: answers from the NetworkPolicy engine (status, can, matrix)."""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from kubeharden.commands import echo_json, report_console
from kubeharden.commands.snapshot import cluster_connection_options, load_live
from kubeharden.inventory import Inventory
from kubeharden.loader import LineLocator, load_paths
from kubeharden.model import InputError
from kubeharden.netpol import (
    EGRESS,
    INGRESS,
    Endpoint,
    NetworkModel,
    PolicyError,
    PortQuery,
    Selector,
    Verdict,
    model_for,
    parse_address,
    parse_port_query,
    parse_selector,
)
from kubeharden.sources.cluster import ClusterOptions

EXIT_ALLOWED, EXIT_DENIED, EXIT_ERROR = 0, 1, 2


def _load(paths: Sequence[str], live: bool = False,
          cluster: ClusterOptions | None = None) -> tuple[NetworkModel, list[InputError]]:
    """Load the inputs (or the live cluster), print input errors and ignored policies to stderr (file:line)."""
    if live and paths:
        raise click.UsageError("give paths or --cluster, not both")
    if not paths and not live:
        raise click.UsageError("give at least one path ('-' for stdin) or --cluster")
    loaded = load_live(cluster or ClusterOptions()) if live else load_paths(paths)
    inventory = Inventory(loaded.resources, dict(loaded.facts))
    model = model_for(inventory)
    errors = list(loaded.errors)
    for error in errors:
        where = error.source + (f":{error.line}" if error.line else "")
        click.echo(f"error: {where}: {error.message}", err=True)
    lines = LineLocator().resolve([(p.resource.source, p.path) for p in model.problems])
    for problem, line in zip(model.problems, lines, strict=True):
        where = problem.resource.source.file + (f":{line}" if line else "")
        click.echo(f"warning: {where}: {problem.label} ignored (the API server would reject "
                   f"it): {problem.message}", err=True)
    return model, errors


def _problems_json(model: NetworkModel) -> list[dict[str, Any]]:
    return [
        {"policy": p.policy_key, "file": p.resource.source.file,
         "message": p.message}
        for p in model.problems
    ]


def _namespaces(model: NetworkModel, namespace: str | None, all_namespaces: bool = False) -> list[str]:
    if namespace is not None and all_namespaces:
        raise click.UsageError("give -n/--namespace or -A/--all-namespaces, not both")
    if namespace is not None:
        return [namespace]
    return [ns for ns in model.namespaces() if model.endpoints_by_namespace.get(ns)]


_SET_RE = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*(?:(==|=|!=)\s*([^\s!=(),]*)|\s+(in|notin)\s*\(([^()]*)\))?\s*$")


def parse_label_selector(text: str) -> Selector:
    """kubectl's -l syntax (``app=web,tier!=db,env in (a,b),!legacy,debug``) as a LabelSelector."""
    parts: list[str] = []
    depth, current = 0, ""
    for char in text:  # commas inside (a,b) belong to the set
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    expressions: list[dict[str, Any]] = []
    for part in parts:
        match = _SET_RE.match(part)
        if match is None or (match.group(1) and (match.group(3) or match.group(5))):
            raise click.BadParameter(f"{part.strip()!r} is not a label requirement (key=value, key!=value, "
                                     "key in (a,b), key notin (a,b), key, !key)", param_hint="--selector")
        negate, key, op, value, set_op, values = match.groups()
        if op:
            expressions.append({"key": key, "operator": "NotIn" if op == "!=" else "In", "values": [value]})
        elif set_op:
            expressions.append({"key": key, "operator": "In" if set_op == "in" else "NotIn",
                                "values": [v.strip() for v in values.split(",") if v.strip()]})
        else:
            expressions.append({"key": key, "operator": "DoesNotExist" if negate else "Exists"})
    try:
        return parse_selector({"matchExpressions": expressions}, ())
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="--selector") from None


def _selected(selector: str | None) -> Selector | None:
    return parse_label_selector(selector) if selector else None


def _scope_options(fn: Any) -> Any:
    """-A, -l and --cluster (with its connection options) of the commands that list endpoints."""
    for option in reversed((
        click.option("--all-namespaces", "-A", "all_namespaces", is_flag=True, help="Every namespace (the default)."),
        click.option("--selector", "-l", "label_selector", metavar="SELECTOR",
                     help="Only pods and workloads with these labels (kubectl's -l: app=web,tier!=db)."),
    )):
        fn = option(fn)
    return _cluster_option(fn)


def _cluster_option(fn: Any) -> Any:
    fn = cluster_connection_options(fn)
    return click.option("--cluster", "live", is_flag=True,
                        help="Ask the live cluster of the kubeconfig instead of files.")(fn)


_TABLE_OR_JSON = click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table",
                              show_default=True)


@click.group("netpol")
def netpol() -> None:
    """Answer NetworkPolicy questions with real Kubernetes semantics."""


# ---------------------------------------------------------------------------------------------


@netpol.command("status")
@click.argument("paths", nargs=-1)
@click.option("--namespace", "-n", default=None, help="Only this namespace.")
@_scope_options
@_TABLE_OR_JSON
def status(paths: tuple[str, ...], namespace: str | None, all_namespaces: bool, label_selector: str | None,
           live: bool, cluster: ClusterOptions, fmt: str) -> None:
    """Per pod or workload: isolated for ingress? for egress? which policies select it."""
    selector = _selected(label_selector)
    model, errors = _load(paths, live, cluster)
    rows = [
        model.status(ep)
        for ns in _namespaces(model, namespace, all_namespaces)
        for ep in sorted(model.endpoints_by_namespace.get(ns, ()), key=lambda e: (e.name, e.kind))
        if selector is None or selector.matches(ep.labels)
    ]
    if fmt == "json":
        echo_json({"endpoints": rows, "ignored_policies": _problems_json(model),
                   "errors": [e.to_dict() for e in errors]})
    else:
        table = Table(title="NetworkPolicy isolation")
        for column in ("Namespace", "Pod / workload", "Ingress", "Egress", "Selected by"):
            table.add_column(column)
        for row in rows:
            policies = ", ".join(f"{_policy_name(p['name'], row['namespace'])} ({'+'.join(p['types'])})"
                                 for p in row["policies"])
            name = Text(f"{row['kind']}/{row['name']}" + (" [hostNetwork]" if row["host_network"] else ""))
            table.add_row(Text(row["namespace"]), name, _isolation(row["ingress_isolated"]),
                          _isolation(row["egress_isolated"]), policies or Text("none", style="red"))
        console = report_console()
        if rows:
            console.print(table)
        else:
            console.print("no pods or workloads in the input")
    sys.exit(EXIT_ERROR if errors else 0)


def _policy_name(key: str, namespace: str) -> str:
    """A policy as the table shows it: without the pod's namespace (`web`, `CiliumNetworkPolicy/web`,
    `AdminNetworkPolicy/tenants`)."""
    return key[len(namespace) + 1:] if key.startswith(namespace + "/") else key


def _isolation(isolated: bool) -> Text:
    return Text("isolated", style="green") if isolated else Text("open", style="red")


# ---------------------------------------------------------------------------------------------


@netpol.command("can")
@click.argument("paths", nargs=-1)
@click.option("--from", "source", metavar="NS/NAME", help="Source pod or workload (NS/NAME or NS/KIND/NAME).")
@click.option("--from-ip", "source_ip", metavar="IP", help="Source address outside the cluster.")
@click.option("--to", "destination", metavar="NS/NAME", help="Destination pod or workload.")
@click.option("--to-ip", "destination_ip", metavar="IP", help="Destination address (e.g. 169.254.169.254).")
@click.option("--port", "port_text", metavar="PORT[/PROTO]",
              help="Port number or name, protocol TCP (default), UDP or SCTP. Without it: any traffic?")
@_cluster_option
@_TABLE_OR_JSON
def can(paths: tuple[str, ...], source: str | None, source_ip: str | None, destination: str | None,
        destination_ip: str | None, port_text: str | None, live: bool, cluster: ClusterOptions, fmt: str) -> None:
    """Can SOURCE open a connection to DESTINATION? Exit 0 yes, 1 no, 2 error."""
    if (source is None) == (source_ip is None):
        raise click.UsageError("give exactly one of --from and --from-ip")
    if (destination is None) == (destination_ip is None):
        raise click.UsageError("give exactly one of --to and --to-ip")
    if source_ip is not None and destination_ip is not None:
        raise click.UsageError("at least one side must be a pod or workload")
    port: PortQuery | None = None
    if port_text is not None:
        try:
            port = parse_port_query(port_text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--port") from None
    model, errors = _load(paths, live, cluster)
    try:
        if source is not None and destination is not None:
            verdict = model.can(model.find(source), model.find(destination), port)
        elif source is not None:
            assert destination_ip is not None
            verdict = model.can_reach_address(model.find(source), _address(destination_ip, "--to-ip"), port)
        else:
            assert source_ip is not None and destination is not None
            verdict = model.can_be_reached_from_address(_address(source_ip, "--from-ip"),
                                                        model.find(destination), port)
    except LookupError as exc:
        click.echo(f"error: {exc.args[0]}", err=True)
        sys.exit(EXIT_ERROR)
    if fmt == "json":
        data = verdict.to_json()
        data["errors"] = [e.to_dict() for e in errors]
        data["ignored_policies"] = _problems_json(model)
        echo_json(data)
    else:
        _print_verdict(verdict)
    if errors:
        click.echo("error: the input has errors; the answer may be incomplete", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_ALLOWED if verdict.allowed else EXIT_DENIED)


def _address(text: str, hint: str) -> Any:
    try:
        return parse_address(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


def _print_verdict(verdict: Verdict) -> None:
    on = f" on {verdict.port.describe()}" if verdict.port else ""
    answer = "yes" if verdict.allowed else "no"
    click.echo(f"{answer}: {verdict.source} -> {verdict.destination}{on}")
    if verdict.port is None and verdict.allowed:
        click.echo(f"  allowed ports: {verdict.ports.describe()}")
    for reason in verdict.reasons:
        click.echo(f"  {reason}")
    for note in verdict.notes:
        click.echo(f"  note: {note}")


# ---------------------------------------------------------------------------------------------


@netpol.command("matrix")
@click.argument("paths", nargs=-1)
@click.option("--namespace", "-n", default=None, help="Only this namespace (default: each namespace).")
@_scope_options
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "csv", "dot"]), default="table",
              show_default=True)
def matrix(paths: tuple[str, ...], namespace: str | None, all_namespaces: bool, label_selector: str | None,
           live: bool, cluster: ClusterOptions, fmt: str) -> None:
    """Reachability between the pods and workloads of each namespace (rows: sources)."""
    selector = _selected(label_selector)
    model, errors = _load(paths, live, cluster)
    blocks = [_select_block(ns, *model.matrix(ns), selector) for ns in _namespaces(model, namespace, all_namespaces)]
    if fmt == "json":
        echo_json({
            "namespaces": [_matrix_json(model, ns, eps, rows) for ns, eps, rows in blocks],
            "ignored_policies": _problems_json(model),
            "errors": [e.to_dict() for e in errors],
        })
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["namespace", "source", "destination", "allowed", "ports"])
        for ns, eps, rows in blocks:
            for src, row in zip(eps, rows, strict=True):
                for dst, verdict in zip(eps, row, strict=True):
                    writer.writerow([ns, model.display_name(src), model.display_name(dst),
                                     "yes" if verdict.allowed else "no", verdict.ports.describe()])
        click.echo(buf.getvalue(), nl=False)
    elif fmt == "dot":
        click.echo(_dot(model, blocks), nl=False)
    else:
        console = report_console()
        if not blocks:
            console.print("no pods or workloads in the input")
        for ns, eps, rows in blocks:
            if eps:
                console.print(_matrix_table(model, ns, eps, rows))
            else:
                console.print(f"namespace {ns}: no pods or workloads in the input")
    sys.exit(EXIT_ERROR if errors else 0)


def _select_block(ns: str, eps: list[Endpoint], rows: list[list[Verdict]],
                  selector: Selector | None) -> tuple[str, list[Endpoint], list[list[Verdict]]]:
    """Only the selected endpoints, as sources and as destinations."""
    if selector is None:
        return ns, eps, rows
    keep = [i for i, ep in enumerate(eps) if selector.matches(ep.labels)]
    return ns, [eps[i] for i in keep], [[rows[i][j] for j in keep] for i in keep]


def _short(model: NetworkModel, ep: Endpoint) -> str:
    return model.display_name(ep).split("/", 1)[1]


def _matrix_json(model: NetworkModel, ns: str, eps: list[Endpoint],
                 rows: list[list[Verdict]]) -> dict[str, Any]:
    return {
        "namespace": ns,
        "endpoints": [model.status(ep) for ep in eps],
        "pairs": [
            {
                "source": model.display_name(src),
                "destination": model.display_name(dst),
                "allowed": verdict.allowed,
                "ports": verdict.ports.describe(),
                "port_ranges": verdict.ports.to_json(),
                "allowed_by": [m.to_json() for m in verdict.deciding],
            }
            for src, row in zip(eps, rows, strict=True)
            for dst, verdict in zip(eps, row, strict=True)
        ],
    }


def _matrix_table(model: NetworkModel, ns: str, eps: list[Endpoint], rows: list[list[Verdict]]) -> Table:
    table = Table(title=f"namespace {ns}: can ROW reach COLUMN", show_lines=True)
    table.add_column("from \\ to")
    for ep in eps:
        table.add_column(Text(_short(model, ep)), overflow="fold")
    for src, row in zip(eps, rows, strict=True):
        cells: list[Text] = [Text(_short(model, src))]
        for verdict in row:
            if not verdict.allowed:
                cells.append(Text("-", style="red"))
            else:
                cells.append(Text(verdict.ports.describe(), style="green"))
        table.add_row(*cells)
    return table


def _dot(model: NetworkModel, blocks: list[tuple[str, list[Endpoint], list[list[Verdict]]]]) -> str:
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph netpol {", "  rankdir=LR;", "  node [shape=box];"]
    for i, (ns, eps, rows) in enumerate(blocks):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={quote(ns)};")
        for ep in eps:
            isolated = model.isolated(ep, INGRESS) and model.isolated(ep, EGRESS)
            lines.append(f"    {quote(model.display_name(ep))} [label={quote(_short(model, ep))}"
                         f"{'' if isolated else ', color=red'}];")
        lines.append("  }")
        for src, row in zip(eps, rows, strict=True):
            for dst, verdict in zip(eps, row, strict=True):
                if verdict.allowed:
                    lines.append(f"  {quote(model.display_name(src))} -> {quote(model.display_name(dst))} "
                                 f"[label={quote(verdict.ports.describe())}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


COMMANDS: list[click.Command] = [netpol]
