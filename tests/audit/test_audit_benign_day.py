"""A small cluster's generated day: no alert on its benign part; the attacks in it are caught."""

from __future__ import annotations

from audit_helpers import ids, judge

from kubeharden.audit.baseline import Baseline
from kubeharden.audit.event import AuditEvent
from kubeharden.audit.synthetic import SETTINGS, attacks, benign_day


def _baseline() -> dict:
    base = Baseline()
    base.learn_all(AuditEvent(e) for e in benign_day(6000, seed=1))  # yesterday
    return {"identities": {k: v.to_dict() for k, v in base.identities.items()}}


def test_benign_day_raises_no_alert() -> None:
    run = judge(benign_day(8000, seed=2), settings=SETTINGS, baseline=_baseline())
    assert not run.errors
    assert ids(run) == [], [f"{f.control_id}: {f.message}" for f in run.findings[:10]]
    result = run.result()
    assessed = {r.control.id for r in result.controls if r.status.value == "pass"}
    assert {"D01", "D03", "D04", "D05", "D06", "D07", "D13", "D15", "D19", "D20"} <= assessed


def test_the_attacks_of_the_day_are_caught() -> None:
    events = sorted([*benign_day(3000, seed=3), *attacks()], key=lambda e: e["requestReceivedTimestamp"])
    found = set(ids(judge(events, settings=SETTINGS, baseline=_baseline())))
    assert {"D01", "D02", "D03", "D04", "D05", "D06", "D07", "D08", "D09", "D12", "D13", "D14", "D19",
            "D20"} <= found
