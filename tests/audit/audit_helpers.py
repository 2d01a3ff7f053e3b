"""Shared helpers for the audit tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from kubeharden.audit.baseline import Baseline
from kubeharden.audit.detectors import get_detector
from kubeharden.audit.event import AuditEvent
from kubeharden.audit.runner import AuditRun, run_events
from kubeharden.audit.settings import settings_from_mapping


def judge(events: Iterable[dict[str, Any]], detector_ids: Iterable[str] | None = None,
          settings: dict[str, Any] | None = None, baseline: dict[str, Any] | None = None) -> AuditRun:
    dets = None
    if detector_ids is not None:
        dets = [get_detector(i) for i in detector_ids]
        assert all(dets)
    return run_events((AuditEvent(e, "test.log", i + 1) for i, e in enumerate(events)),
                      settings_from_mapping(settings or {}), dets,  # type: ignore[arg-type]
                      baseline=Baseline.from_dict(baseline) if baseline is not None else None)


def ids(run: AuditRun) -> list[str]:
    return [f.control_id for f in run.findings if not f.excepted]


def jsonl(events: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)
