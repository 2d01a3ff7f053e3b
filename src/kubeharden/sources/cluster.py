"""Live cluster input: reads what the controls need from a Kubernetes API server.

Registered as the named source ``cluster`` (``kubeharden scan --cluster``). It uses the
official ``kubernetes`` client for configuration (kubeconfig, contexts, exec/OIDC plugins,
in-cluster service account) and transport, and reads raw JSON pages (no model objects) so
that a 100,000-object cluster stays within memory: each page is slimmed as it arrives.

Reading rules:
* API discovery decides which of the wanted kinds the server serves (and in which version);
* every LIST is paginated (``limit`` + ``continue``); lists run concurrently in a bounded pool;
* 429, 5xx, timeouts and dropped connections are retried with exponential backoff;
* 410 Gone on an expired continue token restarts that list from the beginning;
* 403 makes the kind unreadable: ``facts["forbidden_kinds"][kind] = reason`` and the controls
  that read it become not_assessed; 401 stops the scan with a usage error (exit code 2);
* Secrets are read as PartialObjectMetadata: their data never leaves the API server.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from kubeharden.loader import LoadResult, explode
from kubeharden.model import InputError, Source

# Kinds the controls read, by API group. Discovery picks the served version; kinds the
# server does not serve (PodSecurityPolicy on 1.25+, CRDs not installed) are simply absent.
WANTED_KINDS: dict[str, tuple[str, ...]] = {
    "": (
        "Namespace", "Node", "Pod", "Service", "ServiceAccount", "ConfigMap", "Secret",
        "LimitRange", "ResourceQuota", "ReplicationController", "PodTemplate",
        "PersistentVolume",
    ),
    "apps": ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"),
    "batch": ("Job", "CronJob"),
    "rbac.authorization.k8s.io": ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"),
    "networking.k8s.io": ("NetworkPolicy", "Ingress", "IngressClass"),
    "admissionregistration.k8s.io": (
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    ),
    "node.k8s.io": ("RuntimeClass",),
    "policy": ("PodSecurityPolicy",),
    "gateway.networking.k8s.io": ("Gateway", "GatewayClass", "HTTPRoute"),
    "apiextensions.k8s.io": ("CustomResourceDefinition",),
    # Network policy engines beyond the core NetworkPolicy, when installed.
    "cilium.io": ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"),
    "crd.projectcalico.org": ("NetworkPolicy", "GlobalNetworkPolicy"),
    "projectcalico.org": ("NetworkPolicy", "GlobalNetworkPolicy"),
    # Admission policy engines, when installed.
    "kyverno.io": ("ClusterPolicy", "Policy"),
    "templates.gatekeeper.sh": ("ConstraintTemplate",),
}

# What is kept of an object's status: most of it is bulky and no control reads it.
_STATUS_KEPT: dict[str, tuple[str, ...]] = {
    "Node": ("nodeInfo", "addresses"),
    "Pod": ("phase",),
    "Namespace": ("phase",),
    "Service": ("loadBalancer",),
}

METADATA_ONLY_KINDS = frozenset({("", "Secret")})
# A metadata-only Secret has no type, and controls judge by type (basic-auth, legacy tokens):
# one more metadata-only LIST per built-in type, filtered by the server (fieldSelector=type=...),
# tells each Secret's type without its data. Secrets in none of these lists are Opaque or of
# a custom type, which no control judges.
SECRET_TYPES_LISTED: tuple[str, ...] = (
    "kubernetes.io/service-account-token", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth",
    "kubernetes.io/tls", "kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg",
    "bootstrap.kubernetes.io/token",
)
# CRDs may reuse a built-in kind name (Calico's NetworkPolicy): facts name them with their group.
_BUILTIN_GROUPS = frozenset({"", "apps", "batch", "policy"})
_METADATA_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


class ClusterError(Exception):
    """The cluster cannot be read at all (bad credentials, unreachable server, bad kubeconfig)."""


@dataclass
class ClusterOptions:
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: tuple[str, ...] = ()
    timeout: float = 30.0  # seconds per request (connect and read)
    retries: int = 4  # retries of a request on 429 / 5xx / timeouts / dropped connections
    backoff: float = 0.5  # first retry delay in seconds; doubles each retry (capped at 10 s)
    page_size: int = 500  # LIST limit
    workers: int = 4  # concurrent LIST requests
    max_restarts: int = 3  # LIST restarts after 410 Gone (expired continue token)
    progress: bool | None = None  # None: a progress bar when stderr is a terminal

    @classmethod
    def from_request(cls, options: dict[str, Any]) -> ClusterOptions:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in options.items() if k in known and v is not None}
        if "namespaces" in values:
            values["namespaces"] = tuple(values["namespaces"])
        return cls(**values)


@dataclass(frozen=True)
class ListTarget:
    """One LIST to run: a resource of a group version, optionally inside one namespace."""

    group: str
    version: str
    resource: str  # plural, as in the URL
    kind: str
    namespaced: bool
    namespace: str | None = None
    field_selector: str | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path(self) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespace is not None:
            base += f"/namespaces/{quote(self.namespace, safe='')}"
        return f"{base}/{self.resource}"

    @property
    def metadata_only(self) -> bool:
        return (self.group, self.kind) in METADATA_ONLY_KINDS

    @property
    def fact_kind(self) -> str:
        """The kind as controls name it: built-in kinds plainly, CRD kinds with their group."""
        builtin = self.group in _BUILTIN_GROUPS or self.group.endswith(".k8s.io")
        return self.kind if builtin else f"{self.kind}.{self.group}"

    @property
    def label(self) -> str:
        selector = f" ({self.field_selector})" if self.field_selector else ""
        return f"{self.fact_kind}{selector}"

    @property
    def secret_type(self) -> str | None:
        """The Secret type this LIST selects, for the type lists of SECRET_TYPES_LISTED."""
        if self.kind != "Secret" or not self.field_selector:
            return None
        return self.field_selector.removeprefix("type=")


@dataclass
class ListOutcome:
    target: ListTarget
    items: list[dict[str, Any]] = field(default_factory=list)
    forbidden: str | None = None  # reason when the credentials may not list it
    failed: str | None = None  # reason when the server failed after retries
    restarts: int = 0
    pages: int = 0


@dataclass
class ClusterRead:
    """Everything one read of a cluster returns; also what a snapshot stores."""

    source_name: str  # "cluster:<context>"
    context: str
    server_version: str | None
    lists: list[ListOutcome]
    notes: list[str]
    namespaces: tuple[str, ...]
    warnings: list[str] = field(default_factory=list)


class _HttpError(Exception):
    def __init__(self, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


# ---------------------------------------------------------------------------------------------
# Transport


class ApiReader:
    """Raw GETs through the official client's configured transport, with retries."""

    def __init__(self, options: ClusterOptions, sleep: Callable[[float], None] = time.sleep) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        self.options = options
        self._sleep = sleep
        configuration = client.Configuration()
        context = options.context
        try:
            if options.kubeconfig is None and _in_cluster():
                config.load_incluster_config(client_configuration=configuration)
                context = "in-cluster"
            else:
                # $KUBECONFIG may list several files: the client merges them like kubectl
                kubeconfig = options.kubeconfig or os.environ.get("KUBECONFIG") or None
                config.load_kube_config(
                    config_file=kubeconfig, context=options.context,
                    client_configuration=configuration, persist_config=False,
                )
                if context is None:
                    _, current = config.list_kube_config_contexts(kubeconfig)
                    context = str(current.get("name")) if current else "default"
        except (ConfigException, OSError, TypeError, ValueError) as exc:
            where = options.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise ClusterError(f"cannot load cluster configuration ({where}): {exc}") from None
        configuration.retries = False  # retries are ours: counted, with backoff, on status too
        configuration.connection_pool_maxsize = max(options.workers, 1) + 1
        self.context = context or "default"
        self.host = configuration.host
        self.api = client.ApiClient(configuration)

    def close(self) -> None:
        self.api.close()

    def get_json(self, path: str, query: list[tuple[str, Any]] | None = None,
                 accept: str = "application/json") -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                return self._get_once(path, query, accept)
            except _HttpError as exc:
                transient = exc.status in _TRANSIENT_STATUS or exc.status == 0
                if not transient or attempt >= self.options.retries:
                    raise
                delay = exc.retry_after if exc.retry_after is not None else self._delay(attempt)
            attempt += 1
            self._sleep(min(delay, 30.0))

    def _delay(self, attempt: int) -> float:
        base = min(self.options.backoff * (2**attempt), 10.0)
        return base * (0.5 + random.random() / 2)  # jitter: workers do not retry in lockstep

    def _get_once(self, path: str, query: list[tuple[str, Any]] | None, accept: str) -> dict[str, Any]:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        method, url, headers, _body, _post = self.api.param_serialize(
            "GET", path, query_params=query or [], header_params={"Accept": accept},
            auth_settings=["BearerToken"],
        )
        timeout = self.options.timeout
        try:
            response = self.api.call_api(method, url, header_params=headers, _request_timeout=(timeout, timeout))
            data = response.read()
        except ApiException as exc:  # TLS errors surface as status 0
            raise _HttpError(exc.status or 0, str(exc.reason or exc).strip()) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _HttpError(0, f"{type(exc).__name__}: {exc}") from None
        status = response.status
        if status >= 400:
            raise _HttpError(status, _status_message(data, response.reason), _retry_after(response.headers))
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _HttpError(0, f"invalid JSON from {path}: {exc.msg}") from None
        if not isinstance(value, dict):
            raise _HttpError(0, f"unexpected response from {path}")
        return value


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG") and \
        not os.path.exists(os.path.expanduser("~/.kube/config"))


def _status_message(data: bytes, reason: str | None) -> str:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(reason or "error")


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Discovery and listing


def discover(reader: ApiReader, namespaces: tuple[str, ...]) -> tuple[list[ListTarget], list[ListOutcome], list[str]]:
    """The LISTs to run: every wanted kind the server serves, in its preferred version.

    Also returns a failed outcome for each wanted kind of a group whose discovery failed: the
    kind may exist, so its absence must not read as "none in the cluster".
    """
    notes: list[str] = []
    undiscovered: dict[str, tuple[str, str]] = {}  # group -> (version, reason) of a failed discovery
    served: dict[str, tuple[str, list[dict[str, Any]]]] = {}  # group -> (version, resources)
    core = reader.get_json("/api/v1")
    served[""] = ("v1", list(core.get("resources") or []))
    groups = reader.get_json("/apis")
    for group in groups.get("groups") or []:
        name = group.get("name")
        if name not in WANTED_KINDS:
            continue
        versions = [v.get("version") for v in group.get("versions") or [] if v.get("version")]
        preferred = (group.get("preferredVersion") or {}).get("version") or (versions[0] if versions else None)
        if not preferred:
            continue
        # A wanted kind may be served only in a non-preferred version (PodSecurityPolicy lives
        # in policy/v1beta1 while policy prefers v1): look at each version until found.
        for version in [preferred, *[v for v in versions if v != preferred]]:
            try:
                listing = reader.get_json(f"/apis/{name}/{version}")
            except _HttpError as exc:
                if exc.status == 401:
                    raise
                notes.append(f"discovery of {name}/{version} failed: {exc.reason}")
                undiscovered.setdefault(name, (version, f"discovery of {name}/{version} failed: {exc.status} "
                                                         f"{exc.reason}"))
                continue
            resources = list(listing.get("resources") or [])
            previous = served.get(name)
            if previous is None:
                served[name] = (version, resources)
            else:
                known = {r.get("kind") for r in previous[1] if "/" not in str(r.get("name"))}
                extra = [dict(r, _version=version) for r in resources if r.get("kind") not in known]
                previous[1].extend(extra)
            have = {r.get("kind") for r in served[name][1] if "/" not in str(r.get("name"))}
            if all(kind in have for kind in WANTED_KINDS[name]):
                break
    targets: list[ListTarget] = []
    unknown: list[ListOutcome] = []
    for group, kinds in WANTED_KINDS.items():
        version, resources = served.get(group, ("", []))
        for kind in kinds:
            match = next(
                (r for r in resources if r.get("kind") == kind and "/" not in str(r.get("name"))
                 and "list" in (r.get("verbs") or ["list"])),
                None,
            )
            if match is None:
                if group in undiscovered:
                    failed_version, reason = undiscovered[group]
                    target = ListTarget(group, failed_version, "", kind, False)
                    unknown.append(ListOutcome(target, failed=reason))
                continue
            namespaced = bool(match.get("namespaced"))
            res_version = str(match.get("_version") or version)
            scopes: list[str | None] = list(namespaces) if namespaced and namespaces else [None]
            selectors: list[str | None] = [None]
            if (group, kind) == ("", "Secret"):
                selectors += [f"type={secret_type}" for secret_type in SECRET_TYPES_LISTED]
            targets.extend(
                ListTarget(group, res_version, str(match["name"]), kind, namespaced, scope, selector)
                for scope in scopes for selector in selectors
            )
    return targets, unknown, notes


def _slim_item(kind: str, item: dict[str, Any]) -> None:
    """Drop what no control reads, before the page's other items are even looked at."""
    meta = item.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        ann = meta.get("annotations")
        if isinstance(ann, dict):
            ann.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    status = item.get("status")
    if status is not None:
        kept = _STATUS_KEPT.get(kind)
        if kept and isinstance(status, dict):
            item["status"] = {k: status[k] for k in kept if k in status}
        else:
            del item["status"]
    if kind == "Secret":  # metadata-only lists carry no data; a full object never keeps it
        for key in ("data", "stringData"):
            item.pop(key, None)
    share_strings(item)


_SHARED_STRING_MAX = 64


def share_strings(value: dict[str, Any] | list[Any]) -> None:
    """Make equal short strings one object (namespaces, labels, images, "True" ...).

    JSON parsing creates a new string for every value; across a large cluster most values
    repeat, and sharing them saves about a sixth of the memory a read keeps.
    """
    pairs = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in pairs:
        if type(item) is str:
            if len(item) < _SHARED_STRING_MAX:
                value[key] = sys.intern(item)  # type: ignore[index]  # key fits value (dict or list)
        elif isinstance(item, (dict, list)):
            share_strings(item)


def list_all(reader: ApiReader, target: ListTarget, on_page: Callable[[int], None] | None = None) -> ListOutcome:
    """Every object of one LIST, page by page; restarts the list when its token expired."""
    outcome = ListOutcome(target)
    accept = _METADATA_ACCEPT if target.metadata_only else "application/json"
    while True:
        items: list[dict[str, Any]] = []
        token: str | None = None
        try:
            while True:
                query: list[tuple[str, Any]] = [("limit", reader.options.page_size)]
                if target.field_selector:
                    query.append(("fieldSelector", target.field_selector))
                if token:
                    query.append(("continue", token))
                page = reader.get_json(target.path, query, accept)
                outcome.pages += 1
                for item in page.get("items") or []:
                    if isinstance(item, dict):
                        if target.metadata_only:
                            item = {"metadata": item.get("metadata") or {}}
                        _slim_item(target.kind, item)
                        item["apiVersion"] = target.api_version
                        item["kind"] = target.kind
                        items.append(item)
                if on_page is not None:
                    on_page(len(page.get("items") or []))
                token = (page.get("metadata") or {}).get("continue") or None
                if not token:
                    break
        except _HttpError as exc:
            if exc.status == 410 and token and outcome.restarts < reader.options.max_restarts:
                outcome.restarts += 1  # the snapshot behind the token expired: start again
                continue
            if exc.status == 401:
                raise
            where = f" in namespace {target.namespace}" if target.namespace else ""
            if exc.status == 403:
                outcome.forbidden = f"403 Forbidden{where}: {exc.reason}"
            elif exc.status == 404:
                outcome.failed = None  # removed between discovery and listing: not served
            else:
                code = f"{exc.status} " if exc.status else ""
                outcome.failed = f"{code}{exc.reason}{where} (after {reader.options.retries} retries)"
            return outcome
        outcome.items = items
        return outcome


def read_cluster(options: ClusterOptions, reader: ApiReader | None = None) -> ClusterRead:
    """Read the cluster: version, discovery, then every LIST concurrently."""
    reader = reader or ApiReader(options)
    try:
        try:
            version = reader.get_json("/version")
            targets, undiscovered, notes = discover(reader, options.namespaces)
        except _HttpError as exc:
            raise _cluster_error(exc, reader) from None
        lists = merge_secret_types(_run_lists(reader, targets, options)) + undiscovered
    finally:
        reader.close()
    return ClusterRead(
        source_name=f"cluster:{reader.context}",
        context=reader.context,
        server_version=str(version.get("gitVersion")) if version.get("gitVersion") else None,
        lists=lists,
        notes=notes,
        namespaces=options.namespaces,
    )


def merge_secret_types(lists: list[ListOutcome]) -> list[ListOutcome]:
    """Give each listed Secret the type its type list found, and drop the type lists.

    A type list that failed leaves the types unknown: the Secret LIST counts as failed, so the
    controls that judge Secret types are not_assessed instead of passing on missing types.
    """
    typed = [o for o in lists if o.target.secret_type is not None]
    if not typed:
        return lists
    types: dict[tuple[str | None, str | None], str] = {}
    problems: dict[str | None, str] = {}
    for outcome in typed:
        reason = outcome.forbidden or outcome.failed
        if reason:
            problems.setdefault(outcome.target.namespace, f"cannot tell Secret types: {outcome.target.label}: {reason}")
        for item in outcome.items:
            meta = item.get("metadata") or {}
            types[(meta.get("namespace"), meta.get("name"))] = str(outcome.target.secret_type)
    kept = [o for o in lists if o.target.secret_type is None]
    for outcome in kept:
        if outcome.target.kind != "Secret" or outcome.target.group != "":
            continue
        problem = problems.get(outcome.target.namespace)
        if problem and not outcome.forbidden and not outcome.failed:
            outcome.failed = problem
        for item in outcome.items:
            meta = item.get("metadata") or {}
            secret_type = types.get((meta.get("namespace"), meta.get("name")))
            if secret_type is not None:
                item["type"] = secret_type
    return kept


def _cluster_error(exc: _HttpError, reader: ApiReader) -> ClusterError:
    if exc.status == 401:
        return ClusterError(
            f"the API server at {reader.host} rejected the credentials of context "
            f"{reader.context!r} (401 Unauthorized): refresh the token or certificate in the kubeconfig"
        )
    if exc.status == 403:
        return ClusterError(f"the API server at {reader.host} refused discovery (403 Forbidden): {exc.reason}")
    return ClusterError(f"cannot reach the API server at {reader.host} (context {reader.context!r}): {exc.reason}")


def _run_lists(reader: ApiReader, targets: list[ListTarget], options: ClusterOptions) -> list[ListOutcome]:
    progress = _Progress(len(targets), options.progress)
    try:
        with ThreadPoolExecutor(max_workers=max(options.workers, 1), thread_name_prefix="kh-list") as pool:
            futures = [
                pool.submit(list_all, reader, target, progress.page_done) for target in targets
            ]
            results: list[ListOutcome] = []
            for future in futures:  # in target order, so every read of a cluster orders alike
                try:
                    outcome = future.result()
                except _HttpError as exc:
                    for other in futures:
                        other.cancel()
                    raise _cluster_error(exc, reader) from None
                progress.list_done(outcome.target.label)
                results.append(outcome)
            return results
    finally:
        progress.close()


class _Progress:
    """A rich progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, wanted: bool | None) -> None:
        enabled = sys.stderr.isatty() if wanted is None else wanted
        self._lock = threading.Lock()
        self._bar: Any = None
        self._objects = 0
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("reading cluster"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[objects]} objects  {task.description}"),
                console=Console(stderr=True), transient=True,
            )
            self._task = self._bar.add_task("", total=total, objects=0)
            self._bar.start()

    def page_done(self, count: int) -> None:
        if self._bar is not None:
            with self._lock:
                self._objects += count
                self._bar.update(self._task, objects=self._objects)

    def list_done(self, label: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=label)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# ---------------------------------------------------------------------------------------------
# From a read to resources and facts (shared with snapshots, so both give identical results)


def object_origin(api_version: str, resource: str, namespace: str | None, name: str) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    return f"{base}/{resource}/{name}"


def iter_objects(read: ClusterRead) -> Iterator[tuple[dict[str, Any], Source]]:
    for outcome in read.lists:
        target = outcome.target
        for item in outcome.items:
            meta = item.get("metadata") or {}
            origin = object_origin(target.api_version, target.resource, meta.get("namespace"),
                                   str(meta.get("name") or ""))
            yield item, Source(read.source_name, None, origin=origin)


def facts_of(read: ClusterRead) -> dict[str, Any]:
    forbidden: dict[str, str] = {}
    nodes: list[dict[str, Any]] = []
    for outcome in read.lists:
        kind = outcome.target.kind
        reason = outcome.forbidden or outcome.failed
        if reason and outcome.target.fact_kind not in forbidden:
            forbidden[outcome.target.fact_kind] = reason
        if kind == "Node" and outcome.target.group == "":
            for item in outcome.items:
                status = item.get("status")
                info = status.get("nodeInfo") if isinstance(status, dict) else None
                info = info if isinstance(info, dict) else {}
                nodes.append({"name": (item.get("metadata") or {}).get("name"), **info})
    notes = list(read.notes)
    denied = sorted({o.target.fact_kind for o in read.lists if o.forbidden})
    if denied:
        notes.append(f"the credentials may not list {', '.join(denied)}: controls that need "
                     f"{'these kinds' if len(denied) > 1 else 'it'} are not_assessed")
    if read.namespaces:
        notes.append(
            "cluster read limited to namespaces " + ", ".join(read.namespaces)
            + "; cluster-scoped objects were read in full"
        )
    if any(o.target.metadata_only and not o.forbidden for o in read.lists):
        notes.append(
            "Secrets were read as metadata only (PartialObjectMetadata), their built-in types with "
            "type field selectors: their data never left the API server"
        )
    facts: dict[str, Any] = {
        "cluster": not read.namespaces,  # a namespace-limited read is not the whole cluster
        "source": read.source_name,
        "context": read.context,
        "server_version": read.server_version,
        "nodes": nodes,
        "forbidden_kinds": forbidden,
        "notes": notes,
    }
    if read.namespaces:
        facts["namespaces_scanned"] = list(read.namespaces)
    return facts


def to_load_result(read: ClusterRead, facts: dict[str, Any] | None = None) -> LoadResult:
    result = LoadResult()
    for item, source in iter_objects(read):
        explode(item, source, result)
    for outcome in read.lists:
        if outcome.failed:
            result.errors.append(InputError(read.source_name, f"cannot list {outcome.target.label}: {outcome.failed}"))
    result.facts = facts if facts is not None else facts_of(read)
    return result


def load_cluster(request: Any) -> tuple[LoadResult, dict[str, Any]]:
    """The ``cluster`` named source for scanner.build_inventory."""
    from kubeharden.scanner import UsageError

    options = ClusterOptions.from_request(request.sources.get("cluster") or {})
    try:
        read = read_cluster(options)
    except ClusterError as exc:
        raise UsageError(f"cluster: {exc}") from None
    result = to_load_result(read)
    facts = result.facts
    result.facts = {}
    return result, facts


def _register() -> None:
    from kubeharden import scanner

    scanner.register_source("cluster", load_cluster)


_register()
