"""``kubeharden webhook manifests``: everything a cluster needs to run the webhook, hardened.

Namespace (Pod Security restricted), default-deny NetworkPolicy with ingress to the webhook port only,
LimitRange and ResourceQuota, a ServiceAccount without token and without any binding (the webhook
calls no API: its cluster context is a file), the TLS Secret, a Deployment (non-root, read-only root
filesystem, no capabilities, seccomp RuntimeDefault, two replicas spread over nodes), a Service, a
PodDisruptionBudget and the ValidatingWebhookConfiguration. `kubeharden scan` passes it with no
finding at or above medium (tests/admission).

failurePolicy is the user's choice, because both answers cost something:
  Fail   - nothing the webhook judges is admitted while no replica answers: the guarantee holds, but
           an outage of the webhook blocks deploys (and scale-ups that create pods) cluster-wide;
  Ignore - everything is admitted while the webhook is down: deploys go on, the guarantee does not.
kube-system and the webhook's own namespace are never sent to the webhook (namespaceSelector and
matchConditions), so the webhook cannot block its own recovery.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import yaml

from kubeharden.admission.certs import CertBundle
from kubeharden.yamlsafe import KubernetesDumper

WEBHOOK_NAME = "validate.kubeharden.io"
PORT = 8443
TLS_DIR = "/etc/kubeharden/tls"
FAILURE_POLICIES = ("Fail", "Ignore")
# Every kind with a pod template, by API group; pods/ephemeralcontainers is how ephemeral containers arrive.
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("pods", "pods/ephemeralcontainers", "replicationcontrollers", "podtemplates")),
    ("apps", ("deployments", "replicasets", "statefulsets", "daemonsets")),
    ("batch", ("jobs", "cronjobs")),
)


@dataclass
class WebhookDeployment:
    namespace: str
    image: str
    certs: CertBundle
    service: str = "kubeharden-webhook"
    profile: str = "nsa"
    mode: str = "enforce"
    deny_at: str = "high"
    failure_policy: str = "Fail"
    timeout_seconds: int = 5
    replicas: int = 2
    apiserver_cidrs: tuple[str, ...] = ()  # where the API server connects from: the only allowed ingress
    exempt_namespaces: tuple[str, ...] = ()
    exempt_users: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=lambda: {"app.kubernetes.io/name": "kubeharden-webhook"})

    @property
    def secret(self) -> str:
        return f"{self.service}-tls"

    def excluded_namespaces(self) -> list[str]:
        return list(dict.fromkeys(["kube-system", self.namespace, *self.exempt_namespaces]))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def documents(d: WebhookDeployment) -> list[dict[str, Any]]:
    if d.failure_policy not in FAILURE_POLICIES:
        raise ValueError(f"failurePolicy must be Fail or Ignore, not {d.failure_policy!r}")
    if not d.apiserver_cidrs:
        raise ValueError("give the addresses the API server connects from (the webhook admits no other traffic)")
    if not 1 <= d.timeout_seconds <= 30:
        raise ValueError("timeoutSeconds must be between 1 and 30 (the API server's limits)")
    ns, labels = d.namespace, d.labels
    meta = {"namespace": ns, "labels": labels}
    args = ["webhook", "--listen", f"0.0.0.0:{PORT}", "--tls-cert", f"{TLS_DIR}/tls.crt",
            "--tls-key", f"{TLS_DIR}/tls.key", "--profile", d.profile, "--mode", d.mode, "--deny-at", d.deny_at,
            "--timeout-seconds", str(d.timeout_seconds)]
    for name in d.exempt_namespaces:
        args += ["--exempt-namespace", name]
    for user in d.exempt_users:
        args += ["--exempt-user", user]
    args += list(d.extra_args)
    probe = {"httpGet": {"path": "/readyz", "port": PORT, "scheme": "HTTPS"}, "periodSeconds": 5}
    container = {
        "name": "webhook",
        "image": d.image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "ports": [{"name": "https", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": PORT, "scheme": "HTTPS"}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "privileged": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_spec = {
        "serviceAccountName": d.service,
        "automountServiceAccountToken": False,
        "hostUsers": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": 30,  # SIGTERM drains the reviews in flight
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                               "labelSelector": {"matchLabels": labels}}}]}},
        "containers": [container],
        "volumes": [{"name": "tls", "secret": {"secretName": d.secret, "defaultMode": 0o440}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
    }
    webhook = {
        "name": WEBHOOK_NAME,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "timeoutSeconds": d.timeout_seconds,
        "failurePolicy": d.failure_policy,
        "matchPolicy": "Equivalent",
        "clientConfig": {"service": {"name": d.service, "namespace": ns, "path": "/validate", "port": 443},
                         "caBundle": _b64(d.certs.ca_cert)},
        "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                                    "values": d.excluded_namespaces()}]},
        "matchConditions": _match_conditions(d),
        "rules": [{"apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                   "resources": list(resources), "scope": "Namespaced"} for group, resources in RULES],
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns,
                                             "pod-security.kubernetes.io/enforce": "restricted",
                                             "pod-security.kubernetes.io/enforce-version": "latest",
                                             "pod-security.kubernetes.io/warn": "restricted",
                                             "pod-security.kubernetes.io/audit": "restricted"}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "default-deny", "namespace": ns},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": f"{d.service}-ingress", **meta},
         "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"ipBlock": {"cidr": cidr}} for cidr in d.apiserver_cidrs],
                               "ports": [{"protocol": "TCP", "port": PORT}]}]}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits", "namespace": ns},
         "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                              "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                              "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "10m", "memory": "16Mi"}}]}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "quota", "namespace": ns},
         "spec": {"hard": {"requests.cpu": "4", "requests.memory": "2Gi", "limits.cpu": "8",
                           "limits.memory": "4Gi", "pods": "10"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": d.service, **meta},
         "automountServiceAccountToken": False},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": d.secret, **meta},
         "data": {"tls.crt": _b64(d.certs.cert), "tls.key": _b64(d.certs.key), "ca.crt": _b64(d.certs.ca_cert)}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": d.service, **meta},
         "spec": {"replicas": d.replicas, "selector": {"matchLabels": labels},
                  "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                  "template": {"metadata": {"labels": labels}, "spec": pod_spec}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": d.service, **meta},
         "spec": {"type": "ClusterIP", "selector": labels,
                  "ports": [{"name": "https", "port": 443, "targetPort": PORT, "protocol": "TCP"}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": d.service, **meta},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": "kubeharden", "labels": labels}, "webhooks": [webhook]},
    ]


def _match_conditions(d: WebhookDeployment) -> list[dict[str, str]]:
    excluded = ", ".join(f"'{n}'" for n in d.excluded_namespaces())
    conditions = [{"name": "not-system-namespaces", "expression": f"!(request.namespace in [{excluded}])"}]
    if d.exempt_users:
        users = ", ".join(f"'{u}'" for u in d.exempt_users)
        conditions.append({"name": "not-exempt-users", "expression": f"!(request.userInfo.username in [{users}])"})
    return conditions


HEADER = """\
# kubeharden admission webhook ({webhook}), generated by `kubeharden webhook manifests`.
# failurePolicy: {policy}. Fail: nothing judged is admitted while no replica answers (deploys block when
# the webhook is down). Ignore: everything is admitted while it is down (deploys go on, unchecked).
# The Secret below holds the serving key: keep this file out of version control, or drop the Secret and
# create it with `kubectl create secret tls`.
"""


def render(d: WebhookDeployment) -> bytes:
    docs = documents(d)
    body = yaml.dump_all(docs, Dumper=KubernetesDumper, sort_keys=False, default_flow_style=False)
    return (HEADER.format(webhook=WEBHOOK_NAME, policy=d.failure_policy) + "---\n" + body).encode()
