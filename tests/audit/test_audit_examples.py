"""Every detector's good and bad example events behave as documented; the catalog knows detectors."""

from __future__ import annotations

import pytest
from audit_helpers import ids, judge

from kubeharden.audit.detectors import all_detectors
from kubeharden.catalog import all_controls, get_control
from kubeharden.model import Section, Status

DETECTORS = all_detectors()
EXAMPLES = [(d, i, ex) for d in DETECTORS for i, ex in enumerate(d.examples)]


def test_all_twenty_detectors_are_listed() -> None:
    assert [d.id for d in DETECTORS] == [f"D{i:02d}" for i in range(1, 21)]
    implemented = {d.id for d in DETECTORS if d.implemented}
    assert implemented == {f"D{i:02d}" for i in (*range(1, 16), 19, 20)}
    for d in DETECTORS:
        if not d.implemented:
            assert d.input_needed


def test_every_implemented_detector_has_a_bad_and_a_good_example() -> None:
    for d in DETECTORS:
        if d.implemented:
            assert {ex.bad for ex in d.examples} == {True, False}, d.id


@pytest.mark.parametrize(("detector", "index", "example"), EXAMPLES,
                         ids=[f"{d.id}-{'bad' if ex.bad else 'good'}{i}" for d, i, ex in EXAMPLES])
def test_example(detector, index, example) -> None:
    run = judge(example.events, [detector.id], example.settings, example.baseline)
    assert not run.errors, run.errors
    found = ids(run)
    if example.bad:
        assert detector.id in found, f"{detector.id}: bad example {example.description!r} did not alert"
        for f in run.findings:
            assert f.evidence["auditID"] and f.evidence["user"] and f.evidence["correlation"]
            assert f.file == "test.log" and f.line is not None
            assert f.remediation
    else:
        assert not found, [f.message for f in run.findings]


def test_detectors_are_controls_of_the_catalog() -> None:
    controls = {c.id: c for c in all_controls()}
    for d in DETECTORS:
        c = controls[d.id]
        assert c.section is Section.LOGGING and c.profiles == frozenset({"audit"})
        assert c.title == d.title and c.guidance == d.guidance and c.fix == d.response
    assert get_control("d01") is controls["D01"]
    assert controls["D16"].manual and "metrics" in controls["D16"].manual
    # the scan's profile is untouched
    assert not any(c.id.startswith("D") for c in all_controls() if "nsa" in c.profiles)


def test_result_statuses() -> None:
    run = judge([], None)
    result = run.result()
    status = {r.control.id: r for r in result.controls}
    assert status["D16"].status is Status.NOT_ASSESSED and "metrics" in (status["D16"].reason or "")
    assert status["D01"].status is Status.NOT_ASSESSED and "Request" in (status["D01"].reason or "")
    assert "baseline" in (status["D15"].reason or "")
