"""Active probe of an etcd client endpoint: does it accept plain HTTP, TLS without a client
certificate, or TLS 1.0/1.1? Talks only to the address it is given (ssl, socket, http.client)."""

from __future__ import annotations

import base64
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


# ---------------------------------------------------------------------------------------------
# Secrets at rest (NSA-SEC-6): which Secrets etcd holds without encryption or under an old key.
# Only keys under /registry/secrets/ are read, through etcd's v3 JSON gateway (POST /v3/kv/range);
# of each value only the first bytes are decoded (etcd's API sends whole values: the rest of the
# base64 text is dropped unread), and no value is ever printed.

SECRETS_PREFIX = b"/registry/secrets/"
VALUE_HEAD_BYTES = 48
RANGE_PAGE = 200
MAX_SECRETS = 200_000
MAX_RANGE_RESPONSE = 256 * 1024 * 1024
ENCRYPTED_PREFIX = b"k8s:enc:"


@dataclass
class StoredSecret:
    key: str  # /registry/secrets/<namespace>/<name>
    encrypted: bool
    provider: str | None = None  # aescbc, aesgcm, secretbox, kms (from the value's prefix)
    version: str | None = None  # v1, v2
    key_name: str | None = None  # the provider's key (or KMS provider) name


def classify_value(key: str, head: bytes) -> StoredSecret:
    """What the first bytes of a stored value say: ``k8s:enc:<provider>:<version>:<name>:`` for
    encrypted data, anything else (``k8s\\x00`` protobuf, JSON) is plaintext."""
    if not head.startswith(ENCRYPTED_PREFIX):
        return StoredSecret(key, False)
    parts = head[len(ENCRYPTED_PREFIX):].split(b":")
    provider = parts[0].decode("ascii", "replace") if parts else None
    version = parts[1].decode("ascii", "replace") if len(parts) > 1 else None
    name = parts[2].decode("ascii", "replace") if len(parts) > 3 else None  # complete only when followed by ':'
    return StoredSecret(key, True, provider, version, name)


def expected_prefix(config: dict[str, object]) -> tuple[str, str, str | None] | None:
    """(provider, version, key name) new Secret writes get under an EncryptionConfiguration: its
    first provider for secrets (None: secrets not covered, or identity first)."""
    from kubeharden.nodeconf.encryption import entry_for, providers

    found = entry_for(config, "secrets")
    if found is None:
        return None
    views = providers(config, found[0])
    if not views or views[0].name == "identity":
        return None
    first = views[0]
    if first.name == "kms":
        version = "v2" if str(first.config.get("apiVersion") or "v1") == "v2" else "v1"
        return "kms", version, str(first.config.get("name") or "") or None
    keys = [k for k in first.config.get("keys") or [] if isinstance(k, dict)]
    return first.name, "v1", str(keys[0].get("name")) if keys else None


def _head(encoded: str) -> bytes:
    chunk = encoded[: (VALUE_HEAD_BYTES // 3) * 4]
    try:
        return base64.b64decode(chunk + "=" * (-len(chunk) % 4))
    except ValueError:
        return b""


def read_secret_heads(host: str, port: int, context: ssl.SSLContext | None, timeout: float,
                      limit: int = MAX_SECRETS) -> list[StoredSecret]:
    """Every key under /registry/secrets/ with what its value's first bytes say, page by page."""
    out: list[StoredSecret] = []
    start = SECRETS_PREFIX
    end = SECRETS_PREFIX[:-1] + bytes([SECRETS_PREFIX[-1] + 1])
    while len(out) < limit:
        body = json.dumps({"key": base64.b64encode(start).decode(), "range_end": base64.b64encode(end).decode(),
                           "limit": RANGE_PAGE}).encode()
        conn = (http.client.HTTPSConnection(host, port, timeout=timeout, context=context) if context is not None
                else http.client.HTTPConnection(host, port, timeout=timeout))
        try:
            conn.request("POST", "/v3/kv/range", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read(MAX_RANGE_RESPONSE + 1)
        finally:
            conn.close()
        if response.status != 200:
            raise OSError(f"etcd answered {response.status} to a range read of /registry/secrets/")
        if len(data) > MAX_RANGE_RESPONSE:
            raise OSError(f"a range answer is larger than {MAX_RANGE_RESPONSE} bytes: not read")
        page = json.loads(data)
        kvs = page.get("kvs") or []
        for kv in kvs:
            key = base64.b64decode(kv.get("key", ""))
            out.append(classify_value(key.decode("utf-8", "replace"), _head(str(kv.get("value", "")))))
        if not page.get("more") or not kvs:
            break
        start = base64.b64decode(kvs[-1]["key"]) + b"\x00"
    return out


def check_secrets(stored: list[StoredSecret], expected: tuple[str, str, str | None] | None,
                  config_given: bool) -> list[ProbeCheck]:
    def sample(items: list[StoredSecret]) -> str:
        names = [s.key[len(SECRETS_PREFIX):] if s.key.startswith(SECRETS_PREFIX.decode()) else s.key
                 for s in items[:5]]
        return ", ".join(names) + (f" and {len(items) - 5} more" if len(items) > 5 else "")

    plain = [s for s in stored if not s.encrypted]
    checks = []
    if not stored:
        checks.append(ProbeCheck("secrets-plaintext", "Secrets stored without encryption", UNKNOWN,
                                 "no key under /registry/secrets/ (not the API server's etcd, or a prefix other "
                                 "than /registry)", Severity.HIGH))
        return checks
    checks.append(ProbeCheck(
        "secrets-plaintext", "Secrets stored without encryption", INSECURE if plain else SECURE,
        (f"{len(plain)} of {len(stored)} Secrets have no k8s:enc: prefix ({sample(plain)}); rewrite them: kubectl get "
         "secrets -A -o json | kubectl replace -f -") if plain else f"all {len(stored)} Secrets are encrypted",
        Severity.HIGH))
    if not config_given:
        checks.append(ProbeCheck("secrets-old-key", "Secrets under an old provider or key", UNKNOWN,
                                 "give --encryption-config to compare with the current first provider",
                                 Severity.MEDIUM))
        return checks
    if expected is None:
        checks.append(ProbeCheck("secrets-old-key", "Secrets under an old provider or key", UNKNOWN,
                                 "the EncryptionConfiguration does not encrypt secrets (identity first or not "
                                 "covered)", Severity.MEDIUM))
        return checks
    provider, version, key_name = expected
    old = [s for s in stored if s.encrypted and (s.provider, s.version, s.key_name) != (provider, version, key_name)]
    seen = sorted({f"{s.provider}:{s.version}:{s.key_name}" for s in old})
    checks.append(ProbeCheck(
        "secrets-old-key", "Secrets under an old provider or key", INSECURE if old else SECURE,
        (f"{len(old)} Secrets are encrypted with {', '.join(seen)}, not the current {provider}:{version}:{key_name} "
         f"({sample(old)}); rewrite them so the old key can be removed") if old else
        f"every encrypted Secret uses the current {provider}:{version}:{key_name}", Severity.MEDIUM))
    return checks


def probe_secrets(url: str, cacert: str | None = None, cert: str | None = None, key: str | None = None,
                  encryption_config: dict[str, object] | None = None, timeout: float = 10.0,
                  config_given: bool = False) -> list[ProbeCheck]:
    """The secrets-at-rest checks against an etcd client URL (https with --cert/--key, or http)."""
    host, port = parse_target(url)
    context = _tls_context(cacert, cert, key) if not url.startswith("http://") else None
    try:
        stored = read_secret_heads(host, port, context, timeout)
    except (OSError, ValueError, ssl.SSLError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        return [ProbeCheck("secrets-plaintext", "Secrets stored without encryption", UNKNOWN,
                           f"cannot read /registry/secrets/ keys: {reason}", Severity.HIGH)]
    expected = expected_prefix(encryption_config) if encryption_config is not None else None
    return check_secrets(stored, expected, config_given or encryption_config is not None)
