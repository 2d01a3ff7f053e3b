"""Small judgements shared by the node controls (TLS settings, addresses, file modes)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from urllib.parse import urlsplit

from kubeharden.model import Violation
from kubeharden.nodeconf.evidence import ComponentInstance, NodeEvidence
from kubeharden.nodeconf.redact import redact_string
from kubeharden.nodeconf.snapshot import FileRecord

# Go TLS version names used by Kubernetes components (and etcd's "TLS1.x").
TLS_VERSIONS = {
    "VersionTLS10": (1, 0), "VersionTLS11": (1, 1), "VersionTLS12": (1, 2), "VersionTLS13": (1, 3),
    "TLS1.0": (1, 0), "TLS1.1": (1, 1), "TLS1.2": (1, 2), "TLS1.3": (1, 3),
}
# Go's crypto/tls servers default to TLS 1.2 from Go 1.22, which builds Kubernetes 1.30+.
GO_SERVER_TLS12_DEFAULT_FROM = (1, 30)


def weak_cipher(name: str) -> str | None:
    """Why a cipher suite is weak, or None: no forward secrecy (RSA key exchange), CBC mode,
    RC4 or 3DES."""
    upper = name.upper()
    if "RC4" in upper:
        return "RC4 is broken"
    if "3DES" in upper or "DES_CBC" in upper:
        return "3DES has 64-bit blocks (Sweet32)"
    if upper.startswith("TLS_RSA_"):
        return "RSA key exchange has no forward secrecy"
    if "_CBC_" in upper:
        return "CBC mode is prone to padding-oracle attacks"
    return None


def tls_version_problem(value: str | None) -> str | None:
    if value is None:
        return None
    version = TLS_VERSIONS.get(value.strip())
    if version is None:
        return f"unknown TLS version {value!r}"
    if version < (1, 2):
        return f"{value} allows TLS below 1.2"
    return None


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    host = host.strip().strip("[]")
    if host == "":
        return True
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _url_entries(value: str | None) -> list[str]:
    return [url.strip() for url in (value or "").split(",") if url.strip()]


def _parse_url(url: str) -> tuple[str, str] | None:
    """(scheme, host) of a component URL flag entry; None when Go's url.Parse would refuse it too
    (an unclosed IPv6 bracket, a port that is not a number) or it has no scheme."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number in range
    except ValueError:
        return None
    if "://" not in url or not parts.scheme:
        return None
    return parts.scheme.lower(), parts.hostname or ""


def split_urls(value: str | None) -> list[tuple[str, str]]:
    """'https://a:1,http://b:2' -> [('https', 'a'), ('http', 'b')]; invalid entries are left out
    (see invalid_urls)."""
    return [parsed for url in _url_entries(value) if (parsed := _parse_url(url)) is not None]


def invalid_urls(value: str | None) -> list[str]:
    """The entries of a URL list flag that are not valid URLs (credentials in them redacted):
    the component refuses to start with them."""
    return [redact_string(url) for url in _url_entries(value) if _parse_url(url) is None]


def flag_bool(instance: ComponentInstance, name: str, default: bool) -> tuple[bool | None, bool]:
    """(effective value, whether it was set); None when the flag's value is not a boolean."""
    flag = instance.flag(name)
    if flag is None:
        return default, False
    return flag.as_bool(), True


def mode_text(mode: int | None) -> str:
    return f"{mode:04o}" if mode is not None else "unknown"


def excess_bits(mode: int | None, limit: int) -> int:
    """Permission bits set beyond the allowed mode (e.g. 0644 against 0600 -> 0044)."""
    return (mode or 0) & ~limit & 0o7777


def file_mode_violations(ev: NodeEvidence, record: FileRecord, limit: int, what: str,
                         owners: tuple[str, ...] = ("root",)) -> Iterator[Violation]:
    """Mode more permissive than ``limit``; owner not among ``owners`` (uid 0 is always root)."""
    extra = excess_bits(record.mode, limit)
    if extra:
        yield ev.file_violation(record, f"{what} {record.path} has mode {mode_text(record.mode)}, more "
                                f"permissive than {limit:04o}", f"chmod {limit:03o} {record.path}",
                                expected=f"{limit:04o}")
    owner = record.user or (str(record.uid) if record.uid is not None else "?")
    if record.uid != 0 and owner not in owners:
        yield ev.file_violation(record, f"{what} {record.path} is owned by {owner}, not "
                                f"{' or '.join(owners)}", f"chown {owners[-1]}:{owners[-1]} {record.path}"
                                if owners[-1] != "root" else f"chown root:root {record.path}",
                                expected_owner=owners[0])
