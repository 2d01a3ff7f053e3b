"""Every upstream pod-security-admission fixture, rebuilt from our own data, at every policy version.

tests/pod/pss_upstream_generators.yaml reconstructs the upstream fixture generators
(test/fixtures_*.go). From it we rebuild each pass and fail pod for v1.0..v1.37 and both levels,
including the fail fixtures held back from /work/shared/conformance/pss, and check:

* pss.evaluate rejects each fail pod with the check that upstream expects to fire, and admits each
  pass pod with no violation at all, at every version (not just the two shipped ones);
* the scan pipeline agrees, with the pod wrapped in each workload kind in turn;
* where the shared conformance copy has the same file (v1.0 and v1.37), our rebuilt pod equals it,
  which is what makes the held-back reconstructions trustworthy;
* the check and variant table of pss matches upstream's version history, and behaviour flips exactly
  at the versions where upstream changed it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeharden import pss
from kubeharden.catalog import Settings
from kubeharden.inventory import POD_SPEC_PATHS
from kubeharden.scanner import ScanRequest, run_scan

DATA = Path(__file__).with_name("pss_upstream_generators.yaml")
NEWEST_MINOR = 37
ALL_VERSIONS = tuple(f"v1.{minor}" for minor in range(NEWEST_MINOR + 1))
SHIPPED_VERSIONS = ("v1.0", "v1.37")  # the versions in /work/shared/conformance/pss
LEVELS = ("baseline", "restricted")

# Upstream policy/check_*.go, written down independently of kubeharden.pss:
# check -> (level, minimum versions of its variants).
UPSTREAM_CHECK_VERSIONS: dict[str, tuple[str, tuple[int, ...]]] = {
    "hostNamespaces": ("baseline", (0,)),
    "privileged": ("baseline", (0,)),
    "capabilities_baseline": ("baseline", (0,)),
    "hostPathVolumes": ("baseline", (0,)),
    "hostPorts": ("baseline", (0,)),
    "appArmorProfile": ("baseline", (0,)),
    "seLinuxOptions": ("baseline", (0, 31)),
    "procMount": ("baseline", (0, 35)),
    "seccompProfile_baseline": ("baseline", (0, 19)),
    "sysctls": ("baseline", (0, 27, 29, 32, 37)),
    "windowsHostProcess": ("baseline", (0,)),
    "hostProbesAndHostLifecycle": ("baseline", (34,)),
    "restrictedVolumes": ("restricted", (0,)),
    "allowPrivilegeEscalation": ("restricted", (8, 25)),
    "runAsNonRoot": ("restricted", (0, 35)),
    "runAsUser": ("restricted", (23, 35)),
    "seccompProfile_restricted": ("restricted", (19, 25)),
    "capabilities_restricted": ("restricted", (22, 25)),
    "procMount_restricted": ("restricted", (35,)),
}
# Restricted checks that replace a baseline check from a version on (OverrideCheckIDs upstream).
UPSTREAM_OVERRIDES: dict[str, tuple[str, int]] = {
    "hostPathVolumes": ("restrictedVolumes", 0),
    "seccompProfile_baseline": ("seccompProfile_restricted", 19),
    "capabilities_baseline": ("capabilities_restricted", 22),
    "procMount": ("procMount_restricted", 35),
}


def _minor(version: str) -> int:
    return pss.parse_pss_version(version)[1]


# ---------------------------------------------------------------------------------------------
# Rebuilding the fixtures

PATH_PREFIXES = {
    "pod": ("spec", "securityContext"),
    "c0": ("spec", "containers", 0),
    "i0": ("spec", "initContainers", 0),
    "spec": ("spec",),
}


def _path(text: str) -> tuple[str | int, ...]:
    head, _, rest = text.partition(".")
    return (*PATH_PREFIXES[head], *(rest.split(".") if rest else ()))


def _set(pod: dict[str, Any], text: str, value: Any) -> None:
    *parents, last = _path(text)
    node: Any = pod
    for key in parents:
        if isinstance(key, int):
            node = node[key]
        else:
            node = node.setdefault(key, {})
    node[last] = copy.deepcopy(value)


def _unset(pod: dict[str, Any], text: str) -> None:
    *parents, last = _path(text)
    node: Any = pod
    for key in parents:
        node = node[key] if isinstance(key, int) else node.get(key)
        if node is None:
            return
    if isinstance(last, str):
        node.pop(last, None)


def _apply(pod: dict[str, Any], edit: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(pod)
    for text, value in (edit.get("set") or {}).items():
        _set(out, text, value)
    for text in edit.get("unset") or ():
        _unset(out, text)
    if edit.get("annotations"):
        out.setdefault("metadata", {}).setdefault("annotations", {}).update(edit["annotations"])
    return out


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod["spec"].get("initContainers", []), *pod["spec"].get("containers", [])]


def _prepare(pod: dict[str, Any], steps: list[str]) -> dict[str, Any]:
    """The upstream ensure* helpers a generator runs before its tweaks."""
    out = copy.deepcopy(pod)
    for step in steps:
        if step in ("securityContext", "podSecurityContext", "capabilities", "seLinuxOptions", "windowsOptions"):
            out["spec"].setdefault("securityContext", {})
        if step == "podSecurityContext":
            continue
        for container in _containers(out):
            container_sc = container.setdefault("securityContext", {})
            if step == "capabilities":
                container_sc.setdefault("capabilities", {})
            elif step == "seLinuxOptions":
                container_sc.setdefault("seLinuxOptions", {})
            elif step == "windowsOptions":
                container_sc.setdefault("windowsOptions", {})
        if step == "seLinuxOptions":
            out["spec"]["securityContext"].setdefault("seLinuxOptions", {})
        elif step == "windowsOptions":
            out["spec"]["securityContext"].setdefault("windowsOptions", {})
    return out


@cache
def _data() -> dict[str, Any]:
    loaded = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def minimal_pod(level: str, version: str) -> dict[str, Any]:
    """fixtures.go's minimal valid pod of this level and version."""
    pods = _data()["minimal_pods"]
    pod: dict[str, Any] = {"metadata": {}, **copy.deepcopy(pods["baseline"]["v1.0"])}
    if level == "restricted":
        for since, edit in sorted(pods["restricted"].items(), key=lambda kv: _minor(kv[0])):
            if _minor(since) <= _minor(version):
                pod = _apply(pod, edit)
    return pod


_SKIP_PASS: dict[str, Any] = {
    "minimal_pod_drops_all": lambda pod: "ALL" in ((pod["spec"]["containers"][0].get("securityContext") or {})
                                                   .get("capabilities") or {}).get("drop", []),
    "minimal_pod_has_seccomp_field": lambda pod: ((pod["spec"].get("securityContext") or {})
                                                  .get("seccompProfile") or {}).get("type") == "RuntimeDefault",
    "minimal_pod_has_seccomp_annotation": lambda pod: (pod["metadata"].get("annotations") or {}).get(
        "seccomp.security.alpha.kubernetes.io/pod") == "runtime/default",
}


@dataclass(frozen=True)
class Case:
    check: str
    level: str
    version: str
    expect: str  # "pass" | "fail"
    index: int
    since: str  # the generator that made it
    pod: dict[str, Any]

    @property
    def file(self) -> str:
        """Where upstream (and the shared copy) keeps this fixture."""
        return f"{self.level}/{self.version}/{self.expect}/{self.check.lower()}{self.index}.yaml"

    @property
    def effective_check(self) -> str:
        """The check upstream guarantees to reject a fail case (an override may take over)."""
        if self.level == "restricted" and self.check in UPSTREAM_OVERRIDES:
            replacement, since = UPSTREAM_OVERRIDES[self.check]
            if _minor(self.version) >= since:
                return replacement
        return self.check

    def __str__(self) -> str:
        return f"{self.file} (generator {self.check}@{self.since})"


def _generator_for(check: str, level: str, version: str) -> dict[str, Any] | None:
    chosen = None
    for generator in _data()["generators"]:
        if generator["check"] != check or generator.get("level", level) != level:
            continue
        newer = chosen is None or _minor(generator["since"]) > _minor(chosen["since"])
        if _minor(generator["since"]) <= _minor(version) and newer:
            chosen = generator
    return chosen


@cache
def cases(level: str, version: str) -> tuple[Case, ...]:
    """All fixtures upstream generates for this level and version."""
    base = minimal_pod(level, version)
    out: list[Case] = []
    for check in dict.fromkeys(g["check"] for g in _data()["generators"]):
        generator = _generator_for(check, level, version)
        if generator is None:
            continue
        prepared = _prepare(base, generator.get("prepare") or [])
        skip = generator.get("skip_pass_if")
        passes = [] if skip and _SKIP_PASS[skip](base) else generator.get("pass") or []
        passes = [edit for edit in passes if level in edit.get("levels", LEVELS)]
        for expect, edits in (("pass", passes), ("fail", generator["fail"])):
            for i, edit in enumerate(edits):
                out.append(Case(check, level, version, expect, i, generator["since"], _apply(prepared, edit)))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# The data itself is consistent with the check table


def test_each_check_has_a_generator_from_its_first_version() -> None:
    first_generator: dict[str, int] = {}
    for generator in _data()["generators"]:
        minor = _minor(generator["since"])
        first_generator[generator["check"]] = min(minor, first_generator.get(generator["check"], minor))
        level, _ = UPSTREAM_CHECK_VERSIONS[generator["check"]]
        assert generator.get("level", "baseline") == level, generator["check"]
    assert first_generator == {check: versions[0] for check, (_, versions) in UPSTREAM_CHECK_VERSIONS.items()}


def os_pods(version: str) -> dict[str, dict[str, Any]]:
    """fixtures.go's OS-specific minimal restricted pods: a Windows pod needs none of the restricted
    fields added between 1.0 and 1.25 from 1.25 on."""
    linux = minimal_pod("restricted", version)
    windows = minimal_pod("restricted", "v1.0" if _minor(version) >= 25 else version)
    return {"base": minimal_pod("restricted", version),
            "base_linux": _apply(linux, {"set": {"spec.os": {"name": "linux"}}}),
            "base_windows": _apply(windows, {"set": {"spec.os": {"name": "windows"}}})}


def test_minimal_pods_are_admitted_at_every_version() -> None:
    for version in ALL_VERSIONS:
        named = {f"baseline/{version}/base": ("baseline", minimal_pod("baseline", version)),
                 **{f"restricted/{version}/{name}": ("restricted", pod) for name, pod in os_pods(version).items()}}
        for name, (level, pod) in named.items():
            assert pss.evaluate(pod["metadata"], pod["spec"], level, pss.parse_pss_version(version)) == [], name
    # the 1.25 Windows minimal pod is not enough for a Windows pod before the exemption
    windows = os_pods("v1.25")["base_windows"]
    assert {v.check for v in pss.evaluate(windows["metadata"], windows["spec"], "restricted", (1, 24))} == {
        "allowPrivilegeEscalation", "seccompProfile_restricted", "capabilities_restricted"}


def test_minimal_pods_equal_the_shared_base_fixtures(shared_dir: Path) -> None:
    base = shared_dir / "conformance" / "pss"
    for version in SHIPPED_VERSIONS:
        expected = {f"baseline/{version}/pass/base.yaml": minimal_pod("baseline", version)}
        for name, pod in os_pods(version).items():
            expected[f"restricted/{version}/pass/{name}.yaml"] = pod
        for file, pod in expected.items():
            if (base / file).exists() or file.endswith("/base.yaml"):  # base_linux/_windows ship at v1.37 only
                assert _normalised(_shared_pod(base, file)) == _normalised(pod), file
    assert (base / "restricted/v1.37/pass/base_windows.yaml").exists()


# ---------------------------------------------------------------------------------------------
# Check table and version history


@pytest.mark.parametrize("level", LEVELS)
def test_active_checks_and_variants_follow_upstream_history(level: str) -> None:
    for minor in range(0, NEWEST_MINOR + 3):  # past the newest: evaluated as the newest
        expected: dict[str, int] = {}
        for check, (check_level, minimums) in UPSTREAM_CHECK_VERSIONS.items():
            if check_level == "restricted" and level == "baseline":
                continue
            applicable = [m for m in minimums if m <= min(minor, NEWEST_MINOR)]
            if applicable:
                expected[check] = applicable[-1]
        if level == "restricted":
            for replaced, (_, since) in UPSTREAM_OVERRIDES.items():
                if minor >= since:
                    expected.pop(replaced, None)
        active = pss.active_checks(level, (1, minor))
        assert {c: v.min_version[1] for c, v in active.items()} == expected, (level, minor)


# ---------------------------------------------------------------------------------------------
# Every rebuilt fixture, every version


def _disagreements(level: str, version: str) -> list[str]:
    out = []
    for case in cases(level, version):
        found = pss.evaluate(case.pod["metadata"], case.pod["spec"], level, pss.parse_pss_version(version))
        checks = sorted({v.check for v in found})
        if case.expect == "pass" and found:
            out.append(f"{case}: expected no violation, got {checks}")
        elif case.expect == "fail" and case.effective_check not in checks:
            out.append(f"{case}: expected {case.effective_check}, got {checks}")
    return out


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("level", LEVELS)
def test_every_upstream_fixture_at_every_version(level: str, version: str) -> None:
    assert len([c for c in cases(level, version) if c.expect == "fail"]) >= 20
    assert _disagreements(level, version) == []


def _wrap(kind: str, pod: dict[str, Any]) -> dict[str, Any]:
    """The pod as the template of a workload of this kind."""
    meta_path, spec_path = POD_SPEC_PATHS[kind]
    api = {"Deployment": "apps/v1", "ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
           "Job": "batch/v1", "CronJob": "batch/v1"}.get(kind, "v1")
    obj: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": {"name": "case", "namespace": "ns"}}
    for path, value in ((meta_path, pod["metadata"]), (spec_path, pod["spec"])):
        node = obj
        for key in path[:-1]:
            node = node.setdefault(str(key), {})
        if value or path != ("metadata",):
            node.setdefault(str(path[-1]), {}).update(copy.deepcopy(value))
    return obj


@pytest.mark.parametrize("version", ("v1.0", "v1.18", "v1.19", "v1.22", "v1.25", "v1.34", "v1.35", "v1.37"))
def test_scan_pipeline_agrees_in_every_workload_kind(tmp_path: Path, version: str) -> None:
    kinds = sorted(POD_SPEC_PATHS)
    disagreements: list[str] = []
    for level in LEVELS:
        for n, case in enumerate(cases(level, version)):
            kind = kinds[n % len(kinds)]
            path = tmp_path / f"{level}-{n}.yaml"
            path.write_text(yaml.safe_dump(_wrap(kind, case.pod)), encoding="utf-8")
            result = run_scan(ScanRequest(paths=[str(path)], profile=f"pss-{level}",
                                          settings=Settings(extra={"pss_version": version})))
            assert not result.errors and result.resources == 1, (str(case), kind, result.errors)
            checks = sorted({f.evidence["pss_check"] for f in result.findings})
            assert all(f.line is not None and f.line >= 1 for f in result.findings), (str(case), kind)
            if case.expect == "pass" and checks:
                disagreements.append(f"{case} as {kind}: expected no finding, got {checks}")
            elif case.expect == "fail" and case.effective_check not in checks:
                disagreements.append(f"{case} as {kind}: expected {case.effective_check}, got {checks}")
    assert disagreements == []


# ---------------------------------------------------------------------------------------------
# The reconstruction against the shared copy of the upstream fixtures


def _normalised(obj: Any) -> Any:
    """As upstream serialises a Go pod: empty lists, empty maps of annotations and nil pointers omitted."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            value = _normalised(value)
            if value is None or value == [] or (key == "annotations" and value == {}):
                continue
            out[key] = value
        return out
    if isinstance(obj, list):
        return [_normalised(v) for v in obj]
    return obj


def _shared_pod(base: Path, file: str) -> dict[str, Any]:
    loaded = yaml.safe_load((base / file).read_text(encoding="utf-8"))
    loaded["metadata"].pop("name", None)
    return {"metadata": loaded["metadata"], "spec": loaded["spec"]}


def _ours(case: Case) -> dict[str, Any]:
    return _normalised({"metadata": case.pod["metadata"], "spec": case.pod["spec"]})


@pytest.mark.parametrize("version", SHIPPED_VERSIONS)
@pytest.mark.parametrize("level", LEVELS)
def test_reconstruction_equals_every_shared_fixture(shared_dir: Path, level: str, version: str) -> None:
    base = shared_dir / "conformance" / "pss"
    manifest = [json.loads(line) for line in (base / "cases.jsonl").read_text(encoding="utf-8").splitlines() if line]
    shipped = {c["file"]: c for c in manifest if c["level"] == level and c["version"] == version
               and c["check"] not in ("base", "base_linux", "base_windows")}
    ours = {case.file: case for case in cases(level, version)}
    # every shipped fixture is one we rebuild, identical and with the same expectation
    assert sorted(set(shipped) - set(ours)) == []
    for file, entry in shipped.items():
        case = ours[file]
        assert entry["check"] == case.check and entry["expect"] == case.expect, file
        if case.expect == "fail":
            assert entry["effective_check"] == case.effective_check, file
        assert _normalised(_shared_pod(base, file)) == _ours(case), file
    # all pass fixtures ship; what we rebuild beyond them is exactly the held-back fail fixtures
    held_back = [case for file, case in ours.items() if file not in shipped]
    assert [str(c) for c in held_back if c.expect == "pass"] == []
    assert held_back, "expected some fail fixtures to be held back at this level and version"
    for case in held_back:
        assert not (base / case.file).exists()
        found = {v.check for v in pss.evaluate(case.pod["metadata"], case.pod["spec"], level,
                                               pss.parse_pss_version(version))}
        assert case.effective_check in found, str(case)


# ---------------------------------------------------------------------------------------------
# Versions where upstream changed behaviour: the same pod on either side of the change

LINUX_RESTRICTED: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "initContainers": [{"name": "init", "image": "x", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    "containers": [{"name": "app", "image": "x", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
}


def _edited(edit: dict[str, Any]) -> dict[str, Any]:
    return _apply({"metadata": {}, "spec": copy.deepcopy(LINUX_RESTRICTED)}, edit)


# (what changes, level, edit of a restricted-compliant pod, {version: expected checks})
BOUNDARIES: list[tuple[str, str, dict[str, Any], dict[str, set[str]]]] = [
    ("Windows pods leave three restricted checks at 1.25", "restricted",
     {"set": {"spec.os": {"name": "windows"}},
      "unset": ["pod.seccompProfile", "c0.securityContext", "i0.securityContext"]},
     {"v1.24": {"allowPrivilegeEscalation", "seccompProfile_restricted", "capabilities_restricted"},
      "v1.25": set(), "v1.37": set()}),
    ("runAsNonRoot has no Windows exemption", "restricted",
     {"set": {"spec.os": {"name": "windows"}}, "unset": ["pod.runAsNonRoot"]},
     {"v1.24": {"runAsNonRoot"}, "v1.25": {"runAsNonRoot"}, "v1.37": {"runAsNonRoot"}}),
    ("a Linux pod gets no exemption", "restricted",
     {"set": {"spec.os": {"name": "linux"}}, "unset": ["c0.securityContext"]},
     {"v1.24": {"allowPrivilegeEscalation", "capabilities_restricted"},
      "v1.25": {"allowPrivilegeEscalation", "capabilities_restricted"}}),
    ("hostUsers: false exempts runAsNonRoot and runAsUser from 1.35", "restricted",
     {"set": {"spec.hostUsers": False, "pod.runAsUser": 0}, "unset": ["pod.runAsNonRoot"]},
     {"v1.34": {"runAsNonRoot", "runAsUser"}, "v1.35": set(), "v1.37": set()}),
    ("hostUsers: true is no exemption", "restricted",
     {"set": {"spec.hostUsers": True, "c0.securityContext.runAsUser": 0}},
     {"v1.35": {"runAsUser"}, "v1.37": {"runAsUser"}}),
    ("baseline procMount relaxes for hostUsers: false at 1.35", "baseline",
     {"set": {"spec.hostUsers": False, "i0.securityContext.procMount": "Unmasked"}},
     {"v1.0": {"procMount"}, "v1.34": {"procMount"}, "v1.35": set(), "v1.37": set()}),
    ("restricted keeps procMount unconditional through the 1.35 override", "restricted",
     {"set": {"spec.hostUsers": False, "i0.securityContext.procMount": "Unmasked"}},
     {"v1.34": {"procMount"}, "v1.35": {"procMount_restricted"}}),
    ("procMount in an ephemeral container", "baseline",
     {"set": {"spec.ephemeralContainers": [{"name": "dbg", "image": "x",
                                            "securityContext": {"procMount": "Unmasked"}}]}},
     {"v1.0": {"procMount"}, "v1.37": {"procMount"}}),
    ("runAsUser starts at 1.23", "restricted", {"set": {"c0.securityContext.runAsUser": 0}},
     {"v1.22": set(), "v1.23": {"runAsUser"}}),
    ("allowPrivilegeEscalation starts at 1.8", "restricted",
     {"set": {"spec.ephemeralContainers": [{"name": "dbg", "image": "x", "securityContext": {"runAsNonRoot": True}}]}},
     {"v1.7": set(), "v1.8": {"allowPrivilegeEscalation"}}),
    ("seccomp: annotations before 1.19, fields from 1.19", "baseline",
     {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"},
      "set": {"pod.seccompProfile": {"type": "Unconfined"}}},
     {"v1.18": {"seccompProfile_baseline"}, "v1.19": {"seccompProfile_baseline"}}),
    ("seccomp annotation alone stops counting at 1.19", "baseline",
     {"annotations": {"container.seccomp.security.alpha.kubernetes.io/init": "unconfined"}},
     {"v1.18": {"seccompProfile_baseline"}, "v1.19": set()}),
    ("restricted needs a seccomp profile from 1.19", "restricted", {"unset": ["pod.seccompProfile"]},
     {"v1.18": set(), "v1.19": {"seccompProfile_restricted"}}),
    ("restricted capabilities from 1.22; the baseline rule before", "restricted",
     {"set": {"c0.securityContext.capabilities": {"add": ["CHOWN"]}}},
     {"v1.21": set(), "v1.22": {"capabilities_restricted"}}),
    ("SYS_ADMIN: baseline rule before 1.22, restricted rule after", "restricted",
     {"set": {"c0.securityContext.capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}},
     {"v1.21": {"capabilities_baseline"}, "v1.22": {"capabilities_restricted"}}),
    ("container_engine_t allowed from 1.31", "baseline",
     {"set": {"c0.securityContext.seLinuxOptions": {"type": "container_engine_t"}}},
     {"v1.30": {"seLinuxOptions"}, "v1.31": set()}),
    ("SELinux user and role are never allowed", "baseline",
     {"set": {"c0.securityContext.seLinuxOptions": {"user": "system_u", "type": "container_t"}}},
     {"v1.0": {"seLinuxOptions"}, "v1.31": {"seLinuxOptions"}, "v1.37": {"seLinuxOptions"}}),
    ("ip_local_reserved_ports allowed from 1.27", "baseline",
     {"set": {"pod.sysctls": [{"name": "net.ipv4.ip_local_reserved_ports", "value": "1024-4999"}]}},
     {"v1.26": {"sysctls"}, "v1.27": set()}),
    ("tcp_keepalive and tcp_fin_timeout allowed from 1.29", "baseline",
     {"set": {"pod.sysctls": [{"name": "net.ipv4.tcp_fin_timeout", "value": "60"}]}},
     {"v1.28": {"sysctls"}, "v1.29": set()}),
    ("tcp_rmem and tcp_wmem allowed from 1.32", "baseline",
     {"set": {"pod.sysctls": [{"name": "net.ipv4.tcp_wmem", "value": "4096 65536 16777216"}]}},
     {"v1.31": {"sysctls"}, "v1.32": set()}),
    ("tcp_slow_start_after_idle and tcp_notsent_lowat allowed from 1.37", "baseline",
     {"set": {"pod.sysctls": [{"name": "net.ipv4.tcp_slow_start_after_idle", "value": "0"}]}},
     {"v1.36": {"sysctls"}, "v1.37": set()}),
    ("host in probes and lifecycle hooks forbidden from 1.34", "baseline",
     {"set": {"spec.ephemeralContainers": [{"name": "dbg", "image": "x",
                                            "startupProbe": {"tcpSocket": {"host": "10.0.0.1", "port": 1}}}],
              "i0.lifecycle": {"preStop": {"tcpSocket": {"host": "localhost", "port": 1}}}}},
     {"v1.33": set(), "v1.34": {"hostProbesAndHostLifecycle"}}),
    ("AppArmor field is checked at every version", "baseline",
     {"set": {"pod.appArmorProfile": {"type": "Unconfined"}}},
     {"v1.0": {"appArmorProfile"}, "v1.37": {"appArmorProfile"}}),
    ("image and csi volumes are allowed at every version", "restricted",
     {"set": {"spec.volumes": [{"name": "i", "image": {"reference": "r/x:1"}},
                               {"name": "c", "csi": {"driver": "d"}}, {"name": "e", "ephemeral": {}}]}},
     {"v1.0": set(), "v1.37": set()}),
    ("HostProcess in an init container only", "baseline",
     {"set": {"i0.securityContext.windowsOptions": {"hostProcess": True}}},
     {"v1.0": {"windowsHostProcess"}, "v1.37": {"windowsHostProcess"}}),
]


@pytest.mark.parametrize(("what", "level", "edit", "expected"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_behaviour_changes_exactly_where_upstream_changed_it(
        what: str, level: str, edit: dict[str, Any], expected: dict[str, set[str]]) -> None:
    pod = _edited(edit)
    got = {version: {v.check for v in pss.evaluate(pod["metadata"], pod["spec"], level,
                                                   pss.parse_pss_version(version))}
           for version in expected}
    assert got == expected
