"""The webhook through a real HTTPS client: verdicts, modes, UPDATE/DELETE/CONNECT, malformed bodies,
certificate reload mid-traffic, timeouts, metrics and shutdown with reviews in flight. Loopback only;
every loop is bounded."""

from __future__ import annotations

import copy
import os
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from admission_helpers import EXAMPLES, Client, evaluator, load_docs, running, write_certs

from kubeharden.admission.evaluate import MAX_WARNING_CHARS, AdmissionEvaluator, AdmissionPolicy, Decision
from kubeharden.admission.review import AdmissionRequest, review_body
from kubeharden.inventory import WORKLOAD_KINDS
from kubeharden.model import Severity

INSECURE = sorted((EXAMPLES / "insecure-shop").glob("*.yaml"))


def _workloads(paths: list[Path]) -> list[dict[str, Any]]:
    return [d for p in paths for d in load_docs(p) if d.get("kind") in WORKLOAD_KINDS]


def _privileged_pod(name: str = "p", privileged: bool = True, replicas_label: str = "1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "apps", "labels": {"rev": replicas_label}},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0",
                                     "securityContext": {"privileged": privileged}}]}}


def test_insecure_examples_denied_hardened_admitted(tmp_path: Path) -> None:
    workloads = _workloads(INSECURE)
    assert len(workloads) >= 3
    with running(tmp_path) as (server, ca):
        client = Client(server.address[1], ca)  # one keep-alive connection for all of them
        for i, obj in enumerate(workloads):
            status, review = client.post(review_body(obj, uid=f"uid-{i}"))
            response = review["response"]
            assert status == 200 and response["uid"] == f"uid-{i}"
            assert response["allowed"] is False, obj["metadata"]["name"]
            message = response["status"]["message"]
            assert response["status"]["code"] == 403
            assert "KH-POD-" in message and "spec.template.spec" in message and "Fix:" in message
            findings = orjson.loads(response["auditAnnotations"]["findings"])
            assert {f["control"] for f in findings} >= {"KH-POD-002"}
        hardened = _workloads([EXAMPLES / "hardened-workload.yaml"])
        assert hardened
        for obj in hardened:
            status, review = client.post(review_body(obj, uid="ok"))
            assert status == 200 and review["response"]["allowed"] is True, review["response"].get("status")
        status, metrics = client.get("/metrics")
        client.close()
    text = metrics.decode()
    assert status == 200
    assert 'outcome="denied"' in text and 'kubeharden_admission_denials_total{control="KH-POD-005"}' in text
    assert f'kubeharden_admission_duration_seconds_count {len(workloads) + len(hardened)}' in text


def test_warn_and_audit_modes(tmp_path: Path) -> None:
    obj = _workloads(INSECURE)[0]
    with running(tmp_path, evaluator(policy=AdmissionPolicy(mode="warn"))) as (server, ca):
        client = Client(server.address[1], ca)
        _, review = client.post(review_body(obj))
        client.close()
    response = review["response"]
    assert response["allowed"] is True and "status" not in response
    assert response["warnings"] and all(len(w) <= MAX_WARNING_CHARS for w in response["warnings"])
    assert any(w.startswith("KH-POD-") for w in response["warnings"])
    audit_dir = tmp_path / "audit"
    audit_dir.mkdir()
    with running(audit_dir, evaluator(policy=AdmissionPolicy(mode="audit"))) as (server, ca):
        client = Client(server.address[1], ca)
        _, review = client.post(review_body(obj))
        client.close()
    response = review["response"]
    assert response["allowed"] is True and "warnings" not in response
    assert orjson.loads(response["auditAnnotations"]["findings"])


def test_deny_at_severity_splits_deny_and_warn(tmp_path: Path) -> None:
    pod = _privileged_pod(privileged=False)  # medium findings only (no critical/high)
    with running(tmp_path, evaluator(policy=AdmissionPolicy(deny_at=Severity.CRITICAL))) as (server, ca):
        client = Client(server.address[1], ca)
        _, allowed = client.post(review_body(pod))
        _, denied = client.post(review_body(_privileged_pod()))
        client.close()
    assert allowed["response"]["allowed"] is True and allowed["response"]["warnings"]
    assert denied["response"]["allowed"] is False
    assert "KH-POD-005" in denied["response"]["status"]["message"]
    assert "KH-POD-004" not in denied["response"]["status"]["message"]  # medium: a warning, not a denial


def test_update_judges_new_findings_and_passes_old_ones(tmp_path: Path) -> None:
    old = _privileged_pod("p", privileged=True, replicas_label="1")
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["labels"]["rev"] = "2"
    clean_old = _privileged_pod("q", privileged=False)
    made_privileged = _privileged_pod("q", privileged=True)
    with running(tmp_path) as (server, ca):
        client = Client(server.address[1], ca)
        _, same = client.post(review_body(relabelled, operation="UPDATE", old=old))
        _, worse = client.post(review_body(made_privileged, operation="UPDATE", old=clean_old))
        client.close()
    assert same["response"]["allowed"] is True  # the finding was there before: warned, not denied
    assert any("already present" in w and "KH-POD-005" in w for w in same["response"]["warnings"])
    assert worse["response"]["allowed"] is False and "KH-POD-005" in worse["response"]["status"]["message"]
    strict = evaluator(policy=AdmissionPolicy(deny_existing=True))
    request = AdmissionRequest("u", "UPDATE", {"kind": "Pod"}, {}, "", "apps", "p", relabelled, old, "me", (), False)
    assert strict.evaluate(request).allowed is False


def test_delete_and_connect_pass_through(tmp_path: Path) -> None:
    pod = _privileged_pod()
    with running(tmp_path) as (server, ca):
        client = Client(server.address[1], ca)
        _, deleted = client.post(review_body(None, operation="DELETE", old=pod))
        _, connected = client.post(review_body(pod, operation="CONNECT", sub_resource="exec"))
        client.close()
    for review in (deleted, connected):
        assert review["response"]["allowed"] is True and "warnings" not in review["response"]


def test_exempt_namespace_and_user(tmp_path: Path) -> None:
    pod = _privileged_pod()
    policy = AdmissionPolicy(exempt_namespaces=frozenset({"apps"}),
                             exempt_users=frozenset({"system:serviceaccount:ci:deployer"}))
    with running(tmp_path, evaluator(policy=policy)) as (server, ca):
        client = Client(server.address[1], ca)
        _, by_namespace = client.post(review_body(pod))
        other = copy.deepcopy(pod)
        other["metadata"]["namespace"] = "shop"
        _, by_user = client.post(review_body(other, username="system:serviceaccount:ci:deployer"))
        _, judged = client.post(review_body(other, username="alice"))
        client.close()
    assert by_namespace["response"]["allowed"] is True and by_user["response"]["allowed"] is True
    assert judged["response"]["allowed"] is False


def test_malformed_bodies_get_400_with_a_reason_and_the_server_stays_up(tmp_path: Path) -> None:
    pod = _privileged_pod()
    wrong_version = orjson.loads(review_body(pod))
    wrong_version["apiVersion"] = "admission.k8s.io/v1beta1"
    no_uid = orjson.loads(review_body(pod))
    del no_uid["request"]["uid"]
    no_object = orjson.loads(review_body(pod))
    no_object["request"]["object"] = "a string"
    cases = [b"not json", b"[1, 2]", b"{" * 5000, orjson.dumps(wrong_version), orjson.dumps(no_uid),
             orjson.dumps(no_object), b"\xff\xfe\x00"]
    with running(tmp_path, max_body=64 * 1024) as (server, ca):
        for body in cases:
            client = Client(server.address[1], ca)
            status, answer = client.post(body)
            client.close()
            assert status == 400 and isinstance(answer, dict) and answer["error"], body[:20]
        client = Client(server.address[1], ca)
        status, answer = client.post(b"x" * (65 * 1024))
        assert status == 413 and "limit" in answer["error"]
        client.close()
        client = Client(server.address[1], ca)
        client.conn.putrequest("POST", "/validate")
        client.conn.putheader("Transfer-Encoding", "chunked")
        client.conn.endheaders()
        client.conn.send(b"5\r\nhello\r\n0\r\n\r\n")
        response = client.conn.getresponse()
        assert response.status == 411 and b"Content-Length" in response.read()
        client.close()
        client = Client(server.address[1], ca)
        assert client.post(review_body(pod), path="/mutate")[0] == 404
        client.close()
        client = Client(server.address[1], ca)
        assert client.get("/healthz") == (200, b"ok\n") and client.get("/readyz")[0] == 200
        status, review = client.post(review_body(pod))
        assert status == 200 and review["response"]["allowed"] is False
        status, metrics = client.get("/metrics")
        client.close()
    assert 'kubeharden_admission_bad_requests_total{code="400"} 7' in metrics.decode()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_below_1_2_is_refused(tmp_path: Path) -> None:
    with running(tmp_path) as (server, ca):
        context = ssl.create_default_context(cafile=ca)
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = ssl.TLSVersion.TLSv1_1
        import http.client

        conn = http.client.HTTPSConnection("localhost", server.address[1], context=context, timeout=5)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            conn.request("GET", "/healthz")
            conn.getresponse()
        conn.close()


def test_certificate_reload_mid_traffic(tmp_path: Path) -> None:
    with running(tmp_path) as (server, old_ca):
        port = server.address[1]
        errors: list[BaseException] = []
        answered = 0
        stop = threading.Event()

        def traffic() -> None:  # keep-alive requests on one connection throughout the rotation
            nonlocal answered
            client = Client(port, old_ca)
            try:
                for _ in range(2000):
                    if stop.is_set():
                        break
                    status, _ = client.post(review_body(_privileged_pod()))
                    assert status == 200
                    answered += 1
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                client.close()

        worker = threading.Thread(target=traffic)
        worker.start()
        time.sleep(0.3)
        new_dir = tmp_path / "new"
        new_dir.mkdir()
        new_ca, new_cert, new_key = write_certs(new_dir)
        # as the kubelet updates a mounted Secret: the new files appear under the old names at once
        os.replace(new_key, tmp_path / "tls.key")
        os.replace(new_cert, tmp_path / "tls.crt")
        time.sleep(0.1)
        fresh = Client(port, new_ca)
        assert fresh.get("/healthz")[0] == 200  # a new connection gets the new certificate
        fresh.close()
        stale = Client(port, old_ca)
        with pytest.raises(ssl.SSLCertVerificationError):
            stale.get("/healthz")
        stale.close()
        time.sleep(0.2)
        stop.set()
        worker.join(timeout=30)
        assert not errors and answered > 0
        assert server.tls.reloads == 1


class _SlowEvaluator(AdmissionEvaluator):
    def __init__(self, delay: float) -> None:
        super().__init__([], evaluator().settings)
        self.delay = delay
        self.started = threading.Semaphore(0)

    def evaluate(self, request: AdmissionRequest) -> Decision:
        self.started.release()
        time.sleep(self.delay)
        return Decision(request.uid, True)


def test_shutdown_drains_reviews_in_flight(tmp_path: Path) -> None:
    slow = _SlowEvaluator(0.6)
    results: list[int] = []
    with running(tmp_path, slow) as (server, ca):
        port = server.address[1]

        def review() -> None:
            client = Client(port, ca)
            status, answer = client.post(review_body(_privileged_pod()))
            results.append(status if answer["response"]["allowed"] else -1)
            client.close()

        idle = Client(port, ca)  # an idle keep-alive connection must not hold up the shutdown
        assert idle.get("/healthz")[0] == 200
        threads = [threading.Thread(target=review) for _ in range(3)]
        for t in threads:
            t.start()
        for _ in range(3):
            assert slow.started.acquire(timeout=10)
        began = time.monotonic()
        assert server.stop(timeout=10) is True
        assert time.monotonic() - began < 5
        for t in threads:
            t.join(timeout=10)
        assert results == [200, 200, 200]
        with pytest.raises(OSError):
            Client(port, ca, timeout=2).get("/healthz")
        idle.close()


def test_every_review_is_answered_within_its_deadline(tmp_path: Path) -> None:
    slow = _SlowEvaluator(3.0)
    with running(tmp_path, slow, timeout_seconds=1) as (server, ca):
        client = Client(server.address[1], ca)
        began = time.monotonic()
        status, review = client.post(review_body(_privileged_pod()))
        elapsed = time.monotonic() - began
        _, metrics = client.get("/metrics")
        client.close()
    assert status == 200 and elapsed < 1.0
    assert review["response"]["allowed"] is False and "did not finish" in review["response"]["status"]["message"]
    assert "kubeharden_admission_timeouts_total 1" in metrics.decode()
