"""Core data types shared by loaders, controls, the engine and reporters."""

from __future__ import annotations

import enum
import os
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PathItem = str | int
Path = tuple[PathItem, ...]


class Severity(enum.IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (expected low, medium, high or critical)") from None


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_ASSESSED = "not_assessed"


class Section(enum.StrEnum):
    """Guidance sections, used to group controls and to score a report."""

    POD = "pod-security"
    NETWORK = "network"
    AUTH = "authentication-authorization"
    CONTROL_PLANE = "control-plane"
    NODE = "node"
    SECRETS = "encryption-secrets"
    LOGGING = "logging"
    UPGRADES = "upgrades"

    @property
    def label(self) -> str:
        return _SECTION_TITLES[self]


_SECTION_TITLES = {
    Section.POD: "Pod security",
    Section.NETWORK: "Network separation and resource policies",
    Section.AUTH: "Authentication and authorization",
    Section.CONTROL_PLANE: "Control plane and etcd",
    Section.NODE: "Worker nodes and kubelet",
    Section.SECRETS: "Encryption and Secrets",
    Section.LOGGING: "Audit logging and threat detection",
    Section.UPGRADES: "Upgrading and patching",
}


def format_path(path: Sequence[PathItem]) -> str:
    """Render a path tuple as a kubectl-style JSONPath: ``spec.containers[0].image``."""
    out: list[str] = []
    for item in path:
        if isinstance(item, int):
            out.append(f"[{item}]")
        elif out and (not item.replace("-", "").replace("_", "").isalnum()):
            out.append(f"[{item!r}]")
        else:
            out.append(("." if out else "") + item)
    return "".join(out)


@dataclass(slots=True)
class Source:
    """Where a resource came from: a file (with the document's line range) or another origin."""

    file: str
    line: int | None = None  # 1-based line of the document's first content line
    end_line: int | None = None
    doc_index: int = 0
    base_path: Path = ()  # where the resource sits inside its document (e.g. ("items", 3))
    origin: str | None = None  # e.g. "helm template chart/templates/deploy.yaml", "cluster"
    text: str | None = None  # kept only for inputs that cannot be re-read (stdin)


@dataclass(slots=True)
class Resource:
    """One Kubernetes object read from an input, with where it came from."""

    obj: dict[str, Any]
    source: Source
    api_version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str | None = None
    _ref: dict[str, Any] | None = None

    @classmethod
    def from_obj(cls, obj: dict[str, Any], source: Source) -> Resource:
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
        name = meta.get("name") or meta.get("generateName") or ""
        ns = meta.get("namespace")
        return cls(
            obj=obj,
            source=source,
            api_version=str(obj.get("apiVersion") or ""),
            kind=str(obj.get("kind") or ""),
            name=str(name),
            namespace=str(ns) if ns not in (None, "") else None,
        )

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.obj.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def labels(self) -> dict[str, str]:
        labels = self.metadata.get("labels")
        return labels if isinstance(labels, dict) else {}

    @property
    def annotations(self) -> dict[str, str]:
        ann = self.metadata.get("annotations")
        return ann if isinstance(ann, dict) else {}

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""

    def ref(self) -> dict[str, Any]:
        """apiVersion, kind, namespace and name; one shared dict per resource (findings keep it)."""
        if self._ref is None:
            self._ref = {
                "apiVersion": self.api_version,
                "kind": self.kind,
                "namespace": self.namespace,
                "name": self.name,
            }
        return self._ref

    def display(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"


class FixLevel(enum.StrEnum):
    """How much a fix may change what the workload does (docs/fix.md).

    safe: nothing the workload does changes; tightening: may break an application that relied on the
    weaker setting; needs-value: a value only a human can choose (given with `kubeharden fix --set`).
    """

    SAFE = "safe"
    TIGHTENING = "tightening"
    NEEDS_VALUE = "needs-value"

    @property
    def rank(self) -> int:
        return _FIX_LEVEL_RANK[self]


_FIX_LEVEL_RANK = {FixLevel.SAFE: 0, FixLevel.TIGHTENING: 1, FixLevel.NEEDS_VALUE: 2}
FIX_OPS = ("set", "delete", "append", "remove-item")


@dataclass(frozen=True, slots=True)
class FixOp:
    """One edit at a path from the resource root: set PATH VALUE, delete PATH, append PATH ITEM,
    remove-item PATH VALUE. ``value_from`` names the `--set` key that supplies the value of a
    needs-value fix (the value is then None until given)."""

    op: str
    path: Path
    value: Any = None
    value_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "path": list(self.path)}
        if self.value_from is not None:
            out["value_from"] = self.value_from
        elif self.op != "delete":
            out["value"] = self.value
        return out


@dataclass(frozen=True, slots=True)
class Fix:
    """The edits that remove one finding, and their level."""

    level: FixLevel
    ops: tuple[FixOp, ...]
    note: str | None = None  # what a reviewer should know (why tightening, what the value means)

    @property
    def needs(self) -> tuple[str, ...]:
        """`--set` keys the fix takes its values from."""
        return tuple(dict.fromkeys(op.value_from for op in self.ops if op.value_from is not None))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level.value, "ops": [op.to_dict() for op in self.ops]}
        if self.needs:
            out["needs"] = list(self.needs)
        if self.note:
            out["note"] = self.note
        return out


@dataclass(slots=True)
class Violation:
    """What a control reports: the engine turns it into a Finding with source line and metadata."""

    resource: Resource | None
    path: Path
    message: str
    value: Any = None
    has_value: bool = False
    severity: Severity | None = None  # overrides the control's severity when set
    remediation: str | None = None  # overrides the control's fix text when set
    evidence: dict[str, Any] = field(default_factory=dict)  # extra structured evidence (chains, PSS ids)
    source: Source | None = None  # for evidence that is not a resource (node files, live probes)
    line: int | None = None  # known line, when the evidence is not a YAML document
    fix: Fix | None = None  # the edits that remove this violation, when the control knows them


@dataclass(slots=True)
class Finding:
    control_id: str
    severity: Severity
    resource: dict[str, Any] | None
    file: str | None
    line: int | None
    path: str
    message: str
    remediation: str
    value: Any = None
    has_value: bool = False
    evidence: dict[str, Any] = field(default_factory=dict)
    exception: dict[str, Any] | None = None  # set when an exception covers the finding
    section: Section = Section.POD
    title: str = ""
    fix: Fix | None = None
    baseline: str | None = None  # "new" or "existing" when compared with a baseline (--baseline)

    @property
    def excepted(self) -> bool:
        return self.exception is not None


@dataclass(slots=True)
class InputError:
    source: str
    message: str
    line: int | None = None
    internal: bool = False  # a bug in kubeharden, not in the input: exit code 3

    @property
    def where(self) -> str:
        return self.source + (f":{self.line}" if self.line else "")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        return out


EXIT_INTERNAL = 3  # exit code of a bug in kubeharden (1 means findings, 2 bad input or usage)
REPORT_BUGS = ("this is a bug in kubeharden: please report it on the project's issue tracker with the command "
               "line and `kubeharden --version` (not your files)")


def internal_error_site(exc: BaseException) -> str:
    """`TypeError at engine.py:123`: where a bug struck, without the exception's text, which can
    quote the input (a Secret's value in a KeyError, a YAML scalar in a ValueError)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {os.path.basename(last.filename)}:{last.lineno} in {last.name}"


class SettingError(ValueError):
    """A setting a control reads is invalid (the user's, not the input's, nor a bug): an error
    naming the setting, exit code 2."""


class NotAssessed(Exception):
    """Raised by a control when the input lacks the evidence it needs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
