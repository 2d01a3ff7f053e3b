"""The nsa profile is stricter than pss-restricted: whatever restricted admission rejects, an NSA
pod-security control reports on the same resource."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import yaml

from kubeharden import pss
from kubeharden.catalog import Settings, get_control
from kubeharden.scanner import ScanRequest, run_scan

# Each PSS check (restricted level, latest version) and the NSA controls that cover it.
NSA_FOR_PSS: dict[str, set[str]] = {
    "hostNamespaces": {"KH-POD-006", "KH-POD-007"},
    "privileged": {"KH-POD-005"},
    "capabilities_restricted": {"KH-POD-011", "KH-POD-033"},
    "restrictedVolumes": {"KH-POD-009", "KH-POD-012"},
    "hostPorts": {"KH-POD-008"},
    "appArmorProfile": {"KH-POD-014"},
    "seLinuxOptions": {"KH-POD-015"},
    "procMount_restricted": {"KH-POD-031"},
    "seccompProfile_restricted": {"KH-POD-013"},
    "sysctls": {"KH-POD-030"},
    "windowsHostProcess": {"KH-POD-029"},
    "hostProbesAndHostLifecycle": {"KH-POD-032"},
    "allowPrivilegeEscalation": {"KH-POD-004"},
    "runAsNonRoot": {"KH-POD-002"},
    "runAsUser": {"KH-POD-002"},
}


def test_mapping_covers_every_restricted_check_and_names_nsa_controls() -> None:
    assert set(NSA_FOR_PSS) == set(pss.active_checks("restricted", pss.LATEST))
    for ids in NSA_FOR_PSS.values():
        for control_id in ids:
            ctrl = get_control(control_id)
            assert ctrl is not None and "nsa" in ctrl.profiles, control_id


def test_nsa_flags_every_failing_restricted_fixture(shared_dir: Path) -> None:
    base = shared_dir / "conformance" / "pss"
    checked = 0
    misses = []
    for line in (base / "cases.jsonl").read_text().splitlines():
        case = json.loads(line)
        if (case["level"], case["version"], case["expect"]) != ("restricted", "v1.37", "fail"):
            continue
        obj = yaml.load((base / case["file"]).read_text(), Loader=yaml.CSafeLoader)
        violated = {v.check for v in pss.evaluate(obj.get("metadata"), obj.get("spec"), "restricted", pss.LATEST)}
        assert case["effective_check"] in violated
        result = run_scan(ScanRequest(paths=[str(base / case["file"])], profile="nsa", only=("KH-POD-*",)))
        fired = {f.control_id for f in result.findings}
        for check in violated:
            checked += 1
            if not NSA_FOR_PSS[check] & fired:
                misses.append((case["file"], check, sorted(fired)))
    assert checked > 40
    assert not misses, misses


def test_nsa_flags_everything_restricted_flags_on_the_corpus(shared_dir: Path) -> None:
    corpus = str(shared_dir / "corpus" / "real")
    restricted = run_scan(ScanRequest(paths=[corpus], profile="pss-restricted", settings=Settings()))
    nsa = run_scan(ScanRequest(paths=[corpus], profile="nsa", only=("KH-POD-*",)))
    fired: dict[tuple[str | None, str], set[str]] = defaultdict(set)
    for f in nsa.findings:
        fired[(f.file, json.dumps(f.resource, sort_keys=True))].add(f.control_id)
    assert len(restricted.findings) > 1000
    misses = [(f.file, f.path, f.evidence["pss_check"]) for f in restricted.findings
              if not NSA_FOR_PSS[f.evidence["pss_check"]] & fired[(f.file, json.dumps(f.resource, sort_keys=True))]]
    assert not misses, misses[:20]
