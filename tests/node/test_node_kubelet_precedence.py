"""The kubelet's effective configuration: flag > --config file > default; the config file is the
one the real command line names; missing evidence is not assessed."""

from __future__ import annotations

from pathlib import Path

from node_helpers import messages, node_results, scan_node, status_of
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
