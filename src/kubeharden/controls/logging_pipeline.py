"""Log pipelines (guidance §1.8, NSA-LOG-7, LOG-9, LOG-11, LOG-16): a node-level agent on every
node, outputs over TLS with certificate verification, persistent buffering, node logs collected.

Configurations come from ConfigMaps of the input and, with ``kubeharden node --root``, from the
agents' files on the node (``kubeharden.logpipeline``); the agent DaemonSets and Nodes from the
input (a snapshot or live scan has the Nodes).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kubeharden.catalog import Context, Example, control
from kubeharden.inventory import PodSpecView, as_dict
from kubeharden.loader import LineLocator
from kubeharden.logpipeline import AgentConfig
from kubeharden.logpipeline.analysis import Transport, buffering, node_log_inputs, transports
from kubeharden.logpipeline.sources import Pipelines, pipelines
from kubeharden.model import NotAssessed, Section, Severity, Source, Violation
from kubeharden.scheduling import selects_node, untolerated

NEEDS = ("log agent configuration: a ConfigMap holding a Fluent Bit, Fluentd, Vector or Promtail "
         "configuration, or the agents' node files (kubeharden node --root DIR)")
# Node-level log agents, by image repository name.
AGENT_IMAGE_RE = re.compile(
    r"(?:^|[/-])(fluent-bit|fluentbit|aws-for-fluent-bit|fluentd[\w-]*|vector|promtail|alloy|grafana-agent|agent"
    r"|filebeat|elastic-agent|opentelemetry-collector[\w-]*|otelcol[\w-]*|splunk-otel-collector|logging-agent"
    r"|cloudwatch-agent|fluentd-kubernetes-daemonset|sumologic-otel-collector|logdna-agent|beats)$")
_AGENT_REPOS_NEED_VENDOR = {"agent": ("grafana/", "datadog/", "gcr.io/datadoghq/"), "beats": ("elastic/",)}


def _configs(ctx: Context) -> Pipelines:
    found = pipelines(ctx.inventory)
    if not found.configs:
        note = f" ({'; '.join(found.notes)})" if found.notes else ""
        raise NotAssessed(f"no log agent configuration in the input{note}; {NEEDS}")
    return found


def _usable(found: Pipelines) -> list[AgentConfig]:
    """Configurations that were read; one that could not be read is named, never judged clean."""
    usable = [c for c in found.configs if not c.problems]
    if not usable:
        problems = "; ".join(f"{p.file or c.where}{f':{p.line}' if p.line else ''}: {p.message}"
                             for c in found.configs for p in c.problems[:3])
        raise NotAssessed(f"no log agent configuration could be read ({problems})")
    return usable


def _unread(found: Pipelines) -> list[str]:
    return [f"{p.file or c.where}{f':{p.line}' if p.line else ''}: {p.message}" for c, p in found.problems()]


def config_violation(config: AgentConfig, file: str, line: int | None, message: str,
                     severity: Severity | None = None, **evidence: Any) -> Violation:
    """A violation at a line of a configuration: inside its ConfigMap key (the key's line plus
    the line in the value, for a block scalar) or in the node file."""
    evidence = {"agent": config.agent, "config": config.where, **evidence}
    if config.resource is not None:
        data = as_dict(config.resource.obj.get("data"))
        key = file if file in data else config.key
        [key_line] = LineLocator().resolve([(config.resource.source, ("data", key))])
        text = str(data.get(key) or "")
        at = key_line + line if key_line is not None and line is not None and "\n" in text else key_line
        return Violation(config.resource, ("data", key), message, severity=severity, evidence=evidence,
                         source=Source(config.resource.source.file, at), line=at)
    where = file or config.display or config.where
    return Violation(None, (), message, severity=severity, evidence=evidence, source=Source(where, line), line=line)


def _transport_text(t: Transport) -> str:
    name = f" {t.block.name!r}" if t.block.name else ""
    return f"{t.config.agent} output {t.block.type or '?'}{name} to {t.destination}"


# ---------------------------------------------------------------------------------------------
# Examples (rewritten from the agents' documentation)

_FB_PLAIN = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: fluent-bit, namespace: logging}
data:
  fluent-bit.conf: |
    [SERVICE]
        Flush         1
        Log_Level     info
    @INCLUDE input-kubernetes.conf
    @INCLUDE output-elasticsearch.conf
  input-kubernetes.conf: |
    [INPUT]
        Name              tail
        Tag               kube.*
        Path              /var/log/containers/*.log
        Mem_Buf_Limit     5MB
  output-elasticsearch.conf: |
    [OUTPUT]
        Name            es
        Match           *
        Host            logs.example.com
        Port            9200
"""
_FB_TLS = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: fluent-bit, namespace: logging}
data:
  fluent-bit.conf: |
    [SERVICE]
        Flush         1
        storage.path  /var/fluent-bit/state/flb-storage/
    [INPUT]
        Name              tail
        Tag               kube.*
        Path              /var/log/containers/*.log
        storage.type      filesystem
    [INPUT]
        Name              systemd
        Tag               host.*
        Systemd_Filter    _SYSTEMD_UNIT=kubelet.service
        storage.type      filesystem
    [OUTPUT]
        Name            es
        Match           *
        Host            logs.example.com
        Port            9200
        tls             On
        tls.verify      On
        Retry_Limit     False
"""
_FB_NOVERIFY = _FB_TLS.replace("tls.verify      On", "tls.verify      Off")
_FLUENTD_PLAIN = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: fluentd, namespace: logging}
data:
  fluent.conf: |
    <source>
      @type tail
      path /var/log/containers/*.log
      tag kubernetes.*
      <parse>
        @type json
      </parse>
    </source>
    <match **>
      @type forward
      <server>
        host aggregator.example.com
        port 24224
      </server>
    </match>
"""
_FLUENTD_TLS = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: fluentd, namespace: logging}
data:
  fluent.conf: |
    <source>
      @type systemd
      path /var/log/journal
      matches [{ "_SYSTEMD_UNIT": "kubelet.service" }]
      tag kubelet
    </source>
    <match **>
      @type forward
      transport tls
      tls_cert_path /etc/fluentd/ca.pem
      tls_verify_hostname true
      <server>
        host aggregator.example.com
        port 24224
      </server>
      <buffer>
        @type file
        path /var/log/fluentd/buffer
        retry_forever true
      </buffer>
    </match>
"""
_VECTOR_PLAIN = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: vector, namespace: observability}
data:
  vector.toml: |
    [sources.k8s]
    type = "kubernetes_logs"

    [sinks.out]
    type = "vector"
    inputs = ["k8s"]
    address = "vector-aggregator.example.com:6000"
"""
_VECTOR_TLS = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: vector, namespace: observability}
data:
  vector.toml: |
    data_dir = "/var/lib/vector"

    [sources.journal]
    type = "journald"

    [sources.k8s]
    type = "kubernetes_logs"

    [sinks.out]
    type = "vector"
    inputs = ["k8s", "journal"]
    address = "vector-aggregator.example.com:6000"
    tls.enabled = true
    tls.ca_file = "/etc/vector/ca.pem"

    [sinks.out.buffer]
    type = "disk"
    max_size = 268435488
"""


@control(
    id="KH-LOG-031",
    title="Log output without TLS or without certificate verification",
    section=Section.LOGGING,
    guidance=("NSA-LOG-7",),
    severity=Severity.HIGH,
    needs=NEEDS,
    what="A Fluent Bit, Fluentd, Vector, Promtail, rsyslog or journal-upload output sends logs over the network "
    "without TLS (Fluent Bit tls off — its default; Fluentd transport tcp or scheme http; Vector http:// "
    "endpoints or tls.enabled unset; Promtail http:// URLs; rsyslog without a gtls/ossl stream driver), or with "
    "TLS but without verifying the server's certificate (tls.verify off, tls_insecure_mode, "
    "verify_certificate = false, insecure_skip_verify, auth mode anon). Outputs to the node itself are not "
    "judged; an in-cluster aggregator without TLS is medium.",
    why="Logs carry tokens, user names and request details; in plaintext, or to an unverified server, anyone on "
    "the path reads or forges them, and the off-cluster copy the guidance asks for cannot be trusted.",
    fix="Enable TLS with verification: Fluent Bit `tls On` and `tls.verify On` (with tls.ca_file); Fluentd "
    "`transport tls` / `scheme https` with `tls_verify_hostname true`; Vector https endpoints or "
    "`tls.enabled = true` with `verify_certificate = true`; Promtail https URLs without insecure_skip_verify.",
    examples=(
        Example(True, _FB_PLAIN, "Fluent Bit es output with the default tls off"),
        Example(True, _FB_NOVERIFY, "tls On but tls.verify Off"),
        Example(True, _FLUENTD_PLAIN, "Fluentd forward over plain TCP"),
        Example(True, _VECTOR_PLAIN, "Vector sink without tls.enabled"),
        Example(False, _FB_TLS), Example(False, _FLUENTD_TLS), Example(False, _VECTOR_TLS),
    ),
)
def log_output_tls(ctx: Context) -> Iterator[Violation]:
    found = _configs(ctx)
    unread = _unread(found)
    for config in _usable(found):
        for t in transports(config):
            evidence: dict[str, Any] = {"destination": t.destination, "scope": t.scope, "settings": t.evidence}
            if unread:
                evidence["unread"] = unread
            if t.tls is None:
                continue  # the scheme comes from a variable: nothing to say either way
            if not t.tls:
                severity = Severity.MEDIUM if t.scope == "cluster" else None
                where = " (in-cluster aggregator)" if t.scope == "cluster" else ""
                yield config_violation(config, t.block.file, t.line, f"{_transport_text(t)}{where} is not encrypted "
                                       f"({t.evidence})", severity, **evidence)
            elif t.verify is False:
                yield config_violation(config, t.block.file, t.line, f"{_transport_text(t)} uses TLS without "
                                       f"verifying the server certificate ({t.evidence})", **evidence)


@control(
    id="KH-LOG-032",
    title="Log pipeline buffers only in memory or drops data after one retry",
    section=Section.LOGGING,
    guidance=("NSA-LOG-16",),
    severity=Severity.MEDIUM,
    needs=NEEDS,
    what="A pipeline with a network output keeps its buffer only in memory (Fluent Bit without storage.type "
    "filesystem and storage.path; a Fluentd <match> without <buffer> @type file; a Vector sink without "
    "buffer.type = \"disk\"), or gives up early (Fluent Bit Retry_Limit unset — one retry — or 1/no_retries; "
    "Fluentd retry_max_times 0 or 1; Vector when_full = drop_newest on a memory buffer). Promtail and rsyslog "
    "buffering are not modelled.",
    why="When the log store is down or the agent restarts, memory buffers are lost: the guidance asks for "
    "local buffering and replay after outages, with overwriting the oldest data only as a last resort.",
    fix="Fluent Bit: [SERVICE] storage.path plus storage.type filesystem on inputs and Retry_Limit False (or a "
    "high number) with storage.total_limit_size on outputs; Fluentd: <buffer> @type file with a path and "
    "retry_forever true; Vector: [sinks.X.buffer] type = \"disk\" with max_size.",
    examples=(Example(True, _FB_PLAIN), Example(True, _FLUENTD_PLAIN), Example(True, _VECTOR_PLAIN),
              Example(False, _FB_TLS), Example(False, _FLUENTD_TLS), Example(False, _VECTOR_TLS)),
)
def log_buffering(ctx: Context) -> Iterator[Violation]:
    for config in _usable(_configs(ctx)):
        for b in buffering(config):
            located = b.block or b.at
            file = located.file if located is not None else ""
            if not b.persistent:
                yield config_violation(config, file, b.line, f"{config.agent} keeps undelivered logs only in memory "
                                       f"({b.evidence})", buffering=b.evidence)
            if b.retries:
                yield config_violation(config, file, b.retries_line, f"{config.agent} output "
                                       f"{b.block.type if b.block else ''} drops logs after few retries ({b.retries})",
                                       Severity.LOW, retries=b.retries)


@control(
    id="KH-LOG-033",
    title="Kubelet and system logs are not collected",
    section=Section.LOGGING,
    guidance=("NSA-LOG-11", "NSA-LOG-10"),
    severity=Severity.MEDIUM,
    needs=NEEDS,
    what="No log agent configuration of the input collects the node's own logs: no systemd/journald input "
    "(Fluent Bit systemd, Fluentd systemd, Vector journald, Promtail journal), no tail of /var/log/syslog, "
    "/var/log/messages or kubelet logs, no rsyslog or systemd-journal-upload forwarding.",
    why="The kubelet and the container runtime log to journald or syslog on the node: without forwarding, "
    "node-level evidence stays on the node an intruder controls.",
    fix="Add a systemd input (Fluent Bit: [INPUT] Name systemd, Systemd_Filter _SYSTEMD_UNIT=kubelet.service; "
    "Vector: type = \"journald\"; Promtail: a journal scrape config), mounting /var/log/journal read-only.",
    examples=(Example(True, _FB_PLAIN), Example(True, _VECTOR_PLAIN),
              Example(False, _FB_TLS), Example(False, _FLUENTD_TLS), Example(False, _VECTOR_TLS)),
)
def node_logs_collected(ctx: Context) -> Iterator[Violation]:
    configs = _usable(_configs(ctx))
    if any(node_log_inputs(c) for c in configs):
        return
    for config in configs:
        if config.agent in ("rsyslog", "systemd-journal-upload"):
            continue
        inputs = config.of_kind("input")
        kinds = ", ".join(sorted({b.type or "?" for b in inputs})) or "none"
        first = inputs[0] if inputs else (config.blocks[0] if config.blocks else None)
        yield config_violation(config, first.file if first else "", first.line if first else None,
                               f"{config.agent} configuration collects no kubelet, journald or syslog logs "
                               f"(inputs: {kinds})", inputs=kinds)


# ---------------------------------------------------------------------------------------------
# Agent DaemonSets


def is_log_agent(pod: PodSpecView) -> str | None:
    for c in pod.containers(("containers",)):
        image = str(c.obj.get("image") or "").split("@", 1)[0]
        repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
        name = repo.rsplit("/", 1)[-1].lower()
        match = AGENT_IMAGE_RE.search(name)
        if not match:
            continue
        vendors = _AGENT_REPOS_NEED_VENDOR.get(match.group(1))
        if vendors and not any(v in repo.lower() for v in vendors):
            continue
        return repo
    return None


_NODE = """\
apiVersion: v1
kind: Node
metadata: {name: gpu-1, labels: {kubernetes.io/os: linux}}
spec:
  taints:
  - {key: nvidia.com/gpu, value: present, effect: NoSchedule}
"""
_AGENT_DS = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: fluent-bit, namespace: logging}
spec:
  selector: {matchLabels: {app: fluent-bit}}
  template:
    metadata: {labels: {app: fluent-bit}}
    spec:
      containers:
      - name: fluent-bit
        image: cr.fluentbit.io/fluent/fluent-bit:3.1.9
"""


@control(
    id="KH-LOG-030",
    title="No node-level log agent on every node",
    section=Section.LOGGING,
    guidance=("NSA-LOG-9",),
    severity=Severity.MEDIUM,
    kinds=(),
    needs="DaemonSets (and Nodes for taints, from a snapshot, live scan or the input); a whole cluster to "
    "judge absence",
    what="No DaemonSet runs a log agent (Fluent Bit, Fluentd, Vector, Promtail, Grafana Alloy/Agent, Filebeat, "
    "Elastic Agent, OpenTelemetry Collector, Datadog ...), or with Nodes in the input, a node whose NoSchedule/"
    "NoExecute taints the agent does not tolerate or that its nodeSelector/affinity leaves out; or a live agent "
    "with fewer ready pods than nodes it should run on.",
    why="A node without the agent keeps its container and kubelet logs to itself: an incident there leaves no "
    "trace off the node. Tainted node pools (GPU, control plane, dedicated) are the usual gap.",
    fix="Run the agent as a DaemonSet with tolerations for every taint of the cluster (`tolerations: "
    "[{operator: Exists}]` covers all) and no nodeSelector that leaves nodes out.",
    examples=(
        Example(True, _NODE + "---\n" + _AGENT_DS, "the agent does not tolerate the GPU taint"),
        Example(False, _NODE + "---\n" + _AGENT_DS + "      tolerations:\n      - operator: Exists\n"),
    ),
)
def node_log_agent(ctx: Context) -> Iterator[Violation]:
    agents = [(pod, repo) for pod in ctx.pod_specs() if pod.resource.kind == "DaemonSet"
              for repo in [is_log_agent(pod)] if repo]
    nodes = ctx.inventory.of_kind("Node")
    if not agents:
        if not ctx.whole_cluster:
            raise NotAssessed("no log agent DaemonSet in the input; its absence is judged only for a whole cluster "
                              "(--as-cluster, a snapshot or --cluster)")
        if not nodes:
            yield Violation(None, (), "no DaemonSet runs a log agent in the cluster")
        for node in nodes:
            yield Violation(node, ("metadata", "name"), f"node '{node.name}' runs no log agent (no agent DaemonSet "
                            "in the cluster)")
        return
    for pod, _ in agents:
        status = as_dict(pod.resource.obj.get("status"))
        desired, ready = status.get("desiredNumberScheduled"), status.get("numberReady")
        if isinstance(desired, int) and isinstance(ready, int) and ready < desired:
            yield Violation(pod.resource, ("status", "numberReady"), f"log agent DaemonSet '{pod.resource.name}' "
                            f"has {ready} ready pods of {desired}", ready, has_value=True)
    for node in nodes:
        reasons = []
        for pod, _ in agents:
            if not selects_node(pod.spec, node.obj):
                reasons.append(f"{pod.resource.name}: nodeSelector/affinity leaves it out")
                continue
            missing = untolerated(pod.spec, node.obj, daemonset=True)
            if not missing:
                break
            taints = ", ".join(f"{t.get('key')}{'=' + str(t['value']) if t.get('value') else ''}:{t.get('effect')}"
                               for _, t in missing)
            reasons.append(f"{pod.resource.name} does not tolerate {taints}")
        else:
            index = untolerated(agents[0][0].spec, node.obj, daemonset=True)
            path = ("spec", "taints", index[0][0]) if index else ("metadata", "labels")
            yield Violation(node, path, f"no log agent runs on node '{node.name}' ({'; '.join(reasons)})",
                            evidence={"agents": [p.resource.name for p, _ in agents]})
