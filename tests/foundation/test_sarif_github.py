"""SARIF as GitHub code scanning reads it: ranked severities, stable fingerprints, base ids, origins."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import PRIVILEGED_POD, run, write

from kubeharden.model import Finding, Section, Severity
from kubeharden.reporters import sarif

DOCKER_SOCKET_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: sock, namespace: apps}
spec:
  containers:
  - name: app
    image: registry.example/app:1.0
    volumeMounts:
    - {name: docker, mountPath: /var/run/docker.sock}
  volumes:
  - name: docker
    hostPath: {path: /var/run/docker.sock}
"""


def sarif_of(*args: str) -> dict:
    result = run("scan", *args, "-f", "sarif")
    return json.loads(result.stdout)


def test_every_result_has_a_security_severity_and_rules_rank_by_their_worst_finding(tmp_path: Path) -> None:
    doc = sarif_of(str(write(tmp_path, "sock.yaml", DOCKER_SOCKET_POD)))
    run_ = doc["runs"][0]
    rules = {r["id"]: r for r in run_["tool"]["driver"]["rules"]}
    assert run_["results"]
    for res in run_["results"]:
        severity = float(res["properties"]["security-severity"])
        assert 0.0 < severity <= 10.0
        assert float(rules[res["ruleId"]]["properties"]["security-severity"]) >= severity
    critical = [r for r in run_["results"] if r["properties"]["severity"] == "critical"]
    assert critical, "a docker.sock hostPath is critical"
    assert all(float(rules[r["ruleId"]]["properties"]["security-severity"]) >= 9.0 for r in critical)


def test_fingerprints_survive_a_line_shift_and_tell_findings_apart(tmp_path: Path) -> None:
    first = sarif_of(str(write(tmp_path, "a/pod.yaml", PRIVILEGED_POD)))
    shifted = sarif_of(str(write(tmp_path, "a/pod.yaml", "# a comment\n# another\n" + PRIVILEGED_POD)))

    def prints(doc: dict) -> dict[str, tuple[str, int]]:
        return {r["partialFingerprints"]["kubeharden/v1"]:
                (r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"])
                for r in doc["runs"][0]["results"]}

    a, b = prints(first), prints(shifted)
    assert a.keys() == b.keys()
    assert len(a) == len(first["runs"][0]["results"])  # distinct per finding
    assert all(b[k][1] == a[k][1] + 2 for k in a)


def test_files_outside_the_working_directory_have_a_base_id_and_no_dot_dot(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pod = write(tmp_path, "outside/pod.yaml", PRIVILEGED_POD)
    work = tmp_path / "work"
    work.mkdir()
    write(work, "inside.yaml", PRIVILEGED_POD.replace("name: priv", "name: inside"))
    monkeypatch.chdir(work)
    doc = sarif_of(os.path.relpath(pod), "inside.yaml")
    bases = doc["runs"][0]["originalUriBaseIds"]
    by_uri = {}
    for res in doc["runs"][0]["results"]:
        artifact = res["locations"][0]["physicalLocation"]["artifactLocation"]
        assert ".." not in artifact["uri"] and artifact["uriBaseId"] in bases
        by_uri[artifact["uri"]] = artifact["uriBaseId"]
    assert by_uri["inside.yaml"] == "SRCROOT"
    assert by_uri[str(pod).lstrip("/")] == "FILEROOT"


def test_rendered_findings_point_at_the_template_file(tmp_path: Path) -> None:
    chart = tmp_path / "charts" / "web"
    template = write(chart, "templates/deployment.yaml", "kind: Deployment\n")
    finding = Finding(control_id="KH-POD-005", severity=Severity.CRITICAL, resource=None, file=str(chart),
                      line=40, path="spec.template.spec.containers[0].securityContext.privileged",
                      message="m", remediation="r", evidence={"origin": "shop/templates/deployment.yaml"},
                      section=Section.POD)
    location = sarif._location(finding)
    assert location["physicalLocation"]["artifactLocation"]["uri"].endswith("templates/deployment.yaml")
    assert "region" not in location["physicalLocation"]  # line 40 is the rendered text's
    assert template.exists()
    finding.evidence = {"origin": "/apis/apps/v1/namespaces/a/deployments/web"}
    assert "physicalLocation" in sarif._location(finding)  # the chart directory then
