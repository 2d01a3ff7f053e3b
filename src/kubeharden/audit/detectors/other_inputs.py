"""Rules of guidance §3.2 that audit events cannot carry (D16–D18): listed with the input they need."""

from __future__ import annotations

from kubeharden.audit.detectors import Detector, register_detector
from kubeharden.model import Severity

for _det in (
    Detector(
        id="D16", title="Resource spikes (cryptojacking)", guidance=("NSA-LOG-13", "NSA-LOG-15"),
        severity=Severity.HIGH, check=None, min_level="",
        what="Container CPU or memory far above its baseline for minutes; new pods without limits in unusual "
        "namespaces.", why="Threat table #5: cryptojacking shows as a sudden spike in resource consumption.",
        response="Find the pod, compare its image with the approved one (D14), delete it and the workload behind it.",
        input_needed="metrics (metrics-server / Prometheus container_cpu_usage_seconds_total, "
        "container_memory_working_set_bytes) and a per-pod baseline"),
    Detector(
        id="D17", title="Logging and capacity health", guidance=("NSA-LOG-16", "NSA-LOG-15"),
        severity=Severity.MEDIUM, check=None, min_level="",
        what="Low disk on a node or on the audit log volume; the external logging service offline; forwarder "
        "errors or growing buffers; API server audit backend errors.",
        why="Guidance §3.1 alerts on low disk space, logging volume running low and external logging offline: "
        "an attacker who stops logging goes unseen.",
        response="Restore the log pipeline; check what happened while it was down.",
        input_needed="metrics: node filesystem free %, apiserver_audit_error_total, forwarder output errors and "
        "buffer sizes"),
    Detector(
        id="D18", title="Unusual system calls", guidance=("NSA-LOG-12", "NSA-LOG-15"),
        severity=Severity.HIGH, check=None, min_level="",
        what="Seccomp audit records (type=SECCOMP) or runtime-security events for system calls outside the "
        "workload's baseline.", why="Threat table #3: breakout and escalation attempts show as unusual syscalls.",
        response="Isolate the pod, capture it, and move the workload to an enforcing seccomp profile.",
        input_needed="node kernel audit / seccomp logs from SCMP_ACT_LOG profiles, or runtime security events"),
):
    register_detector(_det)
