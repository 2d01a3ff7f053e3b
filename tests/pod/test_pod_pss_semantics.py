"""Pod Security Standards semantics on our own fixtures: versions, overrides, Windows, user
namespaces, defaulting, pod templates, profiles and the policy-version option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeharden import pss
from kubeharden.catalog import Settings, controls_for_profile, profiles
from kubeharden.model import Status
from kubeharden.scanner import ScanRequest, run_scan

RESTRICTED_OK: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [{"name": "app", "image": "x", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
}


def spec(**changes: Any) -> dict[str, Any]:
    out = yaml.safe_load(yaml.safe_dump(RESTRICTED_OK))
    out.update(changes)
    return out


def container_sc(**fields: Any) -> dict[str, Any]:
    out = spec()
    out["containers"][0]["securityContext"].update(fields)
    return out


def checks(s: dict[str, Any], level: str = "restricted", version: str = "latest",
           meta: dict[str, Any] | None = None) -> set[str]:
    return {v.check for v in pss.evaluate(meta or {}, s, level, pss.parse_pss_version(version))}


def test_compliant_pod_passes_both_levels_at_all_versions() -> None:
    for minor in range(0, 40):
        assert checks(spec(), "restricted", f"v1.{minor}") == set()
        assert checks(spec(), "baseline", f"v1.{minor}") == set()


def test_parse_pss_version() -> None:
    assert pss.parse_pss_version("latest") == pss.LATEST
    assert pss.parse_pss_version("v1.0") == (1, 0)
    assert pss.parse_pss_version("v1.99") == (1, 99)
    assert pss.parse_pss_version("1.30") == (1, 30)  # as --kubernetes-version takes it (issue 12)
    for bad in ("1.030", "v1.030", "v2.1", "v1", "lates", "", "v1.3x"):
        with pytest.raises(ValueError, match="Pod Security Standards version"):
            pss.parse_pss_version(bad)


def test_future_version_uses_newest_checks() -> None:
    assert pss.active_checks("restricted", (1, 99)) == pss.active_checks("restricted", pss.LATEST)


def test_overrides_by_version() -> None:
    at = lambda v: set(pss.active_checks("restricted", v))  # noqa: E731
    assert "hostPathVolumes" not in at((1, 0)) and "restrictedVolumes" in at((1, 0))
    assert "seccompProfile_baseline" in at((1, 18)) and "seccompProfile_restricted" not in at((1, 18))
    assert "seccompProfile_baseline" not in at((1, 19)) and "seccompProfile_restricted" in at((1, 19))
    assert "capabilities_baseline" in at((1, 21)) and "capabilities_baseline" not in at((1, 22))
    assert "procMount" in at((1, 34)) and "procMount" not in at((1, 35)) and "procMount_restricted" in at((1, 35))
    assert "allowPrivilegeEscalation" not in at((1, 7)) and "allowPrivilegeEscalation" in at((1, 8))
    assert "runAsUser" not in at((1, 22)) and "runAsUser" in at((1, 23))
    assert "hostProbesAndHostLifecycle" not in at((1, 33)) and "hostProbesAndHostLifecycle" in at((1, 34))
    baseline = set(pss.active_checks("baseline", pss.LATEST))
    assert "hostPathVolumes" in baseline and "restrictedVolumes" not in baseline


def test_volume_with_only_a_name_is_an_empty_dir() -> None:
    assert checks(spec(volumes=[{"name": "scratch"}])) == set()
    assert checks(spec(volumes=[{"name": "x", "emptyDir": None}])) == set()
    assert checks(spec(volumes=[{"name": "x", "nfs": {"server": "a", "path": "/"}}])) == {"restrictedVolumes"}
    assert checks(spec(volumes=[{"name": "x", "madeUpSource": {}}])) == {"restrictedVolumes"}
    for allowed in sorted(pss.RESTRICTED_VOLUME_SOURCES):
        assert checks(spec(volumes=[{"name": "x", allowed: {}}])) == set(), allowed
    host = spec(volumes=[{"name": "h", "hostPath": {"path": "/"}}])
    assert checks(host) == {"restrictedVolumes"}
    assert checks(host, "baseline") == {"hostPathVolumes"}


def test_windows_exemptions_start_at_1_25() -> None:
    windows = {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True},
               "containers": [{"name": "app", "image": "x"}]}
    assert checks(windows, version="v1.25") == set()
    assert checks(windows, version="v1.24") == {"allowPrivilegeEscalation", "seccompProfile_restricted",
                                                 "capabilities_restricted"}
    # runAsNonRoot has no Windows exemption
    del windows["securityContext"]
    assert checks(windows) == {"runAsNonRoot"}


def test_host_users_false_exempts_identity_checks_from_1_35_only() -> None:
    rooted = spec(hostUsers=False, securityContext={"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}})
    assert checks(rooted, version="v1.35") == set()
    assert checks(rooted, version="v1.34") == {"runAsNonRoot", "runAsUser"}
    unmasked = container_sc(procMount="Unmasked")
    unmasked["hostUsers"] = False
    assert checks(unmasked, "baseline", "v1.35") == set()
    assert checks(unmasked, "baseline", "v1.34") == {"procMount"}
    assert checks(unmasked, "restricted", "v1.35") == {"procMount_restricted"}
    unmasked["hostUsers"] = True
    assert checks(unmasked, "baseline", "v1.35") == {"procMount"}


def test_run_as_non_root_precedence() -> None:
    # container true covers an unset pod; container false is never rescued by the pod
    s = spec(securityContext={"seccompProfile": {"type": "RuntimeDefault"}})
    assert checks(s) == {"runAsNonRoot"}
    s["containers"][0]["securityContext"]["runAsNonRoot"] = True
    assert checks(s) == set()
    assert checks(container_sc(runAsNonRoot=False)) == {"runAsNonRoot"}
    # runAsUser does not satisfy runAsNonRoot
    s = spec(securityContext={"runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}})
    assert checks(s) == {"runAsNonRoot"}


def test_seccomp_versions_annotations_and_fields() -> None:
    meta = {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}}
    bare = {"containers": [{"name": "app", "image": "x"}]}
    assert checks(bare, "baseline", "v1.18", meta) == {"seccompProfile_baseline"}
    assert checks(bare, "baseline", "v1.19", meta) == set()  # annotations no longer checked
    empty = {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": ""}}
    assert checks(bare, "baseline", "v1.0", empty) == {"seccompProfile_baseline"}
    other = {"annotations": {"container.seccomp.security.alpha.kubernetes.io/ghost": "unconfined"}}
    assert checks(bare, "baseline", "v1.0", other) == set()  # no such container
    for good in ("runtime/default", "docker/default", "localhost/p.json"):
        ok = {"annotations": {"container.seccomp.security.alpha.kubernetes.io/app": good}}
        assert checks(bare, "baseline", "v1.0", ok) == set()
    unconfined = container_sc(seccompProfile={"type": "Unconfined"})
    assert checks(unconfined, "baseline") == {"seccompProfile_baseline"}
    assert checks(unconfined) == {"seccompProfile_restricted"}


def test_apparmor_and_selinux_versions() -> None:
    meta = {"annotations": {"container.apparmor.security.beta.kubernetes.io/nonexistent": "unconfined"}}
    assert checks(spec(), "baseline", meta=meta) == {"appArmorProfile"}
    assert checks(container_sc(appArmorProfile={"type": "Localhost", "localhostProfile": "p"})) == set()
    engine = container_sc(seLinuxOptions={"type": "container_engine_t"})
    assert checks(engine, version="v1.30") == {"seLinuxOptions"}
    assert checks(engine, version="v1.31") == set()
    assert checks(container_sc(seLinuxOptions={"level": "s0:c1"})) == set()
    assert checks(container_sc(seLinuxOptions={"role": "sysadm_r"})) == {"seLinuxOptions"}


def test_sysctl_allow_list_grows_by_version() -> None:
    s = spec(securityContext={**RESTRICTED_OK["securityContext"],
                              "sysctls": [{"name": "net.ipv4.tcp_notsent_lowat", "value": "1"}]})
    assert checks(s, version="v1.36") == {"sysctls"}
    assert checks(s, version="v1.37") == set()
    s["securityContext"]["sysctls"] = [{"name": "net.ipv4.tcp_rmem", "value": "1 2 3"}]
    assert checks(s, version="v1.31") == {"sysctls"} and checks(s, version="v1.32") == set()


def test_capabilities_exact_names() -> None:
    assert checks(container_sc(capabilities={"drop": ["all"]})) == {"capabilities_restricted"}
    assert checks(container_sc(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})) == set()
    assert checks(container_sc(capabilities={"drop": ["ALL"], "add": ["CHOWN"]})) == {"capabilities_restricted"}
    assert checks(container_sc(capabilities={"add": ["CHOWN"]}), "baseline") == set()
    assert checks(container_sc(capabilities={"add": ["CAP_CHOWN"]}), "baseline") == {"capabilities_baseline"}


def test_non_string_names_are_violations_not_crashes() -> None:
    # Regression: a list or mapping where a name belongs raised TypeError (unhashable) in set lookups.
    assert checks(container_sc(capabilities={"add": [["CHOWN"], {"a": 1}]}), "baseline") == {"capabilities_baseline"}
    odd = spec(securityContext={"seLinuxOptions": {"type": ["container_t"]}, "sysctls": [{"name": {"a": 1}}]})
    assert checks(odd, "baseline") == {"seLinuxOptions", "sysctls"}
    assert checks(spec(securityContext={"sysctls": [{"name": "kernel.shm_rmid_forced"}]}), "baseline") == set()


def test_ephemeral_containers_are_checked() -> None:
    s = spec(ephemeralContainers=[{"name": "debug", "image": "x", "securityContext": {"privileged": True}}])
    assert "privileged" in checks(s, "baseline")


def test_host_network_makes_container_ports_host_ports() -> None:
    # The API server defaults hostPort to containerPort in hostNetwork pods (init containers too).
    s = spec(hostNetwork=True)
    assert checks(s, "baseline") == {"hostNamespaces"}  # no ports declared
    s["initContainers"] = [{"name": "init", "image": "x", "ports": [{"containerPort": 9000, "hostPort": 0}]}]
    s["containers"][0]["ports"] = [{"containerPort": 8080}, {"containerPort": 53, "hostPort": 53}]
    found = [v for v in pss.evaluate({}, s, "baseline", pss.LATEST) if v.check == "hostPorts"]
    assert [(v.path, v.value) for v in found] == [
        (("spec", "initContainers", 0, "ports", 0, "containerPort"), 9000),
        (("spec", "containers", 0, "ports", 0, "containerPort"), 8080),
        (("spec", "containers", 0, "ports", 1, "hostPort"), 53),
    ]
    s["hostNetwork"] = False
    assert [v.value for v in pss.evaluate({}, s, "baseline", pss.LATEST) if v.check == "hostPorts"] == [53]
    # ephemeral containers are not defaulted (the API server does not allow them ports at all)
    debug = spec(hostNetwork=True, ephemeralContainers=[{"name": "d", "image": "x", "ports": [{"containerPort": 1}]}])
    assert checks(debug, "baseline") == {"hostNamespaces"}


def test_host_probe_and_lifecycle() -> None:
    s = spec()
    s["containers"][0]["lifecycle"] = {"preStop": {"httpGet": {"host": "example.com", "port": 80}}}
    assert checks(s, version="v1.34") == {"hostProbesAndHostLifecycle"}
    assert checks(s, version="v1.33") == set()
    s["containers"][0]["lifecycle"] = {"preStop": {"httpGet": {"host": "", "port": 80}}}
    assert checks(s) == set()


CRONJOB = """\
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: jobs}
spec:
  schedule: "0 0 * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations:
            container.apparmor.security.beta.kubernetes.io/job: unconfined
        spec:
          restartPolicy: Never
          hostNetwork: true
          containers:
          - name: job
            image: registry.example/job:1
"""


def scan(tmp_path: Path, text: str, profile: str, version: str | None = None, **settings: Any) -> Any:
    path = tmp_path / "in.yaml"
    path.write_text(text)
    extra = {"pss_version": version} if version else {}
    return run_scan(ScanRequest(paths=[str(path)], profile=profile, settings=Settings(extra=extra, **settings)))


def test_pod_templates_are_evaluated_with_template_paths_and_lines(tmp_path: Path) -> None:
    result = scan(tmp_path, CRONJOB, "pss-baseline")
    found = {(f.evidence["pss_check"], f.path, f.line) for f in result.findings}
    assert ("hostNamespaces", "spec.jobTemplate.spec.template.spec.hostNetwork", 14) in found
    assert ("appArmorProfile", "spec.jobTemplate.spec.template.metadata.annotations"
            "['container.apparmor.security.beta.kubernetes.io/job']", 11) in found
    for f in result.findings:
        assert f.evidence["pss_version"] == "v1.37" and f.control_id.startswith("KH-PSS-")


def test_profiles_compose_as_admission_does() -> None:
    baseline = {c.id for c in controls_for_profile("pss-baseline")}
    restricted = {c.id for c in controls_for_profile("pss-restricted")}
    assert {"pss-baseline", "pss-restricted"} <= set(profiles())
    assert len(baseline) == 12 and len(restricted) == 15
    # replaced baseline checks are not in restricted; the shared ones are in both
    assert "KH-PSS-004" in baseline and "KH-PSS-004" not in restricted  # hostPathVolumes
    assert "KH-PSS-001" in baseline and "KH-PSS-001" in restricted  # hostNamespaces
    assert not any(c.startswith("KH-PSS") for c in {c.id for c in controls_for_profile("nsa")})


def test_restricted_profile_falls_back_to_baseline_rules_below_the_override(tmp_path: Path) -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations: {seccomp.security.alpha.kubernetes.io/pod: unconfined}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - name: app
    image: x
    securityContext: {capabilities: {add: [SYS_ADMIN]}}
"""
    old = {(f.control_id, f.evidence["pss_check"]) for f in scan(tmp_path, text, "pss-restricted", "v1.0").findings}
    assert old == {("KH-PSS-017", "seccompProfile_baseline"), ("KH-PSS-018", "capabilities_baseline")}
    new = {f.evidence["pss_check"] for f in scan(tmp_path, text, "pss-restricted", "v1.37").findings}
    assert new == {"seccompProfile_restricted", "capabilities_restricted", "allowPrivilegeEscalation"}


def test_checks_missing_at_a_version_are_not_assessed(tmp_path: Path) -> None:
    result = scan(tmp_path, CRONJOB, "pss-restricted", "v1.0")
    status = {r.control.id: r for r in result.controls}
    assert status["KH-PSS-014"].status is Status.NOT_ASSESSED  # allowPrivilegeEscalation starts at v1.8
    assert "v1.0" in (status["KH-PSS-014"].reason or "")
    assert status["KH-PSS-001"].status is Status.FAIL


def test_latest_follows_the_scanned_kubernetes_version(tmp_path: Path) -> None:
    text = CRONJOB.replace("hostNetwork: true", "hostNetwork: false").replace(
        "image: registry.example/job:1", "image: x\n            readinessProbe: {tcpSocket: {host: h, port: 1}}")
    assert any(f.evidence["pss_check"] == "hostProbesAndHostLifecycle"
               for f in scan(tmp_path, text, "pss-baseline").findings)
    result = scan(tmp_path, text, "pss-baseline", kubernetes_version=(1, 33))
    assert not any(f.evidence["pss_check"] == "hostProbesAndHostLifecycle" for f in result.findings)
    assert all(f.evidence["pss_version"] == "v1.33" for f in result.findings)


def test_invalid_version_is_a_clear_error(tmp_path: Path) -> None:
    result = scan(tmp_path, CRONJOB, "pss-baseline", "v2.30")
    assert result.errors and "invalid Pod Security Standards version 'v2.30'" in result.errors[0].message
    assert not any(e.internal for e in result.errors)  # the user's setting, not a bug: exit 2


def test_pss_version_without_v_is_accepted_like_kubernetes_version(tmp_path: Path) -> None:
    assert scan(tmp_path, CRONJOB, "pss-baseline", "1.30").errors == scan(tmp_path, CRONJOB, "pss-baseline",
                                                                           "v1.30").errors == []


def test_every_report_names_the_pss_check(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from kubeharden.cli import cli

    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                        "spec": spec(hostPID=True)}))
    for fmt in ("table", "sarif", "junit", "markdown"):
        result = CliRunner().invoke(cli, ["scan", str(manifest), "--profile", "pss-baseline", "-f", fmt])
        assert result.exit_code == 1 and "hostNamespaces" in result.stdout, fmt
    result = CliRunner().invoke(cli, ["scan", str(manifest), "--profile", "pss-baseline", "-f", "json"])
    [finding] = [f for f in json.loads(result.stdout)["findings"] if f["control_id"] == "KH-PSS-001"]
    assert finding["evidence"]["pss_check"] == "hostNamespaces" and finding["message"].startswith("hostNamespaces: ")
