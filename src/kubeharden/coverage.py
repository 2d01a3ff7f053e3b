"""Coverage of the guidance: every recommendation id with what implements it.

The id list ships as package data (``data/guidance-ids.json``, restated from
``shared/spec/guidance.md`` §2) so that ``kubeharden controls --coverage`` works in a user's
clone or an installed wheel without the shared directory; tests compare it with the spec when the
spec is present, and ``--spec FILE`` reads a newer spec instead.

An id is *implemented* when a control with a check, an audit-event detector or a tool (generator,
review command, probe, import) implements it; *manual* when only ``manual_control``s name it (each
says what an auditor should ask for); *missing* otherwise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources

from kubeharden import safeio
from kubeharden.catalog import Control, all_controls

# Commands that implement a recommendation without being a control: they generate hardened
# configuration, produce review records or import other tools' results.
TOOLS: dict[str, tuple[str, ...]] = {
    "generate audit-policy": ("NSA-LOG-1", "NSA-LOG-2", "NSA-LOG-3", "NSA-LOG-4", "NSA-LOG-5", "NSA-LOG-14"),
    "generate audit-webhook-config": ("NSA-LOG-6",),
    "generate encryption-config": ("NSA-SEC-3", "NSA-SEC-4"),
    "node probe etcd": ("NSA-CP-5", "NSA-CP-6"),
    "node probe exposure": ("NSA-CP-1", "NSA-CP-2", "NSA-CP-3", "NSA-CP-5", "NSA-NODE-2", "NSA-NODE-4", "NSA-NODE-6"),
    "node probe etcd --secrets [--encryption-config]": ("NSA-SEC-6",),
    "images --scan": ("NSA-POD-17", "NSA-UPG-7"),
    "rbac review / rbac diff": ("NSA-RBAC-8",),
    "cis (kube-bench import)": ("NSA-UPG-5",),
}

_ROW_RE = re.compile(r"^\| \d+ \| (NSA-([A-Z]+)-\d+) \| ([^|]+) \|[^|]*\|([^|]*)\|", re.M)


@dataclass(frozen=True)
class Recommendation:
    id: str
    group: str
    recommendation: str
    where: str = ""


@dataclass
class Coverage:
    recommendation: Recommendation
    controls: list[str] = field(default_factory=list)  # controls with a check
    detectors: list[str] = field(default_factory=list)  # audit-event detectors (D01..D20)
    tools: list[str] = field(default_factory=list)
    manual: list[tuple[str, str]] = field(default_factory=list)  # (control id, what an auditor asks for)

    @property
    def status(self) -> str:
        if self.controls or self.detectors or self.tools:
            return "implemented"
        return "manual" if self.manual else "missing"


MAX_SPEC_BYTES = 16 * 1024 * 1024


def parse_spec(text: str) -> list[Recommendation]:
    """The recommendations of the spec's §2 tables, in order."""
    return [Recommendation(m.group(1), m.group(2), m.group(3).strip(), m.group(4).strip())
            for m in _ROW_RE.finditer(text)]


def packaged_recommendations() -> list[Recommendation]:
    data = json.loads(resources.files("kubeharden").joinpath("data/guidance-ids.json").read_text("utf-8"))
    return [Recommendation(r["id"], r["group"], r["recommendation"], r.get("where", ""))
            for r in data["recommendations"]]


def load_recommendations(spec: str | None = None) -> list[Recommendation]:
    """From the given spec file, else the packaged list. A spec without any row is an error."""
    if spec is None:
        return packaged_recommendations()
    try:  # a regular file only (a FIFO or /dev/zero would never end), within a limit
        raw = safeio.read_regular(spec, MAX_SPEC_BYTES)
    except safeio.UnsafePathError as exc:
        raise ValueError(f"{spec}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"{spec}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{spec}:{line}: not UTF-8 text") from None
    found = parse_spec(text)
    if not found:
        raise ValueError(f"{spec}: no recommendation rows (| # | NSA-... |) found")
    return found


def coverage(recommendations: list[Recommendation], controls: list[Control] | None = None) -> list[Coverage]:
    controls = all_controls() if controls is None else controls
    table = {r.id: Coverage(r) for r in recommendations}
    for ctrl in controls:
        for gid in ctrl.guidance:
            row = table.get(gid)
            if row is None:
                continue
            if ctrl.manual:
                row.manual.append((ctrl.id, ctrl.manual))
            elif ctrl.id.startswith("D"):
                row.detectors.append(ctrl.id)
            else:
                row.controls.append(ctrl.id)
    for tool, ids in TOOLS.items():
        for gid in ids:
            if gid in table:
                table[gid].tools.append(tool)
    return [table[r.id] for r in recommendations]


def counts(rows: list[Coverage]) -> dict[str, int]:
    out = {"total": len(rows), "implemented": 0, "manual": 0, "missing": 0}
    for row in rows:
        out[row.status] += 1
    return out
