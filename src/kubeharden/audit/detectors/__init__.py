"""Detectors: one small function per rule of guidance §3.2, with metadata like a control.

A detector is a control over audit events: ``@detector`` registers it here (for ``kubeharden audit``)
and in the control catalog (``kubeharden controls`` / ``explain``, exceptions, reports), as a Control
of section logging and profile ``audit``. Its function takes one AuditEvent and a DetectorContext and
yields Violations whose paths are paths inside the event. Every module of this package is imported
by ``catalog.load_all()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from kubeharden.catalog import Context, Control, Example, Profile, add, register_profile
from kubeharden.model import NotAssessed, Section, Severity, Violation
from kubeharden.nodeconf.auditpolicy import RequestKind

if TYPE_CHECKING:
    from kubeharden.audit.event import AuditEvent
    from kubeharden.audit.runner import DetectorContext

CheckFn = Callable[["AuditEvent", "DetectorContext"], Iterable[Violation]]
RequiresFn = Callable[["DetectorContext"], "str | None"]
PROFILE = "audit"
LEVEL_RANK = {"": 0, "None": 0, "Metadata": 1, "Request": 2, "RequestResponse": 3}
register_profile(Profile(PROFILE, "the audit-event detectors D01-D20 of guidance §3.2 (`kubeharden audit`; "
                         "`scan --profile audit` judges audit Event documents)"))


@dataclass(frozen=True)
class AuditExample:
    """Events that must (bad) or must not (good) make the detector alert, with the settings
    (YAML keys) and baseline they are judged with. They run as tests (tests/audit)."""

    bad: bool
    events: tuple[dict[str, Any], ...]
    description: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None


# Facets of an event the runner computes from the decoded dict for routing (audit/runner.py):
FACETS = (
    "serviceaccount",  # user is a service account outside the control plane
    "human",  # user is not system:*
    "anonymous",  # system:anonymous, or the system:unauthenticated group
    "denied",  # responseStatus.code 401/403, or authorization decision forbid
    "impersonated",  # impersonatedUser is set
    "pod-network",  # sourceIPs[0] is inside podCIDRs
)


@dataclass(frozen=True)
class Route:
    """Events a detector can alert on, for the runner's index: every field that is set must match
    (None: any; resource "" is a non-resource request such as /healthz), and ``facet``, when set,
    must hold. A detector is called for an event only when one of its routes matches, so a route
    must cover every event the check can alert on or learn from; the reference test (all detectors
    on every event) holds the index to that."""

    verbs: frozenset[str] | None = None
    resources: frozenset[str] | None = None
    subresources: frozenset[str] | None = None
    facet: str | None = None

    def __post_init__(self) -> None:
        if self.facet is not None and self.facet not in FACETS:
            raise ValueError(f"unknown route facet {self.facet!r}")

    def matches(self, verb: str, resource: str, subresource: str) -> bool:
        return (self.verbs is None or verb in self.verbs) and (
            self.resources is None or resource in self.resources) and (
            self.subresources is None or subresource in self.subresources)


def route(verbs: Iterable[str] | None = None, resources: Iterable[str] | None = None,
          subresources: Iterable[str] | None = None, facet: str | None = None) -> Route:
    return Route(frozenset(verbs) if verbs is not None else None,
                 frozenset(resources) if resources is not None else None,
                 frozenset(subresources) if subresources is not None else None, facet)


@dataclass(frozen=True)
class Detector:
    id: str
    title: str
    guidance: tuple[str, ...]
    severity: Severity
    what: str
    why: str
    response: str  # what the guidance suggests doing (printed advice; no automatic action)
    check: CheckFn | None
    min_level: str = "Metadata"  # the audit level the evidence needs
    stages: tuple[str, ...] = ("ResponseComplete",)
    resources: frozenset[str] | None = None  # objectRef.resource values it reads (None: every event)
    needs: tuple[RequestKind, ...] = ()  # requests the audit policy must record at min_level
    needs_users: tuple[str, ...] = ()  # identities the policy must not drop (e.g. system:anonymous)
    # a reason when settings or a baseline it needs are absent: then the check cannot alert, and
    # the runner does not call it
    requires: RequiresFn | None = None
    input_needed: str = ""  # for rules over other inputs (metrics, node logs): what they would need
    examples: tuple[AuditExample, ...] = ()
    routes: tuple[Route, ...] = ()  # which events can make it alert (default: any event on ``resources``)

    @property
    def dispatch(self) -> tuple[Route, ...]:
        return self.routes or (Route(resources=self.resources),)

    @property
    def implemented(self) -> bool:
        return self.check is not None

    @property
    def status(self) -> str:
        return "implemented" if self.implemented else f"needs other input: {self.input_needed}"

    @property
    def needs_text(self) -> str:
        if not self.implemented:
            return f"not audit data: {self.input_needed}"
        stage = "/".join(self.stages)
        return f"audit events at {self.min_level} level or above, stage {stage}"


_DETECTORS: dict[str, Detector] = {}


def detector(*, id: str, title: str, guidance: Iterable[str], severity: Severity, what: str, why: str,
             response: str, min_level: str = "Metadata", stages: Iterable[str] = ("ResponseComplete",),
             resources: Iterable[str] | None = None, needs: Iterable[RequestKind] = (),
             needs_users: Iterable[str] = (), requires: RequiresFn | None = None,
             examples: Iterable[AuditExample] = (), routes: Iterable[Route] = ()) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        register_detector(Detector(
            id=id, title=title, guidance=tuple(guidance), severity=severity, what=what, why=why,
            response=response, check=fn, min_level=min_level, stages=tuple(stages),
            resources=frozenset(resources) if resources is not None else None, needs=tuple(needs),
            needs_users=tuple(needs_users), requires=requires, examples=tuple(examples),
            routes=tuple(routes)))
        return fn

    return register


def register_detector(det: Detector) -> None:
    existing = _DETECTORS.get(det.id)
    if existing is not None and existing is not det and existing.check is not None and det.check is not None \
            and getattr(existing.check, "__module__", "") != getattr(det.check, "__module__", ""):
        raise ValueError(f"detector {det.id} registered twice")
    _DETECTORS[det.id] = det
    add(_as_control(det))


def all_detectors() -> list[Detector]:
    from kubeharden.catalog import load_all

    load_all()
    return sorted(_DETECTORS.values(), key=lambda d: d.id)


def get_detector(detector_id: str) -> Detector | None:
    from kubeharden.catalog import load_all

    load_all()
    return _DETECTORS.get(detector_id.upper())


# ---------------------------------------------------------------------------------------------
# The catalog side: the same detector as a Control, judged by `scan --profile audit` over audit
# Event documents found among the inputs (an EventList file, a YAML/JSON list of events).


def _as_control(det: Detector) -> Control:
    self_contained = tuple(ex for ex in det.examples if not ex.settings and ex.baseline is None)
    examples = tuple(
        Example(ex.bad, _example_text(ex.events), ex.description) for ex in self_contained)
    runnable = det.check is not None and {ex.bad for ex in self_contained} == {True, False}
    return Control(
        id=det.id, title=det.title, section=Section.LOGGING, guidance=det.guidance, severity=det.severity,
        what=det.what, why=det.why, fix=det.response,
        check=_scan_check(det) if det.check is not None else None,
        kinds=("Event",) if runnable else (),
        needs=det.needs_text, examples=examples if runnable else (),
        requires=None if runnable else _scan_requires(det),
        profiles=frozenset({PROFILE}),
        manual=None if det.check is not None else f"not audit data: {det.input_needed}",
        module=det.check.__module__ if det.check is not None else __name__,
    )


def _example_text(events: tuple[dict[str, Any], ...]) -> str:
    if len(events) == 1:
        return orjson.dumps(events[0], option=orjson.OPT_INDENT_2).decode() + "\n"
    doc = {"apiVersion": "audit.k8s.io/v1", "kind": "EventList", "items": list(events)}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


def _scan_requires(det: Detector) -> Callable[[Context], str | None]:
    def requires(ctx: Context) -> str | None:
        return f"{det.id} judges audit events with settings or a baseline: run `kubeharden audit`"

    return requires


def _scan_check(det: Detector) -> Callable[[Context], Iterator[Violation]]:
    def check(ctx: Context) -> Iterator[Violation]:
        from kubeharden.audit.runner import scan_events

        events = [r for r in ctx.inventory.of_kind("Event") if r.api_version.startswith("audit.k8s.io/")]
        if not events:
            raise NotAssessed("no audit.k8s.io Event in the input")
        yield from scan_events(det, events, ctx.settings)

    return check
