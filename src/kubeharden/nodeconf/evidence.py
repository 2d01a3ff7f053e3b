"""The evidence model node controls read, built once per scan from the Inventory.

Components come from Pods in the input (static pod manifests on disk, a kubeadm config
repository, or the mirror pods of a live cluster) and, with ``kubeharden node``, from the
node snapshot (``inventory.facts["node"]``): process command lines, the kubelet's systemd
command line and config file, and file modes and owners.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from kubeharden.catalog import Context, KubeVersion
from kubeharden.inventory import Inventory, as_dict, as_list, get_path
from kubeharden.model import NotAssessed, Path, Resource, Source, Violation
from kubeharden.nodeconf.flags import Flag, FlagSet, Token
from kubeharden.nodeconf.snapshot import COMPONENTS, FileRecord, NodeSnapshot, normalise
from kubeharden.nodeconf.systemd import KubeletCommand, kubelet_command

NEEDS = {
    "kube-apiserver": "node configuration: kube-apiserver static pod or --root",
    "etcd": "node configuration: etcd static pod or --root",
    "kube-controller-manager": "node configuration: kube-controller-manager static pod or --root",
    "kube-scheduler": "node configuration: kube-scheduler static pod or --root",
    "kubelet": "node configuration: kubelet config file and command line (--root / --bundle) "
               "or a KubeletConfiguration",
    "files": "node file modes and owners: kubeharden node --root DIR or --bundle FILE",
}
_IMAGE_VERSION_RE = re.compile(r":v?(\d+)\.(\d+)(?:\.\d+)?[^/]*$")


@dataclass
class NodeFacts:
    """What the ``node`` source puts in ``inventory.facts["node"]``."""

    snapshot: NodeSnapshot
    resources_by_path: dict[str, list[Resource]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Components


def _basename(word: Any) -> str:
    return PurePosixPath(str(word)).name if word else ""


def _image_name(image: Any) -> str:
    text = str(image or "").split("@", 1)[0]
    name = text.rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


def identify_component(pod: dict[str, Any], container: dict[str, Any]) -> str | None:
    """Which control-plane component a container runs: its command's binary, or (when it has
    no command) its image name on a Pod named or labelled after the component."""
    command = as_list(container.get("command"))
    meta = as_dict(pod.get("metadata"))
    name = str(meta.get("name") or "")
    labels = as_dict(meta.get("labels"))
    for component in COMPONENTS:
        if command:
            if _basename(command[0]) == component:
                return component
            continue
        if _image_name(container.get("image")) == component and (
            name.startswith(component) or labels.get("component") == component
        ):
            return component
    return None


def container_mount_resolver(spec: dict[str, Any], container: dict[str, Any]) -> Callable[[str], str | None]:
    """Map a path inside the container to the host path through its hostPath mounts (None when
    the path is not on a hostPath volume)."""
    host_paths = {
        str(v.get("name")): str(as_dict(v.get("hostPath")).get("path") or "")
        for v in as_list(spec.get("volumes"))
        if isinstance(v, dict) and isinstance(v.get("hostPath"), dict)
    }
    mounts = sorted(
        ((str(m.get("mountPath") or "").rstrip("/"), str(m.get("name") or ""), str(m.get("subPath") or ""))
         for m in as_list(container.get("volumeMounts")) if isinstance(m, dict) and m.get("mountPath")),
        key=lambda m: len(m[0]), reverse=True,
    )

    def resolve(path: str) -> str | None:
        for mount_path, volume, sub_path in mounts:
            if path == mount_path or path.startswith(mount_path + "/"):
                host = host_paths.get(volume)
                if not host:
                    return None
                rest = path[len(mount_path):].lstrip("/")
                base = str(PurePosixPath(host) / sub_path) if sub_path else host
                return normalise(str(PurePosixPath(base) / rest) if rest else base)
        return None

    return resolve


def _identity(path: str) -> str | None:
    return normalise(path)


@dataclass
class ComponentInstance:
    component: str
    flags: FlagSet
    label: str
    resource: Resource | None = None
    command_path: Path = ()  # path of the command (or args) list in the Pod
    source: Source | None = None  # for processes
    image_version: KubeVersion | None = None
    resolve: Callable[[str], str | None] = _identity
    origin: str = "static-pod"  # static-pod or process

    def flag(self, name: str) -> Flag | None:
        return self.flags.get(name)

    def value(self, name: str) -> str | None:
        return self.flags.value(name)

    def flag_violation(self, name: str | None, message: str, value: Any = None, *,
                       has_value: bool | None = None, **evidence: Any) -> Violation:
        """A violation located at the flag (or, when it is absent, at the command list)."""
        flag = self.flags.get(name) if name else None
        ev = {"component": self.component, "instance": self.label, **evidence}
        if name:
            ev.setdefault("flag", f"--{name}")
        if flag is not None:
            ev.setdefault("value", flag.text)
        has = (value is not None) if has_value is None else has_value
        token = flag.token if flag is not None else None
        if token is not None and token.resource is not None:
            return Violation(token.resource, token.path, message, value, has_value=has, evidence=ev)
        if token is not None and token.source is not None:
            return Violation(None, (), message, value, has_value=has, evidence=ev, source=token.source,
                             line=token.source.line)
        if self.resource is not None:
            return Violation(self.resource, self.command_path, message, value, has_value=has, evidence=ev)
        return Violation(None, (), message, value, has_value=has, evidence=ev, source=self.source,
                         line=self.source.line if self.source else None)


def _version_of_image(image: Any) -> KubeVersion | None:
    match = _IMAGE_VERSION_RE.search(str(image or "").split("@", 1)[0])
    return (int(match.group(1)), int(match.group(2))) if match else None


def _pod_instances(inventory: Inventory) -> list[ComponentInstance]:
    out: list[ComponentInstance] = []
    for res in inventory.of_kind("Pod"):
        spec = as_dict(res.obj.get("spec"))
        for index, container in enumerate(as_list(spec.get("containers"))):
            if not isinstance(container, dict):
                continue
            component = identify_component(res.obj, container)
            if component is None:
                continue
            base: Path = ("spec", "containers", index)
            tokens: list[Token] = []
            command = as_list(container.get("command"))
            args = as_list(container.get("args"))
            for i, word in enumerate(command):
                tokens.append(Token(str(word), res, (*base, "command", i)))
            for i, word in enumerate(args):
                tokens.append(Token(str(word), res, (*base, "args", i)))
            if command:
                tokens = tokens[1:]  # the binary itself
            command_path: Path = (*base, "command") if command else (*base, "args") if args else base
            version = _version_of_image(container.get("image")) if component != "etcd" else None
            out.append(ComponentInstance(
                component, FlagSet.parse(tokens), f"{res.display()} ({res.source.file})", res,
                command_path, None, version, container_mount_resolver(spec, container),
            ))
    return out


# ---------------------------------------------------------------------------------------------
# Kubelet: effective configuration = flag > config file > default


@dataclass(frozen=True)
class KubeletKey:
    path: tuple[str, ...]  # in KubeletConfiguration
    flag: str
    config_default: Any  # v1beta1 default when a config file is used
    flag_default: Any  # flag default when the kubelet runs without a config file


KUBELET_KEYS: dict[str, KubeletKey] = {k.path[-1] if len(k.path) == 1 else ".".join(k.path): k for k in (
    KubeletKey(("authentication", "anonymous", "enabled"), "anonymous-auth", False, True),
    KubeletKey(("authentication", "webhook", "enabled"), "authentication-token-webhook", True, False),
    KubeletKey(("authentication", "x509", "clientCAFile"), "client-ca-file", "", ""),
    KubeletKey(("authorization", "mode"), "authorization-mode", "Webhook", "AlwaysAllow"),
    KubeletKey(("readOnlyPort",), "read-only-port", 0, 10255),
    KubeletKey(("protectKernelDefaults",), "protect-kernel-defaults", False, False),
    KubeletKey(("makeIPTablesUtilChains",), "make-iptables-util-chains", True, True),
    KubeletKey(("rotateCertificates",), "rotate-certificates", False, False),
    KubeletKey(("serverTLSBootstrap",), "rotate-server-certificates", False, False),
    KubeletKey(("tlsMinVersion",), "tls-min-version", "", ""),
    KubeletKey(("tlsCipherSuites",), "tls-cipher-suites", [], []),
    KubeletKey(("tlsCertFile",), "tls-cert-file", "", ""),
    KubeletKey(("tlsPrivateKeyFile",), "tls-private-key-file", "", ""),
    KubeletKey(("seccompDefault",), "seccomp-default", False, False),
    KubeletKey(("podPidsLimit",), "pod-max-pids", -1, -1),
    KubeletKey(("systemReserved",), "system-reserved", {}, {}),
    KubeletKey(("kubeReserved",), "kube-reserved", {}, {}),
    KubeletKey(("streamingConnectionIdleTimeout",), "streaming-connection-idle-timeout", "4h0m0s", "4h0m0s"),
    KubeletKey(("eventRecordQPS",), "event-qps", 50, 50),
    KubeletKey(("featureGates",), "feature-gates", {}, {}),
)}


# v1beta1 defaulting replaces a zero duration in the config file with the default (kubeadm writes
# "streamingConnectionIdleTimeout: 0s", which means 4h); only a flag can really set 0.
ZERO_DEFAULTED = frozenset({"streamingConnectionIdleTimeout"})


def _is_zero_duration(value: Any) -> bool:
    text = str(value).strip()
    return text == "0" or (bool(text) and text.strip("0hms.") == "" and not any(c in "123456789" for c in text))


@dataclass
class Setting:
    key: KubeletKey
    value: Any
    origin: str  # "flag", "config", "default"
    flag: Flag | None = None

    def describe(self) -> str:
        if self.origin == "flag":
            return f"--{self.key.flag}={self.flag.text if self.flag else self.value}"
        name = ".".join(self.key.path)
        return f"{name}: {_yaml_text(self.value)}" + (" (default)" if self.origin == "default" else "")


def _yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value in ("", None):
        return '""'
    return str(value)


def _parse_flag_value(key: KubeletKey, flag: Flag) -> Any:
    default = key.config_default
    if isinstance(default, bool):
        return flag.as_bool()
    if isinstance(default, int):
        try:
            return int(flag.text)
        except ValueError:
            return flag.text
    if isinstance(default, list):
        return flag.as_list()
    if isinstance(default, dict):
        if key.flag == "feature-gates":
            from kubeharden.nodeconf.flags import parse_feature_gates

            return parse_feature_gates(flag.text)
        return dict(part.split("=", 1) for part in flag.as_list() if "=" in part)
    return flag.text


@dataclass
class KubeletInstance:
    label: str
    flags: FlagSet
    flags_known: bool  # the real command line was seen
    command: KubeletCommand | None = None
    config: dict[str, Any] | None = None
    config_resource: Resource | None = None
    config_file: str | None = None  # node path of --config
    config_source: Source | None = None
    notes: list[str] = field(default_factory=list)

    def setting(self, name: str) -> Setting:
        key = KUBELET_KEYS[name]
        flag = self.flags.get(key.flag)
        if flag is not None:
            return Setting(key, _parse_flag_value(key, flag), "flag", flag)
        if self.config is not None:
            value = get_path(self.config, key.path)
            if value is not None and not (name in ZERO_DEFAULTED and _is_zero_duration(value)):
                return Setting(key, value, "config")
            return Setting(key, key.config_default, "default")
        return Setting(key, key.flag_default, "default")

    def violation(self, setting: Setting, message: str, value: Any = None, *,
                  has_value: bool | None = None, **evidence: Any) -> Violation:
        ev: dict[str, Any] = {"component": "kubelet", "instance": self.label, "origin": setting.origin,
                              "setting": ".".join(setting.key.path), "flag": f"--{setting.key.flag}", **evidence}
        if not self.flags_known:
            ev["note"] = "the kubelet command line was not seen; a flag there would override this file"
        value = setting.value if value is None else value
        has = True if has_value is None else has_value
        if setting.origin == "flag" and setting.flag is not None:
            token = setting.flag.token
            if token.resource is not None:
                return Violation(token.resource, token.path, message, value, has_value=has, evidence=ev)
            return Violation(None, (), message, value, has_value=has, evidence=ev, source=token.source,
                             line=token.source.line if token.source else None)
        if self.config_resource is not None:
            return Violation(self.config_resource, setting.key.path, message, value, has_value=has, evidence=ev)
        source = self.config_source
        if source is None and self.command is not None and self.command.tokens:
            source = self.command.tokens[0].source
        return Violation(None, (), message, value, has_value=has, evidence=ev, source=source,
                         line=source.line if source else None)


# ---------------------------------------------------------------------------------------------


@dataclass
class NodeEvidence:
    components: dict[str, list[ComponentInstance]]
    kubelets: list[KubeletInstance]
    facts: NodeFacts | None
    inventory: Inventory
    kubelet_missing: str | None = None  # why kubelet evidence is absent

    @property
    def snapshot(self) -> NodeSnapshot | None:
        return self.facts.snapshot if self.facts is not None else None

    def require(self, component: str) -> list[ComponentInstance]:
        found = self.components.get(component) or []
        if not found:
            raise NotAssessed(f"no {component} configuration in the input ({NEEDS[component]})")
        return found

    def require_kubelets(self) -> list[KubeletInstance]:
        if not self.kubelets:
            raise NotAssessed(self.kubelet_missing or f"no kubelet configuration in the input ({NEEDS['kubelet']})")
        return self.kubelets

    def require_snapshot(self) -> NodeSnapshot:
        if self.snapshot is None:
            raise NotAssessed(f"no node file metadata in the input ({NEEDS['files']})")
        return self.snapshot

    def file_violation(self, record: FileRecord, message: str, remediation: str | None = None,
                       **evidence: Any) -> Violation:
        snapshot = self.require_snapshot()
        mode = f"{record.mode:04o}" if record.mode is not None else None
        owner = f"{record.user or record.uid}:{record.group or record.gid}"
        ev = {"path": record.path, "mode": mode, "owner": owner, **evidence}
        return Violation(None, (), message, mode, has_value=mode is not None, evidence=ev,
                         source=Source(snapshot.display(record.path)), remediation=remediation)

    def referenced_config(self, instance: ComponentInstance, flag_name: str, kind: str) -> ConfigRef:
        """The parsed file a flag points to: by its host path in a node snapshot, else by kind
        among the input's resources (preferring a file whose name matches the flag's)."""
        value = instance.value(flag_name)
        if not value:
            return ConfigRef(None, None, [], "flag not set")
        if self.facts is not None:
            host = instance.resolve(value)
            if host is None:
                return ConfigRef(value, None, [], f"{value} is not on a hostPath volume of the pod")
            record = self.facts.snapshot.file(host)
            if record is not None and record.exists:
                resources = [r for r in self.facts.resources_by_path.get(host, []) if r.kind == kind]
                if resources:
                    return ConfigRef(value, host, resources, None)
                if record.text is None:
                    return ConfigRef(value, host, [], f"{host} was not read ({record.note or 'not copied'})")
                return ConfigRef(value, host, [], f"{host} holds no {kind} object")
            if record is not None:
                return ConfigRef(value, host, [], f"{host} does not exist on the node", missing=True)
        candidates = self.inventory.of_kind(kind)
        name = PurePosixPath(value).name
        matching = [r for r in candidates if PurePosixPath(r.source.file).name == name]
        chosen = matching or candidates
        if chosen:
            return ConfigRef(value, None, chosen, None)
        return ConfigRef(value, None, [], f"the {kind} file {value} is not in the input")


@dataclass
class ConfigRef:
    flag_value: str | None
    host_path: str | None
    resources: list[Resource]
    problem: str | None
    missing: bool = False


def _kubelets_from_snapshot(facts: NodeFacts) -> tuple[list[KubeletInstance], str | None]:
    snapshot = facts.snapshot
    command = kubelet_command(snapshot)
    if command is None:
        return [], ("kubelet command line not found (no running kubelet process and no "
                    "kubelet.service ExecStart under the node root)")
    flags = FlagSet.parse(command.tokens)
    label = f"kubelet ({command.describe})"
    instance = KubeletInstance(label, flags, True, command)
    config_flag = flags.value("config")
    if config_flag:
        path = normalise(config_flag)
        instance.config_file = path
        record = snapshot.file(path)
        if record is None or not record.exists:
            return [], f"the kubelet's --config file {path} was not found under the node root"
        resources = [r for r in facts.resources_by_path.get(path, []) if r.kind == "KubeletConfiguration"]
        if not resources:
            return [], f"the kubelet's --config file {path} holds no KubeletConfiguration"
        instance.config_resource = resources[0]
        instance.config = resources[0].obj
        instance.config_source = resources[0].source
    return [instance], None


def _build(inventory: Inventory) -> NodeEvidence:
    facts = inventory.facts.get("node")
    facts = facts if isinstance(facts, NodeFacts) else None
    components: dict[str, list[ComponentInstance]] = {}
    for instance in _pod_instances(inventory):
        components.setdefault(instance.component, []).append(instance)
    kubelets: list[KubeletInstance] = []
    missing: str | None = None
    if facts is not None:
        snapshot = facts.snapshot
        for name, procs in snapshot.processes.items():
            if name == "kubelet" or components.get(name):
                continue
            for proc in procs:
                where = f"/proc/{proc.pid}/cmdline"
                source = Source(f"{snapshot.location}:{where}" if snapshot.origin == "bundle" else where)
                tokens = [Token(a, source=source) for a in proc.argv[1:]]
                components.setdefault(name, []).append(ComponentInstance(
                    name, FlagSet.parse(tokens), f"{name} process {proc.pid}", source=source, origin="process"))
        kubelets, missing = _kubelets_from_snapshot(facts)
    else:
        for res in inventory.of_kind("KubeletConfiguration"):
            kubelets.append(KubeletInstance(f"{res.display()} ({res.source.file})", FlagSet(), False, None,
                                            res.obj, res, None, res.source))
    return NodeEvidence(components, kubelets, facts, inventory, missing)


_CACHE: dict[int, tuple[weakref.ref[Inventory], NodeEvidence]] = {}


def node_evidence(inventory: Inventory) -> NodeEvidence:
    """Evidence for an inventory, built once per scan."""
    key = id(inventory)
    cached = _CACHE.get(key)
    if cached is not None and cached[0]() is inventory:
        return cached[1]
    evidence = _build(inventory)
    for stale in [k for k, (ref, _) in _CACHE.items() if ref() is None]:
        del _CACHE[stale]
    _CACHE[key] = (weakref.ref(inventory), evidence)
    return evidence


def evidence_of(ctx: Context) -> NodeEvidence:
    return node_evidence(ctx.inventory)


def component_version(ctx: Context, instance: ComponentInstance | None = None) -> tuple[KubeVersion, str]:
    """The Kubernetes version that decides defaults: --kubernetes-version, else the image tag
    of the component (or of the API server), else the newest supported."""
    if ctx.settings.kubernetes_version:
        return ctx.settings.kubernetes_version, "--kubernetes-version"
    if instance is not None and instance.image_version:
        return instance.image_version, "image tag"
    for api in evidence_of(ctx).components.get("kube-apiserver", []):
        if api.image_version:
            return api.image_version, "kube-apiserver image tag"
    return ctx.kubernetes_version, "newest supported (version unknown)"
