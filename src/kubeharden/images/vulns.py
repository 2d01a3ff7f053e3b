"""Vulnerability reports of image scanners, read with plain JSON against their documented schemas.

* Trivy ``trivy image -f json`` (SchemaVersion 2: ArtifactName, Metadata.RepoTags/RepoDigests,
  Results[].Vulnerabilities[]: VulnerabilityID, PkgName, InstalledVersion, FixedVersion, Severity) and
  ``trivy k8s -f json`` (Resources[] -- or the older Vulnerabilities[] -- with Namespace, Kind, Name,
  Metadata[] and Results[] whose Target names the image);
* Grype ``grype -o json`` (matches[]: vulnerability {id, severity, fix.versions}, relatedVulnerabilities,
  artifact {name, version}; source.target {userInput, repoDigests, manifestDigest, tags});
* CycloneDX 1.4-1.6 JSON with ``vulnerabilities`` (metadata.component names the image: its purl
  pkg:oci/...@sha256:..?repository_url=..&tag=.., or name/version; ratings[].severity; affects[].ref to
  components; fixed versions from affects[].versions[status=unaffected] or the recommendation);
* SARIF 2.1.0 from image scanners (Trivy, Grype): ruleId and rule properties, the message's
  Package / Installed Version / Fixed Version lines; the image from the run's properties (imageName,
  repoDigests, repoTags) -- or given as ``--vulns IMAGE=FILE`` when the report does not name it.

Each image of a report becomes one ``ImageScan`` resource (kubeharden.images). A report kubeharden
cannot read is an error naming the file; reading never judges.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import parse_qs, unquote

from kubeharden import safeio
from kubeharden.images import API_VERSION, IMAGE_SCAN_KIND
from kubeharden.images.reference import DIGEST_RE, parse_image
from kubeharden.inventory import as_dict, as_list

SEVERITIES = ("critical", "high", "medium", "low", "negligible", "unknown")
_ID_RE = re.compile(r"(CVE-\d{4}-\d{4,}|GHSA(?:-[23456789cfghjmpqrvwx]{4}){3}|[A-Z]+-\d{4}-\d+)", re.I)
_MESSAGE_FIELDS = {
    "package": re.compile(r"^Package:\s*(\S+)", re.M | re.I),
    "installed": re.compile(r"^Installed Version:\s*(\S+)", re.M | re.I),
    "fixed": re.compile(r"^Fixed Version:\s*(\S+)", re.M | re.I),
    "severity": re.compile(r"^Severity:\s*(\w+)", re.M | re.I),
}
_GRYPE_MESSAGE = re.compile(r"package:\s*(?P<package>[^,\s]+),\s*version\s*(?P<installed>[^\s,]+)", re.I)


class ReportError(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def severity_of(text: Any) -> str:
    value = str(text or "").strip().lower()
    return value if value in SEVERITIES else "unknown"


def severity_of_score(score: Any) -> str:
    """CVSS v3 qualitative rating of a score (SARIF security-severity)."""
    try:
        value = float(score)
    except (TypeError, ValueError):
        return "unknown"
    if value >= 9.0:
        return "critical"
    if value >= 7.0:
        return "high"
    if value >= 4.0:
        return "medium"
    return "low" if value > 0 else "unknown"


def _digests(values: Any) -> list[str]:
    out = []
    for value in values if isinstance(values, list) else [values]:
        digest = str(value or "").rpartition("@")[2].lower()
        if DIGEST_RE.match(digest) and digest not in out:
            out.append(digest)
    return out


def _references(*values: Any) -> list[str]:
    out: list[str] = []
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.strip() and " " not in item.strip():
                ref = parse_image(item)
                if ref.tag or not ref.digest:  # a digest-only reference goes to the digests
                    text = ref.tagged
                    if text not in out:
                        out.append(text)
    return out


def _scan(scanner: str, image: str | None, references: list[str], digests: list[str], vulns: list[dict[str, Any]],
          created: Any = None, workload: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"scanner": scanner, "image": image, "references": references, "digests": digests,
                            "vulnerabilities": vulns}
    if isinstance(created, str) and created:
        spec["created"] = created
    if workload:
        spec["workload"] = workload
    name = image or (references[0] if references else digests[0] if digests else "unknown image")
    return {"apiVersion": API_VERSION, "kind": IMAGE_SCAN_KIND, "metadata": {"name": f"{name} ({scanner})"},
            "spec": spec}


def _vuln(vid: Any, package: Any, installed: Any, fixed: Any, severity: str, title: Any = None,
          url: Any = None) -> dict[str, Any]:
    out = {"id": str(vid), "package": str(package or ""), "installed": str(installed or ""),
           "fixed": str(fixed or ""), "severity": severity}
    if title:
        out["title"] = str(title)[:300]
    if url:
        out["url"] = str(url)
    return out


# ---------------------------------------------------------------------------------------------
# Trivy


def _trivy_vulns(results: Any) -> list[dict[str, Any]]:
    out = []
    for result in results if isinstance(results, list) else []:
        if not isinstance(result, dict):
            continue
        for v in as_list(result.get("Vulnerabilities")):
            if isinstance(v, dict) and v.get("VulnerabilityID"):
                out.append(_vuln(v["VulnerabilityID"], v.get("PkgName"), v.get("InstalledVersion"),
                                 v.get("FixedVersion"), severity_of(v.get("Severity")), v.get("Title"),
                                 v.get("PrimaryURL")))
    return out


def _trivy_image(doc: dict[str, Any]) -> list[dict[str, Any]]:
    meta = as_dict(doc.get("Metadata"))
    artifact = doc.get("ArtifactName")
    refs = _references(artifact, meta.get("RepoTags"))
    return [_scan("trivy", str(artifact) if artifact else None, refs, _digests(meta.get("RepoDigests")),
                  _trivy_vulns(doc.get("Results")), doc.get("CreatedAt"))]


def _trivy_k8s(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    resources = doc.get("Resources") if isinstance(doc.get("Resources"), list) else doc.get("Vulnerabilities")
    for res in resources if isinstance(resources, list) else []:
        if not isinstance(res, dict):
            continue
        workload = {"kind": res.get("Kind"), "namespace": res.get("Namespace"), "name": res.get("Name")}
        metas = [m for m in as_list(res.get("Metadata")) if isinstance(m, dict)] if isinstance(
            res.get("Metadata"), list) else []
        by_image: dict[str, list[Any]] = {}
        for result in as_list(res.get("Results")):
            if isinstance(result, dict):
                target = str(result.get("Target") or "").split(" (", 1)[0].strip()
                by_image.setdefault(target, []).append(result)
        for target, results in by_image.items():
            vulns = _trivy_vulns(results)
            if not vulns and not target:
                continue
            refs = _references(target)
            digests: list[str] = []
            for meta in metas:
                tags = _references(meta.get("RepoTags"))
                if not refs or set(tags) & set(refs) or len(metas) == 1:
                    refs = list(dict.fromkeys([*refs, *tags]))
                    digests.extend(d for d in _digests(meta.get("RepoDigests")) if d not in digests)
            out.append(_scan("trivy", target or None, refs, digests, vulns, doc.get("CreatedAt"), workload))
    return out


# ---------------------------------------------------------------------------------------------
# Grype


def _grype(doc: dict[str, Any]) -> list[dict[str, Any]]:
    source = as_dict(doc.get("source"))
    target = as_dict(source.get("target"))
    user_input = target.get("userInput") if isinstance(target.get("userInput"), str) else None
    digests = _digests([*as_list(target.get("repoDigests")), target.get("manifestDigest")])
    refs = _references(user_input, target.get("tags"))
    vulns = []
    for match in as_list(doc.get("matches")):
        if not isinstance(match, dict):
            continue
        v = as_dict(match.get("vulnerability"))
        artifact = as_dict(match.get("artifact"))
        vid = v.get("id")
        # GHSA matches name the CVE they alias in relatedVulnerabilities
        for related in as_list(match.get("relatedVulnerabilities")):
            if isinstance(related, dict) and str(related.get("id", "")).upper().startswith("CVE-") and \
                    not str(vid or "").upper().startswith("CVE-"):
                vid = f"{related['id']} ({vid})"
                break
        if not vid:
            continue
        fix = as_dict(v.get("fix"))
        fixed = ", ".join(str(x) for x in as_list(fix.get("versions")) if x)
        vulns.append(_vuln(vid, artifact.get("name"), artifact.get("version"), fixed, severity_of(v.get("severity")),
                           v.get("description"), v.get("dataSource")))
    descriptor = as_dict(doc.get("descriptor"))
    return [_scan("grype", user_input, refs, digests, vulns, descriptor.get("timestamp"))]


# ---------------------------------------------------------------------------------------------
# CycloneDX


def _purl_image(purl: str) -> tuple[str | None, list[str]]:
    """pkg:oci/nginx@sha256%3Aabc?repository_url=docker.io/library/nginx&tag=1.25 -> (reference, digests)."""
    if not purl.startswith("pkg:oci/") and not purl.startswith("pkg:docker/"):
        return None, []
    rest = purl.split("/", 1)[1]
    path, _, query = rest.partition("?")
    name, _, version = path.partition("@")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    repository = params.get("repository_url") or unquote(name)
    tag = params.get("tag")
    digests = _digests([unquote(version)])
    return (f"{repository}:{tag}" if tag else repository), digests


def _cyclonedx(doc: dict[str, Any]) -> list[dict[str, Any]]:
    meta = as_dict(doc.get("metadata"))
    component = as_dict(meta.get("component"))
    image, digests = _purl_image(str(component.get("purl") or ""))
    if image is None and component.get("name"):
        version = str(component.get("version") or "")
        if DIGEST_RE.match(version):
            image, digests = str(component["name"]), [version]
        else:
            image = f"{component['name']}:{version}" if version else str(component["name"])
    for prop in as_list(component.get("properties")):
        if isinstance(prop, dict) and str(prop.get("name", "")).endswith(("RepoDigest", "repoDigest")):
            digests.extend(d for d in _digests([prop.get("value")]) if d not in digests)
    components = {}
    for comp in as_list(doc.get("components")):
        if isinstance(comp, dict) and comp.get("bom-ref"):
            components[str(comp["bom-ref"])] = comp
    vulns = []
    for v in as_list(doc.get("vulnerabilities")):
        if not isinstance(v, dict) or not v.get("id"):
            continue
        analysis = as_dict(v.get("analysis"))
        if analysis.get("state") in ("not_affected", "false_positive", "resolved"):
            continue  # VEX: the producer says it does not apply
        ratings = [r for r in as_list(v.get("ratings")) if isinstance(r, dict)]
        severities = [severity_of(r.get("severity")) for r in ratings]
        known = [s for s in severities if s != "unknown"]
        if not known:
            known = [severity_of_score(r.get("score")) for r in ratings if r.get("score") is not None]
        severity = min(known, key=SEVERITIES.index) if known else "unknown"
        affects = [a for a in as_list(v.get("affects")) if isinstance(a, dict)] or [{}]
        for affected in affects:
            comp = components.get(str(affected.get("ref") or ""), {})
            fixed = [str(x.get("version")) for x in as_list(affected.get("versions"))
                     if isinstance(x, dict) and x.get("status") == "unaffected" and x.get("version")]
            source = as_dict(v.get("source"))
            vulns.append(_vuln(v["id"], comp.get("name"), comp.get("version"), ", ".join(fixed) or
                               _fixed_from_text(v.get("recommendation")), severity, v.get("description"),
                               source.get("url")))
    refs = _references(image) if image else []
    return [_scan("cyclonedx", image, refs, digests, vulns, meta.get("timestamp"))]


def _fixed_from_text(text: Any) -> str:
    match = re.search(r"(?:upgrade|fixed|update)\D{0,40}?(\d[\w.:~+-]*)", str(text or ""), re.I)
    return match.group(1) if match else ""


# ---------------------------------------------------------------------------------------------
# SARIF


def _sarif(doc: dict[str, Any], image: str | None) -> list[dict[str, Any]]:
    out = []
    for run in as_list(doc.get("runs")):
        if not isinstance(run, dict):
            continue
        driver = (run.get("tool") or {}).get("driver") if isinstance(run.get("tool"), dict) else None
        driver = driver if isinstance(driver, dict) else {}
        tool = str(driver.get("name") or "sarif").lower()
        rules = {str(r.get("id")): r for r in as_list(driver.get("rules")) if isinstance(r, dict)}
        props = as_dict(run.get("properties"))
        run_image = image or (props.get("imageName") if isinstance(props.get("imageName"), str) else None)
        if run_image is None:
            raise ReportError(f"the SARIF run of {tool} does not name the image it scanned: give it as "
                              "--vulns IMAGE=FILE")
        refs = _references(run_image, props.get("repoTags"))
        digests = _digests(as_list(props.get("repoDigests")))
        vulns = []
        for result in as_list(run.get("results")):
            if not isinstance(result, dict):
                continue
            rule_id = str(result.get("ruleId") or "")
            match = _ID_RE.search(rule_id)
            if not match:
                continue  # misconfigurations and secrets of the same report
            message = str((result.get("message") or {}).get("text") or "") if isinstance(
                result.get("message"), dict) else ""
            fields = {k: (m.group(1) if (m := rx.search(message)) else "") for k, rx in _MESSAGE_FIELDS.items()}
            if not fields["package"] and (m := _GRYPE_MESSAGE.search(message)):
                fields["package"], fields["installed"] = m.group("package"), m.group("installed")
            rule = rules.get(rule_id, {})
            rule_props = as_dict(rule.get("properties"))
            severity = severity_of(fields["severity"])
            if severity == "unknown":
                severity = severity_of_score(rule_props.get("security-severity"))
            vulns.append(_vuln(match.group(1).upper(), fields["package"], fields["installed"], fields["fixed"],
                               severity, (rule.get("shortDescription") or {}).get("text") if isinstance(
                                   rule.get("shortDescription"), dict) else None, rule.get("helpUri")))
        out.append(_scan(f"sarif:{tool}", run_image, refs, digests, vulns))
    return out


# ---------------------------------------------------------------------------------------------


def split_argument(argument: str) -> tuple[str | None, str]:
    """``--vulns FILE`` or ``--vulns IMAGE=FILE`` (the image for reports that do not name it)."""
    if "=" in argument and not os.path.exists(argument):
        image, _, path = argument.partition("=")
        if image and path:
            return image, path
    return None, argument


def read_report(argument: str, max_bytes: int) -> list[dict[str, Any]]:
    image, path = split_argument(argument)
    try:
        raw = safeio.read_regular(path, max_bytes)
    except OSError as exc:
        reason = exc.message if isinstance(exc, safeio.UnsafePathError) else (exc.strerror or type(exc).__name__)
        raise ReportError(f"cannot read the vulnerability report: {reason}") from None
    try:
        doc = json.loads(raw)
    except UnicodeDecodeError:
        raise ReportError("the vulnerability report is not UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"invalid JSON: {exc.msg}", exc.lineno) from None
    except RecursionError:
        raise ReportError("JSON nested too deeply") from None
    return parse_report(doc, image)


def parse_report(doc: Any, image: str | None = None) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        raise ReportError("not a vulnerability report (the document is not a JSON object)")
    if isinstance(doc.get("runs"), list) and "version" in doc:
        scans = _sarif(doc, image)
    elif doc.get("bomFormat") == "CycloneDX":
        version = str(doc.get("specVersion") or "")
        if version not in ("1.4", "1.5", "1.6"):
            raise ReportError(f"CycloneDX {version or '(no specVersion)'} is not supported (1.4 to 1.6 are)")
        scans = _cyclonedx(doc)
    elif isinstance(doc.get("matches"), list):
        scans = _grype(doc)
    elif ("ArtifactName" in doc and "Results" in doc) or doc.get("ArtifactType") == "container_image":
        scans = _trivy_image(doc)
    elif "ClusterName" in doc or isinstance(doc.get("Resources"), list):
        scans = _trivy_k8s(doc)
    else:
        raise ReportError("not a vulnerability report kubeharden reads (Trivy JSON, trivy k8s JSON, Grype JSON, "
                          "CycloneDX 1.4-1.6 or SARIF)")
    if image:
        for scan in scans:
            spec = scan["spec"]
            spec["references"] = list(dict.fromkeys([*_references(image), *spec["references"]]))
            spec["digests"] = list(dict.fromkeys([*_digests([image]), *spec["digests"]]))
            spec["image"] = spec.get("image") or image
    for scan in scans:
        if not scan["spec"]["references"] and not scan["spec"]["digests"]:
            raise ReportError(f"the {scan['spec']['scanner']} report does not name the image it scanned: give it "
                              "as --vulns IMAGE=FILE")
    return scans
