"""A loopback HTTPS server that speaks the part of the Kubernetes REST API kubeharden reads.

It serves /version, legacy discovery (/api, /apis, /api/v1, /apis/<group>/<version>) and
LIST for every resource it knows, with the API server's behaviour on what matters:
limit/continue pagination over a consistent snapshot (resourceVersion), typed lists whose
items carry no kind/apiVersion, PartialObjectMetadataList on request, 401 without the bearer
token, 403 for chosen resources, 410 Gone for an expired continue token, injected transient
failures (429/503, with a chosen Retry-After) and slow responses; and, for the tests of hostile
servers, answers of the wrong shape, lists that never end and answers trickled byte by byte.
Objects come from fixture files or generators.

Only for tests: it binds 127.0.0.1 and stops when the test ends.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# (group, version, plural, kind, namespaced, short names)
RESOURCES: tuple[tuple[str, str, str, str, bool], ...] = (
    ("", "v1", "namespaces", "Namespace", False),
    ("", "v1", "nodes", "Node", False),
    ("", "v1", "pods", "Pod", True),
    ("", "v1", "services", "Service", True),
    ("", "v1", "serviceaccounts", "ServiceAccount", True),
    ("", "v1", "configmaps", "ConfigMap", True),
    ("", "v1", "secrets", "Secret", True),
    ("", "v1", "limitranges", "LimitRange", True),
    ("", "v1", "resourcequotas", "ResourceQuota", True),
    ("", "v1", "replicationcontrollers", "ReplicationController", True),
    ("", "v1", "podtemplates", "PodTemplate", True),
    ("", "v1", "persistentvolumes", "PersistentVolume", False),
    ("", "v1", "events", "Event", True),
    ("apps", "v1", "deployments", "Deployment", True),
    ("apps", "v1", "replicasets", "ReplicaSet", True),
    ("apps", "v1", "statefulsets", "StatefulSet", True),
    ("apps", "v1", "daemonsets", "DaemonSet", True),
    ("batch", "v1", "jobs", "Job", True),
    ("batch", "v1", "cronjobs", "CronJob", True),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", True),
    ("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    ("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
     "ValidatingWebhookConfiguration", False),
    ("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
     "MutatingWebhookConfiguration", False),
    ("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False),
    ("cilium.io", "v2", "ciliumnetworkpolicies", "CiliumNetworkPolicy", True),
    ("crd.projectcalico.org", "v1", "networkpolicies", "NetworkPolicy", True),
)

PAGE_LIMIT_MAX = 5000


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost (it is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "apiserver.crt"
    key_path = directory / "apiserver.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )
    return cert_path, key_path


def load_fixture_objects(paths: Iterable[Path]) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for path in paths:
        for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if isinstance(doc, dict) and doc.get("kind"):
                objects.append(doc)
    return objects


def synthetic_cluster(count: int, privileged_every: int = 100) -> list[dict[str, Any]]:
    """About ``count`` objects shaped like a real cluster's: per app a Deployment, its ReplicaSet
    and three Pods (ownerReferences by uid, status as the kubelet reports it), a Service, a
    ConfigMap and a ServiceAccount; one app in ``privileged_every`` runs privileged."""
    apps = max(count // 8, 1)
    namespaces = max(apps // 50, 1)
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{n}"}} for n in range(namespaces)
    ]
    for i in range(apps):
        ns, app = f"team-{i % namespaces}", f"app-{i:06d}"
        labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": f"suite-{i % 13}"}
        container = {
            "name": "main", "image": f"registry.example/{app}:1.{i % 9}.0",
            "ports": [{"containerPort": 8080, "name": "http"}],
            "env": [{"name": "MODE", "value": "production"}, {"name": "LOG_LEVEL", "value": "info"}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "securityContext": {"privileged": i % privileged_every == 0, "runAsNonRoot": True},
        }
        template: dict[str, Any] = {"metadata": {"labels": labels},
                                    "spec": {"serviceAccountName": app, "containers": [container]}}
        applied = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps({"spec": template})}
        deploy_uid, rs_uid = f"deploy-{i}", f"rs-{i}"
        objects.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": app, "namespace": ns, "labels": labels, "uid": deploy_uid, "annotations": applied},
            "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": template},
            "status": {"replicas": 3, "readyReplicas": 3, "conditions": [{"type": "Available", "status": "True"}]},
        })
        objects.append({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{app}-7d9f", "namespace": ns, "labels": labels, "uid": rs_uid,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app,
                                              "uid": deploy_uid, "controller": True}]},
            "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": template},
            "status": {"replicas": 3},
        })
        for r in range(3):
            objects.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{app}-7d9f-{r}", "namespace": ns, "labels": labels, "uid": f"pod-{i}-{r}",
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                  "name": f"{app}-7d9f", "uid": rs_uid, "controller": True}]},
                "spec": {**template["spec"], "nodeName": f"node-{(i + r) % 40}"},
                "status": {"phase": "Running", "podIP": f"10.{i % 250}.{r}.{i % 200}",
                           "conditions": [{"type": t, "status": "True"} for t in
                                          ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                           "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0,
                                                  "image": container["image"], "imageID": "sha256:" + "0" * 64,
                                                  "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]},
            })
        objects.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": ns},
                        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]}})
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-config", "namespace": ns},
                        "data": {"settings.yaml": "feature: on\n" * 20}})
        objects.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": app, "namespace": ns},
                        "automountServiceAccountToken": False})
    return objects


@dataclass
class Behaviour:
    """What the server does beyond the happy path; tests change it between requests."""

    token: str = "test-token"
    forbidden: set[str] = field(default_factory=set)  # plurals (or plural.group) whose LIST answers 403
    allowed: set[tuple[str, str]] | None = None  # like RBAC: only these (group, plural) may be listed
    expire_continue_once: set[str] = field(default_factory=set)  # plurals: first continue gets 410
    fail_next: dict[str, list[int]] = field(default_factory=dict)  # plural -> statuses to answer first
    fail_selector: dict[str, list[int]] = field(default_factory=dict)  # fieldSelector -> statuses first
    delay: float = 0.0  # seconds before every LIST answer
    slow: dict[str, float] = field(default_factory=dict)  # plural -> seconds before its LIST answers
    git_version: str = "v1.34.1"
    broken_discovery: set[str] = field(default_factory=set)  # groups whose /apis/<group>/<version> answers 503
    unauthorized_lists: set[str] = field(default_factory=set)  # plurals whose LIST answers 401 (token revoked)
    # hostile or broken servers
    replace: dict[str, Any] = field(default_factory=dict)  # URL path -> JSON body answered (200) instead
    endless: dict[str, Any] = field(default_factory=dict)  # plural -> continue token of every page, "fresh": a new one
    trickle: dict[str, float] = field(default_factory=dict)  # plural -> seconds between the bytes of its LIST answer
    retry_after: str | None = None  # Retry-After header of injected 429/503 answers (429 default: "0")
    watch_gone_once: set[str] = field(default_factory=set)  # plurals: the next WATCH gets an ERROR 410 event


class FakeApiServer:
    def __init__(self, objects: list[dict[str, Any]], behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._resource_version = 1000
        self._store: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self._changes = threading.Condition()
        self._events: list[tuple[int, str, str, str, dict[str, Any]]] = []
        self._compacted = 0
        self._closing = False
        self._by_plural = {(g, v, p): (k, ns) for g, v, p, k, ns in RESOURCES}
        kind_index = {(g, k): (g, v, p) for g, v, p, k, _ in RESOURCES}
        for obj in objects:
            api_version = str(obj.get("apiVersion", ""))
            group = api_version.rpartition("/")[0] if "/" in api_version else ""
            key = kind_index.get((group, str(obj["kind"])))
            if key is None:
                raise ValueError(f"fake API server does not serve {api_version} {obj['kind']}")
            stored = json.loads(json.dumps(obj))
            meta = stored.setdefault("metadata", {})
            self._resource_version += 1
            meta.setdefault("resourceVersion", str(self._resource_version))
            meta.setdefault("uid", f"uid-{self._resource_version}")
            meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
            # what the real server keeps and kubeharden must drop
            meta.setdefault("managedFields", [{"manager": "kubectl", "operation": "Update",
                                               "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}])
            self._store[(key[0], key[2])].append(stored)
        for items in self._store.values():
            items.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        self._tmp = tempfile.TemporaryDirectory(prefix="kh-fake-apiserver-")
        self.cert_path, key_path = make_certificate(Path(self._tmp.name))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key_path)
        handler = type("Handler", (_Handler,), {"api": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changes:
            self._closing = True  # watches in progress end
            self._changes.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._tmp.cleanup()

    def kubeconfig(self, path: Path, token: str | None = None, context: str = "fake") -> Path:
        """A kubeconfig that trusts this server's certificate and carries the bearer token."""
        ca = base64.b64encode(self.cert_path.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url, "certificate-authority-data": ca}}],
            "users": [{"name": "reader", "user": {"token": token if token is not None else self.behaviour.token}}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "reader"}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # -- changes and WATCH (for the webhook's live cluster context) --------------------------------

    def put(self, obj: dict[str, Any]) -> None:
        """Create or replace an object, as a client's apply would: a new resourceVersion and a watch event."""
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        plural = next(p for g, _v, p, k, _ns in RESOURCES if g == group and k == obj["kind"])
        stored = json.loads(json.dumps(obj))
        with self._changes:
            self._resource_version += 1
            stored.setdefault("metadata", {})["resourceVersion"] = str(self._resource_version)
            items = self._store[(group, plural)]
            key = (stored["metadata"].get("namespace"), stored["metadata"]["name"])
            old = [i for i, o in enumerate(items) if (o["metadata"].get("namespace"), o["metadata"]["name"]) == key]
            if old:
                items[old[0]] = stored
            else:
                items.append(stored)
            self._events.append((self._resource_version, group, plural, "MODIFIED" if old else "ADDED", stored))
            self._changes.notify_all()

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        plural = next(p for g, _v, p, k, _ns in RESOURCES if g == group and k == kind)
        with self._changes:
            items = self._store[(group, plural)]
            gone = [o for o in items if (o["metadata"].get("namespace"), o["metadata"]["name"]) == (namespace, name)]
            for obj in gone:
                items.remove(obj)
                self._resource_version += 1
                obj = dict(obj, metadata=dict(obj["metadata"], resourceVersion=str(self._resource_version)))
                self._events.append((self._resource_version, group, plural, "DELETED", obj))
            self._changes.notify_all()

    def compact(self) -> None:
        """Forget the events so far: a WATCH from an older version gets 410 Gone, as after etcd compaction."""
        with self._changes:
            self._compacted = self._resource_version
            self._events.clear()

    def watch_events(self, group: str, plural: str, namespace: str | None, query: dict[str, list[str]],
                     closing: Any) -> Any:
        """The event lines of one WATCH: from resourceVersion on, until timeoutSeconds (at most 30 s) or the
        server stops."""
        kind, _ = self._by_plural[next(k for k in self._by_plural if k[0] == group and k[2] == plural)]
        with self._lock:
            self.requests.append({"plural": plural, "namespace": namespace, "query": query, "accept": "watch"})
        version = int((query.get("resourceVersion") or ["0"])[0] or 0)
        seconds = min(float((query.get("timeoutSeconds") or ["30"])[0]), 30.0)
        deadline = time.monotonic() + seconds
        with self._lock:
            gone = plural in self.behaviour.watch_gone_once
            self.behaviour.watch_gone_once.discard(plural)
        if gone or version < self._compacted:
            yield {"type": "ERROR", "object": _status(410, "Expired", f"too old resource version: {version}")}
            return
        while not closing() and time.monotonic() < deadline:
            with self._changes:
                fresh = [e for e in self._events if e[0] > version and e[1] == group and e[2] == plural
                         and (namespace is None or e[4]["metadata"].get("namespace") == namespace)]
                if not fresh:
                    self._changes.wait(min(0.2, max(0.0, deadline - time.monotonic())))
                    continue
            for rv, _g, _p, kind_of_event, obj in fresh:
                version = rv
                body = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
                yield {"type": kind_of_event, "object": {"kind": kind, "apiVersion": obj.get("apiVersion"), **body}}

    def list_requests(self, plural: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["plural"] == plural]

    # -----------------------------------------------------------------------------------------

    def handle(self, path: str, query: dict[str, list[str]], headers: Any) -> tuple[int, Any]:
        scheme, _, credential = str(headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or credential.strip() != self.behaviour.token:  # scheme is case-insensitive
            return 401, _status(401, "Unauthorized", "Unauthorized")
        if path in self.behaviour.replace:
            return 200, self.behaviour.replace[path]
        parts = [p for p in path.split("/") if p]
        if parts == ["version"]:
            major, minor = self.behaviour.git_version.lstrip("v").split(".")[:2]
            return 200, {"major": major, "minor": minor, "gitVersion": self.behaviour.git_version,
                         "platform": "linux/amd64", "goVersion": "go1.24.0"}
        if parts == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}]}
        if parts == ["apis"]:
            return 200, self._group_list()
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            if group in self.behaviour.broken_discovery:
                return 503, _status(503, "ServiceUnavailable", f"the server is currently unable to handle {group}")
            return self._resource_list(group, version)
        namespace = None
        if len(rest) == 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if len(rest) != 1 or (group, version, rest[0]) not in self._by_plural:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        return self._list(group, version, rest[0], namespace, query, headers.get("Accept") or "")

    def _group_list(self) -> dict[str, Any]:
        groups: dict[str, str] = {}
        for g, v, *_ in RESOURCES:
            if g:
                groups.setdefault(g, v)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
             "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
            for g, v in groups.items()
        ]}

    def _resource_list(self, group: str, version: str) -> tuple[int, Any]:
        resources = [
            {"name": p, "singularName": k.lower(), "namespaced": ns, "kind": k,
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
            for g, v, p, k, ns in RESOURCES if g == group and v == version
        ]
        if not resources:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        if group == "" and version == "v1":
            resources.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
                              "verbs": ["get"]})
        gv = f"{group}/{version}" if group else version
        return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    def _list(self, group: str, version: str, plural: str, namespace: str | None,
              query: dict[str, list[str]], accept: str) -> tuple[int, Any]:
        b = self.behaviour
        record = {"plural": plural, "namespace": namespace, "query": query, "accept": accept}
        with self._lock:
            self.requests.append(record)
            failures = b.fail_next.get(plural) or b.fail_selector.get((query.get("fieldSelector") or [""])[0])
            failure = failures.pop(0) if failures else None
        pause = b.delay + b.slow.get(plural, 0.0)
        if pause:
            time.sleep(pause)
        if failure is not None:
            reason = "TooManyRequests" if failure == 429 else "ServiceUnavailable"
            return failure, _status(failure, reason, f"injected {failure}")
        kind, _ = self._by_plural[(group, version, plural)]
        if plural in b.unauthorized_lists:
            return 401, _status(401, "Unauthorized", "Unauthorized")
        denied = b.allowed is not None and (group, plural) not in b.allowed
        if denied or plural in b.forbidden or f"{plural}.{group}" in b.forbidden:
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            return 403, _status(403, "Forbidden", (
                f'{plural}{"." + group if group else ""} is forbidden: User "system:serviceaccount:'
                f'audit:kubeharden" cannot list resource "{plural}" in API group "{group}" {scope}'))
        items = self._store.get((group, plural), [])
        if namespace is not None:
            items = [o for o in items if o["metadata"].get("namespace") == namespace]
        selector = (query.get("fieldSelector") or [""])[0]
        if selector:
            # The API server supports field selectors per resource; Secrets' type is one of them.
            field, _, wanted = selector.partition("=")
            if plural != "secrets" or field != "type":
                return 400, _status(400, "BadRequest", f'"{field}" is not a known field selector: only "type"')
            items = [o for o in items if o.get("type", "Opaque") == wanted]
        token = (query.get("continue") or [""])[0]
        if plural in b.endless:  # a list that never ends: every answer is a page with a continue token
            with self._lock:
                fresh = f"page-{len(self.requests)}"
            endless = b.endless[plural]
            return 200, {"kind": f"{kind}List", "apiVersion": "v1", "items": [],
                         "metadata": {"resourceVersion": "1", "continue": fresh if endless == "fresh" else endless}}
        start, list_rv = 0, str(self._resource_version)
        if token:
            with self._lock:
                expire = plural in b.expire_continue_once
                b.expire_continue_once.discard(plural)
            if expire:
                return 410, _status(410, "Expired", (
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter."))
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                start, list_rv = int(decoded["start"]), str(decoded["rv"])
            except (ValueError, KeyError):
                return 400, _status(400, "BadRequest", "invalid continue token")
        limit_text = (query.get("limit") or ["0"])[0]
        limit = min(int(limit_text), PAGE_LIMIT_MAX) if limit_text.isdigit() and int(limit_text) > 0 else 0
        end = start + limit if limit else len(items)
        page = items[start:end]
        list_meta: dict[str, Any] = {"resourceVersion": list_rv}
        if end < len(items):
            list_meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"rv": list_rv, "start": end}).encode()).decode()
            list_meta["remainingItemCount"] = len(items) - end
        if "as=PartialObjectMetadataList" in accept:
            return 200, {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                         "metadata": list_meta,
                         "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                    "metadata": o["metadata"]} for o in page]}
        # typed lists: items carry no kind/apiVersion, as the real API server answers
        stripped = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in page]
        gv = f"{group}/{version}" if group else version
        return 200, {"kind": f"{kind}List", "apiVersion": gv, "metadata": list_meta, "items": stripped}


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class _Handler(BaseHTTPRequestHandler):
    api: FakeApiServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        query = parse_qs(split.query)
        if (query.get("watch") or [""])[0] in ("1", "true"):
            self._watch(split.path, query)
            return
        try:
            status, body = self.api.handle(split.path, parse_qs(split.query), self.headers)
        except Exception as exc:  # a bug in the fake must show as a 500, not a hang
            status, body = 500, _status(500, "InternalError", f"{type(exc).__name__}: {exc}")
        data = orjson.dumps(body)
        behaviour = self.api.behaviour
        trickle = behaviour.trickle.get(split.path.rstrip("/").rpartition("/")[2])
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status in (429, 503) and behaviour.retry_after is not None:
                self.send_header("Retry-After", behaviour.retry_after)
            elif status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            if trickle is None:
                self.wfile.write(data)
            else:
                for index in range(len(data)):  # a byte at a time: each read of the client succeeds
                    self.wfile.write(data[index:index + 1])
                    self.wfile.flush()
                    time.sleep(trickle)
        except OSError:  # broken pipe, reset, TLS errors
            pass  # the client gave up (timeout tests)

    def _watch(self, path: str, query: dict[str, list[str]]) -> None:
        """A WATCH: 401 without the token, else a chunked stream of JSON event lines."""
        api = self.api
        status, body = api.handle(path, {k: v for k, v in query.items() if k != "watch"} | {"limit": ["1"]},
                                  self.headers)
        parts = [p for p in path.split("/") if p]
        if status != 200:
            data = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        group = "" if parts[0] == "api" else parts[1]
        namespace = parts[parts.index("namespaces") + 1] if "namespaces" in parts[:-1] else None
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in api.watch_events(group, parts[-1], namespace, query, lambda: api._closing):
                line = orjson.dumps(event) + b"\n"
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    """Serve a synthetic cluster until killed (for benchmarks/bench_live.py): prints READY."""
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    args = parser.parse_args()
    objects = synthetic_cluster(args.objects)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # server threads inherit it
    with FakeApiServer(objects) as server:
        server.kubeconfig(args.kubeconfig)
        print(f"READY {len(objects)}", flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    sys.exit(0)


if __name__ == "__main__":
    main()
