"""Command-line parsing and systemd's composition of the kubelet command line."""

from __future__ import annotations

from pathlib import Path

from node_layout import build_node, write

from kubeharden.nodeconf.flags import FlagSet, Token, parse_feature_gates
from kubeharden.nodeconf.snapshot import collect_root
from kubeharden.nodeconf.systemd import kubelet_command


def _parse(*words: str) -> FlagSet:
    return FlagSet.parse(Token(w) for w in words)


def test_flag_forms() -> None:
    flags = _parse("--a=1", "--b", "2", "--anonymous-auth", "-c=x", "--profiling=false", "--d", "--e", "-5",
                   "--a=3")
    assert flags.value("a") == "3"  # last occurrence wins
    assert flags.value("b") == "2"
    assert flags.get("anonymous-auth") is not None and flags.get("anonymous-auth").as_bool() is True  # type: ignore[union-attr]
    assert flags.value("c") == "x"
    assert flags.get("profiling").as_bool() is False  # type: ignore[union-attr]
    assert flags.value("d") == "true"  # followed by another flag: bare
    assert flags.value("e") == "-5"  # a negative number is a value
    assert "zzz" not in flags


def test_boolean_flag_does_not_swallow_a_positional_word() -> None:
    flags = _parse("--client-cert-auth", "extra")
    assert flags.value("client-cert-auth") == "true"
    assert [t.text for t in flags.positional] == ["extra"]


def test_feature_gates() -> None:
    assert parse_feature_gates("A=true, B=false,C=maybe,D") == {"A": True, "B": False}


def test_kubeadm_dropin_is_expanded_like_systemd(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", False, kubelet_extra_args='"--v=2 --node-ip=10.0.0.5"')
    command = kubelet_command(collect_root(str(root), processes=False))
    assert command is not None and command.origin == "systemd"
    words = [t.text for t in command.tokens]
    assert words == [
        "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf", "--kubeconfig=/etc/kubernetes/kubelet.conf",
        "--config=/var/lib/kubelet/config.yaml",
        "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock",
        "--pod-infra-container-image=registry.k8s.io/pause:3.9", "--v=2", "--node-ip=10.0.0.5",
    ]
    origin = {t.text: t.source.file for t in command.tokens if t.source}  # type: ignore[union-attr]
    assert origin["--v=2"].endswith("etc/default/kubelet")
    assert origin["--config=/var/lib/kubelet/config.yaml"].endswith("10-kubeadm.conf")


def test_dropin_in_etc_hides_the_same_name_in_usr_lib_and_exec_start_resets(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", False)
    write(root, "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
          "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --config=/etc/kubelet.yaml \\\n  --v=4\n", 0o644)
    command = kubelet_command(collect_root(str(root), processes=False))
    assert command is not None
    assert [t.text for t in command.tokens] == ["--config=/etc/kubelet.yaml", "--v=4"]


def test_braced_variable_is_one_word(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", False)
    write(root, "/etc/systemd/system/kubelet.service.d/30-x.conf",
          '[Service]\nEnvironment="X=--a=1 --b=2"\nExecStart=\nExecStart=/usr/bin/kubelet ${X} $X\n', 0o644)
    command = kubelet_command(collect_root(str(root), processes=False))
    assert command is not None
    assert [t.text for t in command.tokens] == ["--a=1 --b=2", "--a=1", "--b=2"]
