"""kube-bench results (``kube-bench --json``) read and mapped to the guidance (NSA-UPG-5).

Two shapes exist: newer kube-bench writes ``{"Controls": [...], "Totals": {...}}``, older ones a
list of controls (one per target). Each control has ``tests`` (sections) whose ``results`` carry
``test_number``, ``test_desc``, ``status`` (PASS, FAIL, WARN, INFO), ``scored``, ``remediation``.

CIS numbers move between benchmark versions, so items are mapped by what they check (the flag or
file their description names, with the control's node_type), to the kubeharden control that
checks the same thing and through it to the NSA ids.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from kubeharden.catalog import get_control

MAX_REPORT_BYTES = 64 * 1024 * 1024
STATUSES = ("PASS", "FAIL", "WARN", "INFO")

# (pattern over the description, node types it applies to (empty: all), kubeharden controls, extra NSA ids)
_MAP: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (r"--anonymous-auth", ("master", "controlplane"), ("KH-CP-001",), ()),
    (r"--anonymous-auth|anonymous", ("node",), ("KH-NODE-001",), ()),
    (r"--authorization-mode", ("master", "controlplane"), ("KH-CP-002",), ()),
    (r"--authorization-mode", ("node",), ("KH-NODE-002",), ()),
    (r"--client-ca-file", ("node",), ("KH-NODE-003",), ()),
    (r"--read-only-port", ("node",), ("KH-NODE-004",), ()),
    (r"--protect-kernel-defaults", ("node",), ("KH-NODE-005",), ()),
    (r"--make-iptables-util-chains", ("node",), ("KH-NODE-006",), ()),
    (r"--rotate-certificates|RotateKubeletServerCertificate", ("node",), ("KH-NODE-007",), ()),
    (r"RotateKubeletServerCertificate", ("master", "controlplane"), ("KH-CP-018",), ()),
    (r"--streaming-connection-idle-timeout", ("node",), ("KH-NODE-011",), ()),
    (r"--event-qps|eventRecordQPS", ("node",), ("KH-NODE-012",), ()),
    (r"--tls-cipher-suites|strong Cryptographic Ciphers", ("node",), ("KH-NODE-008",), ()),
    (r"--tls-cipher-suites|strong Cryptographic Ciphers", ("master", "controlplane"), ("KH-CP-006",), ()),
    (r"--token-auth-file|--basic-auth-file", (), ("KH-CP-003",), ()),
    (r"--kubelet-certificate-authority|--kubelet-client-certificate", (), ("KH-CP-007",), ()),
    (r"--profiling", (), ("KH-CP-009",), ()),
    (r"--audit-log-path|--audit-policy-file", (), ("KH-LOG-001",), ()),
    (r"--audit-log-max(age|backup|size)", (), ("KH-LOG-002",), ()),
    (r"audit policy is created|audit policy covers", (), ("KH-LOG-004",), ()),
    (r"--encryption-provider-config", (), ("KH-SEC-001",), ()),
    (r"encryption providers are appropriately", (), ("KH-SEC-003",), ()),
    (r"--etcd-certfile|--etcd-cafile", (), ("KH-CP-011",), ()),
    (r"--peer-", ("etcd",), ("KH-CP-013",), ()),
    (r"--cert-file|--client-cert-auth|--auto-tls", ("etcd",), ("KH-CP-012",), ()),
    (r"unique Certificate Authority is used for etcd", ("etcd",), ("KH-CP-014",), ()),
    (r"--tls-cert-file", ("master", "controlplane"), ("KH-CP-005",), ()),
    (r"NodeRestriction|AlwaysAdmit|admission control plugin", (), ("KH-CP-008",), ()),
    (r"--service-account-(lookup|key-file|private-key-file)", (), ("KH-CP-010",), ()),
    (r"--bind-address", (), ("KH-CP-016",), ()),
    (r"--use-service-account-credentials", (), ("KH-CP-017",), ()),
    (r"etcd data directory", (), ("KH-CP-033",), ()),
    (r"(admin|super-admin|scheduler|controller-manager)\.conf|kubeconfig file", (), ("KH-CP-030",), ()),
    (r"PKI|certificate (file|authorities file)|\.key|\.crt", (), ("KH-CP-031",), ()),
    (r"pod specification file", (), ("KH-CP-032",), ()),
    (r"kubelet (service|configuration|config).*(permissions|ownership)|kubelet\.conf", (), ("KH-NODE-013",), ()),
    (r"cluster-admin role", (), ("KH-RBAC-001",), ()),
    (r"access to secrets", (), ("KH-RBAC-003",), ()),
    (r"wildcard", (), ("KH-RBAC-007",), ()),
    (r"access to create pods", (), ("KH-RBAC-005",), ()),
    (r"Bind, Impersonate and Escalate|escalate", (), ("KH-RBAC-006",), ()),
    (r"default service accounts are not actively used", (), ("KH-RBAC-008",), ()),
    (r"Service Account Tokens are only mounted", (), ("KH-POD-023",), ()),
    (r"privileged containers", (), ("KH-POD-005",), ()),
    (r"hostPID|hostIPC|host process ID|host IPC", (), ("KH-POD-006",), ()),
    (r"hostNetwork|host network", (), ("KH-POD-007",), ()),
    (r"allowPrivilegeEscalation", (), ("KH-POD-004",), ()),
    (r"root containers", (), ("KH-POD-002",), ()),
    (r"NET_RAW|added capabilities|capabilities assigned", (), ("KH-POD-011",), ()),
    (r"HostPath", (), ("KH-POD-009",), ()),
    (r"HostPorts", (), ("KH-POD-008",), ()),
    (r"seccomp", (), ("KH-POD-013",), ()),
    (r"default namespace should not be used", (), ("KH-NET-002",), ()),
    (r"NetworkPolicies", (), (), ("NSA-NET-5", "NSA-NET-6")),
    (r"CNI in use supports", (), (), ("NSA-NET-4",)),
    (r"Secrets as files over Secrets as environment|external secret storage", (), (), ("NSA-SEC-1",)),
    (r"Image Provenance|ImagePolicyWebhook", (), (), ("NSA-POD-18",)),
    (r"administrative boundaries between resources using namespaces", (), (), ("NSA-NET-1",)),
    (r"minimize the admission", (), (), ("NSA-POD-20",)),
)
_COMPILED = [(re.compile(p, re.I), types, controls, extra) for p, types, controls, extra in _MAP]


class ReportError(ValueError):
    pass


@dataclass
class CisResult:
    number: str
    description: str
    status: str
    node_type: str
    scored: bool
    benchmark: str
    controls: list[str] = field(default_factory=list)  # kubeharden controls that check the same
    guidance: list[str] = field(default_factory=list)  # NSA ids


def map_item(description: str, node_type: str) -> tuple[list[str], list[str]]:
    controls: list[str] = []
    guidance: list[str] = []
    for pattern, types, ids, extra in _COMPILED:
        if types and node_type not in types:
            continue
        if pattern.search(description):
            controls += [i for i in ids if i not in controls]
            guidance += [g for g in extra if g not in guidance]
    for cid in controls:
        ctrl = get_control(cid)
        if ctrl is not None:
            guidance += [g for g in ctrl.guidance if g not in guidance]
    return controls, guidance


def parse_report(text: str) -> list[CisResult]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ReportError("JSON nested too deeply") from None
    if isinstance(data, dict) and "Controls" in data:
        controls = data["Controls"]
    elif isinstance(data, list):
        controls = data
    elif isinstance(data, dict) and "tests" in data:
        controls = [data]
    else:
        raise ReportError("not a kube-bench JSON report (no Controls)")
    if not isinstance(controls, list):
        raise ReportError("Controls is not a list")
    out: list[CisResult] = []
    for control in controls:
        if not isinstance(control, dict):
            continue
        node_type = str(control.get("node_type") or "").lower()
        benchmark = str(control.get("version") or "")
        sections = control.get("tests")
        for section in sections if isinstance(sections, list) else []:
            items = section.get("results") if isinstance(section, dict) else None
            for item in items if isinstance(items, list) else []:
                if not isinstance(item, dict):
                    continue
                description = str(item.get("test_desc") or "")
                status = str(item.get("status") or "").upper()
                if status not in STATUSES:
                    raise ReportError(f"test {item.get('test_number')}: unknown status {status!r}")
                mapped, guidance = map_item(description, node_type)
                out.append(CisResult(str(item.get("test_number") or ""), description, status, node_type,
                                     bool(item.get("scored")), benchmark, mapped, guidance))
    return out
