"""One action, one alert, whatever order its stages arrive in (webhook batches and merged files are
not strictly ordered): a RequestReceived logged after its ResponseComplete is folded, with bounded
memory of the auditIDs already judged."""

from __future__ import annotations

from kubeharden.audit import runner
from kubeharden.audit.detectors import get_detector
from kubeharden.audit.detectors._events import event
from kubeharden.audit.event import AuditEvent
from kubeharden.audit.runner import AuditRun, RecentSet
from kubeharden.audit.settings import settings_from_mapping

SETTINGS = settings_from_mapping({"podCIDRs": ["10.244.0.0/16"]})


def _from_pod(stage: str, audit_id: str, pod_ip: str = "10.244.3.17") -> dict:
    """A sensitive call from a pod address: D20 judges it whatever the outcome (a RequestReceived
    alone would be reported as an attempt); it speaks once per user, call and address."""
    e = event("list", "secrets", name="", namespace="kube-system", user="system:serviceaccount:apps:web",
              groups=("system:serviceaccounts", "system:authenticated"), ips=(pod_ip,), stage=stage,
              audit_id=audit_id)
    if stage == "RequestReceived":
        e.pop("responseStatus", None)
    return e


def _run(raw: list[dict]) -> AuditRun:
    d20 = get_detector("D20")
    assert d20 is not None
    run = AuditRun([d20], SETTINGS)
    for i, e in enumerate(raw):
        run.feed(AuditEvent(e, "t.log", i + 1))
    run.flush()
    return run


def test_request_received_after_its_completion_gives_no_second_alert() -> None:
    run = _run([_from_pod("ResponseComplete", "a-1"), _from_pod("RequestReceived", "a-1")])
    assert [f.control_id for f in run.findings] == ["D20"]
    assert "succeeded" in run.findings[0].message
    assert run.events_judged == 1 and run.events_deduplicated == 1 and not run.pending


def test_in_order_stages_and_repeats_fold_too() -> None:
    run = _run([_from_pod("RequestReceived", "b-1"), _from_pod("RequestReceived", "b-1"),
                _from_pod("ResponseComplete", "b-1"), _from_pod("ResponseComplete", "b-1")])
    assert len(run.findings) == 1 and run.events_judged == 1 and run.pending_bytes == 0


def test_distinct_requests_still_alert_each() -> None:
    run = _run([_from_pod("ResponseComplete", "c-1"), _from_pod("RequestReceived", "c-2", "10.244.3.18")])
    assert len(run.findings) == 2  # c-2 never completed: judged at the end, as an attempt


def test_an_evicted_pending_request_is_not_judged_again_on_completion(monkeypatch) -> None:
    monkeypatch.setattr(runner, "MAX_PENDING", 3)
    raw = [_from_pod("RequestReceived", f"d-{i}", f"10.244.3.{i}") for i in range(5)]  # d-0, d-1 fall out
    raw += [_from_pod("ResponseComplete", "d-0", "10.244.4.1")]
    run = _run(raw)
    assert len(run.findings) == 5 and run.events_judged == 5


def test_memory_of_judged_ids_is_bounded() -> None:
    recent = RecentSet(4)
    for i in range(100):
        recent.add(f"id-{i}")
        assert len(recent) <= 8
    assert "id-99" in recent and "id-96" in recent and "id-0" not in recent
