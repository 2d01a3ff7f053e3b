"""Stable finding fingerprints: what makes a finding "the same finding" across runs.

A fingerprint is a digest of the control, the resource's identity (kind, namespace, name), the
field path, the file and the normalized value; not the line (an edit above the field moves it),
nor the message or the severity (wording and ranking change between releases). It is used for
SARIF partialFingerprints, the JSON report's `fingerprint`, baselines (`--baseline`), `kubeharden
diff` and the results store.

The value goes in only as part of the digest, never as text, and not at all where it may be a
credential: the engine has already redacted Secret/ConfigMap data and env values, and findings
of the Secrets section withhold theirs, so a fingerprint never lets a guessed secret be confirmed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

from kubeharden import jsonout
from kubeharden.loader import REDACTED
from kubeharden.model import Finding, Section

FINGERPRINT_VERSION = "kubeharden/v1"  # the SARIF partialFingerprints key
_WITHHELD = "\x01withheld"
_NO_VALUE = "\x01none"
_SECRET_PATH_PARTS = ("data", "stringData", "binaryData")


def normalized_value(value: Any, has_value: bool, path: str, section: str) -> str:
    """The value as it enters the digest: canonical JSON (sorted keys, strings stripped), or a
    marker when there is none or it must be withheld."""
    if not has_value:
        return _NO_VALUE
    if (value == REDACTED or section == Section.SECRETS.value or path.endswith(".value")
            or any(part in path.split(".") for part in _SECRET_PATH_PARTS)):
        return _WITHHELD
    if isinstance(value, str):
        value = value.strip()
    return jsonout.dumps(value, orjson.OPT_SORT_KEYS).decode()


def compute(control_id: str, resource: Mapping[str, Any] | None, path: str, file: str | None,
            value: str) -> str:
    """The fingerprint of a finding's parts (`value` from normalized_value)."""
    res = resource or {}
    file_part = (file or "").replace("\\", "/")
    key = "\x00".join(str(part if part is not None else "") for part in (
        control_id, res.get("kind"), res.get("namespace"), res.get("name"), path, file_part, value))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def fingerprint(f: Finding) -> str:
    return compute(f.control_id, f.resource, f.path, f.file,
                   normalized_value(f.value, f.has_value, f.path, f.section.value))


def fingerprint_of_report_item(item: Mapping[str, Any]) -> str:
    """The fingerprint of a finding of a JSON report (`kubeharden scan -f json`): its own field
    when it has one, else computed from its fields as for a Finding (reports written before
    fingerprints existed)."""
    given = item.get("fingerprint")
    if isinstance(given, str) and given:
        return given
    source: Mapping[str, Any] = item["source"] if isinstance(item.get("source"), Mapping) else {}
    path = str(item.get("path") or "")
    value = normalized_value(item.get("value"), "value" in item, path, str(item.get("section") or ""))
    resource = item.get("resource") if isinstance(item.get("resource"), Mapping) else None
    return compute(str(item.get("control_id") or ""), resource, path, source.get("file"), value)


T = TypeVar("T")
U = TypeVar("U")


@dataclass
class Comparison(Generic[T, U]):
    """Findings of a new run against an old one, matched by fingerprint (as multisets: two
    findings with one fingerprint need two in the old run to be both unchanged)."""

    new: list[U] = field(default_factory=list)
    fixed: list[T] = field(default_factory=list)
    unchanged: list[U] = field(default_factory=list)


def compare(old: Iterable[T], new: Iterable[U], old_key: Callable[[T], str],
            new_key: Callable[[U], str]) -> Comparison[T, U]:
    remaining: dict[str, list[T]] = {}
    for before in old:
        remaining.setdefault(old_key(before), []).append(before)
    out: Comparison[T, U] = Comparison()
    for after in new:
        matches = remaining.get(new_key(after))
        if matches:
            matches.pop()
            out.unchanged.append(after)
        else:
            out.new.append(after)
    out.fixed = [before for group in remaining.values() for before in group]
    return out
