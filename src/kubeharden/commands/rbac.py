"""`kubeharden rbac`: ask RBAC questions of manifests, snapshots or cluster dumps offline.

can-i     like `kubectl auth can-i --as`, with the binding, role and rule that grant it
who-can   every subject allowed a request, with what grants it
list      everything one user / ServiceAccount may do
risks     subjects holding risky permissions, ranked, with the chain to each risk
"""

from __future__ import annotations

import dataclasses
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import click
from rich.table import Table
from rich.text import Text

from kubeharden.commands import echo_json, report_console
from kubeharden.commands.snapshot import cluster_connection_options, load_live
from kubeharden.inventory import Inventory, service_account_name, token_automount
from kubeharden.loader import LoadContext, load_paths
from kubeharden.rbac.engine import (
    RBAC_KINDS,
    Grant,
    RbacModel,
    Request,
    UserInfo,
    Vocabulary,
    crd_names,
    resolve_resource,
    resolve_verb,
)
from kubeharden.rbac.risks import RiskSettings, rank_subjects
from kubeharden.sources.cluster import ClusterOptions

EXIT_YES, EXIT_NO, EXIT_ERROR = 0, 1, 2


@dataclass
class Loaded:
    inventory: Inventory
    model: RbacModel
    had_errors: bool


def _load(paths: Sequence[str], live: bool = False, cluster: ClusterOptions | None = None) -> Loaded:
    """Read the inputs (or the live cluster); report unreadable ones (file:line) and RBAC problems on stderr."""
    if live and paths:
        raise click.UsageError("give paths or --cluster, not both")
    if not live and not paths:
        raise click.UsageError("give at least one path ('-' for stdin) or --cluster")
    result = load_live(cluster or ClusterOptions()) if live else load_paths(paths, LoadContext())
    for error in result.errors:
        where = error.source + (f":{error.line}" if error.line else "")
        click.echo(f"error: {where}: {error.message}", err=True)
    inventory = Inventory(result.resources, dict(result.facts))
    model = RbacModel(inventory.of_kind(*RBAC_KINDS))
    for problem in model.problems:
        where = ""
        if problem.resource is not None:
            src = problem.resource.source
            where = src.file + (f":{src.line}" if src.line else "") + ": "
        click.echo(f"warning: {where}{problem.message}", err=True)
    return Loaded(inventory, model, bool(result.errors))


def _request(loaded: Loaded, verb: str, resource: str | None, non_resource_url: str | None,
             resource_name: str | None, namespace: str | None, subresource: str | None = None) -> Request:
    if not verb.strip():
        raise click.BadParameter("give a verb such as get, list or create", param_hint="--verb")
    if (resource is None) == (non_resource_url is None):
        raise click.UsageError("give exactly one of --resource or --non-resource-url")
    vocabulary = Vocabulary.of(loaded.model)
    try:
        verb = resolve_verb(verb, vocabulary)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--verb") from None
    if non_resource_url is not None:
        if namespace or resource_name or subresource:
            raise click.UsageError("--non-resource-url requests have no namespace, name or subresource (drop -n, "
                                   "--resource-name and --subresource)")
        return Request(verb, non_resource_url=non_resource_url)
    assert resource is not None
    if subresource:
        if "/" in resource:
            raise click.UsageError(f"--subresource {subresource} and {resource!r}: give the subresource once")
        resource = f"{resource}/{subresource}"
    try:
        res, sub, group = resolve_resource(resource, vocabulary, crd_names(loaded.inventory.resources))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--resource") from None
    return Request(verb, res, sub, group, resource_name or "", namespace or None)


def _positional_request(args: tuple[str, ...], verb: str | None, resource: str | None,
                        non_resource_url: str | None) -> tuple[tuple[str, ...], str, str | None, str | None]:
    """kubectl's `can-i VERB RESOURCE` (or `VERB /URL`) before the paths, when --verb is not given."""
    if verb is not None:
        return args, verb, resource, non_resource_url
    if not args:
        raise click.UsageError("give VERB RESOURCE (or --verb and --resource), e.g. `get secrets`")
    verb, args = args[0], args[1:]
    if resource is None and non_resource_url is None:
        if not args:
            raise click.UsageError(f"give a resource after the verb {verb!r}, e.g. `{verb} secrets`")
        target, args = args[0], args[1:]
        if target.startswith("/"):
            non_resource_url = target
        else:
            resource = target
    return args, verb, resource, non_resource_url


def _namespace_choice(namespace: str | None, all_namespaces: bool) -> None:
    if namespace and all_namespaces:
        raise click.UsageError("give -n/--namespace or -A/--all-namespaces, not both")


def _user(name: str, groups: Sequence[str]) -> UserInfo:
    if not name:
        raise click.BadParameter("give a user name", param_hint="--as")
    return UserInfo.for_name(name, groups)


def _finish(code: int, loaded: Loaded) -> NoReturn:
    sys.exit(EXIT_ERROR if loaded.had_errors else code)


def _role_text(g: Grant, separator: str = "\n") -> str:
    """The bound role, and the role an aggregated rule comes from."""
    via = f"{separator}(from {g.rule.role.display()})" if g.rule.role is not g.role else ""
    return g.role.display() + via


def _grant_row(g: Grant) -> list[str]:
    return [g.subject.display(), g.binding.display(), _role_text(g),
            f"rules[{g.rule.index}] {g.rule.display()}", g.scope or "cluster"]


def _grant_table(grants: Sequence[Grant], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for header in ("subject", "binding", "role", "rule", "scope"):
        table.add_column(header)
    for g in grants:
        table.add_row(*map(Text, _grant_row(g)))
    return table


_PATHS = click.argument("paths", nargs=-1)


def _source_options(fn: Any) -> Any:
    """--cluster (the live cluster, read in full like `scan --cluster`) and its connection options."""
    fn = cluster_connection_options(fn)
    return click.option("--cluster", "live", is_flag=True,
                        help="Ask the live cluster of the kubeconfig instead of files.")(fn)
_FORMAT = click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table",
                       show_default=True)


def _request_options(fn: Any) -> Any:
    options = [
        click.option("--verb", help="API verb: get, list, create, delete, impersonate... (or the first argument)."),
        click.option("--resource", metavar="R[.GROUP][/SUB]",
                     help="Resource, e.g. secrets, deploy, deployments.apps, pods/exec (kubectl's names, "
                     "singulars and short names; or the second argument)."),
        click.option("--subresource", metavar="SUB", help="Subresource, e.g. exec or log (as kubectl's)."),
        click.option("--resource-name", metavar="NAME", help="Name of one object (for resourceNames rules)."),
        click.option("--non-resource-url", metavar="URL", help="A non-resource URL such as /healthz."),
        click.option("--namespace", "-n", metavar="NS",
                     help="Namespace of the request (without it: cluster scope only)."),
        click.option("--all-namespaces", "-A", "all_namespaces", is_flag=True,
                     help="can-i: cluster-wide, in every namespace (as kubectl's); who-can: in any namespace."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group("rbac")
def rbac() -> None:
    """Analyse RBAC offline: can-i, who-can, list, risks."""


@rbac.command("can-i")
@click.argument("args", nargs=-1, metavar="[VERB RESOURCE] [PATH]...")
@click.option("--as", "as_user", required=True, metavar="USER",
              help="User, e.g. alice or system:serviceaccount:NS:NAME.")
@click.option("--as-group", "as_groups", multiple=True, metavar="GROUP", help="Extra group (repeatable).")
@_request_options
@_source_options
@_FORMAT
def can_i(args: tuple[str, ...], as_user: str, as_groups: tuple[str, ...], verb: str | None, resource: str | None,
          subresource: str | None, resource_name: str | None, non_resource_url: str | None, namespace: str | None,
          all_namespaces: bool, live: bool, cluster: ClusterOptions, fmt: str) -> None:
    """Whether USER may do a request (`can-i get secrets PATH... --as alice -n prod`, as kubectl auth
    can-i; or --verb/--resource); exit 0 yes, 1 no, 2 error."""
    _namespace_choice(namespace, all_namespaces)
    paths, verb, resource, non_resource_url = _positional_request(args, verb, resource, non_resource_url)
    loaded = _load(paths, live, cluster)
    request = _request(loaded, verb, resource, non_resource_url, resource_name, namespace, subresource)
    user = _user(as_user, as_groups)
    grants = loaded.model.can(user, request)
    if fmt == "json":
        echo_json({"allowed": bool(grants), "user": user.name, "groups": sorted(user.groups),
                    "request": request.display(), "grants": [g.to_dict() for g in grants]})
    else:
        click.echo("yes" if grants else "no")
        if grants:
            report_console().print(_grant_table(grants, f"{user.name} may {request.display()}"))
    _finish(EXIT_YES if grants else EXIT_NO, loaded)


@rbac.command("who-can")
@click.argument("args", nargs=-1, metavar="[VERB RESOURCE] [PATH]...")
@_request_options
@_source_options
@_FORMAT
def who_can(args: tuple[str, ...], verb: str | None, resource: str | None, subresource: str | None,
            resource_name: str | None, non_resource_url: str | None, namespace: str | None, all_namespaces: bool,
            live: bool, cluster: ClusterOptions, fmt: str) -> None:
    """Every subject allowed a request, with the binding, role and rule that grant it (-A: in any namespace)."""
    _namespace_choice(namespace, all_namespaces)
    paths, verb, resource, non_resource_url = _positional_request(args, verb, resource, non_resource_url)
    loaded = _load(paths, live, cluster)
    request = _request(loaded, verb, resource, non_resource_url, resource_name, namespace, subresource)
    found = loaded.model.who_can(request)
    described = request.display()
    if all_namespaces and request.non_resource_url is None:
        # every namespace a RoleBinding grants in, besides cluster scope
        for ns in sorted({b.scope for b in loaded.model.bindings if b.scope}):
            found += loaded.model.who_can(dataclasses.replace(request, namespace=ns))
        described = described.replace(" (cluster scope)", " in any namespace")
    unique = {(id(g.binding), g.subject_index, id(g.rule)): g for g in found}
    grants = sorted(unique.values(), key=lambda g: (g.subject.display(), g.binding.display()))
    if fmt == "json":
        echo_json({"request": described, "subjects": sorted({g.subject.display() for g in grants}),
                    "grants": [g.to_dict() for g in grants]})
    else:
        report_console().print(_grant_table(grants, f"who can {described}"))
        if not grants:
            click.echo("no subject in the input or the built-in bindings may do this")
    _finish(0, loaded)


@rbac.command("list")
@_PATHS
@click.option("--as", "as_user", required=True, metavar="USER",
              help="User, e.g. alice or system:serviceaccount:NS:NAME.")
@click.option("--as-group", "as_groups", multiple=True, metavar="GROUP", help="Extra group (repeatable).")
@click.option("--namespace", "-n", metavar="NS", help="Only what applies in this namespace (and cluster-wide).")
@click.option("--all-namespaces", "-A", "all_namespaces", is_flag=True, help="Every namespace (the default).")
@_source_options
@_FORMAT
def list_permissions(paths: tuple[str, ...], as_user: str, as_groups: tuple[str, ...], namespace: str | None,
                     all_namespaces: bool, live: bool, cluster: ClusterOptions, fmt: str) -> None:
    """Everything USER may do, with the binding that grants each rule."""
    _namespace_choice(namespace, all_namespaces)
    loaded = _load(paths, live, cluster)
    user = _user(as_user, as_groups)
    grants = [g for g in loaded.model.permissions(user) if namespace is None or g.scope in (None, namespace)]
    grants.sort(key=lambda g: (g.scope or "", g.binding.display(), g.rule.role.display(), g.rule.index))
    if fmt == "json":
        echo_json({"user": user.name, "groups": sorted(user.groups),
                    "permissions": [g.to_dict() for g in grants]})
    else:
        table = Table(title=f"permissions of {user.name} (groups: {', '.join(sorted(user.groups))})")
        for header in ("scope", "rule", "role", "binding", "as"):
            table.add_column(header)
        for g in grants:
            table.add_row(*map(Text, (g.scope or "cluster", f"rules[{g.rule.index}] {g.rule.display()}",
                                      _role_text(g), g.binding.display(), g.subject.display())))
        report_console().print(table)
    _finish(0, loaded)


def _workloads_by_service_account(inventory: Inventory) -> dict[tuple[str | None, str], list[str]]:
    """(namespace or None when the manifest sets none, ServiceAccount) -> workloads that run as
    it with the token mounted."""
    out: dict[tuple[str | None, str], list[str]] = defaultdict(list)
    for pod in inventory.pod_specs():
        if token_automount(pod, inventory).mounted:
            out[(pod.namespace, service_account_name(pod))].append(pod.resource.display())
    return out


def _subject_patterns(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in value:
        kind, sep, name = pattern.partition(":")
        if not sep or not name or kind not in ("User", "Group", "ServiceAccount") or (
                kind == "ServiceAccount" and "/" not in name):
            raise click.BadParameter(f"{pattern!r}: expected User:NAME, Group:NAME or ServiceAccount:NS/NAME "
                                     "(wildcards allowed, e.g. ServiceAccount:platform/*)")
    return value


def risk_setting_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Who is expected to hold powerful grants: shared by `scan` and `rbac risks`."""
    fn = click.option("--rbac-system-namespace", "rbac_system_namespaces", multiple=True, metavar="NS",
                      help="Also treat ServiceAccounts of NS as system components whose powerful grants are "
                      "expected (default: kube-system, kube-public, kube-node-lease; cluster-admin is "
                      "still reported).")(fn)
    return click.option("--rbac-expected-subject", "rbac_expected_subjects", multiple=True, metavar="PATTERN",
                        callback=_subject_patterns,
                        help="Also expect powerful grants for this subject: User:NAME, Group:NAME or "
                        "ServiceAccount:NS/NAME, wildcards allowed (the defaults are system:masters, "
                        "nodes and control-plane users).")(fn)


@rbac.command("risks")
@_PATHS
@click.option("--include-expected", is_flag=True,
              help="Also list expected system subjects (system:masters, kube-system ServiceAccounts...).")
@click.option("--limit", type=click.IntRange(min=1), help="Show only the N riskiest subjects.")
@risk_setting_options
@_source_options
@_FORMAT
def risks(paths: tuple[str, ...], include_expected: bool, limit: int | None, rbac_system_namespaces: tuple[str, ...],
          rbac_expected_subjects: tuple[str, ...], live: bool, cluster: ClusterOptions, fmt: str) -> None:
    """Subjects of the input's bindings that hold risky permissions, riskiest first."""
    loaded = _load(paths, live, cluster)
    settings = RiskSettings.from_extra({"rbac_expected_subjects": rbac_expected_subjects,
                                        "rbac_system_namespaces": rbac_system_namespaces})
    ranked = [s for s in rank_subjects(loaded.model, settings) if include_expected or not s.expected]
    if limit:
        ranked = ranked[:limit]
    workloads = _workloads_by_service_account(loaded.inventory)

    def uses(subject_ns: str | None, name: str) -> list[str]:
        # Manifests without metadata.namespace are applied with -n: they may run in any namespace.
        found = workloads.get((subject_ns, name), []) + [
            f"{w} (no namespace)" for w in workloads.get((None, name), [])]
        return list(dict.fromkeys(found))

    if fmt == "json":
        out = []
        for rank, s in enumerate(ranked, 1):
            entry = {"rank": rank, **s.to_dict()}
            if s.subject.kind == "ServiceAccount":
                entry["workloads"] = uses(s.subject.namespace, s.subject.name)
            out.append(entry)
        echo_json({"subjects": out})
        _finish(0, loaded)
    table = Table(title="RBAC risks by subject (riskiest first)")
    for header in ("#", "subject", "severity", "score", "risk", "path"):
        table.add_column(header)
    for rank, s in enumerate(ranked, 1):
        seen: set[tuple[str, str | None]] = set()
        first = True
        for r in sorted(s.risks, key=lambda r: (-r.severity, r.kind.id)):
            key = (r.kind.id, r.grant.scope)
            if key in seen:
                continue
            seen.add(key)
            subject = s.subject.display() + (" (expected)" if s.expected else "")
            if first and s.subject.kind == "ServiceAccount":
                used = uses(s.subject.namespace, s.subject.name)
                if used:
                    subject += "\nused by " + ", ".join(used[:3]) + (" ..." if len(used) > 3 else "")
            scope = f" [{r.grant.scope}]" if r.grant.scope else " [cluster]"
            path = (f"{r.grant.binding.display()} -> {_role_text(r.grant, ' ')} -> "
                    f"rules[{r.grant.rule.index}] {r.grant.rule.display()}")
            table.add_row(*map(Text, (str(rank) if first else "", subject if first else "",
                                      s.max_severity.label if first else "", str(s.score) if first else "",
                                      r.kind.id + scope, path)))
            first = False
    report_console().print(table)
    if not ranked:
        click.echo("no subject of the input's bindings holds a risky permission")
    _finish(0, loaded)


COMMANDS: list[click.Command] = [rbac]
