"""The reader: JSON lines, gzip, stdin-like streams, EventList documents, merged files, bad lines."""

from __future__ import annotations

import gzip
import io

import orjson
from audit_helpers import jsonl

from kubeharden.audit.detectors._events import event
from kubeharden.audit.reader import ReaderLimits, ReaderStats, iter_events, iter_stream
from kubeharden.audit.runner import AuditRun, run_events
from kubeharden.audit.settings import AuditSettings


def _events(n: int, minute: int = 0, second_step: int = 2) -> list[dict]:
    return [event("get", "pods", name=f"p{i}", time=f"2026-11-02T10:{minute:02d}:{i * second_step:02d}.000000Z")
            for i in range(n)]


def test_json_lines_with_bad_lines_counted_with_file_and_line(tmp_path) -> None:
    good = _events(3)
    text = jsonl(good[:1]) + b"garbage\n" + b"[1, 2]\n" + orjson.dumps({"kind": "Event", "verb": "get"}) + b"\n" \
        + jsonl(good[1:]) + b'{"kind": "Event", "stage": "Resp'
    path = tmp_path / "audit.log"
    path.write_bytes(text)
    stats = ReaderStats()
    events = list(iter_events([str(path)], stats))
    assert [e.name for e in events] == ["p0", "p1", "p2"]
    assert [e.line for e in events] == [1, 5, 6]
    assert stats.problems == {"non-JSON lines": 1, "not an event": 2, "missing fields": 1, "truncated lines": 1}
    lines = {(p.source, p.line) for p in stats.reported}
    assert (str(path), 2) in lines and (str(path), 7) in lines


def test_oversized_line_is_skipped_and_reading_goes_on(tmp_path) -> None:
    big = event("create", "configmaps", body={"data": {"x": "a" * 5000}})
    path = tmp_path / "audit.log"
    path.write_bytes(jsonl([big, *_events(2)]))
    stats = ReaderStats()
    events = list(iter_events([str(path)], stats, ReaderLimits(max_line_bytes=2048)))
    assert len(events) == 2 and events[0].line == 2
    assert stats.problems["oversized lines"] == 1 and stats.reported[0].line == 1


def test_gzip_and_merge_in_time_order(tmp_path) -> None:
    a = tmp_path / "a.log.gz"
    b = tmp_path / "b.log"
    a.write_bytes(gzip.compress(jsonl(_events(5, second_step=4))))  # 00, 04, 08 ...
    b.write_bytes(jsonl([event("get", "pods", name=f"b{i}", time=f"2026-11-02T10:00:{i * 4 + 2:02d}.000000Z")
                         for i in range(5)]))
    stats = ReaderStats()
    names = [e.name for e in iter_events([str(a), str(b)], stats)]
    assert names == ["p0", "b0", "p1", "b1", "p2", "b2", "p3", "b3", "p4", "b4"]
    assert stats.files == 2 and stats.events == 10


def test_eventlist_pretty_document_and_one_per_line() -> None:
    items = _events(3)
    pretty = orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items},
                          option=orjson.OPT_INDENT_2)
    stats = ReaderStats()
    assert [e.name for e in iter_stream(io.BufferedReader(io.BytesIO(pretty)), "list.json", stats)] == \
        ["p0", "p1", "p2"]
    lines = orjson.dumps({"kind": "EventList", "items": items[:2]}) + b"\n" + orjson.dumps(
        {"kind": "EventList", "items": items[2:]}) + b"\n"
    stats = ReaderStats()
    assert len(list(iter_stream(io.BufferedReader(io.BytesIO(lines)), "batches.jsonl", stats))) == 3


def test_v1beta1_timestamp_field_is_read() -> None:
    old = event("get", "pods")
    old["apiVersion"] = "audit.k8s.io/v1beta1"
    del old["requestReceivedTimestamp"], old["stageTimestamp"]
    old["timestamp"] = "2026-11-02T10:00:00Z"
    stats = ReaderStats()
    [e] = iter_stream(io.BufferedReader(io.BytesIO(jsonl([old]))), "old.log", stats)
    assert e.time is not None and e.time > 1.7e9


def test_stages_of_one_request_make_one_alert() -> None:
    complete = event("create", "pods", subresource="exec", code=101, audit_id="same-id")
    received = dict(complete, stage="RequestReceived")
    del received["responseStatus"]
    started = dict(complete, stage="ResponseStarted")
    run = run_events(_wrap([received, started, complete]), AuditSettings())
    assert [f.control_id for f in run.findings] == ["D05"]
    assert run.events_deduplicated == 2


def test_request_received_without_completion_is_judged_at_the_end() -> None:
    received = event("create", "clusterrolebindings", group="rbac.authorization.k8s.io", name="x", namespace=None,
                     stage="RequestReceived", body={"roleRef": {"name": "cluster-admin"}, "subjects": [
                         {"kind": "User", "name": "system:anonymous"}]})
    del received["responseStatus"]
    run = AuditRun([], AuditSettings())
    run.feed_all(_wrap([received]))
    assert run.events_judged == 0 and len(run.pending) == 1
    run.flush()
    assert run.events_judged == 1 and not run.pending


def test_pending_table_is_bounded() -> None:
    from kubeharden.audit import runner

    run = AuditRun([], AuditSettings())
    for i in range(runner.MAX_PENDING + 50):
        e = event("get", "pods", stage="RequestReceived", audit_id=f"id-{i}")
        run.feed(next(iter(_wrap([e]))))
    assert len(run.pending) == runner.MAX_PENDING and run.events_judged == 50


def _wrap(raw: list[dict]):
    from kubeharden.audit.event import AuditEvent

    return [AuditEvent(e, "t.log", i + 1) for i, e in enumerate(raw)]
