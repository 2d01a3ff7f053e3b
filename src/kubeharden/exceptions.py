"""Accepted risks: inline annotations and an exceptions file. Excepted findings stay in the
report, marked as such; expired exceptions stop applying and are reported."""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from yaml.nodes import MappingNode

from kubeharden.loader import InputProblem, decode_input
from kubeharden.model import Finding, InputError, Resource
from kubeharden.safeio import UnsafePathError, read_regular
from kubeharden.yamlsafe import Limits, YamlInputError, compose_documents, iter_yaml_documents

INLINE_ANNOTATION = "kubeharden.io/ignore"


class ExceptionsFileError(Exception):
    """A problem with the exceptions file; str() is `FILE:LINE: reason` (FILE: reason without a line)."""

    def __init__(self, message: str, line: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.path = path

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.path and self.line else self.path
        return f"{where}: {self.message}" if where else self.message


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


def _parse_date(value: Any, line: int | None) -> dt.date | None:
    # the reader keeps timestamps as their text, as Kubernetes does
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.date() if isinstance(value, dt.datetime) else value
    text = str(value)
    try:
        return dt.date.fromisoformat(text) if len(text) <= 10 else dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise ExceptionsFileError(f"expires must be a date (YYYY-MM-DD), got {text[:40]!r}", line) from None


TOP_LEVEL_KEYS = ("exceptions",)
# `user` selects audit events by their user (kubeharden audit reads it next to the rule)
ENTRY_KEYS = ("control", "resource", "path", "reason", "owner", "expires", "user")
RESOURCE_KEYS = ("kind", "namespace", "name")


def _check_keys(mapping: MappingNode, known: tuple[str, ...], what: str, misplaced: tuple[str, ...] = ()) -> None:
    """Every key of a mapping must be a known one: an unknown key is an error at its line, with the key
    probably meant."""
    for key, _ in mapping.value:
        name = str(key.value)
        if name in known:
            continue
        line = key.start_mark.line + 1
        if name in misplaced:
            raise ExceptionsFileError(f"'{name}' belongs under 'resource:' (resource: {{{name}: ...}})", line)
        meant = difflib.get_close_matches(name.lower(), [*known, *misplaced], n=1, cutoff=0.6)
        hint = ""
        if meant:
            hint = f" (did you mean '{meant[0]}'" + (" under 'resource:'" if meant[0] in misplaced else "") + "?)"
        raise ExceptionsFileError(f"unknown key '{name[:60]}' in {what}{hint}; known keys: {', '.join(known)}", line)


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
    try:
        return _load_exceptions_file(path)
    except ExceptionsFileError as exc:
        exc.path = path
        raise


def _load_exceptions_file(path: str) -> list[ExceptionRule]:
    limits = Limits()
    # only a regular file (a FIFO or /dev/zero would hang), within the limit, in any encoding
    # the manifests may have
    try:
        raw, _ = decode_input(read_regular(path, limits.max_file_bytes))
    except UnsafePathError as exc:
        raise ExceptionsFileError(f"cannot read exceptions file: {exc.message}") from None
    except OSError as exc:
        raise ExceptionsFileError(f"cannot read exceptions file: {exc.strerror or exc}") from None
    except InputProblem as problem:
        raise ExceptionsFileError(problem.message, problem.line) from None
    # the same guarded reader as manifests: alias bombs, absurd nesting, duplicate keys and
    # values their tag does not fit are refused (with a line, never the value)
    problems: list[YamlInputError] = []
    documents = list(iter_yaml_documents(raw, limits, problems))
    problems += [w for doc in documents for w in doc.warnings]
    if problems:
        first = min(problems, key=lambda p: p.line or 0)
        raise ExceptionsFileError(f"invalid YAML: {first.message}", first.line)
    if len(documents) > 1:
        raise ExceptionsFileError("expected one YAML document", documents[1].start_line)
    data = documents[0].data if documents else None
    node = next(iter(compose_documents(raw)), None)  # positions only, for the line of each entry
    if isinstance(data, dict) and isinstance(node, MappingNode):
        _check_keys(node, TOP_LEVEL_KEYS, "the exceptions file")
    entries = data.get("exceptions") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ExceptionsFileError("expected a list under 'exceptions:'")
    lines: list[int] = []
    entry_nodes: list[Any] = []
    if node is not None:
        seq = node
        if isinstance(data, dict):
            for key, value in node.value:
                if key.value == "exceptions":
                    seq = value
        entry_nodes = list(getattr(seq, "value", []))
        lines = [item.start_mark.line + 1 for item in entry_nodes]
    rules = []
    for i, entry in enumerate(entries):
        line = lines[i] if i < len(lines) else None
        where = f"{path}:{line}" if line else f"{path} entry {i + 1}"
        entry_of = "" if line else f"entry {i + 1}: "
        if i < len(entry_nodes) and isinstance(entry_nodes[i], MappingNode):
            # a misspelt key (nmespace:) would otherwise widen the exception to every namespace
            _check_keys(entry_nodes[i], ENTRY_KEYS, "an exception", misplaced=RESOURCE_KEYS)
            for key, value in entry_nodes[i].value:
                if key.value == "resource" and isinstance(value, MappingNode):
                    _check_keys(value, RESOURCE_KEYS, "'resource'")
        if not isinstance(entry, dict) or not entry.get("control"):
            raise ExceptionsFileError(f"{entry_of}each exception needs a 'control'", line)
        if not entry.get("reason"):
            raise ExceptionsFileError(f"{entry_of}each exception needs a 'reason'", line)
        selector = entry.get("resource") or {}
        if not isinstance(selector, dict):
            raise ExceptionsFileError(f"{entry_of}'resource' must be a mapping (kind, namespace, name)", line)
        rules.append(
            ExceptionRule(
                control=str(entry["control"]).upper(),
                kind=str(selector.get("kind", "*")),
                namespace=str(selector.get("namespace", "*")),
                name=str(selector.get("name", "*")),
                path=str(entry.get("path", "*")),
                reason=str(entry["reason"]),
                owner=str(entry.get("owner") or ""),
                expires=_parse_date(entry.get("expires"), line),
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
