"""Kubelet hardening (guidance §1.6-1.7, §2.4, NSA-NODE-4..7, NSA-NET-13, NSA-ENC-2, NSA-POD-13).

The effective value of each setting is computed as the kubelet does: a command-line flag wins
over the --config-dir drop-ins, which win over the --config file, which wins over the default
(kubeharden.nodeconf.evidence.KubeletInstance.setting); the defaults differ between a kubelet
with a config file (v1beta1 defaults, e.g. anonymous auth off) and one without (flag defaults,
e.g. anonymous auth on). The config file is the one the real command line's --config names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kubeharden.catalog import Context, Example, control
from kubeharden.inventory import as_dict
from kubeharden.model import Section, Severity, Violation
from kubeharden.nodeconf.checks import (
    GO_SERVER_TLS12_DEFAULT_FROM,
    file_mode_violations,
    tls_version_problem,
    weak_cipher,
)
from kubeharden.nodeconf.evidence import NEEDS, KubeletInstance, component_version, evidence_of

_HEAD = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
HARDENED_KUBELET = _HEAD + """\
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: /etc/kubernetes/pki/ca.crt}
authorization: {mode: Webhook}
readOnlyPort: 0
protectKernelDefaults: true
makeIPTablesUtilChains: true
rotateCertificates: true
serverTLSBootstrap: true
tlsMinVersion: VersionTLS12
seccompDefault: true
podPidsLimit: 4096
systemReserved: {pid: "1000"}
kubeReserved: {pid: "1000"}
streamingConnectionIdleTimeout: 5m
eventRecordQPS: 50
"""


def _kubelet(yaml_text: str) -> str:
    return _HEAD + yaml_text


def _kubelets(ctx: Context) -> list[KubeletInstance]:
    return evidence_of(ctx).require_kubelets()


@control(
    id="KH-NODE-001",
    title="Kubelet allows anonymous requests",
    section=Section.NODE,
    guidance=("NSA-NODE-4",),
    severity=Severity.CRITICAL,
    needs=NEEDS["kubelet"],
    what="The kubelet's authentication.anonymous.enabled (--anonymous-auth) is true — the flag default "
    "when no config file is used.",
    why="With anonymous requests on port 10250, whoever reaches a node can list pods and, unless "
    "authorization is Webhook, exec into any container on it.",
    fix="Set authentication.anonymous.enabled: false in the kubelet config (and drop --anonymous-auth=true).",
    examples=(Example(True, _kubelet("authentication: {anonymous: {enabled: true}}\n")),
              Example(False, HARDENED_KUBELET)),
)
def kubelet_anonymous(ctx: Context) -> Iterator[Violation]:
    for kubelet in _kubelets(ctx):
        setting = kubelet.setting("authentication.anonymous.enabled")
        if setting.value is not False:
            yield kubelet.violation(setting, f"kubelet accepts anonymous requests ({setting.describe()})")


@control(
    id="KH-NODE-002",
    title="Kubelet does not authorize requests through the API server",
    section=Section.NODE,
    guidance=("NSA-NODE-5",),
    severity=Severity.CRITICAL,
    needs=NEEDS["kubelet"],
    what="The kubelet's authorization.mode (--authorization-mode) is not Webhook (the flag default is "
    "AlwaysAllow), or webhook token authentication is off.",
    why="AlwaysAllow lets every request that reaches port 10250 run commands in containers; Webhook "
    "checks each request against RBAC (nodes/proxy, nodes/log ...).",
    fix="Set authorization.mode: Webhook and authentication.webhook.enabled: true in the kubelet config.",
    examples=(Example(True, _kubelet("authorization: {mode: AlwaysAllow}\n")), Example(False, HARDENED_KUBELET)),
)
def kubelet_authorization(ctx: Context) -> Iterator[Violation]:
    for kubelet in _kubelets(ctx):
        mode = kubelet.setting("authorization.mode")
        if mode.value != "Webhook":
            yield kubelet.violation(mode, f"kubelet authorization mode is {mode.value!r}, not Webhook "
                                    f"({mode.describe()})")
        webhook = kubelet.setting("authentication.webhook.enabled")
        if webhook.value is not True:
            violation = kubelet.violation(webhook, "kubelet does not authenticate bearer tokens through the API "
                                          f"server ({webhook.describe()})")
            violation.severity = Severity.MEDIUM
            yield violation


@control(
    id="KH-NODE-003",
    title="Kubelet has no client CA for certificate authentication",
    section=Section.NODE,
    guidance=("NSA-NODE-5",),
    severity=Severity.HIGH,
    needs=NEEDS["kubelet"],
    what="The kubelet's authentication.x509.clientCAFile (--client-ca-file) is empty.",
    why="Without a client CA the kubelet cannot authenticate the API server's client certificate, so "
    "the API server's calls (exec, logs) need other, weaker credentials.",
    fix="Set authentication.x509.clientCAFile to the cluster CA (kubeadm: /etc/kubernetes/pki/ca.crt).",
    examples=(Example(True, _kubelet("authentication: {x509: {}}\n")), Example(False, HARDENED_KUBELET)),
)
def kubelet_client_ca(ctx: Context) -> Iterator[Violation]:
    for kubelet in _kubelets(ctx):
        setting = kubelet.setting("authentication.x509.clientCAFile")
        if not setting.value:
            yield kubelet.violation(setting, "kubelet has no client CA file", has_value=False)


@control(
    id="KH-NODE-004",
    title="Kubelet read-only port open",
    section=Section.NODE,
    guidance=("NSA-NODE-6",),
    severity=Severity.HIGH,
    needs=NEEDS["kubelet"],
    what="The kubelet's readOnlyPort (--read-only-port) is not 0 — the flag default is 10255.",
    why="The read-only port serves pod specs, environment and node information with no authentication.",
    fix="Set readOnlyPort: 0 in the kubelet config.",
    examples=(Example(True, _kubelet("readOnlyPort: 10255\n")), Example(False, HARDENED_KUBELET)),
)
def kubelet_read_only_port(ctx: Context) -> Iterator[Violation]:
    for kubelet in _kubelets(ctx):
        setting = kubelet.setting("readOnlyPort")
        if str(setting.value).strip() != "0":
            yield kubelet.violation(setting, f"kubelet read-only port is open ({setting.describe()})")


@control(
    id="KH-NODE-005",
    title="Kubelet does not protect kernel defaults",
    section=Section.NODE,
    guidance=("NSA-CLOUD-2",),
    severity=Severity.LOW,
    needs=NEEDS["kubelet"],
    what="The kubelet's protectKernelDefaults (--protect-kernel-defaults) is not true.",
    why="Then the kubelet silently changes kernel tunables to what it wants instead of failing when the "
    "node's hardened sysctl values differ.",
    fix="Set protectKernelDefaults: true (and set the sysctls the kubelet needs in the node image).",
    examples=(Example(True, _kubelet("protectKernelDefaults: false\n")), Example(False, HARDENED_KUBELET)),
)
def kubelet_protect_kernel_defaults(ctx: Context) -> Iterator[Violation]:
    for kubelet in _kubelets(ctx):
        setting = kubelet.setting("protectKernelDefaults")
        if setting.value is not True:
            yield kubelet.violation(setting, f"kubelet may change kernel defaults ({setting.describe()})")


@control(
    id="KH-NODE-006",
    title="Kubelet does not manage its iptables chains",
    section=Section.NODE,
    guidance=("NSA-NODE-1",),
    severity=Severity.LOW,
    needs=NEEDS["kubelet"],
    what="The kubelet's makeIPTablesUtilChains (--make-iptables-util-chains) is false.",
    why="The kubelet then does not keep its iptables utility chains in sync with pod networking needs, so "
    "manual rules can drift from what the cluster expects.",
    fix="Set makeIPTablesUtilChains: true (the default).",
    examples=(Example(True, _kubelet("makeIPTablesUtilChains: false\n")), Example(False, HARDENED_KUBELET)),
)
def kubelet_iptables_chains(ctx: Context) -> Iterator[Violation]:
    for kubelet in _kubelets(ctx):
        setting = kubelet.setting("makeIPTablesUtilChains")
        if setting.value is not True:
            yield kubelet.violation(setting, f"kubelet does not manage iptables util chains ({setting.describe()})")


@control(
    id="KH-NODE-007",
    title="Kubelet certificates are not rotated",
    section=Section.NODE,
    guidance=("NSA-ENC-2", "NSA-NODE-7"),
    severity=Severity.MEDIUM,
    needs=NEEDS["kubelet"],
    what="The kubelet's rotateCertificates is not true, or serverTLSBootstrap is not true (the serving "
    "certificate is then self-signed, or a static file when tlsCertFile is set), or the "
    "RotateKubeletServerCertificate feature gate is off.",
    why="Long-lived or self-signed kubelet certificates cannot be verified by the API server and stay "
    "valid after a node is compromised.",
    fix="Set rotateCertificates: true and serverTLSBootstrap: true, and approve kubelet serving CSRs.",
    examples=(Example(True, _kubelet("rotateCertificates: false\nserverTLSBootstrap: false\n")),
              Example(False, HARDENED_KUBELET)),
)
def kubelet_cert_rotation(ctx: Context) -> Iterator[Violation]:
    for kubelet in _kubelets(ctx):
        client = kubelet.setting("rotateCertificates")
        if client.value is not True:
            yield kubelet.violation(client, f"kubelet client certificate is not rotated ({client.describe()})")
        server = kubelet.setting("serverTLSBootstrap")
        gates = as_dict(kubelet.setting("featureGates").value)
        if gates.get("RotateKubeletServerCertificate") is False:
            gate = kubelet.setting("featureGates")
            yield kubelet.violation(gate, "RotateKubeletServerCertificate feature gate is disabled")
        elif server.value is not True:
            cert = kubelet.setting("tlsCertFile")
            if cert.value:
                violation = kubelet.violation(server, "kubelet serving certificate is a static file "
                                              f"({cert.describe()}) that is never rotated")
                violation.severity = Severity.LOW
                yield violation
            else:
                yield kubelet.violation(server, "kubelet serves a self-signed certificate (serverTLSBootstrap "
                                        f"is not true and no tlsCertFile: {server.describe()})")


@control(
    id="KH-NODE-008",
    title="Kubelet allows TLS below 1.2 or weak cipher suites",
    section=Section.NODE,
    guidance=("NSA-CP-4", "NSA-ENC-1"),
    severity=Severity.MEDIUM,
    needs=NEEDS["kubelet"],
    what="The kubelet's tlsMinVersion (--tls-min-version) is VersionTLS10/11, tlsCipherSuites lists weak "
    "suites, or the minimum is unset on a version whose Go runtime still accepts TLS 1.0.",
    why="The guidance asks for TLS 1.2 or 1.3 on all cluster traffic, node traffic included.",
    fix="Set tlsMinVersion: VersionTLS12 and list only ECDHE AEAD suites in tlsCipherSuites (or leave it unset).",
    examples=(Example(True, _kubelet("tlsMinVersion: VersionTLS11\n")), Example(False, HARDENED_KUBELET)),
)
def kubelet_tls(ctx: Context) -> Iterator[Violation]:
    for kubelet in _kubelets(ctx):
        minimum = kubelet.setting("tlsMinVersion")
        problem = tls_version_problem(str(minimum.value)) if minimum.value else None
        if problem:
            yield kubelet.violation(minimum, f"kubelet {problem}")
        elif not minimum.value:
            version, how = component_version(ctx)
            if version < GO_SERVER_TLS12_DEFAULT_FROM:
                violation = kubelet.violation(minimum, f"kubelet tlsMinVersion unset; Kubernetes {version[0]}."
                                              f"{version[1]} ({how}) still accepts TLS 1.0", has_value=False)
                violation.severity = Severity.LOW
                yield violation
        suites = kubelet.setting("tlsCipherSuites")
        names = suites.value if isinstance(suites.value, list) else []
        weak = {str(s): weak_cipher(str(s)) for s in names if weak_cipher(str(s))}
        if weak:
            yield kubelet.violation(suites, "kubelet weak cipher suites: " + "; ".join(
                f"{s} ({why})" for s, why in weak.items()), sorted(weak))


@control(
    id="KH-NODE-009",
    title="Kubelet does not apply the RuntimeDefault seccomp profile by default",
    section=Section.NODE,
    guidance=("NSA-POD-13",),
    severity=Severity.MEDIUM,
    needs=NEEDS["kubelet"],
    what="The kubelet's seccompDefault (--seccomp-default) is not true.",
    why="Pods that do not ask for a seccomp profile then run Unconfined, with every system call available.",
    fix="Set seccompDefault: true in the kubelet config (GA since Kubernetes 1.27).",
    examples=(Example(True, _kubelet("seccompDefault: false\n")), Example(False, HARDENED_KUBELET)),
)
def kubelet_seccomp_default(ctx: Context) -> Iterator[Violation]:
    for kubelet in _kubelets(ctx):
        setting = kubelet.setting("seccompDefault")
        if setting.value is not True:
            yield kubelet.violation(setting, f"pods without a seccomp profile run Unconfined ({setting.describe()})")


def _reserved_pid(value: object) -> str | None:
    return str(as_dict(value).get("pid") or "") or None


@control(
    id="KH-NODE-010",
    title="No per-pod PID limit or PID reservation for node daemons",
    section=Section.NODE,
    guidance=("NSA-NET-13",),
    severity=Severity.MEDIUM,
    needs=NEEDS["kubelet"],
    what="The kubelet's podPidsLimit (--pod-max-pids) is unset or -1, or neither systemReserved nor "
    "kubeReserved (--system-reserved/--kube-reserved) reserves pids.",
    why="A fork bomb in one pod can exhaust the node's PIDs and starve the kubelet and system daemons.",
    fix="Set podPidsLimit (e.g. 4096) and systemReserved.pid / kubeReserved.pid (e.g. \"1000\").",
    examples=(Example(True, _kubelet("podPidsLimit: -1\n")), Example(False, HARDENED_KUBELET)),
)
def kubelet_pid_limits(ctx: Context) -> Iterator[Violation]:
    for kubelet in _kubelets(ctx):
        limit = kubelet.setting("podPidsLimit")
        try:
            value = int(limit.value)
        except (TypeError, ValueError):
            value = -1
        if value <= 0:
            yield kubelet.violation(limit, f"no per-pod PID limit ({limit.describe()})")
        system, kube = kubelet.setting("systemReserved"), kubelet.setting("kubeReserved")
        if not _reserved_pid(system.value) and not _reserved_pid(kube.value):
            yield kubelet.violation(system, "no PIDs reserved for system or Kubernetes daemons "
                                    "(systemReserved.pid / kubeReserved.pid unset)", has_value=False)


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """Go duration ('4h0m0s', '5m', '0') in seconds; None when unparseable."""
    text = text.strip()
    if text in ("0", ""):
        return 0.0 if text == "0" else None
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return total if pos == len(text) else None


MAX_IDLE_SECONDS = 4 * 3600


@control(
    id="KH-NODE-011",
    title="Kubelet streaming connections never time out",
    section=Section.NODE,
    guidance=("NSA-NODE-4",),
    severity=Severity.LOW,
    needs=NEEDS["kubelet"],
    what="The kubelet's effective streaming idle timeout is 0 (only the --streaming-connection-idle-timeout "
    "flag can set that: 0s in the config file means the 4h default) or longer than 4h.",
    why="Idle exec, attach and port-forward sessions then stay open indefinitely, a ready channel for "
    "whoever hijacks them.",
    fix="Set streamingConnectionIdleTimeout to 4h or less (e.g. 5m).",
    # A zero in the config file is not a bad example: v1beta1 defaulting turns 0s into 4h (only the
    # --streaming-connection-idle-timeout=0 flag really disables the timeout; see tests/node).
    examples=(Example(True, _kubelet("streamingConnectionIdleTimeout: 24h\n"), "idle sessions kept for a day"),
              Example(False, _kubelet("streamingConnectionIdleTimeout: 0s\n"),
                      "0s in the config file is defaulted to 4h by the kubelet"),
              Example(False, HARDENED_KUBELET)),
)
def kubelet_streaming_timeout(ctx: Context) -> Iterator[Violation]:
    for kubelet in _kubelets(ctx):
        setting = kubelet.setting("streamingConnectionIdleTimeout")
        seconds = parse_duration(str(setting.value))
        if seconds is None:
            yield kubelet.violation(setting, f"unparseable streamingConnectionIdleTimeout {setting.value!r}")
        elif seconds == 0:
            yield kubelet.violation(setting, f"streaming connections never time out ({setting.describe()})")
        elif seconds > MAX_IDLE_SECONDS:
            yield kubelet.violation(setting, f"streaming idle timeout longer than 4h ({setting.describe()})")


MIN_EVENT_QPS = 5


@control(
    id="KH-NODE-012",
    title="Kubelet throttles event recording so low that events are lost",
    section=Section.LOGGING,
    guidance=("NSA-LOG-10",),
    severity=Severity.LOW,
    needs=NEEDS["kubelet"],
    what=f"The kubelet's eventRecordQPS (--event-qps) is negative or between 1 and {MIN_EVENT_QPS - 1} "
    "(0 means unlimited; the default is 50).",
    why="Events over the limit are dropped, so the node's part of an incident (evictions, failed mounts, "
    "image pulls) is missing from the record.",
    fix=f"Set eventRecordQPS to 0 (unlimited) or at least {MIN_EVENT_QPS} (default 50).",
    examples=(Example(True, _kubelet("eventRecordQPS: 1\n")), Example(False, HARDENED_KUBELET)),
)
def kubelet_event_qps(ctx: Context) -> Iterator[Violation]:
    for kubelet in _kubelets(ctx):
        setting = kubelet.setting("eventRecordQPS")
        try:
            value = int(setting.value)
        except (TypeError, ValueError):
            yield kubelet.violation(setting, f"unparseable eventRecordQPS {setting.value!r}")
            continue
        if value < 0 or 0 < value < MIN_EVENT_QPS:
            yield kubelet.violation(setting, f"kubelet records at most {value} events per second; bursts are "
                                    f"dropped ({setting.describe()})")


@control(
    id="KH-NODE-013",
    title="Kubelet config or service files with loose permissions",
    section=Section.NODE,
    guidance=("NSA-CP-10", "NSA-CP-11"),
    severity=Severity.MEDIUM,
    needs=NEEDS["files"],
    what="The kubelet config file (the one --config names) or a --config-dir drop-in is more permissive than "
    "0600, or the kubelet.service unit, its drop-ins or environment files are group/world writable, or any of "
    "them is not owned by root.",
    why="Whoever can edit them can turn off the kubelet's authentication and authorization at the next "
    "restart.",
    fix="chmod 600 /var/lib/kubelet/config.yaml; chmod 644 (or 600) the unit, drop-ins and env files; "
    "chown root:root.",
)
def kubelet_file_permissions(ctx: Context) -> Iterator[Violation]:
    ev = evidence_of(ctx)
    snapshot = ev.require_snapshot()
    kubelets = ev.require_kubelets()
    # the --config file and the --config-dir drop-ins
    records = [(r, 0o600, "kubelet config file") for r in snapshot.with_role("kubelet-config") if r.exists]
    for kubelet in kubelets:
        if kubelet.command is not None:
            for unit in kubelet.command.units:
                record = snapshot.file(unit)
                if record is not None and record.exists:
                    records.append((record, 0o644, "kubelet unit file"))
    records += [(r, 0o644, "kubelet environment file") for r in snapshot.with_role("kubelet-env") if r.exists]
    for record, limit, what in records:
        yield from file_mode_violations(ev, record, limit, what)
