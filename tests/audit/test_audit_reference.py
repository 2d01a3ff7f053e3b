"""The dispatch index (detectors called only for events their routes match, a lazy event view)
gives exactly the alerts, statuses and state of a reference run that calls every detector on
every event: an over-eager index (a route that misses an event a detector alerts on) fails here."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from kubeharden.audit.baseline import Baseline
from kubeharden.audit.detectors import all_detectors
from kubeharden.audit.event import AuditEvent
from kubeharden.audit.runner import AuditRun
from kubeharden.audit.settings import settings_from_mapping
from kubeharden.audit.synthetic import SETTINGS, attacks, benign_day

POD_IP = "10.244.3.17"


def _variants(e: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The event as it is, and as the facets the index routes on would change it: impersonated,
    unauthenticated group, denied (by code and by decision only), from a pod address, as a service
    account and as a person, plus mistyped fields (the view makes them strings)."""
    yield e
    v = copy.deepcopy(e)
    v["impersonatedUser"] = {"username": "system:admin", "groups": ["system:masters"]}
    yield v
    v = copy.deepcopy(e)
    v.setdefault("user", {})["groups"] = ["system:unauthenticated"]
    yield v
    v = copy.deepcopy(e)
    v["responseStatus"] = {"code": 403}
    yield v
    v = copy.deepcopy(e)
    v["annotations"] = {**v.get("annotations", {}), "authorization.k8s.io/decision": "forbid"}
    yield v
    v = copy.deepcopy(e)
    v["sourceIPs"] = [POD_IP]
    yield v
    for user in ("system:serviceaccount:apps:web", "mallory@example.com", "system:anonymous"):
        v = copy.deepcopy(e)
        v["user"] = {"username": user, "groups": ["system:authenticated"]}
        v["sourceIPs"] = [POD_IP] if user.startswith("system:serviceaccount:") else ["203.0.113.7"]
        yield v
    v = copy.deepcopy(e)
    v["level"] = 0
    v["verb"] = ["get"]
    if isinstance(v.get("objectRef"), dict):
        v["objectRef"]["resource"] = 7
    v["user"] = {"username": 42, "groups": [1, "system:unauthenticated"]}
    yield v


def _events() -> list[dict[str, Any]]:
    day = list(benign_day(4000, seed=11, big_body_every=500))
    day[2000:2000] = attacks()
    examples = [ev for det in all_detectors() for ex in det.examples for ev in ex.events]
    out = list(day)
    for e in examples:
        out.extend(_variants(e))
    for e in day[:: 97]:
        out.extend(_variants(e))
    stages = []
    for e in examples[:20]:  # every stage of one request, and repeats
        for stage in ("RequestReceived", "ResponseStarted", "ResponseComplete", "ResponseComplete"):
            stages.append({**copy.deepcopy(e), "stage": stage, "auditID": "ref-" + str(len(stages) // 4)})
    return out + stages


def _baseline() -> Baseline:
    base = Baseline()
    base.learn_all(AuditEvent(e) for e in benign_day(2000, seed=1))
    return base


def _run(events: list[dict[str, Any]], settings: dict[str, Any], baseline: Baseline | None,
         reference: bool) -> AuditRun:
    run = AuditRun(all_detectors(), settings_from_mapping(settings), baseline=baseline)
    run.reference = reference
    run.feed_all(AuditEvent(copy.deepcopy(e), "ref.log", i + 1) for i, e in enumerate(events))
    run.flush()
    return run


def _alerts(run: AuditRun) -> list[tuple[Any, ...]]:
    return [(f.control_id, int(f.severity), f.line, f.path, f.message, repr(f.value), repr(sorted(f.evidence.items())))
            for f in run.findings]


@pytest.mark.parametrize("settings,with_baseline", [(SETTINGS, True), ({}, False), (SETTINGS, False)],
                         ids=["settings+baseline", "defaults", "settings-only"])
def test_indexed_run_equals_reference_run(settings: dict[str, Any], with_baseline: bool) -> None:
    events = _events()
    baseline = _baseline() if with_baseline else None
    fast = _run(events, settings, baseline, reference=False)
    ref = _run(events, settings, baseline, reference=True)
    assert len(ref.findings) > 50  # the mix makes every detector speak
    assert {f.control_id for f in ref.findings} >= {"D01", "D02", "D05", "D06", "D07", "D08", "D09", "D11", "D12",
                                                    "D13"}
    assert _alerts(fast) == _alerts(ref)
    assert not fast.errors and not ref.errors
    assert fast.saw_level == ref.saw_level
    assert dict(fast.ctx.counters) == dict(ref.ctx.counters)
    assert (fast.events_judged, fast.events_deduplicated) == (ref.events_judged, ref.events_deduplicated)
    statuses = [(r.control.id, r.status, r.reason) for r in fast.result().controls]
    assert statuses == [(r.control.id, r.status, r.reason) for r in ref.result().controls]


def test_an_over_eager_route_is_caught() -> None:
    """The comparison itself can fail: drop D07's route and the anonymous alerts go missing."""
    events = _events()
    fast = AuditRun(all_detectors(), settings_from_mapping(SETTINGS))
    fast.routed = [d for d in fast.routed if d.id != "D07"]
    fast.feed_all(AuditEvent(copy.deepcopy(e), "ref.log", i + 1) for i, e in enumerate(events))
    ref = _run(events, SETTINGS, None, reference=True)
    assert _alerts(fast) != _alerts(ref)
