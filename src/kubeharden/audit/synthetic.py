"""Synthetic audit logs: a small cluster's benign day (controllers, kubelets, a CD system, people,
probes) and an attack mix, written by a generator (benchmarks/bench_audit.py, tests/audit)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Any

from kubeharden.audit.detectors._events import deployment, event, pod_template
from kubeharden.audit.event import RESOURCE_KINDS, WORKLOAD_RESOURCES

DAY = "2026-11-02"
NODES = [f"worker-{i}" for i in range(1, 6)]
NODE_IPS = {n: f"10.0.1.{10 + i}" for i, n in enumerate(NODES)}
CONTROL_PLANE_IP = "10.0.0.10"
POD_CIDR = "10.244.0.0/16"
APPS = ["web", "api", "worker", "cache", "billing"]
CD = "system:serviceaccount:argocd:argocd-application-controller"
PEOPLE = {"alice@example.com": "198.51.100.20", "bob@example.com": "198.51.100.21"}
SA_GROUPS = ("system:serviceaccounts", "system:authenticated")
SETTINGS: dict[str, Any] = {
    "podCIDRs": [POD_CIDR], "nodeIPs": [CONTROL_PLANE_IP, *NODE_IPS.values()], "deployerIdentities": [CD],
    "approvedImagePrefixes": ["registry.example.com/"], "breakGlassUsers": ["alice@example.com"],
    "secretReaders": ["system:serviceaccount:ingress-nginx:ingress-nginx"],
}


def _time(second: int) -> str:
    h, rest = divmod(second % 86400, 3600)
    m, s = divmod(rest, 60)
    return f"{DAY}T{h:02d}:{m:02d}:{s:02d}.{random.randrange(1_000_000):06d}Z"


def _controller(name: str) -> dict[str, Any]:
    return {"user": f"system:serviceaccount:kube-system:{name}", "groups": SA_GROUPS, "ips": (CONTROL_PLANE_IP,),
            "agent": f"kube-controller-manager/v1.31.2 (linux/amd64) kubernetes/5864a46/system:serviceaccount:"
                     f"kube-system:{name}"}


def benign_day(events: int = 20_000, seed: int = 7, big_body_every: int = 0) -> Iterator[dict[str, Any]]:
    """Events of an ordinary day, in time order. ``big_body_every``: every Nth event carries a ~50 KB
    ConfigMap body (dashboards, bundled scripts), as real logs do."""
    rng = random.Random(seed)
    random.seed(seed)
    step = max(1, 86400 // max(1, events))
    big = "x" * 50_000
    for i in range(events):
        t = _time(i * step)
        roll = rng.random()
        if big_body_every and i % big_body_every == 0:
            yield event("update", "configmaps", name="grafana-dashboards", namespace="monitoring", time=t,
                        body={"kind": "ConfigMap", "data": {"dash.json": big}}, user=CD, groups=SA_GROUPS,
                        ips=("10.244.9.4",), agent="argocd-controller/v2.12.3")
            continue
        if roll < 0.30:  # kubelets: leases, node status, pods they run, their secrets and tokens
            node = rng.choice(NODES)
            who: dict[str, Any] = {"user": f"system:node:{node}", "groups": ("system:nodes", "system:authenticated"),
                   "ips": (NODE_IPS[node],), "agent": "kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46"}
            kind = rng.random()
            if kind < 0.5:
                yield event("update", "leases", group="coordination.k8s.io", name=node, namespace="kube-node-lease",
                            time=t, **who)
            elif kind < 0.7:
                yield event("patch", "nodes", name=node, namespace=None, subresource="status", time=t, **who)
            elif kind < 0.85:
                yield event("get", "secrets", name=f"{rng.choice(APPS)}-tls", time=t, **who)
            else:
                yield event("create", "serviceaccounts", name=rng.choice(APPS), subresource="token", time=t, **who)
        elif roll < 0.55:  # controllers: watches, endpoint slices, replica sets' pods
            ctl = rng.choice(["replicaset-controller", "endpointslice-controller", "deployment-controller",
                              "job-controller", "generic-garbage-collector"])
            who = _controller(ctl)
            app = rng.choice(APPS)
            if ctl == "replicaset-controller" and rng.random() < 0.3:
                yield event("create", "pods", name="", time=t, body={"kind": "Pod", "metadata": {
                    "generateName": f"{app}-7d4b9-"}, "spec": pod_template()["spec"]}, **who)
            elif ctl == "deployment-controller" and rng.random() < 0.3:
                yield event("update", "replicasets", group="apps", name=f"{app}-7d4b9", time=t,
                            body=deployment(name=f"{app}-7d4b9") | {"kind": "ReplicaSet"}, **who)
            else:
                yield event(rng.choice(["get", "list", "watch"]), rng.choice(["pods", "endpoints", "services"]),
                            name="" if rng.random() < 0.5 else app, time=t, **who)
        elif roll < 0.70:  # the scheduler and the API server itself
            yield event("create", "pods", name=f"{rng.choice(APPS)}-7d4b9-abcde", subresource="binding", time=t,
                        user="system:kube-scheduler", groups=("system:authenticated",), ips=(CONTROL_PLANE_IP,),
                        agent="kube-scheduler/v1.31.2")
        elif roll < 0.82:  # applications reading their config, through the pod network
            app = rng.choice(APPS)
            yield event(rng.choice(["get", "watch"]), "configmaps", name=f"{app}-config", time=t,
                        user=f"system:serviceaccount:apps:{app}", groups=SA_GROUPS,
                        ips=(f"10.244.{rng.randrange(1, 6)}.{rng.randrange(2, 250)}",), agent=f"{app}/1.4.2")
        elif roll < 0.87:  # the ingress controller lists secrets (allowed reader)
            yield event("list", "secrets", name="", namespace=None, time=t,
                        user="system:serviceaccount:ingress-nginx:ingress-nginx", groups=SA_GROUPS,
                        ips=("10.244.2.7",), agent="nginx-ingress-controller/v1.11.2")
        elif roll < 0.90:  # the CD system applying hardened workloads
            app = rng.choice(APPS)
            yield event("patch", "deployments", group="apps", name=app, time=t, user=CD, groups=SA_GROUPS,
                        ips=("10.244.9.4",), agent="argocd-controller/v2.12.3",
                        body={"spec": {"template": {"metadata": {"annotations": {"rev": str(i)}}}}})
        elif roll < 0.96:  # health probes, some anonymous
            yield event("get", "", name="", namespace=None, time=t, user="system:anonymous",
                        groups=("system:unauthenticated",), uri=rng.choice(["/healthz", "/livez", "/readyz?verbose"]),
                        ips=(CONTROL_PLANE_IP,), agent="kube-probe/1.31")
        else:  # people, in working hours, reading
            hour = int(t[11:13])
            if not 8 <= hour < 18:
                yield event("get", "", name="", namespace=None, time=t, user="system:anonymous",
                            groups=("system:unauthenticated",), uri="/readyz", ips=(CONTROL_PLANE_IP,),
                            agent="kube-probe/1.31")
                continue
            person = rng.choice(list(PEOPLE))
            yield event(rng.choice(["get", "list"]), rng.choice(["pods", "deployments", "services"]),
                        group="", name="", time=t, user=person, ips=(PEOPLE[person],))


def attacks(second: int = 50_000) -> list[dict[str, Any]]:
    """One of each attack the detectors catch (the non-benign part)."""
    t = _time
    stolen = "system:serviceaccount:apps:web"
    return [
        event("create", "deployments", group="apps", name="miner", time=t(second), body=deployment(
            pod_template([{"name": "m", "image": "docker.io/xmrig/xmrig", "securityContext": {"privileged": True}}],
                         hostPID=True, volumes=[{"name": "root", "hostPath": {"path": "/"}}]), name="miner"),
              user="bob@example.com", ips=("198.51.100.21",)),
        event("list", "secrets", name="", namespace=None, time=t(second + 10), user=stolen, groups=SA_GROUPS,
              ips=("10.244.3.17",)),
        event("create", "pods", name="x", time=t(second + 20), user=stolen, groups=SA_GROUPS, ips=("10.244.3.17",),
              body={"kind": "Pod", "spec": pod_template()["spec"]}),
        event("get", "pods", name="", time=t(second + 30), user=stolen, groups=SA_GROUPS, ips=("34.89.10.20",)),
        event("create", "clusterrolebindings", group="rbac.authorization.k8s.io", name="pwn", namespace=None,
              time=t(second + 40), user="bob@example.com", ips=("198.51.100.21",),
              body={"roleRef": {"name": "cluster-admin"}, "subjects": [{"kind": "User", "name": "system:anonymous"}]}),
        event("create", "pods", name="web-1", subresource="exec", code=101, time=t(second + 50), user="bob@example.com",
              ips=("198.51.100.21",)),
        event("delete", "validatingwebhookconfigurations", group="admissionregistration.k8s.io", name="gatekeeper",
              namespace=None, time=t(second + 60), user="bob@example.com", ips=("198.51.100.21",)),
        *[event("get", "secrets", name=f"s{i}", code=403, time=t(second + 70 + i), user="eve", ips=("192.0.2.9",))
          for i in range(12)],
        event("list", "secrets", name="", namespace="kube-system", time=t(second + 100), user="system:anonymous",
              groups=("system:unauthenticated",), ips=("192.0.2.9",)),
    ]


WORKLOAD_KINDS = {kind: resource for resource, kind in RESOURCE_KINDS.items() if resource in WORKLOAD_RESOURCES}


def deployed(objects: Iterable[dict[str, Any]], user: str = CD, second: int = 36_000) -> Iterator[dict[str, Any]]:
    """Each workload object (every pod-spec kind) as the audit event of its create by a deployer
    identity (the CD system by default), at Request level: real manifests as an audit log."""
    for i, obj in enumerate(objects):
        kind = obj.get("kind")
        resource = WORKLOAD_KINDS.get(kind) if isinstance(kind, str) else None
        if resource is None:
            continue
        metadata = obj.get("metadata")
        meta: dict[str, Any] = metadata if isinstance(metadata, dict) else {}
        group, _, version = str(obj.get("apiVersion") or "v1").rpartition("/")
        yield event("create", resource, group=group, version=version or "v1", name=str(meta.get("name") or ""),
                    namespace=str(meta.get("namespace") or "default"), time=_time(second + i), body=obj, user=user,
                    groups=SA_GROUPS, ips=("10.244.9.4",), agent="argocd-controller/v2.12.3", level="Request")
