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

import contextlib
import datetime
import email.utils
import hashlib
import os
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any, TypeVar
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
MAX_RETRY_WAIT = 10.0  # seconds: the longest wait before a retry, whatever Retry-After asks
MAX_RESPONSE_BYTES = 1 << 30  # one answer; a page of 500 objects of etcd's 1.5 MiB limit is less
_T = TypeVar("_T")


# the kinds --selector (-l) applies to: those with a pod template
SELECTABLE_KINDS = frozenset(("Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                              "ReplicationController", "PodTemplate"))


class ClusterError(Exception):
    """The cluster cannot be read at all (bad credentials, unreachable server, bad kubeconfig)."""


@dataclass
class ClusterOptions:
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: tuple[str, ...] = ()
    timeout: float = 30.0  # seconds per request, in total (connect, send, the whole answer)
    retries: int = 4  # retries of a request on 429 / 5xx / timeouts / dropped connections
    backoff: float = 0.5  # first retry delay in seconds; doubles each retry (capped at MAX_RETRY_WAIT)
    page_size: int = 500  # LIST limit
    workers: int = 4  # concurrent LIST requests
    max_restarts: int = 3  # LIST restarts after 410 Gone (expired continue token)
    max_objects: int = 1_000_000  # objects of one LIST: more is a runaway server (pages: max_pages())
    progress: bool | None = None  # None: a progress bar when stderr is a terminal
    # kubectl -l: a label selector for the LISTs of pod-bearing kinds only, so that policies, RBAC and
    # namespaces stay complete and cross-resource answers about the selected workloads stay right
    label_selector: str | None = None

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
        version = quote(self.version, safe="")  # version and resource come from the server
        base = f"/apis/{self.group}/{version}" if self.group else f"/api/{version}"
        if self.namespace is not None:
            base += f"/namespaces/{quote(self.namespace, safe='')}"
        return f"{base}/{quote(self.resource, safe='')}"

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
    resource_version: str | None = None  # of the list (its snapshot): where a WATCH of the kind starts


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
    def __init__(self, status: int, reason: str, retry_after: float | None = None,
                 transient: bool | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.retry_after = retry_after
        # 429, 5xx, timeouts and dropped connections (status 0) may pass; a malformed answer will not
        self.transient = status in _TRANSIENT_STATUS or status == 0 if transient is None else transient
        self.retries = 0  # how many retries were made before giving up

    @property
    def described(self) -> str:
        return f"{self.status} {self.reason}" if self.status else self.reason


class _Malformed(_HttpError):
    """An answer of the wrong shape (a string where an object belongs ...): never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(0, f"malformed response: {reason}", transient=False)


# ---------------------------------------------------------------------------------------------
# Transport

# The official client's timeouts bound each socket operation, not a request: a server that
# sends one byte every few seconds would hold a read for ever. Each request gets a deadline;
# when it passes, the socket of the request is shut down, which ends any read in progress.
_active = threading.local()


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._done = False
        self._lock = threading.Lock()
        self._connections: list[Any] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _active.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()
        _active.deadline = None

    def attach(self, connection: Any) -> None:
        with self._lock:
            connection.kh_deadline = self
            self._connections.append(connection)
            expired = self.expired
        if expired:
            _shut_down(connection)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            # a connection back in the pool may serve another request by now: leave it to that one
            mine = [c for c in self._connections if getattr(c, "kh_deadline", None) is self]
        for connection in mine:
            _shut_down(connection)


def _shut_down(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # the plain socket's shutdown: safe from another thread
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _DeadlineConnection:
    """Mixed into urllib3's connection classes: a connection joins the deadline of the request
    that uses it (when it connects, and at each request on a kept-alive connection)."""

    def connect(self) -> None:
        _join_deadline(self)
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        _join_deadline(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


def _join_deadline(connection: Any) -> None:
    deadline = getattr(_active, "deadline", None)
    if deadline is not None:
        deadline.attach(connection)


def _with_deadlines(manager: Any) -> None:
    """Give a urllib3 pool manager connections that honour request deadlines (any scheme,
    proxies included: the classes are derived from the ones the manager already uses)."""
    classes: dict[str, Any] = {}
    for scheme, pool_class in manager.pool_classes_by_scheme.items():
        connection_class = type(f"Deadline{pool_class.ConnectionCls.__name__}",
                                (_DeadlineConnection, pool_class.ConnectionCls), {})
        classes[scheme] = type(f"Deadline{pool_class.__name__}", (pool_class,), {"ConnectionCls": connection_class})
    manager.pool_classes_by_scheme = classes  # a new dict: the default one is urllib3's module global


class ApiReader:
    """Raw GETs through the official client's configured transport, with retries."""

    def __init__(self, options: ClusterOptions, sleep: Callable[[float], None] = time.sleep) -> None:
        from kubernetes import client, config

        self.options = options
        self._sleep = sleep
        configuration = client.Configuration()
        context = options.context
        kubeconfig = options.kubeconfig or os.environ.get("KUBECONFIG") or None
        where = kubeconfig or "~/.kube/config"
        secrets: set[str] = set()
        try:
            if options.kubeconfig is None and _in_cluster():
                where = "in-cluster service account"
                config.load_incluster_config(client_configuration=configuration)
                context = "in-cluster"
            else:
                # $KUBECONFIG may list several files: the client merges them like kubectl
                secrets = check_kubeconfig(_kubeconfig_files(options.kubeconfig), options.context)
                config.load_kube_config(
                    config_file=kubeconfig, context=options.context,
                    client_configuration=configuration, persist_config=False,
                )
                if context is None:
                    _, current = config.list_kube_config_contexts(kubeconfig)
                    context = str(current.get("name")) if isinstance(current, dict) else "default"
        except ClusterError:
            raise
        except Exception as exc:  # the client's loader fails on odd configs with any exception type
            message = _redact(f"{type(exc).__name__}: {exc}", secrets)
            raise ClusterError(f"cannot load cluster configuration ({where}): {_clip(message)}") from None
        configuration.retries = False  # retries are ours: counted, with backoff, on status too
        configuration.connection_pool_maxsize = max(options.workers, 1) + 1
        self.context = context or "default"
        self.host = configuration.host
        self.api = client.ApiClient(configuration)
        _with_deadlines(self.api.rest_client.pool_manager)

    def close(self) -> None:
        self.api.close()

    @property
    def retry_budget(self) -> float:
        """Seconds one request may spend with its retries before a wait is refused."""
        return (max(self.options.retries, 0) + 1) * self.options.timeout

    def get_json(self, path: str, query: list[tuple[str, Any]] | None = None,
                 accept: str = "application/json") -> dict[str, Any]:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return self._get_once(path, query, accept)
            except _HttpError as exc:
                exc.retries = attempt
                if not exc.transient or attempt >= self.options.retries:
                    raise
                asked = exc.retry_after
                delay = min(asked if asked is not None else self._delay(attempt), MAX_RETRY_WAIT)
                if time.monotonic() - started + delay > self.retry_budget:
                    why = f"the server asked to wait {asked:g} s" if asked is not None else "no time left"
                    exc.reason += f"; gave up after {attempt} retries: {why} (retry budget {self.retry_budget:g} s)"
                    raise
            attempt += 1
            self._sleep(delay)

    def _delay(self, attempt: int) -> float:
        base = min(self.options.backoff * (2**attempt), MAX_RETRY_WAIT)
        return base * (0.5 + random.random() / 2)  # jitter: workers do not retry in lockstep

    def _get_once(self, path: str, query: list[tuple[str, Any]] | None, accept: str) -> dict[str, Any]:
        import http.client

        import urllib3
        from kubernetes.client.exceptions import ApiException

        method, url, headers, _body, _post = self.api.param_serialize(
            "GET", path, query_params=query or [], header_params={"Accept": accept},
            auth_settings=["BearerToken"],
        )
        timeout = self.options.timeout
        with _Deadline(timeout) as deadline:
            try:
                response = self.api.call_api(method, url, header_params=headers, _request_timeout=(timeout, timeout))
                data = _read_body(response.response, path)
            except ApiException as exc:  # TLS errors surface as status 0
                raise _HttpError(exc.status or 0, _clip(str(exc.reason or exc).strip())) from None
            except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
                if deadline.expired:
                    raise _HttpError(0, f"timed out: no complete answer within {timeout:g} s "
                                        "(request timeout)") from None
                raise _HttpError(0, _clip(f"{type(exc).__name__}: {exc}")) from None
        status = response.status
        if status >= 400:
            raise _HttpError(status, _status_message(data, response.reason), _retry_after(response.headers))
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _HttpError(0, f"invalid JSON from {path}: {exc.msg}") from None
        if not isinstance(value, dict):
            raise _Malformed(f"{path}: the answer is {_json_type(value)}, not an object")
        return value


    def watch(self, target: ListTarget, resource_version: str, timeout_seconds: int,
              max_event_bytes: int = 16 << 20) -> Iterator[dict[str, Any]]:
        """The events of one WATCH of ``target`` from ``resource_version`` (BOOKMARKs asked for), until the
        server ends it after ``timeout_seconds``. Bounded: the whole watch by a deadline a request timeout
        beyond that, one event by ``max_event_bytes``. An ERROR event (410 Gone: the version is too old) and
        a refused WATCH raise _HttpError with the server's status; not retried here."""
        query: list[tuple[str, Any]] = [("watch", "1"), ("resourceVersion", resource_version),
                                        ("allowWatchBookmarks", "true"), ("timeoutSeconds", timeout_seconds)]
        method, url, headers, _body, _post = self.api.param_serialize(
            "GET", target.path, query_params=query, header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"])
        timeout = self.options.timeout
        with _Deadline(timeout_seconds + timeout):
            try:
                response = self.api.call_api(method, url, header_params=headers,
                                             _request_timeout=(timeout, timeout_seconds + timeout))
            except Exception as exc:  # ApiException (TLS: status 0), urllib3 and socket errors
                raise _HttpError(int(getattr(exc, "status", 0) or 0), _clip(f"{type(exc).__name__}: {exc}")) from None
            raw = response.response
            try:
                if response.status >= 400:
                    data = raw.read(1 << 16)
                    raise _HttpError(response.status, _status_message(data, response.reason),
                                     _retry_after(response.headers))
                pending = b""
                while True:
                    try:
                        chunk = raw.read1(1 << 16) if hasattr(raw, "read1") else raw.read(1 << 16)
                    except Exception as exc:  # the deadline cut the connection, or the server did
                        raise _HttpError(0, _clip(f"watch of {target.path} broken: {type(exc).__name__}")) from None
                    if not chunk:
                        return
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    if len(pending) > max_event_bytes:
                        raise _Malformed(f"watch of {target.path}: an event over {max_event_bytes >> 20} MiB")
                    for line in lines:
                        if line.strip():
                            yield _watch_event(line, target.path)
            finally:
                raw.close()
                raw.release_conn()


def _watch_event(line: bytes, path: str) -> dict[str, Any]:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise _Malformed(f"watch of {path}: invalid JSON event: {exc.msg}") from None
    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
        raise _Malformed(f"watch of {path}: an event without an object")
    if event.get("type") == "ERROR":
        status = event["object"]
        code = status.get("code") if isinstance(status.get("code"), int) else 0
        raise _HttpError(code, _clip(str(status.get("message") or "watch error")))
    return event


def _read_body(response: Any, path: str) -> bytes:
    """The body, refused beyond MAX_RESPONSE_BYTES (a page of 500 large objects is far less)."""
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := response.read(1 << 16):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise _HttpError(0, f"the answer of {path} exceeds {MAX_RESPONSE_BYTES >> 20} MiB", transient=False)
            chunks.append(chunk)
    except BaseException:
        response.close()  # the connection is not reused with part of a body unread
        raise
    finally:
        response.release_conn()
    return b"".join(chunks)


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG") and \
        not os.path.exists(os.path.expanduser("~/.kube/config"))


_SHOWN_MAX = 1000  # characters of a server's or library's message kept in errors


def _clip(text: str) -> str:
    """A message from elsewhere, made safe to show: control characters escaped, length bounded."""
    text = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
    return text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX] + " ..."


def _status_message(data: bytes, reason: str | None) -> str:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return _clip(str(body["message"]))
    return _clip(str(reason or "error"))


_SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,6})?")


def _retry_after(headers: Any) -> float | None:
    """Retry-After in seconds (a number or an HTTP date), None when absent or unusable."""
    value = headers.get("Retry-After") if headers is not None else None
    if not isinstance(value, str):
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - datetime.datetime.now(datetime.UTC)).total_seconds(), 0.0)


# ---------------------------------------------------------------------------------------------
# Kubeconfig: checked before the client reads it, since the client's loader fails on wrong types
# with AttributeError or TypeError (a `user:` that is a string), or takes them silently.

_KUBECONFIG_SECTIONS: dict[str, tuple[str, dict[str, type]]] = {
    "clusters": ("cluster", {
        "server": str, "certificate-authority": str, "certificate-authority-data": str,
        "insecure-skip-tls-verify": bool, "tls-server-name": str, "proxy-url": str,
        "disable-compression": bool, "extensions": list,
    }),
    "users": ("user", {
        "token": str, "tokenFile": str, "client-certificate": str, "client-certificate-data": str,
        "client-key": str, "client-key-data": str, "username": str, "password": str, "as": str,
        "as-uid": str, "as-groups": list, "as-user-extra": dict, "exec": dict, "auth-provider": dict,
        "extensions": list,
    }),
    "contexts": ("context", {"cluster": str, "user": str, "namespace": str, "extensions": list}),
}
_KUBECONFIG_SECRET_FIELDS = ("token", "password", "client-key-data", "client-certificate-data")


def _kubeconfig_files(kubeconfig: str | None) -> list[tuple[str, bool]]:
    """(file, required) pairs: --kubeconfig must exist; files of $KUBECONFIG may be missing (kubectl)."""
    if kubeconfig:
        return [(kubeconfig, True)]
    listed = os.environ.get("KUBECONFIG")
    if listed:
        return [(name, False) for name in listed.split(os.pathsep) if name]
    return [(os.path.expanduser("~/.kube/config"), True)]


def check_kubeconfig(files: list[tuple[str, bool]], context: str | None = None) -> set[str]:
    """Raise ClusterError naming the file and field of the first problem; return the
    credentials the files hold, so that no message can show them."""
    from kubeharden.yamlsafe import Limits, YamlInputError, iter_yaml_documents

    merged: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {s: {} for s in _KUBECONFIG_SECTIONS}
    current: str | None = None
    secrets: set[str] = set()
    for name, required in files:
        try:
            data = FsPath(name).read_bytes()
        except FileNotFoundError:
            if required:
                raise ClusterError(f"kubeconfig {name} does not exist") from None
            continue
        except OSError as exc:
            raise ClusterError(f"cannot read kubeconfig {name}: {exc.strerror or exc}") from None
        problems: list[YamlInputError] = []
        docs = list(iter_yaml_documents(data, Limits(), problems))
        if problems:
            line = f" (line {problems[0].line})" if problems[0].line else ""
            raise ClusterError(f"kubeconfig {name} is not valid YAML{line}: {problems[0].message}")
        top = docs[0].data if docs else None
        if top is None:
            continue  # an empty file adds nothing, as for kubectl
        bad = _kubeconfig_problem(top, merged, name, secrets)
        if bad:
            raise ClusterError(f"kubeconfig {name}: {bad}")
        if current is None and top.get("current-context"):
            current = top["current-context"]
    chosen = context or current
    found = merged["contexts"].get(chosen) if chosen else None
    if found is not None:
        file, entry = found
        for key in ("cluster", "user"):
            if not entry.get(key):
                raise ClusterError(f"kubeconfig {file}: context {chosen!r} names no {key}")
        cluster = merged["clusters"].get(entry["cluster"])
        if cluster is not None and not cluster[1].get("server"):
            raise ClusterError(f"kubeconfig {cluster[0]}: cluster {entry['cluster']!r} has no server")
    return secrets


def _kubeconfig_problem(top: Any, merged: dict[str, dict[str, tuple[str, dict[str, Any]]]], file: str,
                        secrets: set[str]) -> str | None:
    """What is wrong with one kubeconfig document, or None; collects its entries and secrets."""
    if not isinstance(top, dict):
        return f"the file is {_json_type(top)}, not a mapping"
    for key in ("current-context", "apiVersion", "kind"):
        if top.get(key) is not None and not isinstance(top[key], str):
            return f"{key} is {_json_type(top[key])}, not a string"
    for section, (inner, fields) in _KUBECONFIG_SECTIONS.items():
        entries = top.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            return f"{section} is {_json_type(entries)}, not a list"
        for index, entry in enumerate(entries):
            where = f"{section}[{index}]"
            if not isinstance(entry, dict):
                return f"{where} is {_json_type(entry)}, not a mapping"
            if not isinstance(entry.get("name"), str) or not entry["name"]:
                return f"{where}.name is {_json_type(entry.get('name'))}, not a name"
            where = f"{section}[{index}] ({entry['name']})"
            body = entry.get(inner)
            if not isinstance(body, dict):
                return f"{where}.{inner} is {_json_type(body)}, not a mapping"
            for key, expected in fields.items():
                if body.get(key) is not None and not isinstance(body[key], expected):
                    return f"{where}.{inner}.{key} is {_json_type(body[key])}, not {_JSON_NAMES[expected]}"
            secrets.update(v for k in _KUBECONFIG_SECRET_FIELDS if isinstance(v := body.get(k), str) and v)
            problem = _plugin_problem(body, f"{where}.{inner}")
            if problem:
                return problem
            merged[section].setdefault(entry["name"], (file, body))  # the first one wins, as for kubectl
    return None


def _plugin_problem(user: dict[str, Any], where: str) -> str | None:
    exec_ = user.get("exec")
    if isinstance(exec_, dict):
        if not isinstance(exec_.get("command"), str) or not exec_["command"]:
            return f"{where}.exec.command is {_json_type(exec_.get('command'))}, not a command"
        if not all(isinstance(a, str) for a in exec_.get("args") or ()) or \
                not isinstance(exec_.get("args") or [], list):
            return f"{where}.exec.args must be a list of strings"
        env = exec_.get("env") or []
        if not isinstance(env, list) or not all(
                isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("value"), str)
                for e in env):
            return f"{where}.exec.env must be a list of name/value mappings of strings"
    provider = user.get("auth-provider")
    if isinstance(provider, dict):
        if not isinstance(provider.get("name"), str):
            return f"{where}.auth-provider.name is {_json_type(provider.get('name'))}, not a string"
        settings = provider.get("config")
        if settings is not None and not isinstance(settings, dict):
            return f"{where}.auth-provider.config is {_json_type(settings)}, not a mapping"
    return None


def _redact(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return text


# ---------------------------------------------------------------------------------------------
# Shapes of answers: the reader looks at a field only after checking its JSON type

_JSON_NAMES: dict[type, str] = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _field(obj: dict[str, Any], key: str, expected: type[_T], path: str, place: str = "",
           required: bool = False) -> _T | None:
    """obj[key] when of the expected type; None when absent (unless required); else _Malformed."""
    value = obj.get(key)
    name = f"{place}.{key}" if place else key
    if value is None:
        if required:
            raise _Malformed(f"{path}: {name} is missing")
        return None
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise _Malformed(f"{path}: {name} is {_json_type(value)}, not {_JSON_NAMES[expected]}")
    return value


def _objects(obj: dict[str, Any], key: str, path: str, place: str = "") -> list[dict[str, Any]]:
    """obj[key] as a list of objects (empty when absent); any other entry is _Malformed."""
    values = _field(obj, key, list, path, place) or []
    name = f"{place}.{key}" if place else key
    for index, value in enumerate(values):
        if not isinstance(value, dict):
            raise _Malformed(f"{path}: {name}[{index}] is {_json_type(value)}, not an object")
    return values


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
    served[""] = ("v1", _resources(reader.get_json("/api/v1"), "/api/v1"))
    for group, versions, preferred in _groups(reader.get_json("/apis")):
        # A wanted kind may be served only in a non-preferred version (PodSecurityPolicy lives
        # in policy/v1beta1 while policy prefers v1): look at each version until found.
        for version in [preferred, *[v for v in versions if v != preferred]]:
            path = f"/apis/{group}/{quote(version, safe='')}"
            try:
                resources = _resources(reader.get_json(path), path)
            except _HttpError as exc:
                if exc.status == 401:
                    raise
                notes.append(f"discovery of {group}/{version} failed: {exc.reason}")
                undiscovered.setdefault(group, (version, f"discovery of {group}/{version} failed: {exc.described}"))
                continue
            previous = served.get(group)
            if previous is None:
                served[group] = (version, resources)
            else:
                known = {r["kind"] for r in previous[1] if "/" not in r["name"]}
                previous[1].extend(dict(r, _version=version) for r in resources if r["kind"] not in known)
            have = {r["kind"] for r in served[group][1] if "/" not in r["name"]}
            if all(kind in have for kind in WANTED_KINDS[group]):
                break
    targets: list[ListTarget] = []
    unknown: list[ListOutcome] = []
    for group, kinds in WANTED_KINDS.items():
        version, resources = served.get(group, ("", []))
        for kind in kinds:
            match = next(
                (r for r in resources if r["kind"] == kind and "/" not in r["name"]
                 and "list" in (r["verbs"] if r["verbs"] is not None else ["list"])),
                None,
            )
            if match is None:
                if group in undiscovered:
                    failed_version, reason = undiscovered[group]
                    target = ListTarget(group, failed_version, "", kind, False)
                    unknown.append(ListOutcome(target, failed=reason))
                continue
            namespaced = match["namespaced"]
            res_version = str(match.get("_version") or version)
            scopes: list[str | None] = list(namespaces) if namespaced and namespaces else [None]
            selectors: list[str | None] = [None]
            if (group, kind) == ("", "Secret"):
                selectors += [f"type={secret_type}" for secret_type in SECRET_TYPES_LISTED]
            targets.extend(
                ListTarget(group, res_version, match["name"], kind, namespaced, scope, selector)
                for scope in scopes for selector in selectors
            )
    return targets, unknown, notes


def _groups(listing: dict[str, Any]) -> Iterator[tuple[str, list[str], str]]:
    """(group, versions, preferred version) of each wanted group of an APIGroupList."""
    for index, group in enumerate(_objects(listing, "groups", "/apis")):
        place = f"groups[{index}]"
        name = _field(group, "name", str, "/apis", place, required=True)
        if name not in WANTED_KINDS:
            continue  # what is not read is not checked
        versions = [
            version for number, entry in enumerate(_objects(group, "versions", "/apis", place))
            if (version := _field(entry, "version", str, "/apis", f"{place}.versions[{number}]"))
        ]
        preferred_entry = _field(group, "preferredVersion", dict, "/apis", place) or {}
        preferred = _field(preferred_entry, "version", str, "/apis", f"{place}.preferredVersion") or \
            (versions[0] if versions else None)
        if preferred:
            yield str(name), versions, preferred


def _resources(listing: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """The resources of an APIResourceList, each with checked name, kind, verbs and scope."""
    resources: list[dict[str, Any]] = []
    for index, entry in enumerate(_objects(listing, "resources", path)):
        place = f"resources[{index}]"
        verbs = _field(entry, "verbs", list, path, place)
        if verbs is not None and not all(isinstance(v, str) for v in verbs):
            raise _Malformed(f"{path}: {place}.verbs holds a value that is not a string")
        resources.append({
            "name": _field(entry, "name", str, path, place, required=True),
            "kind": _field(entry, "kind", str, path, place, required=True),
            "verbs": verbs,
            "namespaced": bool(_field(entry, "namespaced", bool, path, place)),
        })
    return resources


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


def max_pages(options: ClusterOptions) -> int:
    """Pages one LIST may take: servers may send short pages, so twice the full pages of a list
    of ``max_objects``, plus a few; finite, so a server that never ends a list cannot hold it."""
    return 2 * -(-max(options.max_objects, 1) // max(options.page_size, 1)) + 10


def list_all(reader: ApiReader, target: ListTarget, on_page: Callable[[int], None] | None = None) -> ListOutcome:
    """Every object of one LIST, page by page; restarts the list when its token expired."""
    outcome = ListOutcome(target)
    accept = _METADATA_ACCEPT if target.metadata_only else "application/json"
    options = reader.options
    page_limit = max_pages(options)
    while True:
        items: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[bytes] = set()  # digests of the continue tokens of this pass
        pages = 0
        try:
            while True:
                query: list[tuple[str, Any]] = [("limit", options.page_size)]
                if target.field_selector:
                    query.append(("fieldSelector", target.field_selector))
                if options.label_selector and target.kind in SELECTABLE_KINDS:
                    query.append(("labelSelector", options.label_selector))
                if token:
                    query.append(("continue", token))
                page = reader.get_json(target.path, query, accept)
                outcome.pages += 1
                pages += 1
                page_items = _objects(page, "items", target.path)
                for index, item in enumerate(page_items):
                    meta = _field(item, "metadata", dict, target.path, f"items[{index}]") or {}
                    if target.metadata_only:
                        item = {"metadata": meta}
                    _slim_item(target.kind, item)
                    item["apiVersion"] = target.api_version
                    item["kind"] = target.kind
                    items.append(item)
                if len(items) > options.max_objects:
                    raise _Malformed(f"{target.path}: more than {options.max_objects} objects (setting: max_objects)")
                if on_page is not None:
                    on_page(len(page_items))
                list_meta = _field(page, "metadata", dict, target.path) or {}
                token = _field(list_meta, "continue", str, target.path, "metadata") or None
                if not token:
                    break
                digest = hashlib.blake2b(token.encode(), digest_size=16).digest()
                if digest in seen:
                    raise _Malformed(f"{target.path}: the server sent a continue token it had sent before "
                                     f"(page {pages}): the list would never end")
                seen.add(digest)
                if pages >= page_limit:
                    raise _Malformed(f"{target.path}: the list did not end within {page_limit} pages")
        except _HttpError as exc:
            if exc.status == 410 and token and outcome.restarts < options.max_restarts:
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
                tried = f" (after {exc.retries} retries)" if exc.transient else ""
                outcome.failed = f"{exc.described}{where}{tried}"
            return outcome
        outcome.items = items
        outcome.resource_version = _field(list_meta, "resourceVersion", str, target.path, "metadata") or None
        return outcome


def read_cluster(options: ClusterOptions, reader: ApiReader | None = None) -> ClusterRead:
    """Read the cluster: version, discovery, then every LIST concurrently."""
    reader = reader or ApiReader(options)
    try:
        try:
            version = reader.get_json("/version")
            git_version = _field(version, "gitVersion", str, "/version")
            targets, undiscovered, notes = discover(reader, options.namespaces)
        except _HttpError as exc:
            raise _cluster_error(exc, reader) from None
        lists = merge_secret_types(_run_lists(reader, targets, options)) + undiscovered
        if options.label_selector:
            notes.append(f"workloads read with the label selector {options.label_selector!r}; "
                         "other kinds were read in full")
    finally:
        reader.close()
    return ClusterRead(
        source_name=f"cluster:{reader.context}",
        context=reader.context,
        server_version=git_version or None,
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
    if isinstance(exc, _Malformed):
        return ClusterError(f"the API server at {reader.host} (context {reader.context!r}) sent a {exc.reason}")
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
