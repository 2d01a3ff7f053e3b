"""`kubeharden audit` end to end: formats, redaction, exit codes, settings, exceptions, policy, baseline."""

from __future__ import annotations

import json

import pytest
from audit_helpers import jsonl
from click.testing import CliRunner

from kubeharden.audit.detectors._events import deployment, event, pod_template
from kubeharden.cli import cli

SECRET = "hunter2-s3cr3t-value"


def _log(tmp_path, events, name="audit.log"):
    path = tmp_path / name
    path.write_bytes(jsonl(events))
    return str(path)


def _attack():
    body = deployment(pod_template([{"name": "web", "image": "docker.io/evil/web", "env": [
        {"name": "PASSWORD", "value": SECRET}], "securityContext": {"privileged": True}}]),
        annotations={"kubectl.kubernetes.io/last-applied-configuration": json.dumps({"password": SECRET})})
    secret_read = event("get", "secrets", name="db", user="mallory", response={
        "kind": "Secret", "data": {"password": SECRET}, "stringData": {"p": SECRET}})
    review = event("create", "tokenreviews", group="authentication.k8s.io", name="", namespace=None, user="mallory",
                   body={"spec": {"token": SECRET}}, response={"status": {"user": {"username": "x"}}})
    return [event("create", "deployments", group="apps", body=body), secret_read, review]


@pytest.mark.parametrize("fmt", ["table", "json", "sarif", "junit", "markdown", "html", "jsonl"])
def test_no_secret_value_in_any_format(tmp_path, fmt) -> None:
    log = _log(tmp_path, _attack())
    out = tmp_path / f"report.{fmt}"
    result = CliRunner().invoke(cli, ["audit", log, "--format", fmt, "-o", str(out), "--fail-on", "none"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "D01" in text
    assert SECRET not in text and SECRET not in result.output


def test_json_report_evidence_and_exit_code(tmp_path) -> None:
    log = _log(tmp_path, _attack())
    result = CliRunner().invoke(cli, ["audit", log, "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    d01 = next(f for f in report["findings"] if f["control_id"] == "D01" and "privileged" in f["message"])
    ev = d01["evidence"]
    assert ev["user"] == "alice@example.com" and ev["verb"] == "create" and ev["responseCode"] == 201
    assert ev["where"].endswith("audit.log:1") and ev["auditID"] and ev["sourceIPs"] == ["198.51.100.20"]
    assert d01["source"]["line"] == 1 and d01["value"] is True
    assert ev["field"] == "spec.template.spec.containers[0].securityContext.privileged"
    statuses = {c["id"]: c["status"] for c in report["controls"]}
    assert statuses["D01"] == "fail" and statuses["D16"] == "not_assessed"
    assert any("policy coverage: not assessed" in n for n in report["notes"])


def test_since_until_and_stdin(tmp_path) -> None:
    events = [event("create", "pods", subresource="exec", code=101, time="2026-11-01T09:00:00Z"),
              event("create", "pods", subresource="exec", code=101, time="2026-11-03T09:00:00Z")]
    result = CliRunner().invoke(cli, ["audit", "-", "--since", "2026-11-02T00:00:00Z", "--format", "jsonl"],
                                input=jsonl(events))
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["control_id"] for x in lines] == ["D05"]
    assert lines[0]["evidence"]["time"].startswith("2026-11-03")


def test_settings_unknown_key_is_an_error(tmp_path) -> None:
    settings = tmp_path / "s.yaml"
    settings.write_text("podCIDRs: [10.244.0.0/16]\npodCidrs: [x]\n")
    result = CliRunner().invoke(cli, ["audit", _log(tmp_path, []), "--settings", str(settings)])
    assert result.exit_code == 2 and "podCidrs" in result.output
    settings.write_text("forbiddenBurst: {threshold: 3, windowSeconds: 10}\npodCIDRs: [not-an-ip]\n")
    result = CliRunner().invoke(cli, ["audit", _log(tmp_path, []), "--settings", str(settings)])
    assert result.exit_code == 2 and "not-an-ip" in result.output


def test_burst_threshold_from_settings(tmp_path) -> None:
    settings = tmp_path / "s.yaml"
    settings.write_text("forbiddenBurst: {threshold: 3, windowSeconds: 10}\n")
    denials = [event("get", "secrets", name=f"s{i}", code=403, user="eve", time=f"2026-11-02T10:00:0{i}Z")
               for i in range(3)]
    result = CliRunner().invoke(cli, ["audit", _log(tmp_path, denials), "--settings", str(settings), "-f", "jsonl"])
    assert [json.loads(x)["control_id"] for x in result.stdout.splitlines()] == ["D06"]


def test_exceptions_with_user_selector(tmp_path) -> None:
    exc = tmp_path / "exceptions.yaml"
    exc.write_text("exceptions:\n- control: D05\n  user: 'oncall-*'\n  resource: {namespace: apps}\n"
                   "  reason: on-call debugging\n  owner: sre\n")
    events = [event("create", "pods", subresource="exec", code=101, user="oncall-bob"),
              event("create", "pods", subresource="exec", code=101, user="mallory")]
    result = CliRunner().invoke(cli, ["audit", _log(tmp_path, events), "--exceptions", str(exc), "-f", "json"])
    findings = json.loads(result.stdout)["findings"]
    excepted = {f["evidence"]["user"]: f["excepted"] for f in findings}
    assert excepted == {"oncall-bob": True, "mallory": False}
    exc.write_text("exceptions:\n- control: D99\n  reason: typo\n")
    result = CliRunner().invoke(cli, ["audit", _log(tmp_path, events), "--exceptions", str(exc)])
    assert result.exit_code == 2 and "D99" in result.output


def test_refuses_to_overwrite_without_force(tmp_path) -> None:
    log = _log(tmp_path, _attack())
    out = tmp_path / "alerts.json"
    out.write_text("keep me")
    result = CliRunner().invoke(cli, ["audit", log, "-o", str(out)])
    assert result.exit_code == 2 and out.read_text() == "keep me"
    result = CliRunner().invoke(cli, ["audit", log, "-o", str(out), "--force", "--fail-on", "none"])
    assert result.exit_code == 0 and json.loads(out.read_text())["findings"]
    result = CliRunner().invoke(cli, ["audit", log, "-f", "json", "-o", log, "--force"])
    assert result.exit_code == 2 and "input" in result.output


def test_list_shows_all_twenty() -> None:
    result = CliRunner().invoke(cli, ["audit", "--list", "--format", "json"])
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == [f"D{i:02d}" for i in range(1, 21)]
    assert {r["id"] for r in rows if r["status"] != "implemented"} == {"D16", "D17", "D18"}
    assert all(r["inputNeeded"] for r in rows if r["status"] != "implemented")
    explain = CliRunner().invoke(cli, ["explain", "D01"])
    assert explain.exit_code == 0 and "privileged" in explain.output
    controls = CliRunner().invoke(cli, ["controls", "--profile", "audit", "--format", "json"])
    assert len(json.loads(controls.stdout)) == 20


POLICY_BLIND = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: [system:anonymous]
- level: Metadata
  resources: [{group: "", resources: [secrets, configmaps]}]
- level: Metadata
"""
POLICY_GOOD = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  resources: [{group: "", resources: [secrets, configmaps]}, {group: authentication.k8s.io, resources: [tokenreviews]}]
- level: RequestResponse
  resources:
  - {group: rbac.authorization.k8s.io}
  - {group: admissionregistration.k8s.io}
  - {group: "", resources: [namespaces, serviceaccounts/token]}
- level: Request
  resources:
  - {group: "", resources: [pods, pods/exec, pods/attach, pods/portforward, pods/ephemeralcontainers, nodes/proxy,
                            replicationcontrollers, podtemplates]}
  - {group: apps}
  - {group: batch}
- level: Metadata
"""


def test_policy_coverage(tmp_path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY_BLIND)
    result = CliRunner().invoke(cli, ["audit", _log(tmp_path, []), "--policy", str(policy), "-f", "json",
                                      "--fail-on", "none"])
    report = json.loads(result.stdout)
    blind = {f["control_id"]: f["message"] for f in report["findings"]
             if f.get("evidence", {}).get("kind") == "policy-coverage"}
    assert {"D01", "D02", "D08", "D09", "D10", "D11", "D12", "D14"} <= set(blind)
    assert "below Request" in blind["D01"]
    assert "system:anonymous" in blind["D07"]
    assert "D05" not in blind and "D13" not in blind
    policy.write_text(POLICY_GOOD)
    result = CliRunner().invoke(cli, ["audit", _log(tmp_path, []), "--policy", str(policy), "-f", "json"])
    report = json.loads(result.stdout)
    assert not [f for f in report["findings"] if f.get("evidence", {}).get("kind") == "policy-coverage"]
    assert result.exit_code == 0


def test_learn_then_baseline(tmp_path) -> None:
    usual = [event("get", "pods", name=f"p{i}", time=f"2026-11-01T{9 + i % 8:02d}:00:00Z") for i in range(40)]
    base_log = _log(tmp_path, usual, "yesterday.log")
    baseline = tmp_path / "baseline.json"
    result = CliRunner().invoke(cli, ["audit", "learn", base_log, "-o", str(baseline)])
    assert result.exit_code == 0, result.output
    assert "alice@example.com" in json.loads(baseline.read_text())["identities"]
    again = CliRunner().invoke(cli, ["audit", "learn", base_log, "-o", str(baseline)])
    assert again.exit_code == 2  # exists, no --force
    today = [event("get", "pods", name="p1", time="2026-11-02T10:00:00Z"),
             event("delete", "namespaces", name="prod", namespace=None, ips=("192.0.2.66",),
                   time="2026-11-02T03:00:00Z", agent="curl/8.5.0")]
    result = CliRunner().invoke(cli, ["audit", _log(tmp_path, today), "--baseline", str(baseline), "-f", "jsonl",
                                      "-d", "D15"])
    alerts = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(alerts) == 1 and alerts[0]["severity"] == "high"
    assert alerts[0]["source"]["line"] == 2


def test_generate_audit_webhook_config(tmp_path) -> None:
    import yaml

    out = tmp_path / "webhook.kubeconfig"
    result = CliRunner().invoke(cli, ["generate", "audit-webhook-config", "--server", "https://10.0.0.5:8443/",
                                      "--ca-file", "/etc/kubernetes/audit/ca.pem", "-o", str(out), "--flags"])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(out.read_text())
    assert doc["clusters"][0]["cluster"]["server"] == "https://10.0.0.5:8443/"
    assert "--audit-webhook-config-file=/etc/kubernetes/audit/webhook.kubeconfig" in result.output
    bad = CliRunner().invoke(cli, ["generate", "audit-webhook-config", "--server", "http://x", "--ca-file", "/c"])
    assert bad.exit_code == 2 and "https" in bad.output
