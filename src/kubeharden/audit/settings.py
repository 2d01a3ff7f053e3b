"""Detector settings (``kubeharden audit --settings FILE``): every key optional, unknown keys an error."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from fnmatch import translate
from typing import Any

from kubeharden.controls.pod_security import DANGEROUS_CAPABILITIES, SENSITIVE_HOST_PATHS
from kubeharden.safeio import read_regular
from kubeharden.yamlsafe import Limits, YamlInputError, iter_yaml_documents

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The kube-controller-manager's own ServiceAccounts (--use-service-account-credentials) that create pods
# and pod-owning objects from templates.
DEFAULT_POD_CREATING_CONTROLLERS = (
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:replication-controller",
    "system:serviceaccount:kube-system:job-controller",
    "system:serviceaccount:kube-system:daemon-set-controller",
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:serviceaccount:kube-system:cronjob-controller",
    "system:serviceaccount:kube-system:deployment-controller",
    "system:serviceaccount:kube-system:disruption-controller",
    "system:kube-controller-manager",
)
DEFAULT_CONTROL_PLANE = (
    "system:apiserver",
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:kube-proxy",
    "system:serviceaccount:kube-system:*-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
    "system:serviceaccount:kube-system:resourcequota-controller",
    "system:serviceaccount:kube-system:pv-protection-controller",
    "system:serviceaccount:kube-system:pvc-protection-controller",
    "system:serviceaccount:kube-system:attachdetach-controller",
    "system:serviceaccount:kube-system:root-ca-cert-publisher",
    "system:serviceaccount:kube-system:service-account-controller",
    "system:serviceaccount:kube-system:endpointslice-controller",
    "system:serviceaccount:kube-system:endpointslicemirroring-controller",
    "system:serviceaccount:kube-system:ttl-after-finished-controller",
    "system:serviceaccount:kube-system:clusterrole-aggregation-controller",
    "system:serviceaccount:kube-system:bootstrap-signer",
    "system:serviceaccount:kube-system:token-cleaner",
)
DEFAULT_HEALTH_PATHS = (
    "/healthz", "/healthz/*", "/livez", "/livez/*", "/readyz", "/readyz/*", "/version", "/version/",
    "/.well-known/openid-configuration", "/openid/v1/jwks",
)
DEFAULT_SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
# D01's "may run as root" (no runAsNonRoot: true, no non-root runAsUser): the image decides. Most
# off-the-shelf manifests are like that (549 of 712 workloads of the shared corpus), so a medium
# alert on every deploy drowns the explicit cases (privileged, runAsUser: 0), which stay high.
# The scan's KH-POD-002 is where it is fixed; the audit stream says it at low by default.
MAY_RUN_AS_ROOT_LEVELS = ("off", "low", "medium", "high")


class SettingsError(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class IdentityMatcher:
    """Exact names and shell-style wildcards (``system:serviceaccount:ci:*``); a set lookup first,
    one compiled regex for the wildcards, so the per-event cost is a dict lookup."""

    __slots__ = ("_cache", "_exact", "_pattern", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._exact = frozenset(p for p in self.patterns if not any(ch in p for ch in "*?["))
        wild = [translate(p) for p in self.patterns if p not in self._exact]
        self._pattern = re.compile("|".join(f"(?:{w})" for w in wild)) if wild else None
        self._cache: dict[str, bool] = {}  # the regex's answers (names repeat: a dict lookup per event)

    def __call__(self, name: str) -> bool:
        if name in self._exact:
            return True
        if self._pattern is None:
            return False
        hit = self._cache.get(name)
        if hit is None:
            hit = self._pattern.match(name) is not None
            if len(self._cache) > 65536:  # bounded, as NetworkSet
                self._cache.clear()
            self._cache[name] = hit
        return hit

    def __bool__(self) -> bool:
        return bool(self.patterns)


class NetworkSet:
    """IP networks with a per-address cache (source IPs repeat a lot in an audit log)."""

    __slots__ = ("_cache", "networks")

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)
        self._cache: dict[str, bool] = {}

    def __contains__(self, address: str) -> bool:
        hit = self._cache.get(address)
        if hit is None:
            try:
                ip = ipaddress.ip_address(address)
                hit = any(ip.version == n.version and ip in n for n in self.networks)
            except ValueError:
                hit = False
            if len(self._cache) > 65536:  # bounded: a scan of the whole address space stays small
                self._cache.clear()
            self._cache[address] = hit
        return hit

    def __bool__(self) -> bool:
        return bool(self.networks)


@dataclass(frozen=True)
class ForbiddenBurst:
    threshold: int = 10
    window_seconds: float = 60.0


@dataclass
class AuditSettings:
    """Documented in docs/audit.md; names are the YAML keys."""

    podCIDRs: tuple[str, ...] = ()
    nodeIPs: tuple[str, ...] = ()
    controlPlaneIdentities: tuple[str, ...] = DEFAULT_CONTROL_PLANE
    podCreatingControllers: tuple[str, ...] = DEFAULT_POD_CREATING_CONTROLLERS
    deployerIdentities: tuple[str, ...] = ()
    deployerUserAgents: tuple[str, ...] = ()
    breakGlassUsers: tuple[str, ...] = ()
    approvedImagePrefixes: tuple[str, ...] = ()
    sensitiveHostPaths: tuple[str, ...] = SENSITIVE_HOST_PATHS
    dangerousCapabilities: tuple[str, ...] = tuple(sorted(DANGEROUS_CAPABILITIES))
    healthPaths: tuple[str, ...] = DEFAULT_HEALTH_PATHS
    forbiddenBurst: ForbiddenBurst = field(default_factory=ForbiddenBurst)
    systemNamespaces: tuple[str, ...] = DEFAULT_SYSTEM_NAMESPACES
    secretReaders: tuple[str, ...] = ()
    mayRunAsRoot: str = "low"

    def __post_init__(self) -> None:
        self.compile()

    def compile(self) -> None:
        """Matchers built once (the detectors run them per event)."""
        self.pod_networks = NetworkSet(_networks(self.podCIDRs, "podCIDRs"))
        self.node_networks = NetworkSet(_networks(self.nodeIPs, "nodeIPs"))
        self.control_plane = IdentityMatcher(self.controlPlaneIdentities)
        self.pod_creators = IdentityMatcher(self.podCreatingControllers)
        self.deployers = IdentityMatcher(self.deployerIdentities)
        self.deployer_agents = IdentityMatcher(self.deployerUserAgents)
        self.break_glass = IdentityMatcher(self.breakGlassUsers)
        self.secret_readers = IdentityMatcher(self.secretReaders)
        self.health = IdentityMatcher(self.healthPaths)
        self.system_namespaces = frozenset(self.systemNamespaces)
        self.dangerous_caps = frozenset(c.upper().removeprefix("CAP_") for c in self.dangerousCapabilities)
        self.sensitive_paths = tuple(p.rstrip("/") or "/" for p in self.sensitiveHostPaths)

    def in_cluster(self, address: str) -> bool:
        """The address is a pod or node address (when podCIDRs / nodeIPs are set)."""
        return address in self.pod_networks or address in self.node_networks

    def is_sensitive_path(self, path: str) -> bool:
        import posixpath

        norm = posixpath.normpath(path) if path else ""
        if norm in ("/", "//"):
            return True
        return any(norm == p or (p != "/" and norm.startswith(p + "/")) for p in self.sensitive_paths) or norm.endswith(
            (".sock",))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ForbiddenBurst):
                value = {"threshold": value.threshold, "windowSeconds": value.window_seconds}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def _networks(values: Iterable[str], key: str) -> list[Network]:
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise SettingsError(f"{key}: {value!r} is not an IP address or CIDR") from None
    return out


_SCALAR_KEYS = {"mayRunAsRoot": MAY_RUN_AS_ROOT_LEVELS}
_LIST_KEYS = {f.name for f in fields(AuditSettings) if f.name != "forbiddenBurst" and f.name not in _SCALAR_KEYS}


def settings_from_mapping(data: Any, where: str = "settings") -> AuditSettings:
    if data is None:
        return AuditSettings()
    if not isinstance(data, dict):
        raise SettingsError(f"{where}: expected a mapping of settings")
    known = _LIST_KEYS | {"forbiddenBurst"} | set(_SCALAR_KEYS)
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise SettingsError(f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "forbiddenBurst":
            kwargs[key] = _burst(value, where)
            continue
        if key in _SCALAR_KEYS:
            if value is None:
                continue
            choices = _SCALAR_KEYS[key]
            if not isinstance(value, str) or value not in choices:
                raise SettingsError(f"{where}: {key} must be one of {', '.join(choices)} (got {value!r})")
            kwargs[key] = value
            continue
        if value is None:
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool)
                                                  for v in value):
            raise SettingsError(f"{where}: {key} must be a list of strings")
        kwargs[key] = tuple(str(v) for v in value)
    return AuditSettings(**kwargs)


def _burst(value: Any, where: str) -> ForbiddenBurst:
    if value is None:
        return ForbiddenBurst()
    if not isinstance(value, dict):
        raise SettingsError(f"{where}: forbiddenBurst must be a mapping {{threshold, windowSeconds}}")
    unknown = sorted(str(k) for k in value if k not in ("threshold", "windowSeconds"))
    if unknown:
        raise SettingsError(f"{where}: forbiddenBurst: unknown key(s) {', '.join(unknown)}")
    threshold = value.get("threshold", ForbiddenBurst.threshold)
    window = value.get("windowSeconds", ForbiddenBurst.window_seconds)
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
        raise SettingsError(f"{where}: forbiddenBurst.threshold must be a positive integer")
    if not isinstance(window, int | float) or isinstance(window, bool) or window <= 0:
        raise SettingsError(f"{where}: forbiddenBurst.windowSeconds must be a positive number")
    return ForbiddenBurst(threshold, float(window))


def load_settings(path: str) -> AuditSettings:
    limits = Limits(max_file_bytes=4 * 1024 * 1024)
    try:
        raw = read_regular(path, limits.max_file_bytes)
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings: {exc}") from None
    problems: list[YamlInputError] = []
    documents = list(iter_yaml_documents(raw, limits, problems))
    problems += [w for doc in documents for w in doc.warnings]
    if problems:
        raise SettingsError(f"{path}: invalid YAML: {problems[0].message}", problems[0].line)
    if len(documents) > 1:
        raise SettingsError(f"{path}: expected one YAML document", documents[1].start_line)
    return settings_from_mapping(documents[0].data if documents else None, path)
