"""Vulnerability report readers (Trivy image and k8s, Grype, CycloneDX 1.4-1.6, SARIF) on report files
written to their documented schemas, and the join to workloads with the context that ranks them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubeharden.catalog import Settings
from kubeharden.images.vulns import ReportError, parse_report, read_report
from kubeharden.model import Status
from kubeharden.scanner import ScanRequest, run_scan

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DIGEST = "sha256:" + "1" * 64


def trivy_image(name: str, vulns: list[tuple[str, str, str, str, str]], digests: tuple[str, ...] = ()) -> dict:
    return {
        "SchemaVersion": 2, "CreatedAt": "2099-01-01T10:00:00.123456789Z", "ArtifactName": name,
        "ArtifactType": "container_image",
        "Metadata": {"ImageID": "sha256:" + "c" * 64, "RepoTags": [name], "RepoDigests": [f"x@{d}" for d in digests]},
        "Results": [{"Target": f"{name} (debian 12.5)", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
            {"VulnerabilityID": v, "PkgName": p, "InstalledVersion": i, "FixedVersion": f, "Severity": s,
             "Title": "t", "PrimaryURL": f"https://avd.aquasec.com/nvd/{v.lower()}"} for v, p, i, f, s in vulns]}],
    }


def grype(user_input: str, vulns: list[tuple[str, str, str, list[str], str]], digest: str | None = None) -> dict:
    return {
        "matches": [{"vulnerability": {"id": v, "severity": s, "dataSource": "https://nvd.nist.gov",
                                       "fix": {"versions": f, "state": "fixed" if f else "not-fixed"}},
                     "relatedVulnerabilities": [],
                     "artifact": {"name": p, "version": i, "type": "deb"}} for v, p, i, f, s in vulns],
        "source": {"type": "image", "target": {"userInput": user_input, "tags": [user_input],
                                               "repoDigests": [f"x@{digest}"] if digest else [],
                                               "manifestDigest": digest}},
        "descriptor": {"name": "grype", "version": "0.80.0", "timestamp": "2099-01-01T00:00:00Z"},
    }


def test_trivy_image_report() -> None:
    (scan,) = parse_report(trivy_image("nginx:1.25", [("CVE-2024-1", "openssl", "3.0.1", "3.0.13", "HIGH")],
                                       (DIGEST,)))
    spec = scan["spec"]
    assert spec["references"] == ["docker.io/library/nginx:1.25"] and spec["digests"] == [DIGEST]
    assert spec["vulnerabilities"][0] | {} == {"id": "CVE-2024-1", "package": "openssl", "installed": "3.0.1",
                                               "fixed": "3.0.13", "severity": "high", "title": "t",
                                               "url": "https://avd.aquasec.com/nvd/cve-2024-1"}


def test_trivy_k8s_report_per_resource_and_image() -> None:
    doc = {"ClusterName": "prod", "Resources": [{
        "Namespace": "shop", "Kind": "Deployment", "Name": "web",
        "Metadata": [{"RepoTags": ["shop/web:1.0"], "RepoDigests": [f"shop/web@{DIGEST}"]}],
        "Results": [{"Target": "shop/web:1.0 (alpine 3.19)", "Class": "os-pkgs",
                     "Vulnerabilities": [{"VulnerabilityID": "CVE-2024-2", "PkgName": "musl",
                                          "InstalledVersion": "1.2", "FixedVersion": "", "Severity": "CRITICAL"}]}]}]}
    (scan,) = parse_report(doc)
    assert scan["spec"]["workload"] == {"kind": "Deployment", "namespace": "shop", "name": "web"}
    assert scan["spec"]["references"] == ["docker.io/shop/web:1.0"] and scan["spec"]["digests"] == [DIGEST]
    assert scan["spec"]["vulnerabilities"][0]["severity"] == "critical"


def test_grype_report_with_ghsa_aliasing_a_cve() -> None:
    doc = grype("registry.example/app:2", [("GHSA-aaaa-bbbb-cccc", "lodash", "4.17.0", ["4.17.21"], "High")],
                DIGEST)
    doc["matches"][0]["relatedVulnerabilities"] = [{"id": "CVE-2021-23337"}]
    (scan,) = parse_report(doc)
    vuln = scan["spec"]["vulnerabilities"][0]
    assert vuln["id"] == "CVE-2021-23337 (GHSA-aaaa-bbbb-cccc)" and vuln["fixed"] == "4.17.21"
    assert scan["spec"]["digests"] == [DIGEST]


@pytest.mark.parametrize("version", ["1.4", "1.5", "1.6"])
def test_cyclonedx_vulnerabilities(version) -> None:
    doc = {
        "bomFormat": "CycloneDX", "specVersion": version,
        "metadata": {"timestamp": "2099-01-01T00:00:00Z", "component": {
            "type": "container", "name": "nginx",
            "purl": f"pkg:oci/nginx@{DIGEST.replace(':', '%3A')}?repository_url=docker.io/library/nginx&tag=1.25"}},
        "components": [{"bom-ref": "pkg-1", "name": "zlib", "version": "1.2.11"}],
        "vulnerabilities": [
            {"id": "CVE-2022-37434", "ratings": [{"severity": "critical", "method": "CVSSv31"}],
             "affects": [{"ref": "pkg-1", "versions": [{"version": "1.2.11", "status": "affected"},
                                                        {"version": "1.2.13", "status": "unaffected"}]}]},
            {"id": "CVE-2000-1", "ratings": [{"score": 5.0}], "affects": [{"ref": "pkg-1"}],
             "analysis": {"state": "not_affected"}},
        ],
    }
    (scan,) = parse_report(doc)
    assert scan["spec"]["references"] == ["docker.io/library/nginx:1.25"] and scan["spec"]["digests"] == [DIGEST]
    assert scan["spec"]["vulnerabilities"] == [{"id": "CVE-2022-37434", "package": "zlib", "installed": "1.2.11",
                                                "fixed": "1.2.13", "severity": "critical"}]


def test_cyclonedx_older_version_is_refused_by_name() -> None:
    with pytest.raises(ReportError, match=r"CycloneDX 1\.3 is not supported"):
        parse_report({"bomFormat": "CycloneDX", "specVersion": "1.3"})


def sarif(tool: str, results: list[dict], properties: dict | None = None) -> dict:
    run: dict = {"tool": {"driver": {"name": tool, "rules": [
        {"id": results[0]["ruleId"], "shortDescription": {"text": "x"}, "properties": {"security-severity": "9.8"}}]}},
        "results": results}
    if properties is not None:
        run["properties"] = properties
    return {"version": "2.1.0", "runs": [run]}


def test_sarif_from_trivy_with_the_image_in_run_properties() -> None:
    message = ("Package: curl\nInstalled Version: 7.88\nVulnerability CVE-2023-5\nSeverity: HIGH\n"
               "Fixed Version: 7.88.1\nLink: [CVE-2023-5](https://x)")
    doc = sarif("Trivy", [{"ruleId": "CVE-2023-5", "level": "error", "message": {"text": message}},
                          {"ruleId": "DS002", "message": {"text": "misconfiguration"}}],
                {"imageName": "alpine:3.19", "repoDigests": [f"alpine@{DIGEST}"]})
    (scan,) = parse_report(doc)
    assert scan["spec"]["scanner"] == "sarif:trivy" and scan["spec"]["digests"] == [DIGEST]
    assert scan["spec"]["vulnerabilities"] == [{"id": "CVE-2023-5", "package": "curl", "installed": "7.88",
                                                "fixed": "7.88.1", "severity": "high", "title": "x"}]


def test_sarif_without_an_image_needs_image_equals_file(tmp_path) -> None:
    message = "A high vulnerability in deb package: libssl3, version 3.0.1 was found at: /var/lib/dpkg/status"
    path = tmp_path / "grype.sarif"
    path.write_text(json.dumps(sarif("Grype", [{"ruleId": "CVE-2023-5-libssl3", "message": {"text": message}}])))
    with pytest.raises(ReportError, match="IMAGE=FILE"):
        read_report(str(path), 10**6)
    (scan,) = read_report(f"registry.example/app:1.0={path}", 10**6)
    vuln = scan["spec"]["vulnerabilities"][0]
    assert (vuln["id"], vuln["package"], vuln["installed"], vuln["severity"]) == (
        "CVE-2023-5", "libssl3", "3.0.1", "critical")  # from security-severity 9.8
    assert scan["spec"]["references"] == ["registry.example/app:1.0"]


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "invalid JSON"), (b"[]", "not a JSON object"), (b'{"a": 1}', "not a vulnerability report"),
])
def test_bad_reports_are_clear_errors(tmp_path, content, message) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(ReportError, match=message):
        read_report(str(path), 10**6)


def test_missing_report_is_an_error_of_the_scan_naming_the_file(tmp_path) -> None:
    settings = Settings()
    settings.extra["vulns"] = (str(tmp_path / "nope.json"),)
    result = run_scan(ScanRequest(paths=[str(EXAMPLES)], settings=settings, only=["KH-POD-017"]))
    assert any(e.source.endswith("nope.json") and "cannot read" in e.message for e in result.errors)


# ---------------------------------------------------------------------------------------------
# Joined to the bundled insecure example


SHARED_CVE = ("CVE-2024-9999", "openssl", "3.0.11", "3.0.15", "HIGH")


@pytest.fixture
def reports(tmp_path) -> list[str]:
    trivy = tmp_path / "trivy-storefront.json"
    trivy.write_text(json.dumps(trivy_image("docker.io/shop/storefront:latest", [
        SHARED_CVE, ("CVE-2023-0001", "zlib", "1.2.11", "", "MEDIUM")])))
    grype_report = tmp_path / "grype-backup.json"
    grype_report.write_text(json.dumps(grype("registry.example.com/tools/pg-backup:15.4", [
        (SHARED_CVE[0], "openssl", "3.0.11", ["3.0.15"], "High"),
        ("CVE-2024-7777", "postgresql", "15.4", ["15.8"], "Critical")])))
    agent = tmp_path / "grype-agent.json"
    agent.write_text(json.dumps(grype("quay.io/example/log-agent:2.1", [
        (SHARED_CVE[0], "openssl", "3.0.11", ["3.0.15"], "High")])))
    return [str(trivy), str(grype_report), str(agent)]


def scan_examples(reports: list[str], control: str):
    settings = Settings()
    settings.extra["vulns"] = tuple(reports)
    result = run_scan(ScanRequest(paths=[str(EXAMPLES)], settings=settings, only=[control]))
    (outcome,) = result.controls
    return outcome


def test_reports_joined_to_the_example_rank_the_privileged_exposed_container_first(reports) -> None:
    outcome = scan_examples(reports, "KH-POD-017")
    assert outcome.status is Status.FAIL
    findings = outcome.findings
    first = findings[0]
    assert first.resource["name"] == "storefront" and "'web'" in first.message
    assert set(first.evidence["context"]) == {"exposed", "privileged", "root", "risky_token"}
    assert first.evidence["vulnerability"] == "CVE-2024-9999" and first.evidence["fixed"] == "3.0.15"
    assert first.severity.label == "critical"  # high, raised for exposure and for privileges
    # the same CVE in the backup job ranks below it: root, and its default ServiceAccount can read Secrets
    # (the debugger RoleBinding to system:authenticated), but nothing reaches it from outside
    backup = next(f for f in findings if f.resource["name"] == "nightly-backup"
                  and f.evidence["vulnerability"] == "CVE-2024-9999")
    assert backup.evidence["context"] == ["risky_token", "root"] and backup.severity.label == "critical"
    assert backup.evidence["priority"] < first.evidence["priority"]
    priorities = [f.evidence["priority"] for f in findings]
    assert priorities == sorted(priorities, reverse=True)
    assert findings.index(first) < findings.index(backup)
    # the storefront-migrate init container has no report: it is not joined to storefront's
    assert not any("'migrate'" in f.message for f in findings)
    # the kube-system log agent is an add-on image: judged by KH-UPG-010, not here
    assert not any(f.resource["name"] == "log-agent" for f in findings)


def test_addon_images_are_judged_by_kh_upg_010(reports) -> None:
    outcome = scan_examples(reports, "KH-UPG-010")
    (finding,) = outcome.findings
    assert finding.resource["name"] == "log-agent"
    assert "privileged" in finding.evidence["context"] and "exposed" in finding.evidence["context"]


def test_images_without_a_report_are_named(reports) -> None:
    outcome = scan_examples(reports, "KH-UPG-009")
    assert {f.evidence.get("report") for f in outcome.findings} == {None}
    unscanned = {f.message.split("image ")[-1] for f in outcome.findings}
    assert "docker.io/shop/storefront-migrate:latest" in unscanned
    assert not unscanned & {"docker.io/shop/storefront", "registry.example.com/tools/pg-backup:15.4",
                            "quay.io/example/log-agent:2.1"}


def test_join_by_digest_wins_over_the_tag(tmp_path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(f"""
apiVersion: v1
kind: Pod
metadata: {{name: p, namespace: a}}
spec:
  containers: [{{name: c, image: "registry.example/app:1.0@{DIGEST}"}}]
""")
    other = tmp_path / "other.json"
    other.write_text(json.dumps(trivy_image("registry.example/app:1.0", [SHARED_CVE], ("sha256:" + "2" * 64,))))
    settings = Settings()
    settings.extra["vulns"] = (str(other),)
    result = run_scan(ScanRequest(paths=[str(manifest)], settings=settings, only=["KH-POD-017", "KH-UPG-009"]))
    vulns, coverage = result.controls
    assert vulns.status is Status.PASS  # the report scanned another build of the tag
    assert "another digest" in coverage.findings[0].message


def test_without_reports_the_vulnerability_controls_are_not_assessed() -> None:
    result = run_scan(ScanRequest(paths=[str(EXAMPLES)], only=["KH-POD-017", "KH-UPG-009", "KH-UPG-010"]))
    assert {r.status for r in result.controls} == {Status.NOT_ASSESSED}
    assert all("--vulns" in (r.reason or "") for r in result.controls)
