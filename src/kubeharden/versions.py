"""Kubernetes versions known to kubeharden: releases, support window, CVEs, removed APIs.

Everything comes from data files shipped with kubeharden (src/kubeharden/data/*.json): no
network at scan time. Each file records its date and source; ``data_note()`` says so in
reports.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

Version = tuple[int, int, int]

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$")
_FULL_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_minor(text: str) -> tuple[int, int]:
    """'1.30', 'v1.30.2' or 'v1.30.2-gke.1' -> (1, 30)."""
    match = _VERSION_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a Kubernetes version: {text!r} (expected e.g. 1.30 or v1.30.2)")
    return int(match.group(1)), int(match.group(2))


def parse_version(text: str | None) -> Version | None:
    """'v1.30.2-eks-1234' -> (1, 30, 2); a missing patch is 0; not a version -> None."""
    if not text:
        return None
    match = _FULL_VERSION_RE.match(str(text).strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def format_version(version: Version) -> str:
    return f"{version[0]}.{version[1]}.{version[2]}"


@cache
def _data(name: str) -> dict[str, Any]:
    text = resources.files("kubeharden").joinpath("data", name).read_text(encoding="utf-8")
    value: dict[str, Any] = json.loads(text)
    return value


# ---------------------------------------------------------------------------------------------
# Releases and the support window


@dataclass(frozen=True)
class Release:
    minor: tuple[int, int]
    release_date: dt.date
    end_of_life: dt.date
    latest_patch: Version
    latest_patch_verified: bool


@cache
def releases() -> tuple[Release, ...]:
    """Known minor releases, newest first."""
    out = []
    for entry in _data("kubernetes-releases.json")["releases"]:
        latest = parse_version(entry["latest_patch"])
        assert latest is not None
        out.append(Release(
            parse_minor(entry["minor"]), dt.date.fromisoformat(entry["release_date"]),
            dt.date.fromisoformat(entry["end_of_life"]), latest, bool(entry.get("latest_patch_verified")),
        ))
    return tuple(sorted(out, key=lambda r: r.minor, reverse=True))


def release_of(minor: tuple[int, int]) -> Release | None:
    return next((r for r in releases() if r.minor == minor), None)


def supported_minors() -> tuple[tuple[int, int], ...]:
    """The three newest minors: the Kubernetes project maintains release branches for them."""
    return tuple(r.minor for r in releases()[:3])


NEWEST_SUPPORTED: tuple[int, int] = (1, 37)
assert releases()[0].minor == NEWEST_SUPPORTED, "update NEWEST_SUPPORTED with kubernetes-releases.json"


def releases_data_date() -> str:
    return str(_data("kubernetes-releases.json")["data_date"])


def data_note() -> str:
    releases_doc = _data("kubernetes-releases.json")
    cves_doc = _data("cves.json")
    supported = ", ".join(f"{a}.{b}" for a, b in sorted(supported_minors()))
    return (
        f"version data: Kubernetes release data as of {releases_doc['data_date']} (Kubernetes project "
        f"release schedule; supported minors {supported}); CVE table as of {cves_doc['data_date']}"
    )


# ---------------------------------------------------------------------------------------------
# CVEs and component end of life


def _in_range(version: Version, rng: dict[str, str]) -> bool:
    introduced = parse_version(rng.get("introduced")) or (0, 0, 0)
    if version < introduced:
        return False
    fixed = parse_version(rng.get("fixed"))
    if fixed is not None and version >= fixed:
        return False
    last = parse_version(rng.get("last_affected"))
    return not (last is not None and version > last)


def in_ranges(version: Version, ranges: list[dict[str, str]]) -> bool:
    return any(_in_range(version, rng) for rng in ranges)


@dataclass(frozen=True)
class Cve:
    id: str
    component: str
    severity: str
    title: str
    affected: tuple[dict[str, str], ...]
    condition: str  # "always", "subpath", "snippets-allowed"
    fix: str
    references: tuple[str, ...]
    extra: dict[str, Any]

    def affects(self, version: Version) -> bool:
        return in_ranges(version, list(self.affected))


@cache
def cves() -> tuple[Cve, ...]:
    out = []
    for entry in _data("cves.json")["cves"]:
        known = {"id", "component", "severity", "title", "affected", "condition", "fix", "references"}
        out.append(Cve(
            entry["id"], entry["component"], entry["severity"], entry["title"], tuple(entry["affected"]),
            entry.get("condition", "always"), entry["fix"], tuple(entry.get("references") or ()),
            {k: v for k, v in entry.items() if k not in known},
        ))
    return tuple(out)


def cve(cve_id: str) -> Cve:
    return next(c for c in cves() if c.id == cve_id)


def components() -> dict[str, dict[str, Any]]:
    value: dict[str, dict[str, Any]] = _data("cves.json")["components"]
    return value


def end_of_life_notices() -> list[dict[str, Any]]:
    value: list[dict[str, Any]] = _data("cves.json")["end_of_life"]
    return value


# ---------------------------------------------------------------------------------------------
# Removed APIs


@dataclass(frozen=True)
class RemovedApi:
    api_version: str
    kind: str
    deprecated_in: tuple[int, int] | None
    removed_in: tuple[int, int]
    replacement: str


@cache
def removed_apis() -> dict[tuple[str, str], RemovedApi]:
    out = {}
    for entry in _data("deprecated-apis.json")["apis"]:
        deprecated = entry.get("deprecated_in")
        out[(entry["apiVersion"], entry["kind"])] = RemovedApi(
            entry["apiVersion"], entry["kind"], parse_minor(deprecated) if deprecated else None,
            parse_minor(entry["removed_in"]), entry["replacement"],
        )
    return out


# ---------------------------------------------------------------------------------------------
# Container images of known components


@dataclass(frozen=True)
class ImageRef:
    repository: str  # without registry host and tag, e.g. "ingress-nginx/controller"
    tag: str | None
    digest: str | None


def parse_image(image: str) -> ImageRef:
    rest, _, digest = image.partition("@")
    name, tag = rest, None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        name, tag = rest[:colon], rest[colon + 1:]
    parts = name.split("/")
    # the first part is a registry host when it looks like one (has a dot or port, or is localhost)
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    return ImageRef("/".join(parts), tag or None, digest or None)


@cache
def _component_patterns() -> tuple[tuple[str, str], ...]:
    out = []
    for name, spec in components().items():
        for pattern in spec["images"]:
            out.append((pattern, name))
    return tuple(out)


def component_of_image(image: str) -> tuple[str, Version | None] | None:
    """(component, version from the tag or None) for images of known components."""
    ref = parse_image(image)
    for pattern, name in _component_patterns():
        if ref.repository == pattern or ref.repository.endswith("/" + pattern):
            return name, parse_version(ref.tag) if ref.tag else None
    return None
