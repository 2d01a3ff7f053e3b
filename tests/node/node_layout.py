"""Builds kubeadm-shaped node roots in a temporary directory, with real file modes."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from kubeharden.controls.kubelet import HARDENED_KUBELET
from kubeharden.generators.audit_policy import render_audit_policy
from kubeharden.generators.encryption_config import EncryptionOptions, render_encryption_config
from kubeharden.nodeconf.manifests import HARDENED_VOLUMES, flags_for, static_pod

COMPONENTS = ("kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler")

# What kubeadm (v1.30) writes to /var/lib/kubelet/config.yaml (abridged to the fields that matter).
KUBEADM_KUBELET_CONFIG = """apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
healthzBindAddress: 127.0.0.1
healthzPort: 10248
kind: KubeletConfiguration
rotateCertificates: true
runtimeRequestTimeout: 0s
staticPodPath: /etc/kubernetes/manifests
streamingConnectionIdleTimeout: 0s
syncFrequency: 0s
volumeStatsAggPeriod: 0s
"""

KUBELET_SERVICE = """[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
"""

KUBEADM_DROPIN = """# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""  # noqa: E501 - kubeadm's drop-in, verbatim

KUBEADM_FLAGS_ENV = ('KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock '
                     '--pod-infra-container-image=registry.k8s.io/pause:3.9"\n')
# A hardened API server's admission configuration: PodSecurity's settings in their own file, named
# by a path relative to this one (the API server resolves it against this file's directory).
ADMISSION_CONFIG = """apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  path: pod-security.yaml
"""
POD_SECURITY_CONFIG = """apiVersion: pod-security.admission.config.k8s.io/v1
kind: PodSecurityConfiguration
defaults:
  enforce: baseline
  enforce-version: latest
  audit: restricted
  audit-version: latest
  warn: restricted
  warn-version: latest
exemptions:
  usernames: []
  runtimeClasses: []
  namespaces: [kube-system]
"""
KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\nusers:\n- name: x\n  user: {token: not-a-real-token}\n"
PKI_KEYS = ("ca.key", "apiserver.key", "apiserver-kubelet-client.key", "apiserver-etcd-client.key", "sa.key",
            "front-proxy-ca.key", "front-proxy-client.key", "etcd/ca.key", "etcd/server.key", "etcd/peer.key",
            "etcd/healthcheck-client.key")
PKI_CERTS = ("ca.crt", "apiserver.crt", "apiserver-kubelet-client.crt", "apiserver-etcd-client.crt", "sa.pub",
             "front-proxy-ca.crt", "front-proxy-client.crt", "etcd/ca.crt", "etcd/server.crt", "etcd/peer.crt",
             "etcd/healthcheck-client.crt")


def write(root: Path, path: str, text: str, mode: int) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    os.chmod(target, mode)
    return target


def build_node(root: Path, hardened: bool, *, version: str = "v1.30.2", kubelet_extra_args: str | None = None,
               kubelet_config: str | None = None) -> Path:
    """A control-plane node as kubeadm leaves it (hardened=False, with the loose modes often found
    on real nodes) or after hardening (hardened=True)."""
    strict = 0o600
    loose = 0o644
    for component in COMPONENTS:
        extra = HARDENED_VOLUMES.get(component, []) if hardened else []
        pod = static_pod(component, flags_for(component, hardened), version, extra_volumes=extra)
        write(root, f"/etc/kubernetes/manifests/{component}.yaml", yaml.safe_dump(pod, sort_keys=False),
              strict if hardened else loose)
    for name in ("admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf"):
        write(root, f"/etc/kubernetes/{name}", KUBECONFIG, strict if hardened or name != "admin.conf" else loose)
    for key in PKI_KEYS:
        write(root, f"/etc/kubernetes/pki/{key}", "-----BEGIN PRIVATE KEY-----\nnot a key\n",
              strict if hardened or key != "ca.key" else loose)
    for cert in PKI_CERTS:
        write(root, f"/etc/kubernetes/pki/{cert}", "-----BEGIN CERTIFICATE-----\n", loose)
    write(root, "/usr/lib/systemd/system/kubelet.service", KUBELET_SERVICE, loose)
    write(root, "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", KUBEADM_DROPIN, loose)
    write(root, "/var/lib/kubelet/kubeadm-flags.env", KUBEADM_FLAGS_ENV, loose)
    if kubelet_extra_args is not None:
        write(root, "/etc/default/kubelet", f"KUBELET_EXTRA_ARGS={kubelet_extra_args}\n", loose)
    config = kubelet_config or (HARDENED_KUBELET + "staticPodPath: /etc/kubernetes/manifests\n" if hardened
                                else KUBEADM_KUBELET_CONFIG)
    write(root, "/var/lib/kubelet/config.yaml", config, strict if hardened else loose)
    etcd_dir = root / "var/lib/etcd"
    etcd_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(etcd_dir, 0o700 if hardened else 0o755)
    write(root, "/root/.kube/config", KUBECONFIG, strict)
    if hardened:
        write(root, "/etc/kubernetes/enc/encryption-config.yaml", render_encryption_config(EncryptionOptions()), strict)
        write(root, "/etc/kubernetes/audit/audit-policy.yaml", render_audit_policy(), strict)
        write(root, "/etc/kubernetes/admission/admission-config.yaml", ADMISSION_CONFIG, strict)
        write(root, "/etc/kubernetes/admission/pod-security.yaml", POD_SECURITY_CONFIG, strict)
    return root
