"""The audit pipeline: events -> (dedup, time window) -> detectors -> Findings with evidence.

Stages of one request (RequestReceived, ResponseStarted, ResponseComplete) share an auditID: one
action is judged once, on ResponseComplete, or on ResponseStarted for long-running requests (exec,
watch) so that an open shell is reported while it is open. A RequestReceived that never completes
is judged when it falls out of the bounded pending table or at the end; one logged after its
request was judged (webhook batches and merged files are not strictly ordered) is folded, as is a
repeated line, thanks to a bounded memory of judged auditIDs. All state is bounded.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from kubeharden import __version__
from kubeharden.audit.baseline import Baseline
from kubeharden.audit.detectors import FACETS, LEVEL_RANK, PROFILE, Detector, all_detectors
from kubeharden.audit.event import AuditEvent, as_text, format_time
from kubeharden.audit.evidence import event_evidence, redact_value
from kubeharden.audit.podspecs import body_metadata
from kubeharden.audit.reader import ReaderStats
from kubeharden.audit.settings import AuditSettings, settings_from_mapping
from kubeharden.catalog import Settings
from kubeharden.engine import ControlResult, ScanResult
from kubeharden.exceptions import ExceptionRule, ExceptionsOutcome
from kubeharden.loader import LoadStats
from kubeharden.model import Finding, InputError, Path, Resource, Section, Severity, Status, Violation, format_path
from kubeharden.versions import NEWEST_SUPPORTED

MAX_PENDING = 10_000
MAX_PENDING_BYTES = 64 * 1024 * 1024
MAX_JUDGED_IDS = 100_000  # per generation: the last 100,000 to 200,000 judged auditIDs are remembered
MAX_KEPT_FINDINGS = 100_000
MAX_KEYS = 50_000


MAX_ROUTES = 4096  # distinct (verb, resource, subresource, level) keys indexed before the index restarts
SA_PREFIX = "system:serviceaccount:"
ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"
FACET_BITS: dict[str, int] = {name: 1 << i for i, name in enumerate(FACETS)}
FACET_SERVICEACCOUNT = FACET_BITS["serviceaccount"]
FACET_HUMAN = FACET_BITS["human"]
FACET_ANONYMOUS = FACET_BITS["anonymous"]
FACET_DENIED = FACET_BITS["denied"]
FACET_IMPERSONATED = FACET_BITS["impersonated"]
FACET_POD_NETWORK = FACET_BITS["pod-network"]
_NO_USER: dict[str, Any] = {}


class _Route:
    """One key of the dispatch index: its candidate detectors with the facets each needs (0: none),
    and the chosen detectors per combination of facets (at most 2^6)."""

    __slots__ = ("always", "chosen", "entries", "needed")

    def __init__(self, entries: tuple[tuple[Detector, int], ...], needed: int) -> None:
        self.entries = entries
        self.needed = needed
        self.always = tuple(d for d, mask in entries if not mask)
        self.chosen: dict[int, tuple[Detector, ...]] = {}


class LRU(OrderedDict[Any, Any]):
    """An OrderedDict that forgets its oldest entries beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.evicted = 0

    def put(self, key: Any, value: Any) -> None:
        if key in self:
            self.move_to_end(key)
        self[key] = value
        while len(self) > self.limit:
            self.popitem(last=False)
            self.evicted += 1


class RecentSet:
    """Membership of the last ``limit``..2x``limit`` keys added, in two generations: O(1) per key, no
    per-key bookkeeping of age (cheaper than an LRU on the per-event path)."""

    __slots__ = ("current", "limit", "previous")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.current: set[str] = set()
        self.previous: set[str] = set()

    def add(self, key: str) -> None:
        current = self.current
        current.add(key)
        if len(current) >= self.limit:
            self.rotate()

    def rotate(self) -> None:
        self.previous, self.current = self.current, set()

    def __contains__(self, key: object) -> bool:
        return key in self.current or key in self.previous

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)


class BurstWindow:
    """Sliding windows of event times per key (user, source IP): True once a key reaches the
    threshold, then quiet until its window has emptied (one alert per burst)."""

    def __init__(self, threshold: int, seconds: float, limit: int = MAX_KEYS) -> None:
        self.threshold = threshold
        self.seconds = seconds
        self.windows: LRU = LRU(limit)
        self.alerted: LRU = LRU(limit)

    def hit(self, key: str, now: float) -> int | None:
        window = self.windows.get(key)
        if window is None:
            window = deque()
        window.append(now)
        while window and now - window[0] > self.seconds:
            window.popleft()
        while len(window) > self.threshold:
            window.popleft()
        self.windows.put(key, window)
        last = self.alerted.get(key)
        if len(window) >= self.threshold and (last is None or now - last > self.seconds):
            self.alerted.put(key, now)
            return len(window)
        return None


@dataclass
class DetectorContext:
    """What detectors may read besides the event: settings, bounded state, baseline, posture."""

    settings: AuditSettings
    baseline: Baseline | None = None
    memory: LRU = field(default_factory=lambda: LRU(MAX_KEYS))  # last known fingerprint per object
    once_seen: LRU = field(default_factory=lambda: LRU(4 * MAX_KEYS))
    derived: LRU = field(default_factory=lambda: LRU(1024))  # what detectors derive from repeated bodies
    counters: Counter[str] = field(default_factory=Counter)
    bursts: dict[str, BurstWindow] = field(default_factory=dict)
    _control_plane: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        b = self.settings.forbiddenBurst
        self.bursts = {"user": BurstWindow(b.threshold, b.window_seconds),
                       "ip": BurstWindow(b.threshold, b.window_seconds)}

    def once(self, key: Any) -> bool:
        """True the first time ``key`` is asked (bounded memory of what was already said)."""
        if key in self.once_seen:
            return False
        self.once_seen.put(key, True)
        return True

    # --- identities --------------------------------------------------------------------------

    def is_control_plane(self, user: str) -> bool:
        hit = self._control_plane.get(user)
        if hit is None:
            hit = self.settings.control_plane(user) or self.settings.pod_creators(user)
            if len(self._control_plane) > MAX_KEYS:
                self._control_plane.clear()
            self._control_plane[user] = hit
        return hit

    def is_node(self, event: AuditEvent) -> bool:
        return event.user.startswith("system:node:") and "system:nodes" in event.groups

    def pod_actor_exempt(self, event: AuditEvent) -> bool:
        """Writes that only carry out what someone else asked: controllers creating pods from a
        template, the kubelet's mirror pods of static pods, deployers in system namespaces."""
        user = event.user
        if self.is_control_plane(user):
            return True
        if self.is_node(event) and event.resource == "pods":
            annotations = body_metadata(event).get("annotations")
            return isinstance(annotations, dict) and "kubernetes.io/config.mirror" in annotations
        return event.namespace in self.settings.system_namespaces and bool(self.settings.deployers) \
            and self.settings.deployers(user)


@dataclass
class AuditExceptions:
    """The scan's exceptions file, plus an optional ``user`` selector (wildcards) per entry."""

    rules: list[tuple[ExceptionRule, str]] = field(default_factory=list)

    def match(self, finding: Finding) -> ExceptionRule | None:
        user = str(finding.evidence.get("user") or "")
        for rule, user_pattern in self.rules:
            if rule.matches(finding) and fnmatchcase(user, user_pattern):
                return rule
        return None


def _severity_up(severity: Severity) -> Severity:
    return Severity(min(severity + 1, Severity.CRITICAL))


class AuditRun:
    def __init__(self, detectors: Iterable[Detector], settings: AuditSettings, *,
                 exceptions: AuditExceptions | None = None, baseline: Baseline | None = None,
                 posture: Any = None, since: float | None = None, until: float | None = None,
                 on_finding: Callable[[Finding], None] | None = None, keep_findings: int = MAX_KEPT_FINDINGS,
                 today: dt.date | None = None) -> None:
        self.detectors = [d for d in detectors if d.check is not None]
        self.all = list(detectors)
        self.ctx = DetectorContext(settings, baseline)
        self.exceptions = exceptions or AuditExceptions()
        self.posture = posture
        self.since, self.until = since, until
        self.on_finding = on_finding
        self.keep_findings = keep_findings
        self.today = today or dt.date.today()
        self.findings: list[Finding] = []
        self.counts: Counter[str] = Counter()  # active findings per detector (kept or not)
        self.dropped_findings = 0
        self.pending: OrderedDict[str, tuple[AuditEvent, int]] = OrderedDict()
        self.pending_bytes = 0
        self.judged = RecentSet(MAX_JUDGED_IDS)  # auditIDs already judged (bounded)
        self.saw_level: set[str] = set()  # detectors that saw an event at the level they need
        self.events_judged = 0
        self.events_filtered = 0
        self.events_deduplicated = 0
        self.errors: list[InputError] = []
        self.prelude: list[Finding] = []  # policy coverage findings, first in every report
        self.started = time.perf_counter()
        # which detectors saw evidence of the level they need: by objectRef.resource, as their metadata says
        self._any: list[Detector] = []
        self._by_resource: dict[str, list[Detector]] = {}
        for det in self.detectors:
            if det.resources is None:
                self._any.append(det)
        for det in self.detectors:
            for res in det.resources or ():
                self._by_resource.setdefault(res, list(self._any)).append(det)
        self._rank = {d.id: LEVEL_RANK.get(d.min_level, 1) for d in self.detectors}
        # the dispatch index: (verb, resource, subresource, level) -> the detectors whose routes can
        # match, built once per key from their metadata; detectors that cannot alert with these
        # settings (their `requires` gives a reason) are left out
        self.routed = [d for d in self.detectors if d.requires is None or not d.requires(self.ctx)]
        self._order = {d.id: i for i, d in enumerate(sorted(self.detectors, key=lambda d: d.resources is not None))}
        self._seen: set[tuple[str, str]] = set()
        self._index: dict[tuple[str, str, str, str], _Route] = {}
        self._user_facets: dict[str, int] = {}
        self.reference = False  # tests: every detector on every event, no index

    # --- routing ------------------------------------------------------------------------------

    def _route(self, key: tuple[str, str, str, str]) -> _Route:
        verb, resource, subresource, level = key
        seen = (resource, level)
        if seen not in self._seen:  # bounded: few pairs
            self._seen.add(seen)
            rank = LEVEL_RANK.get(level, 1)
            candidates = self._by_resource.get(resource, self._any)
            self.saw_level.update(d.id for d in candidates if rank >= self._rank[d.id])
        entries: list[tuple[Detector, int]] = []
        for det in self.routed:
            mask = -1
            for r in det.dispatch:
                if r.matches(verb, resource, subresource):
                    bit = FACET_BITS[r.facet] if r.facet is not None else 0
                    mask = 0 if bit == 0 or mask == 0 else (bit if mask < 0 else mask | bit)
            if mask >= 0:
                entries.append((det, mask))
        entries.sort(key=lambda e: self._order[e[0].id])  # the order the report has always had
        needed = 0
        for _, mask in entries:
            needed |= mask
        route = _Route(tuple(entries), needed)
        if len(self._index) >= MAX_ROUTES:  # hostile input with endless distinct verbs/resources
            self._index.clear()
        self._index[key] = route
        return route

    def _facets(self, raw: dict[str, Any], needed: int) -> int:
        """The FACET_BITS of one event, from the decoded dict (only those some candidate needs)."""
        user_info = raw.get("user")
        if type(user_info) is not dict:
            user_info = _NO_USER
        user = user_info.get("username")
        if type(user) is not str:
            user = as_text(user)
        bits = self._user_facets.get(user)
        if bits is None:
            bits = 0
            if user.startswith(SA_PREFIX) and not self.ctx.is_control_plane(user):
                bits |= FACET_SERVICEACCOUNT
            if user and not user.startswith("system:"):
                bits |= FACET_HUMAN
            if user == ANONYMOUS:
                bits |= FACET_ANONYMOUS
            if len(self._user_facets) >= MAX_KEYS:
                self._user_facets.clear()
            self._user_facets[user] = bits
        if needed & FACET_ANONYMOUS and not bits & FACET_ANONYMOUS:
            groups = user_info.get("groups")
            if isinstance(groups, list) and UNAUTHENTICATED in groups:
                bits |= FACET_ANONYMOUS
        if needed & FACET_DENIED:
            status = raw.get("responseStatus")
            code = status.get("code") if type(status) is dict else None
            if type(code) is int and (code == 401 or code == 403):
                bits |= FACET_DENIED
            else:
                annotations = raw.get("annotations")
                if type(annotations) is dict and annotations.get("authorization.k8s.io/decision") == "forbid":
                    bits |= FACET_DENIED
        if needed & FACET_IMPERSONATED:
            imp = raw.get("impersonatedUser")
            if type(imp) is dict and imp:
                bits |= FACET_IMPERSONATED
        if needed & FACET_POD_NETWORK:
            ips = raw.get("sourceIPs")
            if isinstance(ips, list) and ips and str(ips[0]) in self.ctx.settings.pod_networks:
                bits |= FACET_POD_NETWORK
        return bits

    # --- intake -------------------------------------------------------------------------------

    def feed_all(self, events: Iterable[AuditEvent]) -> None:
        for event in events:
            self.feed(event)

    def feed(self, event: AuditEvent, size: int = 1024) -> None:
        if self.since is not None or self.until is not None:
            t = event.time
            if t is not None and ((self.since is not None and t < self.since)
                                  or (self.until is not None and t > self.until)):
                self.events_filtered += 1
                return
        raw = event.raw  # read the dict: most events never need the full view
        audit_id = raw.get("auditID")
        if type(audit_id) is not str:
            audit_id = as_text(audit_id)
        if not audit_id:
            self.judge(event)
            return
        stage = raw.get("stage")
        if stage == "RequestReceived":
            if audit_id in self.judged or audit_id in self.pending:  # its completion came first, or a repeat
                self.events_deduplicated += 1
                return
            self.pending[audit_id] = (event, size)
            self.pending_bytes += size
            while len(self.pending) > MAX_PENDING or self.pending_bytes > MAX_PENDING_BYTES:
                old_id, (old, old_size) = self.pending.popitem(last=False)
                self.pending_bytes -= old_size
                self.judged.add(old_id)  # its completion, if it ever comes, is folded
                self.judge(old)
            return
        if self.pending:  # nothing to fold while no RequestReceived waits (logs that omit the stage)
            pending = self.pending.pop(audit_id, None)
            if pending is not None:
                self.pending_bytes -= pending[1]
                self.events_deduplicated += 1
        judged = self.judged  # RecentSet, inlined: this runs for every event
        current = judged.current
        if audit_id in current or audit_id in judged.previous:  # after ResponseStarted, or a repeated line
            self.events_deduplicated += 1
            return
        current.add(audit_id)
        if len(current) >= judged.limit:
            judged.rotate()
        self.judge(event)

    def flush(self) -> None:
        """Judge requests whose completion never came (end of input)."""
        while self.pending:
            _, (event, _size) = self.pending.popitem(last=False)
            self.judge(event)
        self.pending_bytes = 0

    # --- judgement ----------------------------------------------------------------------------

    def judge(self, event: AuditEvent) -> None:
        self.events_judged += 1
        if self.reference:
            self._judge_all(event)
            return
        raw = event.raw
        ref = raw.get("objectRef")
        if type(ref) is dict:
            resource = ref.get("resource")
            subresource = ref.get("subresource")
            if type(resource) is not str:
                resource = as_text(resource)
            if type(subresource) is not str:
                subresource = as_text(subresource)
        else:
            resource = subresource = ""
        verb = raw.get("verb")
        level = raw.get("level")
        if type(verb) is not str:
            verb = as_text(verb)
        if type(level) is not str:
            level = as_text(level)
        key = (verb, resource, subresource, level)
        route = self._index.get(key)
        if route is None:
            route = self._route(key)
        needed = route.needed
        if needed:
            bits = self._facets(raw, needed)
            chosen = route.chosen.get(bits)
            if chosen is None:
                chosen = route.chosen[bits] = tuple(d for d, mask in route.entries if not mask or mask & bits)
        else:
            chosen = route.always
        if chosen:
            self._run(chosen, event)

    def _judge_all(self, event: AuditEvent) -> None:
        """Every detector on the event, as they were called before the index (the reference)."""
        resource = event.resource
        candidates = self._by_resource.get(resource, self._any)
        seen = (resource, event.level)
        if seen not in self._seen:
            self._seen.add(seen)
            rank = LEVEL_RANK.get(event.level, 1)
            self.saw_level.update(d.id for d in candidates if rank >= self._rank[d.id])
        self._run(sorted(self.detectors, key=lambda d: self._order[d.id]), event)

    def _run(self, detectors: Iterable[Detector], event: AuditEvent) -> None:
        ctx = self.ctx
        for det in detectors:
            try:
                for v in det.check(event, ctx):  # type: ignore[misc]
                    self.emit(self.finding(det, event, v))
            except Exception as exc:  # a bug in one detector must not sink the run
                key = f"{det.id}:{type(exc).__name__}"
                if ctx.once(("internal", key)):
                    self.errors.append(InputError(f"detector {det.id}", f"internal error on {event.where()}: "
                                                  f"{type(exc).__name__}: {exc}"))

    def finding(self, det: Detector, event: AuditEvent, v: Violation) -> Finding:
        evidence = event_evidence(event, det.guidance, det.id)
        path = v.path
        if path:
            evidence["field"] = format_path(path)
        evidence.update(v.evidence)
        value = redact_value(event, path, v.value) if v.has_value else None
        finding = Finding(
            control_id=det.id, severity=v.severity or det.severity, resource=event.resource_ref(),
            file=event.file or None, line=event.line, path=format_path(path), message=v.message,
            remediation=v.remediation or det.response, value=value, has_value=v.has_value,
            evidence=evidence, section=Section.LOGGING, title=det.title)
        if self.posture is not None:
            self.posture.join(finding, event)
        return finding

    def emit(self, finding: Finding) -> None:
        rule = self.exceptions.match(finding)
        if rule is not None and not rule.expired(self.today):
            rule.uses += 1
            finding.exception = {"kind": "file", "reason": rule.reason, "owner": rule.owner,
                                 "expires": rule.expires.isoformat() if rule.expires else None,
                                 "origin": rule.origin}
        else:
            self.counts[finding.control_id] += 1
        if self.on_finding is not None:
            self.on_finding(finding)
        if len(self.findings) < self.keep_findings:
            self.findings.append(finding)
        else:
            self.dropped_findings += 1

    # --- the report ---------------------------------------------------------------------------

    def status_of(self, det: Detector, fails: int) -> tuple[Status, str | None]:
        if det.check is None:
            return Status.NOT_ASSESSED, f"not audit data: {det.input_needed}"
        if fails:
            return Status.FAIL, None
        if det.requires is not None:
            reason = det.requires(self.ctx)
            if reason:
                return Status.NOT_ASSESSED, reason
        if det.id not in self.saw_level:
            what = ", ".join(sorted(det.resources)) if det.resources else "any resource"
            return Status.NOT_ASSESSED, f"no event on {what} at {det.min_level} level or above was seen"
        return Status.PASS, None

    def result(self, stats: ReaderStats | None = None, notes: Iterable[str] = ()) -> ScanResult:
        stats = stats or ReaderStats()
        findings = self.prelude + self.findings
        by_id: dict[str, list[Finding]] = {}
        for f in findings:
            by_id.setdefault(f.control_id, []).append(f)
        results = []
        for det in self.all:
            mine = by_id.get(det.id, [])
            active = sum(1 for f in mine if not f.excepted) if det.id not in self.counts else self.counts[det.id]
            status, reason = self.status_of(det, active)
            from kubeharden.catalog import get_control

            ctrl = get_control(det.id)
            assert ctrl is not None
            results.append(ControlResult(ctrl, status, mine, reason))
        rules = [rule for rule, _ in self.exceptions.rules]
        outcome = ExceptionsOutcome(expired=[r for r in rules if r.expired(self.today)],
                                    unused=[r for r in rules if not r.expired(self.today) and r.uses == 0])
        all_notes = list(notes)
        all_notes.append(f"audit: {stats.events} events read from {stats.files} input(s), {self.events_judged} judged, "
                         f"{self.events_deduplicated} stage duplicates folded, {self.events_filtered} outside "
                         "--since/--until")
        if stats.problems:
            all_notes.append("audit input problems: " + ", ".join(stats.summary()))
        if self.dropped_findings:
            all_notes.append(f"{self.dropped_findings} further alerts were not kept in this report "
                             f"(limit {self.keep_findings}); use --format jsonl to stream them all")
        for key, count in sorted(self.ctx.counters.items()):
            all_notes.append(f"{key}: {count}")
        load_stats = LoadStats(files=stats.files, documents=stats.events, resources=stats.events, bytes=stats.bytes)
        return ScanResult(
            profile=PROFILE, kubernetes_version=NEWEST_SUPPORTED, controls=results, findings=findings,
            errors=stats.unreadable + self.errors, warnings=list(stats.reported), stats=load_stats,
            resources=stats.events, exceptions=outcome, notes=all_notes,
            duration=time.perf_counter() - self.started,
            tool={"name": "kubeharden", "version": __version__, "command": "audit"},
        )


def in_time(event: AuditEvent) -> str | None:
    return format_time(event.time)


# ---------------------------------------------------------------------------------------------
# `scan --profile audit`: the detector as a control over audit Event documents of an inventory.


def scan_events(det: Detector, resources: list[Resource], settings: Settings) -> Iterator[Violation]:
    extra = settings.extra.get("audit_settings")
    audit_settings = extra if isinstance(extra, AuditSettings) else settings_from_mapping(
        {"approvedImagePrefixes": list(settings.allowed_registries)} if settings.allowed_registries else None)
    run = AuditRun([det], audit_settings, baseline=settings.extra.get("audit_baseline"))
    events = []
    for res in resources:
        event = AuditEvent(res.obj, res.source.file, res.source.line)
        events.append((event, res))
    events.sort(key=lambda pair: pair[0].time or 0.0)
    out: list[Violation] = []
    for event, res in events:
        assert det.check is not None
        for v in det.check(event, run.ctx):
            base: Path = res.source.base_path
            out.append(Violation(res, (*base, *v.path) if base else v.path, v.message,
                                 redact_value(event, v.path, v.value) if v.has_value else None,
                                 has_value=v.has_value, severity=v.severity, remediation=v.remediation,
                                 evidence={**event_evidence(event, det.guidance, det.id), **v.evidence}))
    return iter(out)


def select_detectors(only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Detector]:
    dets = all_detectors()
    ids = [d.id for d in dets]

    def expand(patterns: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for pattern in patterns:
            pat = pattern.strip().upper()
            matched = {i for i in ids if fnmatchcase(i, pat)}
            if not matched:
                raise ValueError(f"unknown detector {pattern!r} (see `kubeharden audit --list`)")
            out |= matched
        return out

    only_set, skip_set = expand(only), expand(skip)
    return [d for d in dets if (not only_set or d.id in only_set) and d.id not in skip_set]


def run_events(events: Iterable[AuditEvent], settings: AuditSettings | None = None,
               detectors: Iterable[Detector] | None = None, **kwargs: Any) -> AuditRun:
    """Convenience for tests and the benchmark: judge events, flush, return the run."""
    run = AuditRun(list(detectors) if detectors is not None else all_detectors(), settings or AuditSettings(),
                   **kwargs)
    run.feed_all(events)
    run.flush()
    return run
