"""The evidence model node controls read, built once per scan from the Inventory.

Components come from Pods in the input (static pod manifests on disk, a config repository, or
the mirror pods of a live cluster), from a kubeadm ClusterConfiguration (the static pods kubeadm
would generate from it) and, with ``kubeharden node``, from the
node snapshot (``inventory.facts["node"]``): process command lines, the kubelet's systemd
command line and config file, and file modes and owners.
"""

from __future__ import annotations

import re
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


@dataclass(frozen=True)
class Mount:
    """A container path backed by a volume: its host path when that volume is a hostPath."""

    path: str  # inside the container
    host: str | None
    read_only: bool


def container_mounts(spec: dict[str, Any], container: dict[str, Any]) -> list[Mount]:
    host_paths = {
        str(v.get("name")): str(as_dict(v.get("hostPath")).get("path") or "")
        for v in as_list(spec.get("volumes"))
        if isinstance(v, dict) and isinstance(v.get("hostPath"), dict)
    }
    out = []
    for m in as_list(container.get("volumeMounts")):
        if not isinstance(m, dict) or not m.get("mountPath"):
            continue
        host = host_paths.get(str(m.get("name") or "")) or None
        sub_path = str(m.get("subPath") or "")
        if host and sub_path:
            host = str(PurePosixPath(host) / sub_path)
        out.append(Mount(str(m["mountPath"]).rstrip("/") or "/", host, m.get("readOnly") is True))
    return out


def mount_for(mounts: list[Mount], path: str) -> Mount | None:
    """The mount a container path is on (the deepest one), as the container runtime resolves it."""
    best = None
    for mount in mounts:
        if (path == mount.path or path.startswith(mount.path.rstrip("/") + "/")) and (
                best is None or len(mount.path) > len(best.path)):
            best = mount
    return best


def host_path_of(mounts: list[Mount], path: str) -> str | None:
    """Map a path inside the container to the host path through its hostPath mounts (None when
    the path is not on a hostPath volume)."""
    mount = mount_for(mounts, path)
    if mount is None or mount.host is None:
        return None
    rest = path[len(mount.path):].lstrip("/")
    return normalise(str(PurePosixPath(mount.host) / rest) if rest else mount.host)


def container_mount_resolver(spec: dict[str, Any], container: dict[str, Any]) -> Callable[[str], str | None]:
    mounts = container_mounts(spec, container)
    return lambda path: host_path_of(mounts, path)


@dataclass
class ComponentInstance:
    component: str
    flags: FlagSet
    label: str
    resource: Resource | None = None  # the Pod, or the kubeadm ClusterConfiguration
    command_path: Path = ()  # where flags are written: the command (or args) list, or extraArgs
    source: Source | None = None  # for processes
    image_version: KubeVersion | None = None
    mounts: list[Mount] | None = None  # None: runs in the host's mount namespace (a process)
    origin: str = "static-pod"  # static-pod, kubeadm or process

    def resolve(self, path: str) -> str | None:
        """The host path of a path the component reads (None: not on a hostPath volume)."""
        return normalise(path) if self.mounts is None else host_path_of(self.mounts, path)

    def mount_for(self, path: str) -> Mount | None:
        return mount_for(self.mounts, path) if self.mounts is not None else None

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


def missing_file_violation(instance: ComponentInstance, flag_name: str, ref: ConfigRef) -> Violation:
    """The flag names a file that is not on the node: the component cannot start with it."""
    return instance.flag_violation(flag_name, f"--{flag_name} names {ref.host_path}, which does not exist on the "
                                   f"node ({instance.component} cannot start)", instance.value(flag_name))


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
                command_path, None, version, container_mounts(spec, container),
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


# The kubelet's evictionHard default on Linux (pkg/kubelet/eviction/defaults_linux.go).
EVICTION_HARD_DEFAULT = {"memory.available": "100Mi", "nodefs.available": "10%", "nodefs.inodesFree": "5%",
                         "imagefs.available": "15%"}
EVICTION_FLAGS = frozenset({"eviction-hard", "eviction-soft"})

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
    KubeletKey(("evictionHard",), "eviction-hard", dict(EVICTION_HARD_DEFAULT), dict(EVICTION_HARD_DEFAULT)),
    KubeletKey(("evictionSoft",), "eviction-soft", {}, {}),
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
    origin: str  # "flag", "config" (--config file), "config-dir" (a --config-dir drop-in), "default",
    # "kubeadm" (what kubeadm fills into the KubeletConfiguration it writes)
    flag: Flag | None = None
    resource: Resource | None = None  # the config document that set the value

    def describe(self) -> str:
        if self.origin == "flag":
            return f"--{self.key.flag}={self.flag.text if self.flag else self.value}"
        name = ".".join(self.key.path)
        where = {"default": " (default)", "kubeadm": " (kubeadm default)",
                 "config-dir": f" (drop-in {self._file_name()})"}.get(self.origin, "")
        return f"{name}: {_yaml_text(self.value)}{where}"

    def _file_name(self) -> str:
        return PurePosixPath(self.resource.source.file).name if self.resource is not None else "?"


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
        if key.flag in EVICTION_FLAGS:  # signal<quantity pairs
            return dict(part.split("<", 1) for part in flag.as_list() if "<" in part)
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
    dropins: list[Resource] = field(default_factory=list)  # --config-dir files, in the kubelet's order
    notes: list[str] = field(default_factory=list)
    # defaults a tool fills in before the kubelet reads the file (kubeadm): setting name -> value
    tool_defaults: dict[str, Any] = field(default_factory=dict)

    def setting(self, name: str) -> Setting:
        key = KUBELET_KEYS[name]
        flag = self.flags.get(key.flag)
        file_value, resource, origin = self._file_value(name, key)
        if flag is not None:
            value = _parse_flag_value(key, flag)
            if key.flag == "feature-gates" and isinstance(file_value, dict):
                value = {**file_value, **value}  # the kubelet keeps file gates the flag does not name
            return Setting(key, value, "flag", flag)
        if name in self.tool_defaults and (file_value is None or file_value == ""):
            return Setting(key, self.tool_defaults[name], "kubeadm", resource=resource or self.config_resource)
        if file_value is not None:
            return Setting(key, file_value, origin, resource=resource)
        # without --config the kubelet starts from its legacy flag defaults (drop-ins apply on top)
        return Setting(key, key.config_default if self.config is not None else key.flag_default, "default")

    def _file_value(self, name: str, key: KubeletKey) -> tuple[Any, Resource | None, str]:
        """The value from the --config file, then each --config-dir drop-in applied over it as a
        JSON merge patch (later files win, mappings merge)."""
        value: Any = None
        resource: Resource | None = None
        origin = ""
        if self.config is not None:
            found = get_path(self.config, key.path)
            if found is not None and not (name in ZERO_DEFAULTED and _is_zero_duration(found)):
                value, resource, origin = found, self.config_resource, "config"
        # drop-ins are merged after defaulting, so a zero there is a real zero
        for dropin in self.dropins:
            found = get_path(dropin.obj, key.path)
            if found is None:
                continue
            if isinstance(found, dict) and isinstance(value, dict):
                found = {**value, **found}
            value, resource, origin = found, dropin, "config-dir"
        return value, resource, origin

    def node_ref(self) -> dict[str, Any]:
        """What a finding on a kubelet command line is about: its Node (--hostname-override names it)."""
        name = self.flags.value("hostname-override")
        return {"apiVersion": "v1", "kind": "Node", "namespace": None, "name": str(name) if name else "kubelet"}

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
            ev["resource"] = self.node_ref()
            return Violation(None, (), message, value, has_value=has, evidence=ev, source=token.source,
                             line=token.source.line if token.source else None)
        located = setting.resource or self.config_resource
        if located is not None:
            return Violation(located, setting.key.path, message, value, has_value=has, evidence=ev)
        ev["resource"] = self.node_ref()
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
            raise NotAssessed(self.missing_reason(component))
        return found

    def unreadable_pods(self) -> str | None:
        """Why the Pods that show control-plane components could not be read (a live scan whose
        credentials may not list Pods), as the engine words an unreadable kind; None when readable."""
        forbidden = self.inventory.facts.get("forbidden_kinds") or {}
        return f"cannot read Pod: {forbidden['Pod']}" if "Pod" in forbidden else None

    def missing_reason(self, *components: str) -> str:
        """Why no instance of the components is in the evidence: unreadable Pods first."""
        names = ", ".join(components)
        blocked = self.unreadable_pods()
        if blocked:
            return f"{blocked} (the {names} configuration comes from its static or mirror pod)"
        if len(components) == 1:
            return f"no {names} configuration in the input ({NEEDS[components[0]]})"
        return f"none of {names} is in the input (node configuration: static pods or --root)"

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
        return self.referenced_file(instance, value, kind)

    def referenced_file(self, instance: ComponentInstance, value: str, kind: str) -> ConfigRef:
        """The parsed file at ``value`` (a path inside the component's container)."""
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
    config_dir = flags.value("config-dir")
    if config_dir:
        problem = _load_dropins(facts, instance, normalise(config_dir))
        if problem:
            return [], problem
    return [instance], None


def _load_dropins(facts: NodeFacts, instance: KubeletInstance, directory: str) -> str | None:
    """The kubelet walks --config-dir in lexical order (directory by directory) and applies every
    *.conf file; a missing directory or a file that is not a KubeletConfiguration stops it."""
    record = facts.snapshot.file(directory)
    if record is None or not record.exists:
        return f"the kubelet's --config-dir {directory} was not found under the node root"
    prefix = directory.rstrip("/") + "/"
    paths = sorted((p for p, r in facts.snapshot.files.items()
                    if p.startswith(prefix) and p.endswith(".conf") and r.kind == "file"),
                   key=lambda p: PurePosixPath(p).parts)
    for path in paths:
        resources = [r for r in facts.resources_by_path.get(path, []) if r.kind == "KubeletConfiguration"]
        if not resources:
            return f"the kubelet drop-in {path} holds no KubeletConfiguration (or was not read)"
        instance.dropins.append(resources[0])
    return None


# ---------------------------------------------------------------------------------------------
# kubeadm ClusterConfiguration: the static pods kubeadm would write (its flags, then extraArgs)

KUBEADM_SECTIONS: dict[str, tuple[str, ...]] = {
    "kube-apiserver": ("apiServer",),
    "kube-controller-manager": ("controllerManager",),
    "kube-scheduler": ("scheduler",),
    "etcd": ("etcd", "local"),
}
# kubeadm's generated flags are known (nodeconf.manifests) from this version on; older kubeadm set
# different ones (e.g. --insecure-port=0, no service-account issuer before 1.20).
KUBEADM_MODELLED_FROM = (1, 24)
_KUBERNETES_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)")


def _kubeadm_version(config: dict[str, Any]) -> KubeVersion | None:
    match = _KUBERNETES_VERSION_RE.match(str(config.get("kubernetesVersion") or ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _extra_args(res: Resource, section: Path, section_obj: dict[str, Any], key: str = "extraArgs") -> list[Token]:
    """extraArgs as flag words: a map in v1beta3, a list of {name, value} in v1beta4."""
    args = section_obj.get(key)
    base: Path = (*section, key)
    if isinstance(args, dict):
        return [Token(f"--{k}={v}", res, (*base, str(k))) for k, v in args.items()]
    return [Token(f"--{a.get('name')}={a.get('value', '')}", res, (*base, i, "value"))
            for i, a in enumerate(as_list(args)) if isinstance(a, dict) and a.get("name")]


def _kubeadm_instances(inventory: Inventory) -> list[ComponentInstance]:
    from kubeharden.nodeconf.manifests import KUBEADM_FLAGS, KUBEADM_VOLUMES

    out: list[ComponentInstance] = []
    for res in inventory.of_kind("ClusterConfiguration"):
        if res.group != "kubeadm.k8s.io":
            continue
        version = _kubeadm_version(res.obj)
        if version is not None and version < KUBEADM_MODELLED_FROM:
            continue
        etcd = as_dict(res.obj.get("etcd"))
        external = as_dict(etcd.get("external")) if "external" in etcd else None
        for component, section in KUBEADM_SECTIONS.items():
            if component == "etcd" and external is not None:
                continue  # an external etcd's flags are not in this file
            section_obj = as_dict(get_path(res.obj, section))
            defaults = dict(KUBEADM_FLAGS[component])
            volumes = [Mount(m, h, ro) for _n, h, m, _t, ro in KUBEADM_VOLUMES[component]]
            if component == "etcd" and section_obj.get("dataDir"):
                data_dir = normalise(str(section_obj["dataDir"]))
                defaults["data-dir"] = data_dir
                volumes = [v for v in volumes if v.path != "/var/lib/etcd"] + [Mount(data_dir, data_dir, False)]
            if component == "kube-apiserver" and external is not None:
                endpoints = ",".join(str(e) for e in as_list(external.get("endpoints")))
                for flag, key in (("etcd-servers", ""), ("etcd-cafile", "caFile"), ("etcd-certfile", "certFile"),
                                  ("etcd-keyfile", "keyFile")):
                    value = endpoints if not key else str(external.get(key) or "")
                    if value:
                        defaults[flag] = value
                    else:
                        defaults.pop(flag, None)
            # kubeadm's own flags are placed at the component's section; extraArgs override them
            tokens = [Token(f"--{k}={v}", res, section) for k, v in defaults.items()]
            tokens += _extra_args(res, section, section_obj)
            volumes += [Mount(str(v.get("mountPath") or "").rstrip("/"), str(v.get("hostPath") or "") or None,
                              v.get("readOnly") is True)
                        for v in as_list(section_obj.get("extraVolumes")) if isinstance(v, dict) and v.get("mountPath")]
            label = f"{component} from kubeadm {res.display()} ({res.source.file})"
            out.append(ComponentInstance(component, FlagSet.parse(tokens), label, res, (*section, "extraArgs"), None,
                                         version, volumes, origin="kubeadm"))
    return out


def _build(inventory: Inventory) -> NodeEvidence:
    facts = inventory.facts.get("node")
    facts = facts if isinstance(facts, NodeFacts) else None
    components: dict[str, list[ComponentInstance]] = {}
    for instance in _pod_instances(inventory):
        components.setdefault(instance.component, []).append(instance)
    # a repository may hold both the ClusterConfiguration and the manifests generated from it
    for instance in _kubeadm_instances(inventory):
        if not any(i.origin == "static-pod" for i in components.get(instance.component, [])):
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
        registrations = _kubeadm_kubelet_args(inventory) or [("", [])]
        kubeadm_defaults = _kubeadm_kubelet_defaults(inventory)
        for res in inventory.of_kind("KubeletConfiguration"):
            for where, tokens in registrations:
                kubelets.append(KubeletInstance(f"{res.display()} ({res.source.file}){where}", FlagSet.parse(tokens),
                                                False, None, res.obj, res, None, res.source,
                                                tool_defaults=dict(kubeadm_defaults)))
    return NodeEvidence(components, kubelets, facts, inventory, missing)


KUBEADM_CONFIG_KINDS = ("ClusterConfiguration", "InitConfiguration", "JoinConfiguration")
KUBEADM_CERTIFICATES_DIR = "/etc/kubernetes/pki"


def _kubeadm_kubelet_defaults(inventory: Inventory) -> dict[str, Any]:
    """A KubeletConfiguration given to kubeadm (next to its configuration documents) is defaulted
    by kubeadm before it is written for the kubelet (cmd/kubeadm/app/componentconfigs/kubelet.go):
    an empty authentication.x509.clientCAFile becomes <certificatesDir>/ca.crt and
    rotateCertificates is set to true. Its other security defaults (anonymous auth off, webhook
    authentication and authorization) equal the kubelet's own v1beta1 defaults."""
    documents = [r for r in inventory.of_kind(*KUBEADM_CONFIG_KINDS) if r.group == "kubeadm.k8s.io"]
    if not documents:
        return {}
    certificates_dir = KUBEADM_CERTIFICATES_DIR
    for res in documents:
        if res.kind == "ClusterConfiguration" and res.obj.get("certificatesDir"):
            certificates_dir = str(res.obj["certificatesDir"]).rstrip("/") or "/"
            break
    return {
        "authentication.x509.clientCAFile": str(PurePosixPath(certificates_dir) / "ca.crt"),
        "rotateCertificates": True,
    }


def _kubeadm_kubelet_args(inventory: Inventory) -> list[tuple[str, list[Token]]]:
    """kubeadm writes nodeRegistration.kubeletExtraArgs of an InitConfiguration (the first control
    plane) or JoinConfiguration (the other nodes) to kubeadm-flags.env: flags over the shared
    KubeletConfiguration, one set per kind of node."""
    out = []
    for kind in ("InitConfiguration", "JoinConfiguration"):
        for res in inventory.of_kind(kind):
            if res.group != "kubeadm.k8s.io":
                continue
            registration = as_dict(res.obj.get("nodeRegistration"))
            tokens = _extra_args(res, ("nodeRegistration",), registration, "kubeletExtraArgs")
            out.append((f" with kubeletExtraArgs of {res.display()}", tokens))
    return out


def node_evidence(inventory: Inventory) -> NodeEvidence:
    """Evidence for an inventory, built once per scan."""
    return inventory.analysis(_build)


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
