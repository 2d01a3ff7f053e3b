"""What was read from a node: files (mode, owner, and for config files their text) and the
command lines of running components. Built from a node root (``--root``) or a bundle made
by ``collect-node``; the same structure either way, so every check sees the same evidence.

A node root is read as a chroot: every path is resolved inside the root (absolute symbolic
links relative to it), and only regular files are read.

Secrets are never copied: kubeconfigs, keys and token files are recorded by mode and owner
only; the files a bundle keeps are redacted by meaning (kubeharden.nodeconf.redact):
EncryptionConfiguration keys are replaced by their decoded length, credentials by a marker.
"""

from __future__ import annotations

import datetime as dt
import glob
import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import PurePosixPath
from typing import Any

import orjson

from kubeharden import safeio
from kubeharden.inventory import as_dict, as_list
from kubeharden.loader import display_path
from kubeharden.model import InputError, Source
from kubeharden.nodeconf.flags import FlagSet, Token
from kubeharden.nodeconf.redact import (
    KEY_LENGTH_MARKER,
    REDACTED_CREDENTIAL,
    describe_key,
    redact_argv,
    redact_file,
    redact_yaml,
    yaml_documents,
)
from kubeharden.yamlsafe import compose_documents, locate

__all__ = ["KEY_LENGTH_MARKER", "REDACTED_CREDENTIAL", "describe_key", "yaml_documents"]

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
BUNDLE_MANIFEST = "kubeharden-node-manifest.json"
BUNDLE_FORMAT = 1
MAX_COPY_BYTES = 4 * 1024 * 1024
MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # a bundle may come from elsewhere: bound what is read
MAX_BUNDLE_MEMBERS = 100_000
MAX_BUNDLE_TEXT_BYTES = 256 * 1024 * 1024  # all copied files of a bundle together
MAX_TABLE_BYTES = 16 * 1024 * 1024  # /etc/passwd, /etc/group
MAX_CMDLINE_BYTES = 1024 * 1024
MAX_SYMLINKS = 40  # as Linux (ELOOP)

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
# Copied files whose text is redacted already when a node root is read (only node checks read
# them, and a finding must not quote a credential); every copied file is redacted in a bundle.
REDACTED_ON_READ = frozenset({"encryption-config", "audit-webhook-kubeconfig"})
# Roles whose files are read (content or PEM header): anything but a regular file there is an error.
READ_ROLES = COPIED_ROLES | {"pki"}
# Evidence that a directory is a Kubernetes node (a user's ~/.kube/config alone is not).
NODE_ROLES = frozenset({"kubelet-unit", "kubelet-env", "kubelet-config", "static-pod", "pki"})
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
    text: str | None = None  # copied content (config files only; see REDACTED_ON_READ)
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
    """The absolute, clean form of a node path: '.' and empty parts dropped, '..' resolved
    (at '/' it stays at '/', as the kernel does), so a path never climbs out of the root and a
    bundle member name made from it is clean."""
    if not path:
        return path
    clean = posixpath.normpath("/" + path.lstrip("/"))
    return "/" + clean.lstrip("/")


def host_path(root: str, path: str) -> str:
    return os.path.join(root, normalise(path).lstrip("/"))


def resolve_in_root(root: str, path: str) -> tuple[str, bool]:
    """The host path of a node path with the root as a chroot: each component's symbolic link is
    followed inside the root (an absolute target starts again at the root). Returns the host path
    (which need not exist) and whether a link was followed. A link climbing above the root, a
    loop or a NUL byte is refused (UnsafePathError)."""
    if "\0" in path:
        raise safeio.UnsafePathError("the path contains a NUL byte")
    pending = list(reversed(PurePosixPath(normalise(path)).parts[1:]))
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if not done:
                raise safeio.UnsafePathError("a symbolic link leads outside the node root: not read")
            done.pop()
            continue
        host = os.path.join(root, *done, part)
        try:
            st = os.lstat(host)
        except OSError:  # missing (or below a file): nothing further can exist
            return os.path.join(host, *reversed(pending)), links > 0
        if not stat.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise safeio.UnsafePathError("too many levels of symbolic links: not read")
        try:
            target = os.readlink(host)
        except OSError:
            return host, True
        if target.startswith("/"):
            done = []  # absolute: relative to the node root, never to the host
        pending.extend(reversed([p for p in PurePosixPath(target).parts if p != "/"]))
    return os.path.join(root, *done), links > 0


# ---------------------------------------------------------------------------------------------
# Reading a node root


class _RootReader:
    """Every read of a node root goes through resolve(): nothing outside the root is ever opened."""

    def __init__(self, root: str, snapshot: NodeSnapshot) -> None:
        self.root = os.path.realpath(root)
        self.snapshot = snapshot
        self._tables: dict[str, dict[int, str]] = {}

    def error(self, path: str, message: str, line: int | None = None) -> None:
        self.snapshot.errors.append(InputError(self.snapshot.display(path.replace("\0", "\\0")), message, line))

    def resolve(self, path: str) -> tuple[str, bool]:
        return resolve_in_root(self.root, path)

    def record(self, path: str, role: str) -> FileRecord:
        path = normalise(path)
        existing = self.snapshot.files.get(path)
        if existing is not None:
            if role and not existing.role:
                existing.role = role
            if role == "pki" and existing.kind == "file" and existing.private_key is None:
                existing.private_key = self._holds_private_key(path)
            return existing
        record = FileRecord(path, False, role=role)
        self.snapshot.files[path] = record
        try:
            real, linked = self.resolve(path)
        except safeio.UnsafePathError as exc:
            record.kind, record.note = "link", str(exc)
            self.error(path, str(exc))
            return record
        try:
            st = os.lstat(real)
        except OSError:
            if linked:
                record.kind, record.note = "link", "dangling symbolic link"
            return record
        safeio.remember_input(st)  # no report or bundle may be written over a node file
        record.exists = True
        record.kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        record.mode = stat.S_IMODE(st.st_mode)
        record.uid, record.gid = st.st_uid, st.st_gid
        record.user, record.group = self._name("/etc/passwd", st.st_uid), self._name("/etc/group", st.st_gid)
        if record.kind == "other" and role in READ_ROLES:
            record.note = f"{safeio.kind_of(st.st_mode)}, not a regular file: not read"
            self.error(path, record.note)
        if role == "pki" and record.kind == "file":
            record.private_key = self._holds_private_key(path)
        if role in COPIED_ROLES and record.kind == "file":
            self._copy(record, real, st)
        return record

    def _copy(self, record: FileRecord, real: str, st: os.stat_result) -> None:
        if st.st_size > MAX_COPY_BYTES:
            record.note = f"larger than {MAX_COPY_BYTES} bytes; content not read"
            return
        try:
            raw = safeio.read_regular(real, MAX_COPY_BYTES, follow_symlinks=False)
        except OSError as exc:  # UnsafePathError included: replaced by something else meanwhile
            record.note = f"cannot read: {exc.strerror or exc}"
            self.error(record.path, record.note)
            return
        text = raw.decode("utf-8", "replace")
        if record.role in REDACTED_ON_READ:
            # not valid YAML: the loader reports where (the text itself is never output)
            text = redact_yaml(record.role, text) or text
        record.text = text

    def _holds_private_key(self, path: str) -> bool | None:
        """Whether a PKI file holds a PEM private key, whatever its name (kubelet-client-current.pem
        holds certificate and key). The content is only searched, never kept."""
        try:
            real, _ = self.resolve(path)
            with safeio.open_regular(real, follow_symlinks=False) as fh:
                return b"PRIVATE KEY-----" in fh.read(MAX_COPY_BYTES)
        except OSError:
            return None

    def _name(self, table: str, ident: int) -> str | None:
        """Name of a uid/gid from the node's own passwd/group file (not the scanning host's)."""
        if table not in self._tables:
            self._tables[table] = self._read_table(table)
        return self._tables[table].get(ident, "root" if ident == 0 else None)

    def _read_table(self, table: str) -> dict[int, str]:
        names: dict[int, str] = {}
        try:
            real, _ = self.resolve(table)
            data = safeio.read_regular(real, MAX_TABLE_BYTES, follow_symlinks=False)
        except FileNotFoundError:
            return names
        except OSError as exc:
            self.error(table, f"cannot read user and group names: {exc.strerror or exc}")
            return names
        for line in data.decode("utf-8", "replace").splitlines():
            parts = line.split(":")
            if len(parts) > 2 and parts[2].isdigit():
                names.setdefault(int(parts[2]), parts[0])
        return names

    def listdir(self, path: str) -> list[str]:
        try:
            real, _ = self.resolve(path)
            return sorted(os.listdir(real))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            self.error(path, f"cannot list directory: {exc.strerror or exc}")
            return []

    def _walk(self, path: str) -> Iterable[tuple[str, list[str], list[str]]]:
        """os.walk below a node directory, as (node path, sorted dirs, sorted files); links to
        directories are not descended (each entry is resolved on its own by record())."""
        try:
            base, _ = self.resolve(path)
        except safeio.UnsafePathError as exc:
            self.error(path, str(exc))
            return

        def unreadable(exc: OSError) -> None:
            where = normalise(f"{path}/{os.path.relpath(exc.filename, base)}") if exc.filename else path
            self.error(where, f"cannot list directory: {exc.strerror or exc}")

        for dirpath, dirnames, filenames in os.walk(base, onerror=unreadable):
            dirnames.sort()
            rel = os.path.relpath(dirpath, base)
            yield normalise(path if rel == "." else f"{path}/{rel}"), list(dirnames), sorted(filenames)

    def files_below(self, path: str) -> list[str]:
        """Node paths of the non-directory entries under a directory, recursively."""
        return sorted(f"{node_dir}/{name}" for node_dir, _dirs, files in self._walk(path) for name in files)

    def walk(self, path: str, role: str) -> None:
        try:
            is_dir = os.path.isdir(self.resolve(path)[0])
        except safeio.UnsafePathError:
            is_dir = False
        if not is_dir:
            self.record(path, role)
            return
        self.record(path, role + "-dir")
        for node_dir, dirnames, filenames in self._walk(path):
            for name in dirnames:
                self.record(f"{node_dir}/{name}", role + "-dir")
            for name in filenames:
                self.record(f"{node_dir}/{name}", role)


def read_processes(proc: str = "/proc") -> dict[str, list[ProcessRecord]]:
    """Command lines of running control-plane components and the kubelet."""
    found: dict[str, list[ProcessRecord]] = {}
    for entry in sorted(glob.glob(os.path.join(proc, "[0-9]*", "cmdline"))):
        try:
            with safeio.open_regular(entry) as cmdline:
                raw = safeio.read_limited(cmdline, MAX_CMDLINE_BYTES, entry)
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


def has_node_configuration(snapshot: NodeSnapshot) -> bool:
    """Whether anything of a Kubernetes node was found: a kubelet unit or env file, kubelet
    config, static pods, a kubeconfig or PKI under /etc/kubernetes, or a running component."""
    return any(procs for procs in snapshot.processes.values()) or any(
        r.exists and r.kind == "file" and (r.role in NODE_ROLES or r.path.startswith("/etc/kubernetes/"))
        for r in snapshot.files.values()
    )


def no_node_configuration(where: str) -> InputError:
    return InputError(where, f"no Kubernetes node configuration found under {where} (no kubelet unit or "
                      "config, static pod manifests, /etc/kubernetes files or running components)")


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
    if not has_node_configuration(snapshot):
        snapshot.errors.append(no_node_configuration(display_path(root)))
    return snapshot


def _usable_words(reader: _RootReader, tokens: list[Token], where: Callable[[int], Source]) -> list[Token]:
    """A word with a NUL byte cannot be passed to a program (the kernel ends a word there): an
    error naming where it was written; the word is not used."""
    kept = []
    for index, token in enumerate(tokens):
        if "\0" not in token.text:
            kept.append(token)
            continue
        source = token.source or where(index)
        name = token.text.split("\0", 1)[0].split("=", 1)[0][:80]
        reader.snapshot.errors.append(InputError(
            source.file, f"command-line word {name!r} contains a NUL byte: the program cannot be started "
            "with it (word not used)", source.line))
    return kept


def _collect_referenced(reader: _RootReader, snapshot: NodeSnapshot) -> None:
    from kubeharden.nodeconf.systemd import kubelet_command

    command = kubelet_command(snapshot)
    tokens = command.tokens if command is not None else []
    tokens = _usable_words(reader, tokens, lambda _i: Source(command.describe if command else "kubelet"))
    flags = FlagSet.parse(tokens)
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
    where = _locator(reader, record)
    for index, volume in enumerate(as_list(spec.get("volumes"))):
        host = as_dict(as_dict(volume).get("hostPath")).get("path")
        if isinstance(host, str) and ".." in PurePosixPath(host).parts:
            reader.snapshot.errors.append(InputError(
                reader.snapshot.display(record.path), f"hostPath {host!r} contains '..' (Kubernetes refuses such a "
                f"volume); read as {normalise(host)} inside the node root", where(("spec", "volumes", index,
                                                                                   "hostPath", "path")).line))
    for index, container in enumerate(as_list(spec.get("containers"))):
        if not isinstance(container, dict):
            continue
        component = identify_component(pod, container)
        if component is None:
            continue
        base = ("spec", "containers", index)
        command = [((*base, "command", i), str(x)) for i, x in enumerate(as_list(container.get("command")))]
        args = [((*base, "args", i), str(x)) for i, x in enumerate(as_list(container.get("args")))]
        words = command[1:] + args  # without the binary (absent when the image's entrypoint runs)
        tokens = _usable_words(reader, [Token(text) for _path, text in words], partial(_word_source, where, words))
        resolve = container_mount_resolver(spec, container)
        _collect_from_flags(reader, component, FlagSet.parse(tokens), resolve)


def _word_source(where: Callable[[tuple[str | int, ...]], Source],
                 words: Sequence[tuple[tuple[str | int, ...], str]], index: int) -> Source:
    return where(words[index][0])


def _locator(reader: _RootReader, record: FileRecord) -> Callable[[tuple[str | int, ...]], Source]:
    """Where a path of a static pod manifest is written (its line found only when asked)."""
    display = reader.snapshot.display(record.path)

    def where(path: tuple[str | int, ...]) -> Source:
        nodes = compose_documents(record.text or "")
        line = locate(nodes[0], path) if nodes else None
        return Source(display, line + 1 if line is not None else None)

    return where


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
    return [plugin["path"] for plugin in as_list(doc.get("plugins"))
            if isinstance(plugin, dict) and isinstance(plugin.get("path"), str) and plugin["path"]]


def _yaml_mapping(text: str | None) -> dict[str, Any]:
    docs = yaml_documents(text) if text else None
    return docs[0] if docs and isinstance(docs[0], dict) else {}


# ---------------------------------------------------------------------------------------------
# Bundles


def write_bundle(snapshot: NodeSnapshot, out: str, force: bool = False) -> list[str]:
    """Write the bundle atomically (mode 0600: it describes the node's security configuration),
    every copied file redacted; returns the node paths whose content was withheld."""
    manifest = {
        "format": BUNDLE_FORMAT,
        "tool": "kubeharden",
        "collected_at": snapshot.collected_at,
        "root": snapshot.location,
        "live_processes": snapshot.live_processes,
        "files": {path: rec.to_json() for path, rec in sorted(snapshot.files.items())},
        "processes": {name: [{"pid": p.pid, "argv": redact_argv(p.argv)} for p in procs]
                      for name, procs in snapshot.processes.items()},
    }
    withheld = []
    members = []
    for path, rec in sorted(snapshot.files.items()):
        if rec.text is not None:
            text = redact_file(rec.role, rec.text)
            if text.startswith("# kubeharden: content withheld"):
                withheld.append(path)
            members.append((member_name(path), text.encode()))
    with safeio.atomic_output(out, mode=0o600, force=force) as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        _add_member(tar, BUNDLE_MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        for name, data in members:
            _add_member(tar, name, data)
    return withheld


def member_name(path: str) -> str:
    """The bundle member holding a copied node file: always relative and clean."""
    return "files/" + normalise(path).lstrip("/")


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


class BundleError(Exception):
    pass


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a bundle member is refused: kubeharden writes only regular files with clean relative
    names (nothing is ever extracted to disk, and links are never followed inside the archive)."""
    name = member.name
    parts = name.split("/")
    if name.startswith("/") or "\0" in name or ".." in parts or "" in parts[:-1]:
        return "member name is not a clean relative path: not read"
    if not (member.isfile() or member.isdir()):
        kind = "a symbolic link" if member.issym() else "a hard link" if member.islnk() else "a special file"
        return f"{kind}, not a regular file or directory: not read"
    limit = MAX_MANIFEST_BYTES if name == BUNDLE_MANIFEST else MAX_COPY_BYTES
    if member.size > limit:
        return f"larger than {limit} bytes: not read"
    return None


def _read_members(tar: tarfile.TarFile, snapshot: NodeSnapshot) -> tuple[bytes | None, dict[str, str]]:
    manifest: bytes | None = None
    texts: dict[str, str] = {}
    total = 0
    for count, member in enumerate(tar, start=1):
        if count > MAX_BUNDLE_MEMBERS:
            raise BundleError(f"more than {MAX_BUNDLE_MEMBERS} members: not a kubeharden node bundle")
        problem = _member_problem(member)
        if problem is not None:
            snapshot.errors.append(InputError(f"{display_path(snapshot.location)}:{member.name!r}", problem))
            if member.size > MAX_MANIFEST_BYTES:
                raise BundleError(f"member {member.name!r} is larger than {MAX_MANIFEST_BYTES} bytes: "
                                  "not a kubeharden node bundle")
            continue
        if member.isdir() or not (member.name == BUNDLE_MANIFEST or member.name.startswith("files/")):
            continue
        total += member.size
        if total > MAX_BUNDLE_TEXT_BYTES + MAX_MANIFEST_BYTES:
            raise BundleError(f"members hold more than {MAX_BUNDLE_TEXT_BYTES + MAX_MANIFEST_BYTES} bytes")
        fh = tar.extractfile(member)
        data = fh.read(member.size) if fh is not None else b""
        if member.name == BUNDLE_MANIFEST:
            manifest = data
        else:
            texts[normalise(member.name[len("files"):])] = data.decode("utf-8", "replace")
    return manifest, texts


def read_bundle(path: str) -> NodeSnapshot:
    snapshot = NodeSnapshot("bundle", path)
    try:
        with safeio.open_regular(path) as raw, tarfile.open(fileobj=raw, mode="r:gz") as tar:
            manifest_data, texts = _read_members(tar, snapshot)
        if manifest_data is None:
            raise BundleError(f"not a kubeharden node bundle (no {BUNDLE_MANIFEST})")
        manifest = orjson.loads(manifest_data)
    except (OSError, tarfile.TarError, EOFError, orjson.JSONDecodeError) as exc:
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
    if not has_node_configuration(snapshot):
        snapshot.errors.append(no_node_configuration(display_path(path)))
    return snapshot


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None

