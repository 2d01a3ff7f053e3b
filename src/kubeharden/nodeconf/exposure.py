"""Active probe of what a host's control-plane and kubelet ports answer from where kubeharden runs
(NSA-CP-1, CP-2, CP-3, CP-5, NODE-2, NODE-4, NODE-6).

Talks only to the host it is given, on the fixed list of well-known ports, one connection per
request with a timeout; no credentials are sent, so every answer is what an anonymous peer on
this network gets. Server certificates are not verified: the question is who answers, not who they
are, and nothing secret is sent.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass

from kubeharden.model import Severity
from kubeharden.nodeconf.probe import INSECURE, SECURE, UNKNOWN, ProbeCheck


@dataclass(frozen=True)
class Port:
    number: int
    component: str
    tls: bool
    path: str            # what an anonymous client asks for
    open_severity: Severity | None  # reachable at all from here is a finding (None: expected)
    anonymous_severity: Severity    # an anonymous 200 on `path`
    guidance: str


PORTS = (
    Port(6443, "kube-apiserver", True, "/api", None, Severity.CRITICAL, "NSA-CP-1"),
    Port(8080, "kube-apiserver insecure port", False, "/api", Severity.CRITICAL, Severity.CRITICAL, "NSA-CP-3"),
    Port(2379, "etcd client", True, "/version", Severity.HIGH, Severity.CRITICAL, "NSA-CP-5"),
    Port(2380, "etcd peer", True, "/members", Severity.HIGH, Severity.CRITICAL, "NSA-CP-5"),
    Port(10250, "kubelet", True, "/pods", None, Severity.CRITICAL, "NSA-NODE-4"),
    Port(10255, "kubelet read-only port", False, "/pods", Severity.HIGH, Severity.HIGH, "NSA-NODE-6"),
    Port(10257, "kube-controller-manager", True, "/metrics", Severity.MEDIUM, Severity.MEDIUM, "NSA-CP-2"),
    Port(10259, "kube-scheduler", True, "/metrics", Severity.MEDIUM, Severity.MEDIUM, "NSA-CP-2"),
)


def _connectable(host: str, port: int, timeout: float) -> str | None:
    """None when a TCP connection is accepted, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return "no answer (filtered)"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _anonymous_get(host: str, port: Port, timeout: float) -> int | None:
    """The HTTP status an anonymous GET of port.path gets, None when it does not speak HTTP(S)."""
    conn: http.client.HTTPConnection
    if port.tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port.number, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port.number, timeout=timeout)
    try:
        conn.request("GET", port.path, headers={"Accept": "application/json"})
        response = conn.getresponse()
        response.read(4096)  # never more: the body is not shown
        return response.status
    except (OSError, http.client.HTTPException, ssl.SSLError):
        return None
    finally:
        conn.close()


def probe_port(host: str, port: Port, timeout: float) -> ProbeCheck:
    check_id = f"EXPOSURE-{port.number}"
    title = f"{port.component} ({port.number}/tcp, {port.guidance})"
    refused = _connectable(host, port.number, timeout)
    if refused is not None:
        return ProbeCheck(check_id, title, SECURE, f"not reachable from here: {refused}", port.anonymous_severity)
    status = _anonymous_get(host, port, timeout)
    if status == 200:
        return ProbeCheck(check_id, title, INSECURE,
                          f"an anonymous GET {port.path} is answered 200 OK: anyone on this network can use it",
                          port.anonymous_severity)
    answer = "does not speak HTTP" + ("S" if port.tls else "") if status is None else f"answers {status} to anonymous"
    if port.open_severity is not None:
        return ProbeCheck(check_id, title, INSECURE,
                          f"reachable from here ({answer}); it should be reachable only from its expected peers",
                          port.open_severity)
    if status in (401, 403):
        return ProbeCheck(check_id, title, SECURE,
                          f"reachable, anonymous requests refused ({status}); check that this network is meant "
                          "to reach it", port.anonymous_severity)
    return ProbeCheck(check_id, title, UNKNOWN, f"reachable, {answer}: not judged", port.anonymous_severity)


def probe_exposure(host: str, timeout: float = 2.0, ports: tuple[Port, ...] = PORTS) -> list[ProbeCheck]:
    return [probe_port(host, port, timeout) for port in ports]
