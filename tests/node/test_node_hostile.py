"""Hostile or unlucky node roots and bundles: never a crash, a hang, a read outside the root, a
secret in a bundle or an overwritten input; every problem an error naming its file."""

from __future__ import annotations

import errno
import io
import os
import shutil
import signal
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from node_helpers import collect_bundle, messages, node_results, scan_node, status_of
from node_layout import build_node, write

from kubeharden.cli import cli
from kubeharden.model import Status
from kubeharden.nodeconf.snapshot import (
    NodeSnapshot,
    ProcessRecord,
    collect_root,
    normalise,
    read_bundle,
    write_bundle,
)

API_MANIFEST = "etc/kubernetes/manifests/kube-apiserver.yaml"


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A FIFO read by mistake blocks forever: fail the test instead."""
    def hung(_signum: int, _frame: Any) -> None:
        raise TimeoutError("node root read hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def node_cli(root: Path, *extra: str) -> Result:
    return CliRunner().invoke(cli, ["node", "--root", str(root), "-f", "json", "--fail-on", "none", *extra])


def errors_of(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def edit_command(root: Path, manifest: str, change: Any) -> None:
    path = root / manifest
    pod = yaml.safe_load(path.read_text())
    change(pod)
    path.write_text(yaml.safe_dump(pod, sort_keys=False))


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line)


# ---------------------------------------------------------------------------------------------
# 1. Wrong types and bytes never crash; each is an error naming the file (and line)


def test_nul_byte_in_a_static_pod_flag_is_an_error_at_its_line(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    edit_command(root, API_MANIFEST, lambda pod: pod["spec"]["containers"][0]["command"].append(
        "--encryption-provider-config=/etc/kubernetes/enc/x\0y.yaml"))
    result = node_cli(root)
    assert result.exit_code == 2, result.output
    [error] = errors_of(result)
    manifest = root / API_MANIFEST
    line = line_of(manifest, "x\\0y")  # the YAML escape of the NUL byte
    assert f"{manifest}:{line}:" in error
    assert "--encryption-provider-config" in error and "NUL" in error
    assert "internal error" not in result.stderr


@pytest.mark.parametrize("where", ["dropin", "envfile"])
def test_nul_byte_in_a_kubelet_flag_is_an_error_at_its_line(tmp_path: Path, where: str) -> None:
    root = build_node(tmp_path / "n", True)
    if where == "dropin":
        unit = root / "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
        unit.write_text(unit.read_text().replace("--config=/var/lib/kubelet/config.yaml",
                                                 "--config=/var/lib/kubelet/con\0fig.yaml"))
        needle = "--config="
    else:
        unit = root / "var/lib/kubelet/kubeadm-flags.env"
        unit.write_text('KUBELET_KUBEADM_ARGS="--rotate-certificates=tr\0ue --tls-cert-file=/x\0y"\n')
        needle = "KUBELET_KUBEADM_ARGS"
    result = node_cli(root)
    assert result.exit_code == 2, result.output
    errors = errors_of(result)
    assert errors and all(f"{unit}:{line_of(unit, needle)}:" in e and "NUL" in e for e in errors), errors
    assert "internal error" not in result.stderr


def test_nul_byte_in_a_process_command_line_names_the_process(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "812").mkdir(parents=True)
    (proc / "812" / "cmdline").write_bytes(b"/usr/bin/kubelet\0--config=/var/lib/kubelet/config.yaml\0")
    root = build_node(tmp_path / "n", True)
    snapshot = collect_root(str(root), processes=True, proc=str(proc))
    assert snapshot.errors == []
    assert snapshot.processes["kubelet"][0].argv[1] == "--config=/var/lib/kubelet/config.yaml"


def test_admission_plugins_of_the_wrong_type_is_an_error_naming_the_file(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    admission = root / "etc/kubernetes/admission/admission-config.yaml"
    admission.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins: 5\n")
    result = node_cli(root)
    assert result.exit_code == 2, result.output
    [error] = errors_of(result)
    assert f"{admission}:3:" in error and "plugins" in error
    assert "internal error" not in result.stderr


@pytest.mark.parametrize(("relative", "edit", "field"), [
    ("var/lib/kubelet/config.yaml", ("readOnlyPort", [10255]), "readOnlyPort"),
    ("var/lib/kubelet/config.yaml", ("authentication", "webhook"), "authentication"),
    ("etc/kubernetes/enc/encryption-config.yaml", ("resources", {"a": 1}), "resources"),
    ("etc/kubernetes/audit/audit-policy.yaml", ("rules", "all"), "rules"),
    ("etc/kubernetes/admission/pod-security.yaml", ("exemptions", ["x"]), "exemptions"),
])
def test_any_wrong_type_in_a_node_file_is_an_error_naming_it(tmp_path: Path, relative: str,
                                                             edit: tuple[str, Any], field: str) -> None:
    root = build_node(tmp_path / "n", True)
    path = root / relative
    doc = yaml.safe_load(path.read_text())
    doc[edit[0]] = edit[1]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = node_cli(root)
    assert result.exit_code == 2, result.output
    errors = errors_of(result)
    assert any(f"{path}:{line_of(path, field + ':')}:" in e and field in e for e in errors), errors
    assert "internal error" not in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("url", ["http://[::1", "https://host:notaport", "https://127.0.0.1:99999"])
def test_unparsable_etcd_server_url_is_a_finding_not_an_internal_error(tmp_path: Path, url: str) -> None:
    root = build_node(tmp_path / "n", True)
    path = root / API_MANIFEST
    path.write_text(path.read_text().replace("--etcd-servers=https://127.0.0.1:2379", f"--etcd-servers={url}"))
    result = scan_node(root)
    assert [e for e in result.errors if e.internal] == []
    assert status_of(result, "KH-CP-011") is Status.FAIL
    [message] = messages(result, "KH-CP-011")
    assert "not a valid URL" in message and url in message


def test_unparsable_etcd_listen_url_is_a_finding(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    path = root / "etc/kubernetes/manifests/etcd.yaml"
    edit_command(root, "etc/kubernetes/manifests/etcd.yaml", lambda pod: pod["spec"]["containers"][0]["command"]
                 .append("--listen-client-urls=https://[::1:2379"))
    assert path.exists()
    result = scan_node(root)
    assert [e for e in result.errors if e.internal] == []
    assert any("not a valid URL" in m for m in messages(result, "KH-CP-012"))
    assert status_of(result, "KH-CP-015") is Status.PASS  # the other listen URLs are still judged


# A type-mutation fuzz over the node layouts: any value of any node file replaced by a value of
# another type. Bounded for CI; KUBEHARDEN_FUZZ_EXAMPLES=500 runs longer.
_MUTANTS = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.text(max_size=8),
    st.just("a\0b"), st.just([]), st.just({}), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.just([{"a": [None]}]),
)
_FILES = ("etc/kubernetes/manifests/kube-apiserver.yaml", "etc/kubernetes/manifests/etcd.yaml",
          "etc/kubernetes/manifests/kube-controller-manager.yaml", "var/lib/kubelet/config.yaml",
          "etc/kubernetes/enc/encryption-config.yaml", "etc/kubernetes/audit/audit-policy.yaml",
          "etc/kubernetes/admission/admission-config.yaml", "etc/kubernetes/admission/pod-security.yaml",
          "etc/kubernetes/audit/webhook.yaml")
_TEMPLATE: dict[str, Path] = {}


def _template() -> Path:
    if "root" not in _TEMPLATE:
        base = Path(tempfile.mkdtemp(prefix="kh-fuzz-"))
        root = build_node(base / "template", True)
        write(root, "/etc/kubernetes/audit/webhook.yaml", WEBHOOK_KUBECONFIG, 0o600)
        _mount_webhook(root)
        _TEMPLATE["root"] = root
    return _TEMPLATE["root"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    target = doc
    for item in path[:-1]:
        target = target[item]
    target[path[-1]] = value
    return doc


@settings(max_examples=int(os.environ.get("KUBEHARDEN_FUZZ_EXAMPLES", "20")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_FILES), st.integers(0, 10_000), _MUTANTS), min_size=1, max_size=4),
       st.booleans())
def test_type_mutation_fuzz_never_lets_an_exception_escape(mutations: list[tuple[str, int, Any]],
                                                           bundle: bool) -> None:
    template = _template()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        shutil.copytree(template, root, symlinks=True)
        for relative, pick, value in mutations:
            path = root / relative
            doc = yaml.safe_load(path.read_text())
            paths = _paths(doc)
            path.write_text(yaml.safe_dump(_replace(doc, paths[pick % len(paths)], value), sort_keys=False))
        if bundle:
            out = Path(tmp) / "b.tar.gz"
            collected = CliRunner().invoke(cli, ["collect-node", "--root", str(root), "--no-processes",
                                                 "-o", str(out)])
            assert collected.exit_code in (0, 2), collected.output
            assert collected.exception is None or isinstance(collected.exception, SystemExit), collected.output
            result = scan_node(bundle=out)
            where = str(out)
        else:
            result = scan_node(root)
            where = str(root)
        assert [e.message for e in result.errors if e.internal] == []
        for error in result.errors:
            assert where in error.source or error.source.startswith(os.path.relpath(where)), error


# ---------------------------------------------------------------------------------------------
# 2. Nothing outside the root is read


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\n"
                      "# OUTSIDE-THE-ROOT\nplugins: []\n")
    return secret


def _texts(snapshot: NodeSnapshot) -> str:
    return "".join(r.text or "" for r in snapshot.files.values())


def test_absolute_symlink_resolves_inside_the_root(tmp_path: Path, outside: Path) -> None:
    root = build_node(tmp_path / "n", True)
    admission = root / "etc/kubernetes/admission/admission-config.yaml"
    admission.unlink()
    admission.symlink_to(outside)  # absolute: on the node it names <root>/<outside path>
    admin = root / "etc/kubernetes/admin.conf"
    admin.unlink()
    admin.symlink_to("/etc/shadow")
    snapshot = collect_root(str(root), processes=False)
    assert "OUTSIDE-THE-ROOT" not in _texts(snapshot)
    record = snapshot.file("/etc/kubernetes/admission/admission-config.yaml")
    assert record is not None and not record.exists and record.note == "dangling symbolic link"
    assert not snapshot.files["/etc/kubernetes/admin.conf"].exists
    # the same absolute target inside the root is what the node reads
    write(root, str(outside), outside.read_text().replace("OUTSIDE", "INSIDE"), 0o600)
    write(root, "/etc/shadow", "root:x:0:0\n", 0o600)
    snapshot = collect_root(str(root), processes=False)
    assert "INSIDE-THE-ROOT" in _texts(snapshot) and "OUTSIDE-THE-ROOT" not in _texts(snapshot)
    assert snapshot.files["/etc/kubernetes/admin.conf"].mode == 0o600


def test_relative_symlink_escaping_the_root_is_refused(tmp_path: Path, outside: Path) -> None:
    root = build_node(tmp_path / "n", True)
    admission = root / "etc/kubernetes/admission/admission-config.yaml"
    admission.unlink()
    admission.symlink_to(os.path.relpath(outside, admission.parent))
    result = node_cli(root)
    assert result.exit_code == 2
    [error] = errors_of(result)
    assert str(admission) in error and "outside the node root" in error
    assert "OUTSIDE-THE-ROOT" not in _texts(collect_root(str(root), processes=False))


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    config = root / "var/lib/kubelet/config.yaml"
    config.unlink()
    config.symlink_to("config.yaml")
    result = node_cli(root)
    assert result.exit_code == 2 and any(str(config) in e and "symbolic links" in e for e in errors_of(result))


def test_hostpath_with_dotdot_is_refused_and_read_inside_the_root(tmp_path: Path, outside: Path) -> None:
    root = build_node(tmp_path / "n", True)
    climb = "/etc/kubernetes/" + "../" * 12 + str(outside.parent).lstrip("/")

    def mount(pod: dict[str, Any]) -> None:
        pod["spec"]["volumes"].append({"name": "up", "hostPath": {"path": climb}})
        container = pod["spec"]["containers"][0]
        container["volumeMounts"].append({"name": "up", "mountPath": "/up"})
        container["command"] = [c for c in container["command"] if not c.startswith("--admission-control-config")]
        container["command"].append("--admission-control-config-file=/up/shadow")

    edit_command(root, API_MANIFEST, mount)
    result = node_cli(root)
    assert result.exit_code == 2
    manifest = root / API_MANIFEST
    assert any(f"{manifest}:{line_of(manifest, 'path: /etc/kubernetes/../')}:" in e and "'..'" in e
               for e in errors_of(result)), errors_of(result)
    snapshot = collect_root(str(root), processes=False)
    assert "OUTSIDE-THE-ROOT" not in _texts(snapshot)
    assert normalise(str(outside)) in snapshot.files  # the path on the node, inside the root
    bundle = collect_bundle_allowing_errors(root, tmp_path / "b.tar.gz")
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
    assert names and all(not n.startswith("/") and ".." not in n.split("/") for n in names), names


def collect_bundle_allowing_errors(root: Path, out: Path) -> Path:
    result = CliRunner().invoke(cli, ["collect-node", "--root", str(root), "--no-processes", "-o", str(out)])
    assert result.exit_code in (0, 2) and out.exists(), result.output
    return out


def _bundle_with(tmp_path: Path, extra: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    good = collect_bundle(build_node(tmp_path / "n", True), tmp_path / "good.tar.gz")
    out = tmp_path / "hostile.tar.gz"
    with tarfile.open(good) as source, tarfile.open(out, "w:gz") as tar:
        for member in source.getmembers():
            tar.addfile(member, source.extractfile(member))
        for item in extra:
            if isinstance(item, tarfile.TarInfo):
                tar.addfile(item)
            else:
                info = tarfile.TarInfo(item[0])
                info.size = len(item[1])
                tar.addfile(info, io.BytesIO(item[1]))
    return out


def test_bundle_members_with_unclean_names_or_types_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("files/etc/kubernetes/admission/extra.yaml")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    device = tarfile.TarInfo("files/etc/kubernetes/dev")
    device.type = tarfile.CHRTYPE
    fifo = tarfile.TarInfo("files/etc/kubernetes/fifo")
    fifo.type = tarfile.FIFOTYPE
    bundle = _bundle_with(tmp_path, [link, device, fifo, ("files/../../escape.yaml", b"kind: Pod\n"),
                                     ("/abs/path.yaml", b"kind: Pod\n")])
    snapshot = read_bundle(str(bundle))
    refused = {e.source.rsplit(":", 1)[-1]: e.message for e in snapshot.errors}
    assert set(refused) == {repr(n) for n in ("files/etc/kubernetes/admission/extra.yaml",
                                               "files/etc/kubernetes/dev", "files/etc/kubernetes/fifo",
                                               "files/../../escape.yaml", "/abs/path.yaml")}
    assert "symbolic link" in refused["'files/etc/kubernetes/admission/extra.yaml'"]
    assert not any("escape" in path or path.startswith("/abs") for path in snapshot.files)
    assert all(r.text != "kind: Pod\n" for r in snapshot.files.values())
    # the rest of the bundle is judged, and the refused members make the run exit 2
    result = CliRunner().invoke(cli, ["node", "--bundle", str(bundle), "-f", "json", "--fail-on", "none"])
    assert result.exit_code == 2 and "internal error" not in result.stderr


def test_bundle_manifest_that_is_a_link_is_not_a_bundle(tmp_path: Path) -> None:
    out = tmp_path / "linky.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        info = tarfile.TarInfo("kubeharden-node-manifest.json")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    result = CliRunner().invoke(cli, ["node", "--bundle", str(out)])
    assert result.exit_code == 2 and "not a kubeharden node bundle" in result.stderr


# ---------------------------------------------------------------------------------------------
# 3. Only regular files are read


@pytest.mark.parametrize("relative", ["etc/passwd", "etc/group", "var/lib/kubelet/config.yaml",
                                      "etc/kubernetes/audit/audit-policy.yaml", "etc/kubernetes/pki/ca.key",
                                      "usr/lib/systemd/system/kubelet.service.d/20-extra.conf",
                                      "etc/kubernetes/manifests/extra.yaml"])
def test_fifo_in_a_node_root_is_an_error_not_a_hang(tmp_path: Path, relative: str) -> None:
    root = build_node(tmp_path / "n", True)
    fifo = root / relative
    fifo.parent.mkdir(parents=True, exist_ok=True)
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)
    result = node_cli(root)
    assert result.exit_code == 2, result.output
    assert any(str(fifo) in e and "FIFO" in e for e in errors_of(result)), errors_of(result)


def test_fifo_named_as_bundle_is_an_error(tmp_path: Path) -> None:
    fifo = tmp_path / "b.tar.gz"
    os.mkfifo(fifo)
    result = CliRunner().invoke(cli, ["node", "--bundle", str(fifo)])
    assert result.exit_code == 2 and "FIFO" in result.stderr


# ---------------------------------------------------------------------------------------------
# 4. Nothing to judge is exit 2


def test_empty_root_is_exit_2_not_zero_findings(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = node_cli(tmp_path / "empty")
    assert result.exit_code == 2
    assert f"no Kubernetes node configuration found under {tmp_path / 'empty'}" in result.stderr


def test_machine_that_is_not_a_node_is_exit_2(tmp_path: Path) -> None:
    root = tmp_path / "laptop"
    write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nme:x:1000:1000::/home/me:/bin/sh\n", 0o644)
    write(root, "/home/me/.kube/config", "apiVersion: v1\nkind: Config\n", 0o600)
    (root / "etc/systemd/system").mkdir(parents=True)
    result = node_cli(root)
    assert result.exit_code == 2 and "no Kubernetes node configuration found under" in result.stderr
    out = tmp_path / "b.tar.gz"
    collected = CliRunner().invoke(cli, ["collect-node", "--root", str(root), "--no-processes", "-o", str(out)])
    assert collected.exit_code == 2 and "no Kubernetes node configuration found" in collected.stderr
    assert not out.exists()


@pytest.mark.skipif(any(os.path.exists(p) for p in ("/etc/kubernetes", "/var/lib/kubelet",
                                                     "/usr/lib/systemd/system/kubelet.service")),
                    reason="this machine is a Kubernetes node")
def test_root_slash_on_a_machine_that_is_not_a_node() -> None:
    result = CliRunner().invoke(cli, ["node", "--root", "/", "-f", "json", "--fail-on", "none"])
    if "kubelet" in {p.argv[0].rsplit("/", 1)[-1] for procs in collect_root("/").processes.values() for p in procs}:
        pytest.skip("a kubelet runs on this machine")
    assert result.exit_code == 2 and "no Kubernetes node configuration found under /" in result.stderr


# ---------------------------------------------------------------------------------------------
# 5. Bundles keep no secret, by meaning


WEBHOOK_KUBECONFIG = """apiVersion: v1
kind: Config
x-password: &pw hunter2-anchored
clusters:
- name: siem
  cluster:
    server: https://siem.example:8443
    proxy-url: http://proxyuser:proxy-pass-123@proxy:3128
    certificate-authority-data: Q0EtREFUQQ==
users:
- name: siem
  user:
    username: bob
    password: *pw
    token: webhook-token-456
    client-key-data: S0VZLURBVEEtNzg5
contexts:
- name: siem
  context: {cluster: siem, user: siem}
current-context: siem
"""


def _mount_webhook(root: Path) -> None:
    def mount(pod: dict[str, Any]) -> None:
        container = pod["spec"]["containers"][0]
        container["command"].append("--audit-webhook-config-file=/etc/kubernetes/audit/webhook.yaml")
        pod["spec"]["volumes"].append({"name": "webhook", "hostPath": {"path": "/etc/kubernetes/audit/webhook.yaml",
                                                                        "type": "File"}})
        container["volumeMounts"].append({"name": "webhook", "mountPath": "/etc/kubernetes/audit/webhook.yaml",
                                          "readOnly": True})

    edit_command(root, API_MANIFEST, mount)


def _bundle_bytes(bundle: Path) -> bytes:
    with tarfile.open(bundle) as tar:
        return b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]


def _secret_root(tmp_path: Path) -> Path:
    root = build_node(tmp_path / "n", True)
    write(root, "/etc/kubernetes/audit/webhook.yaml", WEBHOOK_KUBECONFIG, 0o600)
    _mount_webhook(root)
    return root


def test_webhook_kubeconfig_credentials_never_reach_the_bundle(tmp_path: Path) -> None:
    root = _secret_root(tmp_path)
    bundle = collect_bundle(root, tmp_path / "b.tar.gz")
    data = _bundle_bytes(bundle)
    for secret in ("hunter2-anchored", "proxy-pass-123", "proxyuser", "webhook-token-456", "S0VZLURBVEEtNzg5"):
        assert secret.encode() not in data, secret
    assert b"proxy:3128" in data and b"siem.example" in data  # what the checks need stays
    result = scan_node(bundle=bundle)
    assert any("username and password" in m for m in messages(result, "KH-LOG-007"))
    assert status_of(result, "KH-LOG-007") == status_of(scan_node(root), "KH-LOG-007")


def test_encryption_key_defined_through_an_anchor_never_reaches_the_bundle(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    key = "c2VjcmV0LWtleS0zMi1ieXRlcy1sb25nLWZvci1hZXM="  # 32 bytes
    other = "b3RoZXItc2VjcmV0LWtleS0xNi1i"
    write(root, "/etc/kubernetes/enc/encryption-config.yaml", f"""apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
x-key: &k {key}
x-keys: &keys
- name: k2
  secret: {other}
resources:
- resources: [secrets]
  providers:
  - aescbc:
      keys:
      - name: k1
        secret: *k
  - secretbox:
      keys: *keys
  - identity: {{}}
""", 0o600)
    bundle = collect_bundle(root, tmp_path / "b.tar.gz")
    data = _bundle_bytes(bundle)
    assert key.encode() not in data and other.encode() not in data
    assert b"kubeharden-redacted-key:decoded-bytes=32" in data
    assert status_of(scan_node(bundle=bundle), "KH-SEC-004") == status_of(scan_node(root), "KH-SEC-004")


def test_secret_flags_env_and_urls_of_static_pods_and_units_never_reach_the_bundle(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)

    def secrets(pod: dict[str, Any]) -> None:
        container = pod["spec"]["containers"][0]
        container["command"] = [c.replace("https://127.0.0.1:2379", "https://etcduser:etcd-pass-1@127.0.0.1:2379")
                                for c in container["command"]]
        container["command"] += ["--token=flag-token-abc", "--oidc-client-secret", "oidc-secret-def",
                                 "--certificate-key=certkey-0123"]
        container["env"] = [{"name": "AWS_SECRET_ACCESS_KEY", "value": "env-secret-ghi"},
                            {"name": "HTTPS_PROXY", "value": "http://u:env-proxy-pass@proxy:3128"}]

    edit_command(root, API_MANIFEST, secrets)
    write(root, "/etc/default/kubelet", "KUBELET_EXTRA_ARGS=--bootstrap-token=abcdef.0123456789abcdef "
          "--node-ip=10.0.0.5\nAPI_TOKEN=unit-env-token-jkl\n", 0o644)
    dropin = root / "usr/lib/systemd/system/kubelet.service.d/20-secrets.conf"
    dropin.write_text('[Service]\nEnvironment="KUBELET_PASSWORD=unit-pass-mno" "HTTP_PROXY=http://a:unit-proxy-pq@p:1"\n')
    config = root / "var/lib/kubelet/config.yaml"
    config.write_text(config.read_text() + "staticPodURL: https://pods.example/x\nstaticPodURLHeader:\n"
                      "  Authorization: [Bearer header-token-rst]\n")
    plugin = root / "etc/kubernetes/admission/pod-security.yaml"
    plugin.write_text(plugin.read_text() + "x-bootstrap: {token: bcdefa.abcdef0123456789}\n")
    bundle = collect_bundle_allowing_errors(root, tmp_path / "b.tar.gz")
    data = _bundle_bytes(bundle)
    for secret in ("etcd-pass-1", "flag-token-abc", "oidc-secret-def", "certkey-0123", "env-secret-ghi",
                   "env-proxy-pass", "0123456789abcdef", "unit-env-token-jkl", "unit-pass-mno", "unit-proxy-pq",
                   "header-token-rst", "abcdef0123456789"):
        assert secret.encode() not in data, secret
    assert b"--node-ip=10.0.0.5" in data and b"https://pods.example/x" in data  # evidence stays
    from_bundle = {cid: r.status for cid, r in node_results(scan_node(bundle=bundle)).items()}
    from_root = {cid: r.status for cid, r in node_results(scan_node(root)).items()}
    assert from_bundle == from_root


def test_process_command_line_secrets_never_reach_the_bundle(tmp_path: Path) -> None:
    snapshot = NodeSnapshot("root", str(tmp_path))
    snapshot.processes["kube-apiserver"] = [ProcessRecord(7, [
        "/usr/bin/kube-apiserver", "--token", "proc-token-uvw", "--etcd-servers=https://x:proc-pass-xyz@etcd:2379",
        "--anonymous-auth=false", "--service-account-key-file=/etc/kubernetes/pki/sa.pub"])]
    out = tmp_path / "b.tar.gz"
    write_bundle(snapshot, str(out))
    data = _bundle_bytes(out)
    assert b"proc-token-uvw" not in data and b"proc-pass-xyz" not in data
    argv = read_bundle(str(out)).processes["kube-apiserver"][0].argv
    assert "--anonymous-auth=false" in argv and "--service-account-key-file=/etc/kubernetes/pki/sa.pub" in argv


# ---------------------------------------------------------------------------------------------
# 6/7. Outputs: never over an input, atomic


def test_collect_node_never_writes_over_a_node_file(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    admin = root / "etc/kubernetes/admin.conf"
    before = admin.read_bytes()
    result = CliRunner().invoke(cli, ["collect-node", "--root", str(root), "--no-processes", "-o", str(admin),
                                      "--force"])
    assert result.exit_code == 2 and "input" in result.output
    assert admin.read_bytes() == before


def test_node_report_never_written_over_a_node_file(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    config = root / "var/lib/kubelet/config.yaml"
    before = config.read_bytes()
    result = node_cli(root, "-o", str(config), "--force")
    assert result.exit_code == 2 and config.read_bytes() == before


def test_failed_bundle_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = build_node(tmp_path / "n", True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    earlier = out_dir / "b.tar.gz"
    earlier.write_bytes(b"earlier bundle")

    def disk_full(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "addfile", disk_full)
    result = CliRunner().invoke(cli, ["collect-node", "--root", str(root), "--no-processes", "-o", str(earlier),
                                      "--force"])
    assert result.exit_code == 2 and "No space left on device" in result.output
    assert [p.name for p in out_dir.iterdir()] == ["b.tar.gz"] and earlier.read_bytes() == b"earlier bundle"


def test_collect_node_never_follows_a_planted_link(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    out = tmp_path / "b.tar.gz"
    out.symlink_to(victim)
    refused = CliRunner().invoke(cli, ["collect-node", "--root", str(root), "--no-processes", "-o", str(out)])
    assert refused.exit_code == 2 and victim.read_text() == "keep me"
    forced = CliRunner().invoke(cli, ["collect-node", "--root", str(root), "--no-processes", "-o", str(out),
                                      "--force"])
    assert forced.exit_code == 0, forced.output
    assert victim.read_text() == "keep me" and not out.is_symlink() and out.stat().st_mode & 0o777 == 0o600


def test_generate_writes_atomically_and_never_through_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    out = tmp_path / "enc.yaml"
    out.symlink_to(victim)
    result = CliRunner().invoke(cli, ["generate", "encryption-config", "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "keep me" and not out.is_symlink() and out.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc.yaml", "victim"]
