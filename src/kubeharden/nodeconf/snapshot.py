"""What was read from a node: files (mode, owner, and for config files their text) and the
command lines of running components. Built from a node root (``--root``) or a bundle made
by ``collect-node``; the same structure either way, so every check sees the same evidence.

Secrets are never copied: kubeconfigs, keys and token files are recorded by mode and owner
only; EncryptionConfiguration keys are replaced by their decoded length; credentials in an
audit-webhook kubeconfig are replaced by a marker.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import glob
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import orjson
import yaml

from kubeharden.inventory import as_dict, as_list
from kubeharden.loader import display_path
from kubeharden.model import InputError, Source
from kubeharden.nodeconf.flags import FlagSet, Token
from kubeharden.yamlsafe import Limits, YamlInputError, iter_yaml_documents

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
PROCESS_NAMES = (*COMPONENTS, "kubelet")
MANIFEST_DIR = "/etc/kubernetes/manifests"
KUBECONFIGS = tuple(
    f"/etc/kubernetes/{name}"
    for name in ("admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf",
                 "kubelet.conf", "bootstrap-kubelet.conf")
)
PKI_DIRS = ("/etc/kubernetes/pki", "/var/lib/kubelet/pki")
KUBELET_UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
KUBELET_ENV_FILES = ("/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet", "/etc/sysconfig/kubelet")
REDACTED_CREDENTIAL = "<redacted by kubeharden>"
KEY_LENGTH_MARKER = "kubeharden-redacted-key:decoded-bytes="
BUNDLE_MANIFEST = "kubeharden-node-manifest.json"
BUNDLE_FORMAT = 1
MAX_COPY_BYTES = 4 * 1024 * 1024
MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # a bundle may come from elsewhere: bound what is read

# Files whose text is copied, by role. Others are recorded by mode and owner only.
COPIED_ROLES = frozenset({
    "static-pod", "kubelet-config", "kubelet-unit", "kubelet-env", "encryption-config",
    "audit-policy", "admission-config", "admission-plugin-config", "audit-webhook-kubeconfig",
    "authentication-config", "authorization-config",
})
# Roles whose copied text is a Kubernetes-style YAML document the node source loads.
YAML_ROLES = frozenset({
    "static-pod", "kubelet-config", "encryption-config", "audit-policy", "admission-config",
    "admission-plugin-config", "authentication-config", "authorization-config", "audit-webhook-kubeconfig",
})
# kube-apiserver flags naming a file whose content the checks read.
APISERVER_COPIED_FLAGS = {
    "encryption-provider-config": "encryption-config",
    "audit-policy-file": "audit-policy",
    "admission-control-config-file": "admission-config",
    "audit-webhook-config-file": "audit-webhook-kubeconfig",
    "authentication-config": "authentication-config",
    "authorization-config": "authorization-config",
}


@dataclass
class FileRecord:
    path: str  # absolute path on the node
    exists: bool
    kind: str = "missing"  # file, dir, link, other, missing
    mode: int | None = None  # permission bits (0o7777)
    uid: int | None = None
    gid: int | None = None
    user: str | None = None
    group: str | None = None
    role: str = ""
    text: str | None = None  # copied content (config files only; sanitised)
    note: str | None = None
    private_key: bool | None = None  # PKI files: holds a PEM private key (only this fact is kept)

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "text" and v is not None}
        out["copied"] = self.text is not None
        return out


@dataclass
class ProcessRecord:
    pid: int
    argv: list[str]


@dataclass
class NodeSnapshot:
    origin: str  # "root" or "bundle"
    location: str  # the root directory or the bundle file
    files: dict[str, FileRecord] = field(default_factory=dict)
    processes: dict[str, list[ProcessRecord]] = field(default_factory=dict)
    live_processes: bool = False  # processes were read from /proc (root is "/")
    collected_at: str = ""
    errors: list[InputError] = field(default_factory=list)

    def display(self, path: str) -> str:
        """How a node path is named in findings."""
        if self.origin == "bundle":
            return f"{display_path(self.location)}:{path}"
        return display_path(host_path(self.location, path))

    def source(self, path: str, line: int | None = None) -> Source:
        record = self.files.get(path)
        text = record.text if record is not None and self.origin == "bundle" else None
        return Source(self.display(path), line, text=text)

    def file(self, path: str) -> FileRecord | None:
        return self.files.get(normalise(path))

    def with_role(self, role: str) -> list[FileRecord]:
        return [r for r in self.files.values() if r.role == role]


def normalise(path: str) -> str:
    return str(PurePosixPath("/") / PurePosixPath(path.lstrip("/"))) if path else path


def host_path(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


# ---------------------------------------------------------------------------------------------
# Reading a node root


class _RootReader:
    def __init__(self, root: str, snapshot: NodeSnapshot) -> None:
        self.root = root
        self.snapshot = snapshot
        self._users: dict[int, str | None] = {}
        self._groups: dict[int, str | None] = {}

    def record(self, path: str, role: str) -> FileRecord:
        path = normalise(path)
        existing = self.snapshot.files.get(path)
        if existing is not None:
            if role and not existing.role:
                existing.role = role
            if role == "pki" and existing.kind == "file" and existing.private_key is None:
                existing.private_key = _holds_private_key(host_path(self.root, path))
            return existing
        real = host_path(self.root, path)
        record = FileRecord(path, False, role=role)
        try:
            st = os.lstat(real)
        except OSError:
            self.snapshot.files[path] = record
            return record
        if stat.S_ISLNK(st.st_mode):
            try:
                st = os.stat(real)  # permissions of a link are those of its target
            except OSError:
                record.kind, record.note = "link", "dangling symbolic link"
                self.snapshot.files[path] = record
                return record
        record.exists = True
        record.kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        record.mode = stat.S_IMODE(st.st_mode)
        record.uid, record.gid = st.st_uid, st.st_gid
        record.user, record.group = self._user(st.st_uid), self._group(st.st_gid)
        if role == "pki" and record.kind == "file":
            record.private_key = _holds_private_key(real)
        if role in COPIED_ROLES and record.kind == "file":
            if st.st_size > MAX_COPY_BYTES:
                record.note = f"larger than {MAX_COPY_BYTES} bytes; content not read"
            else:
                try:
                    with open(real, "rb") as config_file:
                        raw = config_file.read()
                    record.text = sanitise(role, raw.decode("utf-8", "replace"))
                except OSError as exc:
                    record.note = f"cannot read: {exc.strerror}"
                    self.snapshot.errors.append(InputError(self.snapshot.display(path), f"cannot read: {exc.strerror}"))
        self.snapshot.files[path] = record
        return record

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(host_path(self.root, path)))
        except OSError:
            return []

    def files_below(self, path: str) -> list[str]:
        """Node paths of the regular files under a directory, recursively."""
        base = host_path(self.root, path)
        found = []
        for dirpath, _dirnames, filenames in os.walk(base):
            rel = normalise(os.path.relpath(dirpath, self.root))
            found += [f"{rel}/{name}" for name in filenames if os.path.isfile(os.path.join(dirpath, name))]
        return sorted(found)

    def walk(self, path: str, role: str) -> None:
        base = host_path(self.root, path)
        if not os.path.isdir(base):
            self.record(path, role)
            return
        self.record(path, role + "-dir")
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel = normalise(os.path.relpath(dirpath, self.root))
            for name in sorted(dirnames):
                self.record(f"{rel}/{name}", role + "-dir")
            for name in sorted(filenames):
                self.record(f"{rel}/{name}", role)

    def _user(self, uid: int) -> str | None:
        if uid not in self._users:
            self._users[uid] = _lookup_name(host_path(self.root, "/etc/passwd"), uid)
        return self._users[uid]

    def _group(self, gid: int) -> str | None:
        if gid not in self._groups:
            self._groups[gid] = _lookup_name(host_path(self.root, "/etc/group"), gid)
        return self._groups[gid]


def _holds_private_key(real: str) -> bool | None:
    """Whether a PKI file holds a PEM private key, whatever its name (kubelet-client-current.pem
    holds certificate and key). The content is only searched, never kept."""
    try:
        with open(real, "rb") as fh:
            return b"PRIVATE KEY-----" in fh.read(MAX_COPY_BYTES)
    except OSError:
        return None


def _lookup_name(table: str, ident: int) -> str | None:
    """Name of a uid/gid from the node's own passwd/group file (not the scanning host's)."""
    try:
        with open(table, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split(":")
                if len(parts) > 2 and parts[2] == str(ident):
                    return parts[0]
    except OSError:
        pass
    return "root" if ident == 0 else None


def read_processes(proc: str = "/proc") -> dict[str, list[ProcessRecord]]:
    """Command lines of running control-plane components and the kubelet."""
    found: dict[str, list[ProcessRecord]] = {}
    for entry in sorted(glob.glob(os.path.join(proc, "[0-9]*", "cmdline"))):
        try:
            with open(entry, "rb") as cmdline:
                raw = cmdline.read()
        except OSError:
            continue
        argv = [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]
        if not argv:
            continue
        name = os.path.basename(argv[0])
        if name in PROCESS_NAMES:
            pid = int(os.path.basename(os.path.dirname(entry)))
            found.setdefault(name, []).append(ProcessRecord(pid, argv))
    return found


def collect_root(root: str, processes: bool | None = None, proc: str = "/proc") -> NodeSnapshot:
    """Read everything the node checks need from a node root (``/`` or a copy of one)."""
    root = os.path.abspath(root)
    snapshot = NodeSnapshot("root", root, collected_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    if not os.path.isdir(root):
        snapshot.errors.append(InputError(root, "node root is not a directory"))
        return snapshot
    live = os.path.realpath(root) == "/" if processes is None else processes
    if live:
        snapshot.processes = read_processes(proc)
        snapshot.live_processes = True
    reader = _RootReader(root, snapshot)
    # kubelet: units and env files, then the config file its real command line names
    for unit_dir in KUBELET_UNIT_DIRS:
        reader.record(f"{unit_dir}/kubelet.service", "kubelet-unit")
        for name in reader.listdir(f"{unit_dir}/kubelet.service.d"):
            if name.endswith(".conf"):
                reader.record(f"{unit_dir}/kubelet.service.d/{name}", "kubelet-unit")
    for env_file in KUBELET_ENV_FILES:
        reader.record(env_file, "kubelet-env")
    _collect_referenced(reader, snapshot)
    return snapshot


def _collect_referenced(reader: _RootReader, snapshot: NodeSnapshot) -> None:
    from kubeharden.nodeconf.systemd import kubelet_command

    command = kubelet_command(snapshot)
    flags = FlagSet.parse(command.tokens) if command is not None else FlagSet()
    config_path = flags.value("config")
    kubelet_config: dict[str, Any] = {}
    if config_path:
        record = reader.record(config_path, "kubelet-config")
        kubelet_config = _yaml_mapping(record.text)
    config_dir = flags.value("config-dir")
    if config_dir:
        reader.record(config_dir, "kubelet-config-dir")
        for dropin in reader.files_below(config_dir):
            if dropin.endswith(".conf"):
                text = reader.record(dropin, "kubelet-config").text
                kubelet_config = merge_patch(kubelet_config, _yaml_mapping(text))
    for flag in ("kubeconfig", "bootstrap-kubeconfig"):
        if flags.value(flag):
            reader.record(str(flags.value(flag)), "kubeconfig")
    for flag in ("client-ca-file", "tls-cert-file", "tls-private-key-file"):
        if flags.value(flag):
            reader.record(str(flags.value(flag)), "pki")
    x509 = kubelet_config.get("authentication", {}) if isinstance(kubelet_config.get("authentication"), dict) else {}
    ca = x509.get("x509", {}).get("clientCAFile") if isinstance(x509.get("x509"), dict) else None
    for path in (ca, kubelet_config.get("tlsCertFile"), kubelet_config.get("tlsPrivateKeyFile")):
        if isinstance(path, str) and path:
            reader.record(path, "pki")
    # static pods
    manifest_dirs = [MANIFEST_DIR]
    static_path = flags.value("pod-manifest-path") or kubelet_config.get("staticPodPath")
    if isinstance(static_path, str) and static_path and normalise(static_path) != MANIFEST_DIR:
        manifest_dirs.append(normalise(static_path))
    for directory in manifest_dirs:
        reader.record(directory, "manifest-dir")
        for name in reader.listdir(directory):
            if name.endswith((".yaml", ".yml", ".json")) and not name.startswith("."):
                record = reader.record(f"{directory}/{name}", "static-pod")
                _collect_from_static_pod(reader, record)
    for path in KUBECONFIGS:
        reader.record(path, "kubeconfig")
    for home_config in ["/root/.kube/config"] + [f"/home/{u}/.kube/config" for u in reader.listdir("/home")]:
        reader.record(home_config, "kubeconfig")
    for pki in PKI_DIRS:
        reader.walk(pki, "pki")
    # Components running without a static pod (systemd-managed control planes)
    for name, records in snapshot.processes.items():
        if name == "kubelet":
            continue
        for proc_record in records:
            _collect_from_flags(reader, name, FlagSet.parse(Token(t) for t in proc_record.argv[1:]), lambda p: p)


def merge_patch(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch, as the kubelet applies its --config-dir drop-ins."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out


def _collect_from_static_pod(reader: _RootReader, record: FileRecord) -> None:
    from kubeharden.nodeconf.evidence import container_mount_resolver, identify_component

    pod = _yaml_mapping(record.text)
    spec = as_dict(pod.get("spec"))
    for container in as_list(spec.get("containers")):
        if not isinstance(container, dict):
            continue
        component = identify_component(pod, container)
        if component is None:
            continue
        command = [str(x) for x in as_list(container.get("command"))]
        args = [str(x) for x in as_list(container.get("args"))]
        words = command[1:] + args  # without the binary (absent when the image's entrypoint runs)
        resolve = container_mount_resolver(spec, container)
        _collect_from_flags(reader, component, FlagSet.parse(Token(t) for t in words), resolve)


def _collect_from_flags(reader: _RootReader, component: str, flags: FlagSet, resolve: Any) -> None:
    for name, flag in flags.flags.items():
        value = flag.value
        if not value or not value.startswith("/"):
            continue
        host = resolve(value)
        if host is None:
            continue
        role = APISERVER_COPIED_FLAGS.get(name, "") if component == "kube-apiserver" else ""
        if name == "data-dir" and component == "etcd":
            role = "etcd-data-dir"
        elif not role:
            role = "kubeconfig" if "kubeconfig" in name else "pki" if name.endswith(
                ("file", "cafile", "certfile", "keyfile")) else "referenced"
        record = reader.record(host, role)
        if role == "admission-config":
            for plugin_path in _admission_plugin_paths(record.text):
                target = plugin_path if plugin_path.startswith("/") else str(
                    PurePosixPath(value).parent / plugin_path)
                mapped = resolve(target)
                if mapped is not None:
                    reader.record(mapped, "admission-plugin-config")


def _admission_plugin_paths(text: str | None) -> list[str]:
    doc = _yaml_mapping(text)
    out = []
    for plugin in doc.get("plugins") or []:
        if isinstance(plugin, dict) and isinstance(plugin.get("path"), str) and plugin["path"]:
            out.append(plugin["path"])
    return out


def yaml_documents(text: str) -> list[Any] | None:
    """The documents of a node file, read through the guarded reader (a bundle or node root
    may be hostile); None when the text is not valid YAML."""
    errors: list[YamlInputError] = []
    docs = [doc.data for doc in iter_yaml_documents(text.encode("utf-8"), Limits(), errors)]
    return None if errors else docs


def _yaml_mapping(text: str | None) -> dict[str, Any]:
    docs = yaml_documents(text) if text else None
    return docs[0] if docs and isinstance(docs[0], dict) else {}


# ---------------------------------------------------------------------------------------------
# Sanitising copied files: keep what checks need, never a secret.


def sanitise(role: str, text: str) -> str:
    if role == "encryption-config":
        return redact_encryption_keys(text)
    if role == "audit-webhook-kubeconfig":
        return redact_kubeconfig_credentials(text)
    return text


def describe_key(secret: Any) -> str:
    """The marker that replaces an encryption key: its decoded length (or that it is invalid)."""
    if not isinstance(secret, str):
        return f"{KEY_LENGTH_MARKER}invalid"
    if secret.startswith(KEY_LENGTH_MARKER):
        return secret
    try:
        length = len(base64.b64decode(secret.strip(), validate=True))
    except (binascii.Error, ValueError):
        return f"{KEY_LENGTH_MARKER}invalid"
    return f"{KEY_LENGTH_MARKER}{length}"


def redact_encryption_keys(text: str) -> str:
    """Replace every provider key with its decoded length; keep everything else as is."""
    docs = yaml_documents(text)
    if docs is None:
        return "# kubeharden: content withheld (not valid YAML)\n"
    for doc in docs:
        resources = doc.get("resources") if isinstance(doc, dict) else None
        for entry in resources if isinstance(resources, list) else []:
            providers = entry.get("providers") if isinstance(entry, dict) else None
            for provider in providers if isinstance(providers, list) else []:
                if not isinstance(provider, dict):
                    continue
                for config in provider.values():
                    keys = config.get("keys") if isinstance(config, dict) else None
                    for key in keys if isinstance(keys, list) else []:
                        if isinstance(key, dict) and "secret" in key:
                            key["secret"] = describe_key(key["secret"])
    return yaml.safe_dump_all(docs, sort_keys=False)


_KUBECONFIG_SECRET_FIELDS = ("password", "token", "client-key-data", "client-certificate-data", "token-file")


def redact_kubeconfig_credentials(text: str) -> str:
    docs = yaml_documents(text)
    if docs is None:
        return "# kubeharden: content withheld (not valid YAML)\n"
    doc = docs[0] if len(docs) == 1 else None
    if not isinstance(doc, dict):
        return "# kubeharden: content withheld (not a single YAML mapping)\n"
    for entry in doc.get("users") or []:
        user = entry.get("user") if isinstance(entry, dict) else None
        if isinstance(user, dict):
            for key in list(user):
                if key in _KUBECONFIG_SECRET_FIELDS or key in ("auth-provider", "exec"):
                    user[key] = REDACTED_CREDENTIAL
    return yaml.safe_dump(doc, sort_keys=False)


# ---------------------------------------------------------------------------------------------
# Bundles


def write_bundle(snapshot: NodeSnapshot, out: str) -> None:
    manifest = {
        "format": BUNDLE_FORMAT,
        "tool": "kubeharden",
        "collected_at": snapshot.collected_at,
        "root": snapshot.location,
        "live_processes": snapshot.live_processes,
        "files": {path: rec.to_json() for path, rec in sorted(snapshot.files.items())},
        "processes": {name: [{"pid": p.pid, "argv": p.argv} for p in procs]
                      for name, procs in snapshot.processes.items()},
    }
    # Opened exclusively so an existing bundle is never overwritten by accident; 0600 since
    # the bundle describes the node's security configuration.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        _add_member(tar, BUNDLE_MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        for path, rec in sorted(snapshot.files.items()):
            if rec.text is not None:
                _add_member(tar, "files" + path, rec.text.encode())


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


class BundleError(Exception):
    pass


def read_bundle(path: str) -> NodeSnapshot:
    snapshot = NodeSnapshot("bundle", path)
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            if BUNDLE_MANIFEST not in members:
                raise BundleError(f"not a kubeharden node bundle (no {BUNDLE_MANIFEST})")
            if members[BUNDLE_MANIFEST].size > MAX_MANIFEST_BYTES:
                raise BundleError(f"{BUNDLE_MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes")
            manifest_file = tar.extractfile(members[BUNDLE_MANIFEST])
            assert manifest_file is not None
            manifest = orjson.loads(manifest_file.read())
            texts: dict[str, str] = {}
            for name, member in members.items():
                if name.startswith("files/") and member.size <= MAX_COPY_BYTES:
                    fh = tar.extractfile(member)
                    if fh is not None:
                        texts[normalise(name[len("files"):])] = fh.read().decode("utf-8", "replace")
    except (OSError, tarfile.TarError, orjson.JSONDecodeError) as exc:
        raise BundleError(f"cannot read bundle: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise BundleError(f"unsupported bundle format {found!r}")
    snapshot.collected_at = str(manifest.get("collected_at") or "")
    snapshot.live_processes = bool(manifest.get("live_processes"))
    # A bundle may come from elsewhere: fields of the wrong type are dropped, never trusted.
    for file_path, data in _mapping(manifest.get("files")).items():
        if not isinstance(data, dict):
            continue
        record = FileRecord(
            normalise(str(file_path)), bool(data.get("exists")), str(data.get("kind") or "missing"),
            _int_or_none(data.get("mode")), _int_or_none(data.get("uid")), _int_or_none(data.get("gid")),
            _str_or_none(data.get("user")), _str_or_none(data.get("group")), str(data.get("role") or ""),
            texts.get(normalise(str(file_path))), _str_or_none(data.get("note")),
            data.get("private_key") if isinstance(data.get("private_key"), bool) else None,
        )
        snapshot.files[record.path] = record
    for name, procs in _mapping(manifest.get("processes")).items():
        entries = procs if isinstance(procs, list) else []
        snapshot.processes[str(name)] = [
            ProcessRecord(_int_or_none(p.get("pid")) or 0, [str(a) for a in p["argv"]])
            for p in entries if isinstance(p, dict) and isinstance(p.get("argv"), list)
        ]
    return snapshot


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None

