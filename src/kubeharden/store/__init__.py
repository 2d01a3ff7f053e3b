"""The results store: scan runs kept over time, per label set (`--label cluster=prod-eu`).

One interface (Store), two backends: SQLite (the default; a file path or `sqlite:///path`) and
PostgreSQL (`postgresql://...`, psycopg 3) for many clusters writing to one place. The schema is
created or migrated on first use. Each run keeps its labels, scores, counts, control states and
findings (fingerprints, no values); `new` and `fixed` are counted against the previous run of the
same label set when the run is written. Writers from several processes at once lose nothing
(SQLite: one writer at a time with a busy timeout; PostgreSQL: one transaction per run).
"""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from kubeharden.fingerprint import fingerprint
from kubeharden.model import Severity

SCHEMES_SQLITE = ("sqlite",)
SCHEMES_POSTGRES = ("postgresql", "postgres")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.\-/]{0,61}[A-Za-z0-9])?$")
MAX_LABEL_VALUE = 253


class StoreError(Exception):
    """The store cannot be opened, read or written (the message never holds a password)."""


@dataclass(frozen=True, slots=True)
class FindingRow:
    fingerprint: str
    control_id: str
    severity: str
    section: str
    kind: str | None
    namespace: str | None
    name: str | None
    path: str
    file: str | None
    line: int | None
    message: str
    excepted: bool


@dataclass(frozen=True, slots=True)
class ControlRow:
    control_id: str
    status: str
    findings: int
    reason: str | None


@dataclass
class RunRecord:
    """One scan as the store keeps it."""

    labels: dict[str, str]
    started_at: str  # ISO 8601, UTC
    tool_version: str
    profile: str
    kubernetes_version: str
    resources: int
    duration: float
    score: float | None
    sections: dict[str, dict[str, Any]]
    by_severity: dict[str, int]
    excepted: int
    errors: int
    findings: list[FindingRow] = field(default_factory=list)
    controls: list[ControlRow] = field(default_factory=list)


@dataclass
class RunInfo:
    """A stored run without its findings (what `history` reads)."""

    id: int
    labels: dict[str, str]
    started_at: str
    tool_version: str
    profile: str
    kubernetes_version: str
    resources: int
    duration: float
    score: float | None
    sections: dict[str, dict[str, Any]]
    by_severity: dict[str, int]
    findings: int
    excepted: int
    errors: int
    new: int | None  # None: the first run of its label set
    fixed: int | None
    previous: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "labels": self.labels, "started_at": self.started_at,
            "tool_version": self.tool_version, "profile": self.profile,
            "kubernetes_version": self.kubernetes_version, "resources": self.resources,
            "duration": self.duration, "score": self.score, "sections": self.sections,
            "by_severity": self.by_severity, "findings": self.findings, "excepted": self.excepted,
            "errors": self.errors, "new": self.new, "fixed": self.fixed, "previous_run": self.previous,
        }


def label_key(labels: Mapping[str, str]) -> str:
    """The canonical text of a label set: runs with the same one form one series."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    """`key=value` items (Kubernetes label syntax for keys); a bad one is a ValueError naming it."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not _LABEL_KEY.match(key):
            raise ValueError(f"label {item!r}: expected KEY=VALUE with a key of letters, digits, '-', '_', '.', '/'")
        # printable only: a control or bidi character would rewrite the terminal or the HTML trend
        if len(value) > MAX_LABEL_VALUE or any(not ch.isprintable() or ch == "," for ch in value):
            raise ValueError(f"label {key!r}: the value must be at most {MAX_LABEL_VALUE} printable characters "
                             "without ','")
        if key in labels and labels[key] != value:
            raise ValueError(f"label {key!r} is given twice")
        labels[key] = value
    return labels


def _secrets(url: str) -> list[str]:
    """The password of a URL, in its userinfo or as a `password=` query parameter (libpq reads
    both), as written and percent-decoded; found even in a URL that urlsplit refuses."""
    rest = url.partition("://")[2]
    found: list[str] = []
    authority = rest.split("?", 1)[0]
    if "@" in authority:
        userinfo = authority.rpartition("@")[0]
        if ":" in userinfo:
            found.append(userinfo.partition(":")[2])
    for match in _PASSWORD_PARAM.finditer(url):
        found.append(match.group(1))
    out = {s for s in found if s} | {unquote(s) for s in found if s}
    return sorted((s for s in out if s), key=len, reverse=True)


_PASSWORD_PARAM = re.compile(r"[?&]password=([^&#]*)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL without its password (userinfo or query parameter), for messages."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        return "<store URL>"
    netloc = parts.netloc
    if parts.password is not None:
        host = netloc.rpartition("@")[2]
        user = f"{parts.username}:***@" if parts.username else ":***@"
        netloc = user + host
    query = _PASSWORD_PARAM.sub(lambda m: m.group(0)[:1] + "password=***", "?" + parts.query)[1:]
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(message: str, url: str) -> str:
    """A driver's message with the URL's password taken out, should the driver quote it."""
    for secret in _secrets(url):
        message = message.replace(secret, "***")
    return message


def store_kind(url: str) -> str:
    """'sqlite' or 'postgresql' (a ValueError for another scheme); a bare path is SQLite."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if not scheme or scheme in SCHEMES_SQLITE:
        if not url or url == "sqlite://":
            raise ValueError("the SQLite store needs a file: a path or sqlite:///path/to/results.db")
        return "sqlite"
    if scheme in SCHEMES_POSTGRES:
        return "postgresql"
    raise ValueError(f"unknown store {redact_url(url)!r}: give a file path, sqlite:///PATH or postgresql://...")


def sqlite_path(url: str) -> str:
    """`sqlite:///var/lib/kh.db` -> /var/lib/kh.db; `sqlite://relative.db` and a bare path as given."""
    if url.lower().startswith("sqlite://"):
        return url[len("sqlite://"):]
    return url


class Store(ABC):
    """A results store; use as a context manager (the connection is closed on exit)."""

    url: str

    @abstractmethod
    def record(self, run: RunRecord, keep_runs: int | None = None) -> RunInfo:
        """Write one run in one transaction (new/fixed against the previous run of its label set),
        then delete the oldest runs of the label set beyond keep_runs."""

    @abstractmethod
    def runs(self, labels: Mapping[str, str] | None = None, limit: int | None = None) -> list[RunInfo]:
        """Runs whose labels include `labels`, oldest first (the newest `limit` of each label set)."""

    @abstractmethod
    def findings(self, run_id: int) -> list[FindingRow]:
        """The findings of one run."""

    @abstractmethod
    def controls(self, run_id: int) -> list[ControlRow]:
        """The control states of one run."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def open_store(url: str) -> Store:
    """Open (creating or migrating the schema) the store at url."""
    try:
        kind = store_kind(url)
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    if kind == "sqlite":
        from kubeharden.store.sqlite import SQLiteStore

        return SQLiteStore(url)
    from kubeharden.store.postgres import PostgresStore

    return PostgresStore(url)


def run_record(result: Any, labels: Mapping[str, str], now: dt.datetime | None = None) -> RunRecord:
    """A ScanResult as a RunRecord (the duration is the engine's; started_at is when it ended)."""
    ended = now or dt.datetime.now(dt.UTC)
    major, minor = result.kubernetes_version
    findings = [
        FindingRow(
            fingerprint=fingerprint(f), control_id=f.control_id, severity=f.severity.label,
            section=f.section.value, kind=(f.resource or {}).get("kind"),
            namespace=(f.resource or {}).get("namespace"), name=(f.resource or {}).get("name"),
            path=f.path, file=f.file, line=f.line, message=f.message, excepted=f.excepted,
        )
        for f in result.findings
    ]
    controls = [ControlRow(r.control.id, r.status.value, sum(1 for f in r.findings if not f.excepted), r.reason)
                for r in result.controls]
    active = sum(1 for f in findings if not f.excepted)
    return RunRecord(
        labels=dict(labels), started_at=ended.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        tool_version=result.tool["version"], profile=result.profile,
        kubernetes_version=f"{major}.{minor}", resources=result.resources, duration=float(result.duration),
        score=result.score(), sections=result.section_scores(), by_severity=result.by_severity(),
        excepted=len(findings) - active, errors=len(result.errors), findings=findings, controls=controls,
    )


def new_and_fixed(previous: Iterable[str], current: Iterable[str]) -> tuple[int, int]:
    """Counts of fingerprints new in current and gone from previous (as multisets)."""
    before, after = Counter(previous), Counter(current)
    return sum((after - before).values()), sum((before - after).values())


SEVERITY_ORDER = [s.label for s in sorted(Severity, reverse=True)]
