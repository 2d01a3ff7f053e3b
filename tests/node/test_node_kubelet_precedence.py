"""The kubelet's effective configuration: flag > --config-dir drop-ins > --config file > default; the
config file is the one the real command line names; missing evidence is not assessed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from node_helpers import collect_bundle, messages, node_results, scan_node, status_of
from node_layout import KUBEADM_KUBELET_CONFIG, build_node, write

from kubeharden.model import Status


def test_flag_in_etc_default_kubelet_overrides_the_config_file(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True, kubelet_extra_args="--anonymous-auth=true --read-only-port=10255")
    result = scan_node(root)
    assert status_of(result, "KH-NODE-001") is Status.FAIL  # config file says false; the flag wins
    finding = node_results(result)["KH-NODE-001"].findings[0]
    assert finding.file is not None and finding.file.endswith("etc/default/kubelet") and finding.line == 1
    assert finding.evidence["origin"] == "flag" and "--anonymous-auth=true" in finding.message
    assert status_of(result, "KH-NODE-004") is Status.FAIL
    assert "--read-only-port=10255" in messages(result, "KH-NODE-004")[0]


def test_flag_can_also_fix_what_the_file_gets_wrong(tmp_path: Path) -> None:
    config = KUBEADM_KUBELET_CONFIG.replace("anonymous:\n    enabled: false", "anonymous:\n    enabled: true")
    root = build_node(tmp_path / "n", False, kubelet_config=config)
    assert status_of(scan_node(root), "KH-NODE-001") is Status.FAIL
    write(root, "/etc/default/kubelet", "KUBELET_EXTRA_ARGS=--anonymous-auth=false\n", 0o644)
    assert status_of(scan_node(root), "KH-NODE-001") is Status.PASS


def test_config_file_is_the_one_the_command_line_names(tmp_path: Path) -> None:
    """/var/lib/kubelet/config.yaml is hardened, but the kubelet is started with another --config."""
    root = build_node(tmp_path / "n", True)
    weak = KUBEADM_KUBELET_CONFIG.replace("mode: Webhook", "mode: AlwaysAllow")
    write(root, "/etc/kubernetes/kubelet-custom.yaml", weak, 0o600)
    write(root, "/etc/systemd/system/kubelet.service.d/20-custom.conf",
          '[Service]\nEnvironment="KUBELET_CONFIG_ARGS=--config=/etc/kubernetes/kubelet-custom.yaml"\n', 0o644)
    result = scan_node(root)
    assert status_of(result, "KH-NODE-002") is Status.FAIL
    finding = node_results(result)["KH-NODE-002"].findings[0]
    assert finding.file is not None and finding.file.endswith("etc/kubernetes/kubelet-custom.yaml")
    assert finding.path == "authorization.mode" and finding.value == "AlwaysAllow"


def test_flag_defaults_apply_without_a_config_file(tmp_path: Path) -> None:
    """No --config: the kubelet's flag defaults (anonymous on, AlwaysAllow, port 10255) apply."""
    root = build_node(tmp_path / "n", True)
    write(root, "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
          "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.conf\n", 0o644)
    result = scan_node(root)
    for control in ("KH-NODE-001", "KH-NODE-002", "KH-NODE-004"):
        assert status_of(result, control) is Status.FAIL, control
    assert "(default)" in messages(result, "KH-NODE-001")[0]


def test_config_file_defaults_differ_from_flag_defaults(tmp_path: Path) -> None:
    """A config file that omits a field gets the v1beta1 default (anonymous off, Webhook, port 0)."""
    minimal = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
    root = build_node(tmp_path / "n", False, kubelet_config=minimal)
    result = scan_node(root)
    for control in ("KH-NODE-001", "KH-NODE-002", "KH-NODE-004"):
        assert status_of(result, control) is Status.PASS, control
    assert status_of(result, "KH-NODE-003") is Status.FAIL  # no client CA by default


def test_zero_duration_in_file_is_defaulted_but_a_zero_flag_is_not(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", False)  # kubeadm writes streamingConnectionIdleTimeout: 0s
    assert status_of(scan_node(root), "KH-NODE-011") is Status.PASS
    write(root, "/etc/default/kubelet", "KUBELET_EXTRA_ARGS=--streaming-connection-idle-timeout=0\n", 0o644)
    result = scan_node(root)
    assert status_of(result, "KH-NODE-011") is Status.FAIL
    assert "never time out" in messages(result, "KH-NODE-011")[0]


def test_running_process_wins_over_unit_files(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    proc = tmp_path / "proc"
    (proc / "4242").mkdir(parents=True)
    argv = ["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml", "--anonymous-auth=true"]
    (proc / "4242" / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    from kubeharden.catalog import Settings, all_controls
    from kubeharden.engine import Engine
    from kubeharden.inventory import Inventory
    from kubeharden.nodeconf.snapshot import collect_root
    from kubeharden.scanner import ScanRequest
    from kubeharden.sources.node import snapshot_to_load_result

    snapshot = collect_root(str(root), processes=True, proc=str(proc))
    assert [p.pid for p in snapshot.processes["kubelet"]] == [4242]
    loaded, facts = snapshot_to_load_result(snapshot, ScanRequest())
    controls = [c for c in all_controls() if c.id == "KH-NODE-001"]
    result = Engine(controls, Settings()).run(Inventory(loaded.resources, facts))
    finding = result.controls[0].findings[0]
    assert finding.file == "/proc/4242/cmdline" and "--anonymous-auth=true" in finding.message


def test_missing_config_file_is_not_assessed_not_guessed(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    (root / "var/lib/kubelet/config.yaml").unlink()
    result = scan_node(root)
    for control in ("KH-NODE-001", "KH-NODE-004", "KH-NODE-009"):
        assert status_of(result, control) is Status.NOT_ASSESSED
        reason = node_results(result)[control].reason or ""
        assert "/var/lib/kubelet/config.yaml" in reason and "not found" in reason


def test_no_kubelet_at_all_is_not_assessed(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    for unit in ("usr/lib/systemd/system/kubelet.service", "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"):
        (root / unit).unlink()
    result = scan_node(root)
    assert status_of(result, "KH-NODE-001") is Status.NOT_ASSESSED
    assert "kubelet command line not found" in (node_results(result)["KH-NODE-001"].reason or "")
    # the control plane is still judged
    assert status_of(result, "KH-CP-001") is Status.PASS


def test_kubelet_configuration_in_a_repository_is_judged_without_flags(tmp_path: Path) -> None:
    from node_helpers import scan_paths

    (tmp_path / "kubelet.yaml").write_text(KUBEADM_KUBELET_CONFIG.replace("mode: Webhook", "mode: AlwaysAllow"))
    result = scan_paths(tmp_path / "kubelet.yaml")
    assert status_of(result, "KH-NODE-002") is Status.FAIL
    finding = node_results(result)["KH-NODE-002"].findings[0]
    assert "command line was not seen" in finding.evidence["note"]
    assert finding.line is not None and "AlwaysAllow" in (tmp_path / "kubelet.yaml").read_text().splitlines()[
        finding.line - 1]


DROPIN_DIR = "/etc/kubernetes/kubelet.conf.d"
_DROPIN_HEAD = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"


def _with_dropins(tmp_path: Path, dropins: dict[str, str], extra_flags: str = "") -> Path:
    root = build_node(tmp_path / "n", True, kubelet_extra_args=f'"--config-dir={DROPIN_DIR} {extra_flags}"')
    for name, body in dropins.items():
        write(root, f"{DROPIN_DIR}/{name}", _DROPIN_HEAD + body, 0o600)
    return root


def test_config_dir_dropins_override_the_config_file_in_lexical_order(tmp_path: Path) -> None:
    root = _with_dropins(tmp_path, {"20-b.conf": "readOnlyPort: 10255\n", "10-a.conf": "readOnlyPort: 0\n",
                                    "README": "readOnlyPort: 0\n"})  # not *.conf: ignored by the kubelet
    result = scan_node(root)
    assert status_of(result, "KH-NODE-004") is Status.FAIL
    finding = node_results(result)["KH-NODE-004"].findings[0]
    assert finding.file is not None and finding.file.endswith("kubelet.conf.d/20-b.conf") and finding.line == 3
    assert finding.evidence["origin"] == "config-dir" and "(drop-in 20-b.conf)" in finding.message
    # the same verdict from a bundle, which carries the drop-ins
    bundle = collect_bundle(root, tmp_path / "b.tar.gz")
    assert status_of(scan_node(bundle=bundle), "KH-NODE-004") is Status.FAIL
    (root / DROPIN_DIR.lstrip("/") / "30-c.conf").write_text(_DROPIN_HEAD + "readOnlyPort: 0\n")
    assert status_of(scan_node(root), "KH-NODE-004") is Status.PASS


def test_flag_beats_a_dropin(tmp_path: Path) -> None:
    root = _with_dropins(tmp_path, {"10-a.conf": "authentication:\n  anonymous:\n    enabled: true\n"})
    assert status_of(scan_node(root), "KH-NODE-001") is Status.FAIL
    fixed = _with_dropins(tmp_path / "f", {"10-a.conf": "authentication:\n  anonymous:\n    enabled: true\n"},
                          "--anonymous-auth=false")
    assert status_of(scan_node(fixed), "KH-NODE-001") is Status.PASS


def test_dropin_mappings_merge_and_zero_is_not_defaulted(tmp_path: Path) -> None:
    """A drop-in is a JSON merge patch: systemReserved.cpu does not remove systemReserved.pid.
    Drop-ins are merged after defaulting, so their 0s really disables the idle timeout."""
    root = _with_dropins(tmp_path, {"10-a.conf": "systemReserved: {cpu: 500m}\nkubeReserved: {memory: 1Gi}\n"
                                                 "streamingConnectionIdleTimeout: 0s\n"})
    result = scan_node(root)
    assert status_of(result, "KH-NODE-010") is Status.PASS
    assert status_of(result, "KH-NODE-011") is Status.FAIL
    assert "drop-in 10-a.conf" in messages(result, "KH-NODE-011")[0]


def test_dropin_problems_are_not_assessed_and_modes_checked(tmp_path: Path) -> None:
    root = _with_dropins(tmp_path, {"10-a.conf": "readOnlyPort: 0\n"})
    os.chmod(root / DROPIN_DIR.lstrip("/") / "10-a.conf", 0o644)
    result = scan_node(root)
    assert status_of(result, "KH-NODE-013") is Status.FAIL
    assert node_results(result)["KH-NODE-013"].findings[0].evidence["path"] == f"{DROPIN_DIR}/10-a.conf"
    (root / DROPIN_DIR.lstrip("/") / "20-bad.conf").write_text("readOnlyPort: 0\n")  # no apiVersion/kind
    result = scan_node(root)
    assert status_of(result, "KH-NODE-004") is Status.NOT_ASSESSED
    assert "20-bad.conf holds no KubeletConfiguration" in (node_results(result)["KH-NODE-004"].reason or "")
    missing = build_node(tmp_path / "m", True, kubelet_extra_args=f"--config-dir={DROPIN_DIR}")
    result = scan_node(missing)
    assert status_of(result, "KH-NODE-004") is Status.NOT_ASSESSED
    assert f"--config-dir {DROPIN_DIR} was not found" in (node_results(result)["KH-NODE-004"].reason or "")


def test_tls_default_depends_on_the_version(tmp_path: Path) -> None:
    """tlsMinVersion unset: Go runtimes before Kubernetes 1.30 still accept TLS 1.0. The version comes
    from --kubernetes-version, else from the API server's image tag."""
    root = build_node(tmp_path / "n", False)  # kubeadm's config leaves tlsMinVersion unset; image v1.30.2
    assert status_of(scan_node(root), "KH-NODE-008") is Status.PASS
    result = scan_node(root, version=(1, 29))
    assert status_of(result, "KH-NODE-008") is Status.FAIL
    finding = node_results(result)["KH-NODE-008"].findings[0]
    assert finding.severity.label == "low" and "1.29 (--kubernetes-version)" in finding.message
    old = build_node(tmp_path / "old", False, version="v1.27.16")
    assert "1.27 (kube-apiserver image tag)" in messages(scan_node(old), "KH-NODE-008")[0]
    assert status_of(scan_node(old, version=(1, 31)), "KH-NODE-008") is Status.PASS  # the setting wins


@pytest.mark.parametrize(("flag", "control"), [
    ("--anonymous-auth=true", "KH-NODE-001"),
    ("--authorization-mode=AlwaysAllow", "KH-NODE-002"),
    ("--authentication-token-webhook=false", "KH-NODE-002"),
    ("--client-ca-file=", "KH-NODE-003"),
    ("--read-only-port=10255", "KH-NODE-004"),
    ("--protect-kernel-defaults=false", "KH-NODE-005"),
    ("--make-iptables-util-chains=false", "KH-NODE-006"),
    ("--rotate-certificates=false", "KH-NODE-007"),
    ("--feature-gates=RotateKubeletServerCertificate=false", "KH-NODE-007"),
    ("--tls-min-version=VersionTLS11", "KH-NODE-008"),
    ("--tls-cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA", "KH-NODE-008"),
    ("--seccomp-default=false", "KH-NODE-009"),
    ("--pod-max-pids=-1", "KH-NODE-010"),
    ("--streaming-connection-idle-timeout=0", "KH-NODE-011"),
    ("--event-qps=2", "KH-NODE-012"),
])
def test_every_kubelet_setting_is_overridden_by_its_flag(tmp_path: Path, flag: str, control: str) -> None:
    """The hardened config file passes each control; the same node with one flag in
    /etc/default/kubelet fails it, and the finding points at that flag."""
    assert status_of(scan_node(build_node(tmp_path / "good", True)), control) is Status.PASS
    result = scan_node(build_node(tmp_path / "bad", True, kubelet_extra_args=flag))
    assert status_of(result, control) is Status.FAIL
    finding = next(f for f in node_results(result)[control].findings if f.evidence["origin"] == "flag")
    assert finding.file is not None and finding.file.endswith("etc/default/kubelet") and finding.line == 1
    assert finding.evidence["flag"] == flag.split("=", 1)[0]
