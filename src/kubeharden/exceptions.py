"""Accepted risks: inline annotations and an exceptions file. Excepted findings stay in the
report, marked as such; expired exceptions stop applying and are reported."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from kubeharden.model import Finding, InputError, Resource
from kubeharden.yamlsafe import Limits, YamlInputError, compose_documents, iter_yaml_documents

INLINE_ANNOTATION = "kubeharden.io/ignore"


class ExceptionsFileError(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class ExceptionRule:
    control: str  # control id or a wildcard pattern (KH-POD-*)
    kind: str = "*"
    namespace: str = "*"
    name: str = "*"
    reason: str = ""
    owner: str = ""
    expires: dt.date | None = None
    origin: str = ""  # file:line
    uses: int = 0
    path: str = "*"  # node file findings (no resource): the node path, e.g. /etc/kubernetes/super-admin.conf

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today

    def matches(self, finding: Finding) -> bool:
        if not fnmatchcase(finding.control_id, self.control):
            return False
        res = finding.resource or {}
        return (
            fnmatchcase(str(finding.evidence.get("path") or ""), self.path)
            and fnmatchcase(str(res.get("kind") or ""), self.kind)
            and fnmatchcase(str(res.get("namespace") or ""), self.namespace)
            and fnmatchcase(str(res.get("name") or ""), self.name)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "control": self.control,
            "resource": {"kind": self.kind, "namespace": self.namespace, "name": self.name},
            "path": self.path,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat() if self.expires else None,
            "origin": self.origin,
        }


def _parse_date(value: Any, where: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ExceptionsFileError(f"{where}: expires must be a date (YYYY-MM-DD), got {value!r}") from None


def load_exceptions_file(path: str) -> list[ExceptionRule]:
    """Format::

        exceptions:
          - control: KH-POD-005          # id or wildcard
            resource: {kind: DaemonSet, namespace: kube-system, name: "calico-*"}
            reason: CNI needs privileged mode
            owner: platform-team
            expires: 2027-03-31
          - control: KH-CP-030           # node file findings have no resource: select by path
            path: /home/*/.kube/config
            reason: ...
    """
    limits = Limits()
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise ExceptionsFileError(f"cannot read exceptions file: {exc.strerror or exc}") from None
    if len(raw) > limits.max_file_bytes:
        raise ExceptionsFileError(f"exceptions file is larger than {limits.max_file_bytes} bytes")
    # the same guarded reader as manifests: alias bombs, absurd nesting and duplicate keys are refused
    problems: list[YamlInputError] = []
    documents = list(iter_yaml_documents(raw, limits, problems))
    problems += [w for doc in documents for w in doc.warnings]
    if problems:
        raise ExceptionsFileError(f"invalid YAML: {problems[0].message}", problems[0].line)
    if len(documents) > 1:
        raise ExceptionsFileError("expected one YAML document", documents[1].start_line)
    data = documents[0].data if documents else None
    node = next(iter(compose_documents(raw)), None)  # positions only, for the line of each entry
    entries = data.get("exceptions") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ExceptionsFileError("expected a list under 'exceptions:'")
    lines: list[int] = []
    if node is not None:
        seq = node
        if isinstance(data, dict):
            for key, value in node.value:
                if key.value == "exceptions":
                    seq = value
        lines = [item.start_mark.line + 1 for item in getattr(seq, "value", [])]
    rules = []
    for i, entry in enumerate(entries):
        line = lines[i] if i < len(lines) else None
        where = f"{path}:{line}" if line else f"{path} entry {i + 1}"
        if not isinstance(entry, dict) or not entry.get("control"):
            raise ExceptionsFileError(f"{where}: each exception needs a 'control'", line)
        if not entry.get("reason"):
            raise ExceptionsFileError(f"{where}: each exception needs a 'reason'", line)
        selector = entry.get("resource") or {}
        if not isinstance(selector, dict):
            raise ExceptionsFileError(f"{where}: 'resource' must be a mapping (kind, namespace, name)", line)
        rules.append(
            ExceptionRule(
                control=str(entry["control"]).upper(),
                kind=str(selector.get("kind", "*")),
                namespace=str(selector.get("namespace", "*")),
                name=str(selector.get("name", "*")),
                path=str(entry.get("path", "*")),
                reason=str(entry["reason"]),
                owner=str(entry.get("owner") or ""),
                expires=_parse_date(entry.get("expires"), where),
                origin=where,
            )
        )
    return rules


def parse_inline(resource: Resource, known_ids: set[str]) -> tuple[dict[str, str], list[InputError]]:
    """``kubeharden.io/ignore: "KH-POD-005,KH-POD-006: reason"`` -> {id: reason}."""
    raw = resource.annotations.get(INLINE_ANNOTATION)
    if raw is None:
        return {}, []
    errors: list[InputError] = []
    ids_part, sep, reason = str(raw).partition(":")
    reason = reason.strip()
    out: dict[str, str] = {}
    if not sep or not reason:
        errors.append(
            InputError(resource.source.file, f"{resource.display()}: {INLINE_ANNOTATION} must be "
                       f"'<ID>[,<ID>...]: reason'", resource.source.line)
        )
        return {}, errors
    for cid in (p.strip().upper() for p in ids_part.split(",")):
        if cid not in known_ids:
            errors.append(
                InputError(resource.source.file, f"{resource.display()}: {INLINE_ANNOTATION} names "
                           f"unknown control {cid!r}", resource.source.line)
            )
            continue
        out[cid] = reason
    return out, errors


@dataclass
class ExceptionsOutcome:
    expired: list[ExceptionRule] = field(default_factory=list)
    unused: list[ExceptionRule] = field(default_factory=list)
