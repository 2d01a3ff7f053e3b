"""Upgrading and patching (guidance §1.9, §4; NSA-UPG-*): supported versions, version skew,
known CVEs of cluster components and add-ons, retired components, removed APIs.

Version evidence, wherever it comes from:
* the API server's /version (facts["server_version"] of a live scan or snapshot);
* Node objects (status.nodeInfo.kubeletVersion / kubeProxyVersion), from a live scan, a
  snapshot or a `kubectl get nodes -o json` file;
* image tags of known components in any pod spec (kube-apiserver static pods, kube-proxy
  DaemonSets, ingress-nginx and capsule-proxy controllers ...).
Versions and CVEs come from shipped data files (kubeharden.versions); a report notes their date.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kubeharden import versions
from kubeharden.catalog import Context, Example, control
from kubeharden.controls.pod_common import WORKLOADS
from kubeharden.inventory import ContainerView, Inventory, as_dict, as_list
from kubeharden.model import NotAssessed, Path, Resource, Section, Severity, Source, Violation
from kubeharden.versions import Version, format_version

CORE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
_SEVERITY = {"low": Severity.LOW, "medium": Severity.MEDIUM, "high": Severity.HIGH, "critical": Severity.CRITICAL}
_SNIPPET_SUFFIX = "-snippet"
_NODE_COMPONENTS = frozenset({"kubelet", "kube-proxy"})  # the versions Node objects show


@dataclass
class Sighting:
    """One place that shows a component's version."""

    component: str
    version: Version | None  # None: the image tag names no version (digest only, "latest")
    text: str  # the version as written
    resource: Resource | None = None
    path: Path = ()
    container: ContainerView | None = None
    source: Source | None = None  # for evidence that is not a resource (the /version endpoint)
    where: str = ""  # human wording: "node node-a", "Deployment/x container 'c'"
    by_command: bool = False  # recognised by the binary it runs, not by its image

    def violation(self, message: str, severity: Severity | None = None, remediation: str | None = None,
                  evidence: dict[str, Any] | None = None) -> Violation:
        ev = {"component": self.component, "version": self.text, **(evidence or {})}
        if self.container is not None:
            return self.container.violation(("image",), message, self.text, severity=severity,
                                            remediation=remediation, evidence=ev)
        return Violation(self.resource, self.path, message, self.text, has_value=True, severity=severity,
                         remediation=remediation, evidence=ev, source=self.source)


@dataclass
class Evidence:
    sightings: list[Sighting] = field(default_factory=list)
    nodes_with_kubelet: list[Resource] = field(default_factory=list)

    def of(self, *components: str) -> list[Sighting]:
        return [s for s in self.sightings if s.component in components]


def evidence(ctx: Context) -> Evidence:
    """Every version sighting of the scan (API server, Nodes, images), computed once per inventory."""
    return ctx.inventory.analysis(_collect_evidence)


def image_evidence(ctx: Context) -> Evidence:
    """The sightings of the API server /version and of container images only: what controls that
    judge add-on images use, so that they never read Node objects (which may be unreadable)."""
    return ctx.inventory.analysis(_collect_without_nodes)


def _collect_evidence(inventory: Inventory) -> Evidence:
    nodes = inventory.analysis(_collect_nodes)
    images = inventory.analysis(_collect_images)
    return Evidence([*_server_sightings(inventory), *nodes.sightings, *images.sightings],
                    list(nodes.nodes_with_kubelet))


def _collect_without_nodes(inventory: Inventory) -> Evidence:
    return Evidence([*_server_sightings(inventory), *inventory.analysis(_collect_images).sightings])


def _server_sightings(inventory: Inventory) -> list[Sighting]:
    facts = inventory.facts
    server = facts.get("server_version")
    if not server:
        return []
    return [Sighting(
        "kube-apiserver", versions.parse_version(str(server)), str(server),
        path=("gitVersion",), source=Source(str(facts.get("source") or "cluster"), None, origin="/version"),
        where="API server /version",
    )]


def _collect_nodes(inventory: Inventory) -> Evidence:
    found = Evidence()
    for node in inventory.of_kind("Node"):
        info = as_dict(as_dict(node.obj.get("status")).get("nodeInfo"))
        kubelet = info.get("kubeletVersion")
        if kubelet:
            found.nodes_with_kubelet.append(node)
            found.sightings.append(Sighting(
                "kubelet", versions.parse_version(str(kubelet)), str(kubelet), node,
                ("status", "nodeInfo", "kubeletVersion"), where=f"node {node.name}",
            ))
        proxy = info.get("kubeProxyVersion")
        # The kubelet fills kubeProxyVersion with its own version (deprecated field): only a
        # different value says anything about kube-proxy.
        if proxy and proxy != kubelet:
            found.sightings.append(Sighting(
                "kube-proxy", versions.parse_version(str(proxy)), str(proxy), node,
                ("status", "nodeInfo", "kubeProxyVersion"), where=f"node {node.name}",
            ))
    return found


def _collect_images(inventory: Inventory) -> Evidence:
    found = Evidence()
    for pod in inventory.pod_specs():
        for container in pod.containers():
            image = container.obj.get("image")
            if not isinstance(image, str):
                continue
            match = versions.component_of_image(image)
            ref = versions.parse_image(image)
            where = f"{pod.resource.display()} container '{container.name}'"
            if match is not None:
                component, version = match
                found.sightings.append(Sighting(component, version, ref.tag or image, container=container,
                                                where=where))
            elif _runs_binary(container, _INGRESS_NGINX_BINARY):
                # Another image running the controller (a rebuild, a fork): its tag is that image's, not an
                # ingress-nginx version.
                found.sightings.append(Sighting("ingress-nginx", None, ref.tag or image, container=container,
                                                where=f"{where} (runs nginx-ingress-controller)",
                                                by_command=True))
    return found


# The ingress-nginx controller binary, as images run it: /nginx-ingress-controller (dumb-init's argument).
_INGRESS_NGINX_BINARY = re.compile(r"(?:^|[\s;&|'\"])(?:/\S*)?/?nginx-ingress-controller(?=$|[\s;&|'\"])")


def _runs_binary(container: ContainerView, binary: re.Pattern[str]) -> bool:
    """The container's command or args start the binary (directly, after an init such as dumb-init, or in a
    shell script); flags and their values (`--publish-service=ns/name`) are not executables."""
    words = [w for w in as_list(container.obj.get("command")) + as_list(container.obj.get("args"))
             if isinstance(w, str)]
    return any(not w.startswith("-") and binary.search(w) for w in words)


def _note_data(ctx: Context) -> None:
    """Reports say which data the judgement rests on (engine copies facts['notes'] after checks)."""
    notes = ctx.inventory.facts.setdefault("notes", [])
    note = versions.data_note()
    if note not in notes:
        notes.append(note)


def _forbidden_reason(ctx: Context, *kinds: str) -> str | None:
    forbidden = ctx.inventory.facts.get("forbidden_kinds") or {}
    blocked = [f"cannot read {k}: {forbidden[k]}" for k in kinds if k in forbidden]
    return "; ".join(blocked) or None


def _no_version_evidence(ctx: Context) -> str | None:
    if evidence(ctx).of(*CORE_COMPONENTS):
        return None
    reason = "no Kubernetes version in the input: needs the API server version (live scan or snapshot), " \
             "Node objects (kubectl get nodes -o json) or images of control-plane components"
    blocked = _forbidden_reason(ctx, "Node")
    return f"{reason}; {blocked}" if blocked else reason


def _mm(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


_NODE_OLD = """
apiVersion: v1
kind: Node
metadata: {name: node-old}
status:
  nodeInfo: {kubeletVersion: v1.28.4, kubeProxyVersion: v1.28.4, containerRuntimeVersion: containerd://1.7.2}
"""
_NODE_CURRENT = """
apiVersion: v1
kind: Node
metadata: {name: node-current}
status:
  nodeInfo: {kubeletVersion: v1.37.1, kubeProxyVersion: v1.37.1, containerRuntimeVersion: containerd://2.1.4}
"""


@control(
    id="KH-UPG-001",
    title="Kubernetes version outside the supported window",
    section=Section.UPGRADES,
    guidance=("NSA-UPG-1",),
    severity=Severity.HIGH,
    needs="API server version, Node objects or control-plane component images",
    requires=_no_version_evidence,
    what="The API server, a kubelet, kube-proxy or another control-plane component runs a minor release "
    "older than the three newest Kubernetes minors.",
    why="Only the three newest minors get patches: an older release keeps every vulnerability found after "
    "its end of life.",
    fix="Upgrade the control plane, then the nodes (kubelet, kube-proxy), one minor at a time, to a "
    "supported minor (status.nodeInfo.kubeletVersion and /version gitVersion in the supported window).",
    examples=(Example(True, _NODE_OLD), Example(False, _NODE_CURRENT)),
    references=("https://kubernetes.io/releases/",),
)
def unsupported_version(ctx: Context) -> Iterator[Violation]:
    _note_data(ctx)
    supported = versions.supported_minors()
    oldest = min(supported)
    for s in evidence(ctx).of(*CORE_COMPONENTS):
        if s.version is None:
            continue
        minor = s.version[:2]
        # a minor newer than the shipped data cannot be judged: never a finding
        if minor < oldest:
            release = versions.release_of(minor)
            eol = f" (end of life {release.end_of_life.isoformat()})" if release else ""
            yield s.violation(
                f"{s.component} {s.text} on {s.where} is Kubernetes {_mm(s.version)}{eol}; supported minors "
                f"are {', '.join(_mm((*m, 0)) for m in supported)}",
            )


@control(
    id="KH-UPG-002",
    title="Kubernetes component behind the latest patch release",
    section=Section.UPGRADES,
    guidance=("NSA-UPG-1",),
    severity=Severity.MEDIUM,
    needs="API server version, Node objects or control-plane component images",
    requires=_no_version_evidence,
    what="A component of a supported minor runs an older patch release than the latest one of that minor.",
    why="Patch releases carry the security fixes of a minor; a cluster behind its patch level keeps "
    "vulnerabilities that already have a fix.",
    fix="Upgrade the component to the latest patch of its minor (e.g. kubelet and API server to the newest "
    "1.x.z listed on kubernetes.io/releases).",
    examples=(
        Example(True, _NODE_CURRENT.replace("v1.37.1", "v1.37.0")),
        Example(False, _NODE_CURRENT),
    ),
)
def behind_latest_patch(ctx: Context) -> Iterator[Violation]:
    _note_data(ctx)
    supported = set(versions.supported_minors())
    judged = False
    for s in evidence(ctx).of(*CORE_COMPONENTS):
        if s.version is None:
            continue
        minor = s.version[:2]
        release = versions.release_of(minor)
        if minor not in supported or release is None:
            continue  # unsupported minors are KH-UPG-001's; unknown ones cannot be judged
        judged = True
        if s.version < release.latest_patch:
            yield s.violation(
                f"{s.component} {s.text} on {s.where} is behind {format_version(release.latest_patch)}, "
                f"the latest {_mm(s.version)} patch known to kubeharden's data "
                f"(as of {versions.releases_data_date()})",
            )
    if not judged:
        raise NotAssessed("no component of a supported minor release with a known version in the input")


def _skew_limit(kubelet_minor: tuple[int, int]) -> int:
    # kubelet (and kube-proxy) may be up to three minors older than the API server from
    # 1.25 on, two before (Kubernetes version-skew policy).
    return 3 if kubelet_minor >= (1, 25) else 2


def _api_servers(ctx: Context) -> list[Sighting]:
    return [s for s in evidence(ctx).of("kube-apiserver") if s.version is not None]


def _skew_requires(ctx: Context) -> str | None:
    if not _api_servers(ctx):
        return "no API server version in the input (live scan, snapshot or kube-apiserver image)"
    others = [s for s in evidence(ctx).of(*CORE_COMPONENTS) if s.version is not None
              and s.component != "kube-apiserver"]
    if not others and len(_api_servers(ctx)) < 2:
        blocked = _forbidden_reason(ctx, "Node")
        return blocked or "no kubelet, kube-proxy or other control-plane version to compare with the API server"
    return None


@control(
    id="KH-UPG-003",
    title="Version skew beyond the Kubernetes policy",
    section=Section.UPGRADES,
    guidance=("NSA-UPG-2",),
    severity=Severity.MEDIUM,
    needs="API server version and Node objects (or component images)",
    requires=_skew_requires,
    what="A kubelet or kube-proxy is newer than the API server or more minors older than the skew policy "
    "allows (3, or 2 before 1.25); a controller-manager or scheduler is newer or more than one minor older; "
    "API servers of one cluster differ by more than one minor.",
    why="Components outside the supported skew run untested combinations and usually mean an upgrade was "
    "left half done, so old, unpatched nodes stay in the cluster.",
    fix="Upgrade in the supported order: API servers first, then controller-manager and scheduler, then "
    "kubelets and kube-proxy, each within the allowed skew of the API server.",
    examples=(
        Example(True, """
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver-cp-1, namespace: kube-system}
spec:
  containers: [{name: kube-apiserver, image: registry.k8s.io/kube-apiserver:v1.37.1}]
---
apiVersion: v1
kind: Node
metadata: {name: old-node}
status: {nodeInfo: {kubeletVersion: v1.32.9}}
"""),
        Example(False, """
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver-cp-1, namespace: kube-system}
spec:
  containers: [{name: kube-apiserver, image: registry.k8s.io/kube-apiserver:v1.37.1}]
---
apiVersion: v1
kind: Node
metadata: {name: node-1}
status: {nodeInfo: {kubeletVersion: v1.35.0}}
"""),
    ),
    references=("https://kubernetes.io/releases/version-skew-policy/",),
)
def version_skew(ctx: Context) -> Iterator[Violation]:
    _note_data(ctx)
    apis = _api_servers(ctx)
    newest = max(s.version[:2] for s in apis if s.version)
    oldest = min(s.version[:2] for s in apis if s.version)
    if newest[1] - oldest[1] > 1 or newest[0] != oldest[0]:
        for s in apis:
            if s.version and s.version[:2] == oldest:
                yield s.violation(f"API server {s.text} ({s.where}) is more than one minor older than another "
                                  f"API server ({_mm((*newest, 0))})")
    for s in evidence(ctx).of(*CORE_COMPONENTS):
        if s.version is None or s.component == "kube-apiserver":
            continue
        minor = s.version[:2]
        if minor > oldest:
            yield s.violation(f"{s.component} {s.text} on {s.where} is newer than the API server "
                              f"({_mm((*oldest, 0))})")
            continue
        behind = newest[1] - minor[1] if newest[0] == minor[0] else 99
        allowed = _skew_limit(minor) if s.component in ("kubelet", "kube-proxy") else 1
        if behind > allowed:
            yield s.violation(f"{s.component} {s.text} on {s.where} is {behind} minors behind the API server "
                              f"({_mm((*newest, 0))}); the policy allows {allowed}")


# ---------------------------------------------------------------------------------------------
# CVEs


def _subpath_mounts(container: ContainerView) -> Iterator[tuple[int, str]]:
    for i, mount in enumerate(as_list(container.obj.get("volumeMounts"))):
        if isinstance(mount, dict):
            for key in ("subPath", "subPathExpr"):
                if mount.get(key):
                    yield i, key


@control(
    id="KH-UPG-004",
    title="CVE-2021-25741: subPath volume mounts on vulnerable kubelets",
    section=Section.UPGRADES,
    guidance=("NSA-UPG-1", "NSA-UPG-4"),
    severity=Severity.HIGH,
    kinds=("Node",),
    needs="Node objects (kubelet versions) and the workloads",
    what="A container mounts a volume with subPath or subPathExpr while nodes run a kubelet affected by "
    "CVE-2021-25741 (before 1.19.15, 1.20.0-1.20.10, 1.21.0-1.21.4, 1.22.0-1.22.1).",
    why="On an affected kubelet, a container using subPath can swap in a symlink and reach files of the "
    "host outside the volume.",
    fix="Upgrade the kubelets to a fixed (in practice: supported) release; until then disable the "
    "VolumeSubpath feature gate and remove volumeMounts[].subPath / subPathExpr from workloads.",
    examples=(
        Example(True, """
apiVersion: v1
kind: Node
metadata: {name: node-a}
status: {nodeInfo: {kubeletVersion: v1.21.3}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  nodeName: node-a
  containers:
  - name: web
    image: registry.example/web:1.0
    volumeMounts: [{name: conf, mountPath: /etc/web.conf, subPath: web.conf}]
  volumes: [{name: conf, configMap: {name: web}}]
"""),
        Example(False, """
apiVersion: v1
kind: Node
metadata: {name: node-a}
status: {nodeInfo: {kubeletVersion: v1.21.5}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers:
  - name: web
    image: registry.example/web:1.0
    volumeMounts: [{name: conf, mountPath: /etc/web.conf, subPath: web.conf}]
  volumes: [{name: conf, configMap: {name: web}}]
"""),
    ),
    references=("https://github.com/kubernetes/kubernetes/issues/104980",),
)
def cve_2021_25741(ctx: Context) -> Iterator[Violation]:
    _note_data(ctx)
    advisory = versions.cve("CVE-2021-25741")
    found = evidence(ctx)
    if not found.nodes_with_kubelet:
        raise NotAssessed("no Node object with status.nodeInfo.kubeletVersion in the input")
    vulnerable = {
        s.resource.name: s.text for s in found.of("kubelet")
        if s.resource is not None and s.version is not None and advisory.affects(s.version)
    }
    if not vulnerable:
        return
    blocked = _forbidden_reason(ctx, *WORKLOADS)
    hits = 0
    for pod in ctx.pod_specs():
        node_name = pod.spec.get("nodeName")
        if pod.resource.kind == "Pod" and node_name and node_name not in vulnerable:
            continue  # scheduled on a fixed kubelet
        targets = {node_name: vulnerable[node_name]} if node_name in vulnerable else vulnerable
        nodes = ", ".join(f"{n} ({v})" for n, v in sorted(targets.items()))
        for container in pod.containers():
            for i, key in _subpath_mounts(container):
                hits += 1
                yield container.violation(
                    ("volumeMounts", i, key),
                    f"container '{container.name}' of {pod.resource.display()} uses {key} while "
                    f"kubelets affected by CVE-2021-25741 run on: {nodes}",
                    evidence={"cve": advisory.id, "nodes": sorted(targets)},
                )
    if not hits and blocked:
        raise NotAssessed(f"kubelets affected by CVE-2021-25741 run, but workloads are unreadable: {blocked}")


def _unknown_version(s: Sighting) -> str:
    if s.by_command:
        return f"{s.where}: the image is not an upstream build, so its tag {s.text!r} is no component version"
    return f"{s.where}: image tag {s.text!r} names no version"


def _component_sightings(ctx: Context, component: str) -> list[Sighting]:
    return [s for s in image_evidence(ctx).of(component) if s.container is not None]


def _configmap_ref(container: ContainerView) -> tuple[str | None, str] | None:
    """(namespace, name) of the controller ConfigMap from --configmap=NS/NAME."""
    args = [str(a) for a in as_list(container.obj.get("args")) + as_list(container.obj.get("command"))]
    for i, arg in enumerate(args):
        value = None
        if arg.startswith("--configmap="):
            value = arg.split("=", 1)[1]
        elif arg == "--configmap" and i + 1 < len(args):
            value = args[i + 1]
        if value:
            namespace, _, name = value.rpartition("/")
            if namespace in ("$(POD_NAMESPACE)", ""):
                namespace = container.pod.namespace or ""
            return namespace or None, name
    return None


def _snippet_ingresses(ctx: Context) -> list[str]:
    out = []
    for ing in ctx.inventory.of_kind("Ingress"):
        if any(k.startswith("nginx.ingress.kubernetes.io/") and k.endswith(_SNIPPET_SUFFIX)
               for k in ing.annotations):
            out.append(ing.display())
    return out


_NGINX_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: ingress-nginx-controller, namespace: ingress-nginx}}
spec:
  selector: {{matchLabels: {{app: ingress-nginx}}}}
  template:
    metadata: {{labels: {{app: ingress-nginx}}}}
    spec:
      containers:
      - name: controller
        image: registry.k8s.io/ingress-nginx/controller:{version}
        args: [/nginx-ingress-controller, --configmap=$(POD_NAMESPACE)/ingress-nginx-controller]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: ingress-nginx-controller, namespace: ingress-nginx}}
data: {{allow-snippet-annotations: "{allow}"}}
"""


@control(
    id="KH-UPG-005",
    title="CVE-2021-25742: ingress-nginx allows snippet annotations",
    section=Section.UPGRADES,
    guidance=("NSA-UPG-3",),
    severity=Severity.HIGH,
    kinds=WORKLOADS,
    needs="the ingress-nginx controller workload and its ConfigMap",
    what="An ingress-nginx controller lets Ingress authors inject NGINX configuration through "
    "*-snippet annotations (allow-snippet-annotations not \"false\", or a version without the switch).",
    why="Anyone who may create an Ingress can then read the controller's service account token and with it "
    "every Secret of the cluster (CVE-2021-25742).",
    fix="Upgrade ingress-nginx (v0.49.1 / v1.0.1 or later) and set allow-snippet-annotations: \"false\" in "
    "the controller ConfigMap (Helm: controller.allowSnippetAnnotations=false).",
    examples=(
        Example(True, _NGINX_DEPLOYMENT.format(version="v1.1.0", allow="true")),
        Example(False, _NGINX_DEPLOYMENT.format(version="v1.1.0", allow="false")),
    ),
    references=("https://github.com/kubernetes/ingress-nginx/issues/7837",),
)
def cve_2021_25742(ctx: Context) -> Iterator[Violation]:
    _note_data(ctx)
    advisory = versions.cve("CVE-2021-25742")
    unmitigable = list(advisory.extra.get("unmitigable") or [])
    default_off = versions.parse_version(str(advisory.extra.get("snippets_default_off_from") or ""))
    snippets = _snippet_ingresses(ctx)
    ev = {"cve": advisory.id, "ingresses_with_snippets": snippets[:20]}
    undetermined: list[str] = []
    for s in _component_sightings(ctx, "ingress-nginx"):
        assert s.container is not None
        if s.version is None:
            undetermined.append(_unknown_version(s))
            continue
        if versions.in_ranges(s.version, unmitigable):
            yield s.violation(f"ingress-nginx {s.text} ({s.where}) cannot disable snippet annotations "
                              "(CVE-2021-25742 has no mitigation before v0.49.1 / in v1.0.0)", evidence=ev)
            continue
        default_allows = default_off is None or s.version < default_off
        ref = _configmap_ref(s.container)
        setting: str | None = None
        configmap = ctx.inventory.get("ConfigMap", ref[0], ref[1]) if ref else None
        if configmap is not None:
            value = as_dict(configmap.obj.get("data")).get("allow-snippet-annotations")
            setting = str(value).strip().lower() if value is not None else None
        elif ref is not None and not ctx.whole_cluster:
            undetermined.append(f"{s.where}: ConfigMap {ref[0]}/{ref[1]} is not in the input")
            continue
        allows = setting == "true" or (setting is None and default_allows)
        if not allows:
            continue
        if configmap is not None and setting is not None:
            yield Violation(
                configmap, ("data", "allow-snippet-annotations"),
                f"{configmap.display()} of ingress-nginx {s.text} ({s.where}) allows snippet "
                "annotations (CVE-2021-25742)", setting, has_value=True, evidence=ev,
            )
        else:
            where = f"ConfigMap {ref[0]}/{ref[1]} does not set" if ref else "no --configmap sets"
            yield s.violation(f"ingress-nginx {s.text} ({s.where}): {where} allow-snippet-annotations, "
                              "and this version allows snippets by default (CVE-2021-25742)", evidence=ev)
    if undetermined:
        raise NotAssessed("cannot tell for " + "; ".join(undetermined))


_NGINX_PLAIN = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: ingress-nginx-controller, namespace: ingress-nginx}}
spec:
  selector: {{matchLabels: {{app: ingress-nginx}}}}
  template:
    metadata: {{labels: {{app: ingress-nginx}}}}
    spec:
      containers: [{{name: controller, image: "{image}"}}]
"""


@control(
    id="KH-UPG-006",
    title="Add-on or component version with a known CVE",
    section=Section.UPGRADES,
    guidance=("NSA-UPG-3", "NSA-UPG-4"),
    severity=Severity.HIGH,
    kinds=WORKLOADS,
    needs="workloads whose images identify a component version",
    what="A workload runs a version of a cluster component or add-on with a known, version-only "
    "vulnerability in kubeharden's CVE table (e.g. capsule-proxy < 0.2.1: CVE-2022-23652; ingress-nginx "
    "< 1.11.5: CVE-2025-1974).",
    why="Add-ons such as ingress controllers and proxies hold broad credentials; a known exploit against "
    "them is a path to the whole cluster.",
    fix="Upgrade the image to a fixed version named in the finding (spec.template.spec.containers[].image).",
    examples=(
        Example(True, _NGINX_PLAIN.format(image="quay.io/clastix/capsule-proxy:v0.2.0")),
        Example(False, _NGINX_PLAIN.format(image="quay.io/clastix/capsule-proxy:v0.9.3")),
    ),
    references=("https://github.com/clastix/capsule-proxy/security/advisories/GHSA-9cwv-cppx-mqjm",),
)
def known_cve_versions(ctx: Context) -> Iterator[Violation]:
    _note_data(ctx)
    table = [c for c in versions.cves() if c.condition == "always"]
    components = {c.component for c in table}
    # Node objects show only kubelet and kube-proxy versions: read them only when the table has
    # such a CVE, so that unreadable Nodes do not block the judgement of add-on images.
    found = evidence(ctx) if components & _NODE_COMPONENTS else image_evidence(ctx)
    undetermined = []
    for s in found.sightings:
        if s.component not in components:
            continue
        if s.version is None:
            undetermined.append(f"{s.component} at {_unknown_version(s)}")
            continue
        for advisory in table:
            if advisory.component == s.component and advisory.affects(s.version):
                yield s.violation(
                    f"{s.component} {s.text} ({s.where}) is affected by {advisory.id}: {advisory.title}",
                    severity=_SEVERITY.get(advisory.severity), remediation=advisory.fix,
                    evidence={"cve": advisory.id, "references": list(advisory.references)},
                )
    if undetermined:
        raise NotAssessed("versions unknown for " + "; ".join(undetermined[:10]))


@control(
    id="KH-UPG-007",
    title="Retired component: ingress-nginx",
    section=Section.UPGRADES,
    guidance=("NSA-UPG-3", "NSA-UPG-6"),
    severity=Severity.HIGH,
    kinds=WORKLOADS,
    needs="workloads",
    what="A workload runs the community ingress-nginx controller, retired in March 2026.",
    why="A retired project gets no security patches: the next vulnerability in the component that faces the "
    "internet and reads every TLS Secret stays open.",
    fix="Migrate to a maintained Ingress controller or a Gateway API implementation and remove the "
    "ingress-nginx Deployment/DaemonSet.",
    examples=(
        Example(True, _NGINX_PLAIN.format(image="registry.k8s.io/ingress-nginx/controller:v1.13.3")),
        Example(False, _NGINX_PLAIN.format(image="docker.io/envoyproxy/gateway:v1.5.0")),
    ),
    references=("https://kubernetes.io/blog/2025/11/11/ingress-nginx-retirement/",),
)
def retired_components(ctx: Context) -> Iterator[Violation]:
    _note_data(ctx)
    today = dt.date.today()
    for notice in versions.end_of_life_notices():
        if today <= dt.date.fromisoformat(notice["date"]):
            continue
        for s in _component_sightings(ctx, notice["component"]):
            yield s.violation(f"{s.where} runs {notice['component']} {s.text}: {notice['text']}",
                              remediation=notice["fix"], evidence={"retired": notice["date"]})


# ---------------------------------------------------------------------------------------------
# Removed APIs


def _target_minor(ctx: Context) -> tuple[tuple[int, int], str]:
    if ctx.settings.kubernetes_version is None:
        server = versions.parse_version(str(ctx.inventory.facts.get("server_version") or ""))
        if server is not None:
            return server[:2], "the cluster's version"
    return ctx.kubernetes_version, "the target version"


@control(
    id="KH-UPG-008",
    title="Manifest uses a removed or deprecated API version",
    section=Section.UPGRADES,
    guidance=("NSA-UPG-6",),
    severity=Severity.MEDIUM,
    needs="any resources",
    requires=lambda ctx: None if ctx.inventory.resources else "no resources in the input",
    what="A resource is written in an API version that the target Kubernetes release no longer serves "
    "(e.g. policy/v1beta1 PodSecurityPolicy on 1.25+, extensions/v1beta1 Ingress on 1.22+), or that is "
    "deprecated there (low severity).",
    why="Stale manifests fail to apply on upgrade or keep obsolete mechanisms (PodSecurityPolicy) in the "
    "pipeline; the guidance asks to remove unused components from the environment and the pipeline.",
    fix="Rewrite the resource in the replacement apiVersion named in the finding, or delete it when the "
    "mechanism is gone (PodSecurityPolicy: use Pod Security Admission labels).",
    examples=(
        Example(True, """
apiVersion: policy/v1beta1
kind: PodSecurityPolicy
metadata: {name: restricted}
spec:
  privileged: false
  seLinux: {rule: RunAsAny}
  runAsUser: {rule: MustRunAsNonRoot}
  supplementalGroups: {rule: RunAsAny}
  fsGroup: {rule: RunAsAny}
"""),
        Example(False, """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  rules: [{host: shop.example}]
"""),
    ),
    references=("https://kubernetes.io/docs/reference/using-api/deprecation-guide/",),
)
def removed_api_versions(ctx: Context) -> Iterator[Violation]:
    _note_data(ctx)
    table = versions.removed_apis()
    target, wording = _target_minor(ctx)
    target_text = f"{target[0]}.{target[1]}"
    for res in ctx.inventory.resources:
        entry = table.get((res.api_version, res.kind))
        if entry is None:
            continue
        removed = f"{entry.removed_in[0]}.{entry.removed_in[1]}"
        if target >= entry.removed_in:
            yield Violation(res, ("apiVersion",), f"{res.display()} uses {res.api_version}, removed in Kubernetes "
                            f"{removed} ({wording} is {target_text}); use {entry.replacement}",
                            res.api_version, has_value=True,
                            remediation=f"Set apiVersion to {entry.replacement} (and adapt the fields it changed).")
        elif entry.deprecated_in is not None and target >= entry.deprecated_in:
            yield Violation(res, ("apiVersion",), f"{res.display()} uses {res.api_version}, deprecated and removed "
                            f"in Kubernetes {removed}; use {entry.replacement}", res.api_version,
                            has_value=True, severity=Severity.LOW,
                            remediation=f"Set apiVersion to {entry.replacement} before upgrading to {removed}.")
