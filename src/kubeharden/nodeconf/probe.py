"""Active probe of an etcd client endpoint: does it accept plain HTTP, TLS without a client
certificate, or TLS 1.0/1.1? Talks only to the address it is given (ssl, socket, http.client)."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import warnings
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from kubeharden.model import Severity

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    _OLD_TLS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1_1": ssl.TLSVersion.TLSv1_1}

SECURE = "secure"
INSECURE = "insecure"
UNKNOWN = "not_assessed"


@dataclass
class ProbeCheck:
    id: str
    title: str
    status: str  # secure, insecure, not_assessed
    detail: str
    severity: Severity

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["severity"] = self.severity.label
        return out


@dataclass
class ProbeResult:
    url: str
    host: str
    port: int
    reachable: bool
    checks: list[ProbeCheck] = field(default_factory=list)
    error: str | None = None

    def insecure(self) -> list[ProbeCheck]:
        return [c for c in self.checks if c.status == INSECURE]

    def to_json(self) -> str:
        return json.dumps({
            "url": self.url, "host": self.host, "port": self.port, "reachable": self.reachable,
            "error": self.error, "checks": [c.to_dict() for c in self.checks],
        }, indent=2)


class ProbeUsageError(ValueError):
    pass


def parse_target(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url if "://" in url else f"https://{url}")
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise ProbeUsageError(f"not a URL: {url!r} ({exc})") from None
    if not parts.hostname:
        raise ProbeUsageError(f"not a URL with a host: {url!r}")
    try:
        port = parts.port or 2379
    except ValueError:
        raise ProbeUsageError(f"bad port in {url!r}") from None
    return parts.hostname, port


def _http_get(conn: http.client.HTTPConnection) -> tuple[int, bytes]:
    conn.request("GET", "/version", headers={"Host": f"{conn.host}:{conn.port}"})
    response = conn.getresponse()
    return response.status, response.read(4096)


def _looks_like_etcd(status: int, body: bytes) -> bool:
    return status == 200 and b"etcdserver" in body


def _tls_context(cacert: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cacert:
        context.load_verify_locations(cacert)
        context.check_hostname = False  # the probe targets an address; the CA pins identity
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(cert, key)
    return context


def _https_get(host: str, port: int, context: ssl.SSLContext, timeout: float) -> tuple[int, bytes, str]:
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        conn.connect()
        assert isinstance(conn.sock, ssl.SSLSocket)
        version = conn.sock.version() or "?"
        status, body = _http_get(conn)
        return status, body, version
    finally:
        conn.close()


def probe_etcd(url: str, cacert: str | None = None, cert: str | None = None, key: str | None = None,
               timeout: float = 3.0) -> ProbeResult:
    host, port = parse_target(url)
    result = ProbeResult(url, host, port, False)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            result.reachable = True
    except OSError as exc:
        result.error = f"cannot connect to {host}:{port}: {exc.strerror or exc}"
        return result
    plain = _check_plain_http(host, port, timeout)
    result.checks.append(plain)
    if plain.status == INSECURE:
        # the port speaks plain HTTP: there is no TLS to judge
        reason = "the endpoint serves plain HTTP, not TLS"
        result.checks.append(ProbeCheck("tls-no-client-cert", "TLS without a client certificate accepted",
                                        UNKNOWN, reason, Severity.CRITICAL))
        for label in ("1.0", "1.1"):
            result.checks.append(ProbeCheck(f"tls-{label}", f"TLS {label} accepted", UNKNOWN, reason,
                                            Severity.MEDIUM))
        return result
    result.checks.append(_check_no_client_cert(host, port, cacert, timeout))
    for label, version in (("1.0", _OLD_TLS["TLSv1"]), ("1.1", _OLD_TLS["TLSv1_1"])):
        result.checks.append(_check_old_tls(host, port, label, version, cert, key, timeout))
    if cert:
        result.checks.append(_check_client_cert(host, port, cacert, cert, key, timeout))
    return result


def _check_plain_http(host: str, port: int, timeout: float) -> ProbeCheck:
    title = "Plain HTTP accepted"
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        status, body = _http_get(conn)
    except (OSError, http.client.HTTPException) as exc:
        return ProbeCheck("plain-http", title, SECURE, f"plain HTTP request failed ({type(exc).__name__})",
                          Severity.CRITICAL)
    finally:
        conn.close()
    if _looks_like_etcd(status, body):
        return ProbeCheck("plain-http", title, INSECURE, "GET /version over plain HTTP answered 200 "
                          "(no TLS, no authentication)", Severity.CRITICAL)
    return ProbeCheck("plain-http", title, SECURE, f"plain HTTP request answered {status} (TLS required)",
                      Severity.CRITICAL)


def _check_no_client_cert(host: str, port: int, cacert: str | None, timeout: float) -> ProbeCheck:
    title = "TLS without a client certificate accepted"
    try:
        context = _tls_context(cacert, None, None)
    except (OSError, ssl.SSLError) as exc:
        return ProbeCheck("tls-no-client-cert", title, UNKNOWN, f"cannot load --cacert: {exc}", Severity.CRITICAL)
    try:
        status, body, version = _https_get(host, port, context, timeout)
    except ssl.SSLCertVerificationError as exc:
        return ProbeCheck("tls-no-client-cert", title, UNKNOWN, f"server certificate not trusted by --cacert: "
                          f"{exc.verify_message}", Severity.CRITICAL)
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        return ProbeCheck("tls-no-client-cert", title, SECURE, f"refused without a client certificate ({reason})",
                          Severity.CRITICAL)
    if _looks_like_etcd(status, body):
        return ProbeCheck("tls-no-client-cert", title, INSECURE, f"GET /version over {version} without a client "
                          "certificate answered 200 (client-cert-auth is off)", Severity.CRITICAL)
    return ProbeCheck("tls-no-client-cert", title, SECURE, f"answered {status} without a client certificate",
                      Severity.CRITICAL)


def _check_old_tls(host: str, port: int, label: str, version: ssl.TLSVersion, cert: str | None,
                   key: str | None, timeout: float) -> ProbeCheck:
    check_id, title = f"tls-{label}", f"TLS {label} accepted"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the local OpenSSL offer old protocols at all
        with warnings.catch_warnings():  # offering old TLS is the point of this check
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = version
            context.maximum_version = version
        if cert:
            context.load_cert_chain(cert, key)
    except (ValueError, ssl.SSLError, OSError) as exc:
        return ProbeCheck(check_id, title, UNKNOWN, f"this host's OpenSSL cannot offer TLS {label}: {exc}",
                          Severity.MEDIUM)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            negotiated = tls.version()
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc)
        if "NO_PROTOCOLS_AVAILABLE" in reason or "NO_SUPPORTED_VERSIONS" in reason.upper():
            return ProbeCheck(check_id, title, UNKNOWN, f"this host's OpenSSL cannot offer TLS {label} ({reason})",
                              Severity.MEDIUM)
        return ProbeCheck(check_id, title, SECURE, f"handshake refused ({reason})", Severity.MEDIUM)
    except OSError as exc:
        return ProbeCheck(check_id, title, SECURE, f"handshake refused ({type(exc).__name__})", Severity.MEDIUM)
    return ProbeCheck(check_id, title, INSECURE, f"handshake completed with {negotiated}", Severity.MEDIUM)


def _check_client_cert(host: str, port: int, cacert: str | None, cert: str, key: str | None,
                       timeout: float) -> ProbeCheck:
    title = "Mutual TLS with the given client certificate"
    try:
        status, body, version = _https_get(host, port, _tls_context(cacert, cert, key), timeout)
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        return ProbeCheck("mtls", title, UNKNOWN, f"request with the client certificate failed: {exc}",
                          Severity.LOW)
    state = SECURE if _looks_like_etcd(status, body) else UNKNOWN
    return ProbeCheck("mtls", title, state, f"{version}, GET /version answered {status}", Severity.LOW)
