"""kubeadm-shaped static pod manifests, used for control examples, docs and test fixtures."""

from __future__ import annotations

from collections.abc import Iterable

import yaml

from kubeharden.generators.apiserver_snippet import ApiServerSnippet
from kubeharden.generators.audit_policy import AuditOptions, audit_snippet
from kubeharden.generators.encryption_config import EncryptionOptions, encryption_snippet

# What kubeadm (v1.30) writes, flag by flag.
KUBEADM_FLAGS: dict[str, dict[str, str]] = {
    "kube-apiserver": {
        "advertise-address": "192.168.0.10",
        "allow-privileged": "true",
        "authorization-mode": "Node,RBAC",
        "client-ca-file": "/etc/kubernetes/pki/ca.crt",
        "enable-admission-plugins": "NodeRestriction",
        "enable-bootstrap-token-auth": "true",
        "etcd-cafile": "/etc/kubernetes/pki/etcd/ca.crt",
        "etcd-certfile": "/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "etcd-keyfile": "/etc/kubernetes/pki/apiserver-etcd-client.key",
        "etcd-servers": "https://127.0.0.1:2379",
        "kubelet-client-certificate": "/etc/kubernetes/pki/apiserver-kubelet-client.crt",
        "kubelet-client-key": "/etc/kubernetes/pki/apiserver-kubelet-client.key",
        "kubelet-preferred-address-types": "InternalIP,ExternalIP,Hostname",
        "proxy-client-cert-file": "/etc/kubernetes/pki/front-proxy-client.crt",
        "proxy-client-key-file": "/etc/kubernetes/pki/front-proxy-client.key",
        "requestheader-client-ca-file": "/etc/kubernetes/pki/front-proxy-ca.crt",
        "secure-port": "6443",
        "service-account-issuer": "https://kubernetes.default.svc.cluster.local",
        "service-account-key-file": "/etc/kubernetes/pki/sa.pub",
        "service-account-signing-key-file": "/etc/kubernetes/pki/sa.key",
        "service-cluster-ip-range": "10.96.0.0/12",
        "tls-cert-file": "/etc/kubernetes/pki/apiserver.crt",
        "tls-private-key-file": "/etc/kubernetes/pki/apiserver.key",
    },
    "etcd": {
        "advertise-client-urls": "https://192.168.0.10:2379",
        "cert-file": "/etc/kubernetes/pki/etcd/server.crt",
        "client-cert-auth": "true",
        "data-dir": "/var/lib/etcd",
        "initial-advertise-peer-urls": "https://192.168.0.10:2380",
        "initial-cluster": "cp1=https://192.168.0.10:2380",
        "key-file": "/etc/kubernetes/pki/etcd/server.key",
        "listen-client-urls": "https://127.0.0.1:2379,https://192.168.0.10:2379",
        "listen-metrics-urls": "http://127.0.0.1:2381",
        "listen-peer-urls": "https://192.168.0.10:2380",
        "name": "cp1",
        "peer-cert-file": "/etc/kubernetes/pki/etcd/peer.crt",
        "peer-client-cert-auth": "true",
        "peer-key-file": "/etc/kubernetes/pki/etcd/peer.key",
        "peer-trusted-ca-file": "/etc/kubernetes/pki/etcd/ca.crt",
        "trusted-ca-file": "/etc/kubernetes/pki/etcd/ca.crt",
    },
    "kube-controller-manager": {
        "authentication-kubeconfig": "/etc/kubernetes/controller-manager.conf",
        "authorization-kubeconfig": "/etc/kubernetes/controller-manager.conf",
        "bind-address": "127.0.0.1",
        "client-ca-file": "/etc/kubernetes/pki/ca.crt",
        "cluster-signing-cert-file": "/etc/kubernetes/pki/ca.crt",
        "cluster-signing-key-file": "/etc/kubernetes/pki/ca.key",
        "kubeconfig": "/etc/kubernetes/controller-manager.conf",
        "leader-elect": "true",
        "root-ca-file": "/etc/kubernetes/pki/ca.crt",
        "service-account-private-key-file": "/etc/kubernetes/pki/sa.key",
        "use-service-account-credentials": "true",
    },
    "kube-scheduler": {
        "authentication-kubeconfig": "/etc/kubernetes/scheduler.conf",
        "authorization-kubeconfig": "/etc/kubernetes/scheduler.conf",
        "bind-address": "127.0.0.1",
        "kubeconfig": "/etc/kubernetes/scheduler.conf",
        "leader-elect": "true",
    },
}

# Flags a hardened control plane adds on top of kubeadm's defaults.
HARDENED_EXTRA: dict[str, dict[str, str]] = {
    "kube-apiserver": {
        "anonymous-auth": "false",
        "profiling": "false",
        "kubelet-certificate-authority": "/etc/kubernetes/pki/ca.crt",
        "tls-min-version": "VersionTLS12",
        "enable-admission-plugins": "NodeRestriction,PodSecurity",
        "encryption-provider-config": "/etc/kubernetes/enc/encryption-config.yaml",
        "audit-policy-file": "/etc/kubernetes/audit/audit-policy.yaml",
        "audit-log-path": "/var/log/kubernetes/audit/audit.log",
        "audit-log-maxage": "30",
        "audit-log-maxbackup": "10",
        "audit-log-maxsize": "100",
        "admission-control-config-file": "/etc/kubernetes/admission/admission-config.yaml",
    },
    "etcd": {"tls-min-version": "TLS1.2"},
    "kube-controller-manager": {"profiling": "false", "tls-min-version": "VersionTLS12"},
    "kube-scheduler": {"profiling": "false", "tls-min-version": "VersionTLS12"},
}

IMAGES = {
    "kube-apiserver": "registry.k8s.io/kube-apiserver",
    "kube-controller-manager": "registry.k8s.io/kube-controller-manager",
    "kube-scheduler": "registry.k8s.io/kube-scheduler",
    "etcd": "registry.k8s.io/etcd",
}

# kubeadm's hostPath volumes (abridged): component -> (name, host path, mount path, type, readOnly)
KUBEADM_VOLUMES: dict[str, list[tuple[str, str, str, str, bool]]] = {
    "kube-apiserver": [
        ("ca-certs", "/etc/ssl/certs", "/etc/ssl/certs", "DirectoryOrCreate", True),
        ("k8s-certs", "/etc/kubernetes/pki", "/etc/kubernetes/pki", "DirectoryOrCreate", True),
    ],
    "etcd": [
        ("etcd-certs", "/etc/kubernetes/pki/etcd", "/etc/kubernetes/pki/etcd", "DirectoryOrCreate", False),
        ("etcd-data", "/var/lib/etcd", "/var/lib/etcd", "DirectoryOrCreate", False),
    ],
    "kube-controller-manager": [
        ("k8s-certs", "/etc/kubernetes/pki", "/etc/kubernetes/pki", "DirectoryOrCreate", True),
        ("kubeconfig", "/etc/kubernetes/controller-manager.conf", "/etc/kubernetes/controller-manager.conf",
         "FileOrCreate", True),
    ],
    "kube-scheduler": [
        ("kubeconfig", "/etc/kubernetes/scheduler.conf", "/etc/kubernetes/scheduler.conf", "FileOrCreate", True),
    ],
}


def snippet_volumes(snippet: ApiServerSnippet) -> list[tuple[str, str, str, str, bool]]:
    """The hostPath volumes a generator's API server snippet asks for, in this module's form."""
    return [(m.name, m.path, m.path, m.type, m.read_only) for m in snippet.mounts]


# The volumes `kubeharden generate ... --flags` prints, so examples and fixtures mount what users will.
AUDIT_VOLUMES = snippet_volumes(audit_snippet(AuditOptions()))
ENCRYPTION_VOLUMES = snippet_volumes(encryption_snippet(EncryptionOptions()))
ADMISSION_VOLUMES = [("admission-config", "/etc/kubernetes/admission", "/etc/kubernetes/admission", "Directory", True)]
HARDENED_VOLUMES: dict[str, list[tuple[str, str, str, str, bool]]] = {
    "kube-apiserver": [*ENCRYPTION_VOLUMES, *AUDIT_VOLUMES, *ADMISSION_VOLUMES],
}


def flags_for(component: str, hardened: bool = False, **overrides: str | None) -> dict[str, str]:
    """kubeadm flags (plus the hardened ones); an override of None removes a flag. Keyword
    names use '_' for '-'."""
    flags = dict(KUBEADM_FLAGS[component])
    if hardened:
        flags.update(HARDENED_EXTRA.get(component, {}))
    for name, value in overrides.items():
        key = name.replace("_", "-")
        if value is None:
            flags.pop(key, None)
        else:
            flags[key] = value
    return flags


def static_pod(component: str, flags: dict[str, str], version: str = "v1.30.2", node: str = "cp1",
               extra_volumes: Iterable[tuple[str, str, str, str, bool]] = ()) -> dict[str, object]:
    volumes = [*KUBEADM_VOLUMES[component], *extra_volumes]
    image = f"{IMAGES[component]}:{'3.5.12-0' if component == 'etcd' else version}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{component}-{node}", "namespace": "kube-system",
                     "labels": {"component": component, "tier": "control-plane"}},
        "spec": {
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "containers": [{
                "name": component,
                "image": image,
                "command": [component, *(f"--{k}={v}" for k, v in flags.items())],
                "volumeMounts": [{"name": n, "mountPath": m, "readOnly": ro} for n, _h, m, _t, ro in volumes],
            }],
            "volumes": [{"name": n, "hostPath": {"path": h, "type": t}} for n, h, _m, t, _ro in volumes],
        },
    }


def example(component: str, hardened: bool = False, version: str = "v1.30.2", *extra_docs: str,
            volumes: Iterable[tuple[str, str, str, str, bool]] = (), **overrides: str | None) -> str:
    """A control example: one static pod (with extra hostPath ``volumes``) and optional extra
    YAML documents."""
    extra = [*(HARDENED_VOLUMES.get(component, []) if hardened else []), *volumes]
    pod = static_pod(component, flags_for(component, hardened, **overrides), version, extra_volumes=extra)
    return "---\n".join([yaml.safe_dump(pod, sort_keys=False), *extra_docs])
