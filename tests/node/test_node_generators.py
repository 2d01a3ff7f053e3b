"""Generated audit policy and EncryptionConfiguration: exact Kubernetes field names (schemas
written from the Go types audit.k8s.io/v1 Policy and apiserver.config.k8s.io/v1
EncryptionConfiguration), and they pass kubeharden's own checks."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from node_helpers import node_results, scan_node, status_of
from node_layout import build_node, write

from kubeharden.cli import cli
from kubeharden.generators.audit_policy import AuditOptions, audit_snippet, render_audit_policy
from kubeharden.generators.encryption_config import (
    EncryptionOptions,
    GeneratorError,
    encryption_snippet,
    render_encryption_config,
)
from kubeharden.model import Status

_STRINGS = {"type": "array", "items": {"type": "string"}}
_OBJECT_META = {"type": "object"}

# audit.k8s.io/v1: Policy{TypeMeta, ObjectMeta, Rules []PolicyRule, OmitStages []Stage, OmitManagedFields bool}
# PolicyRule{Level, Users, UserGroups, Verbs, Resources []GroupResources, Namespaces, NonResourceURLs,
#            OmitStages, OmitManagedFields *bool}; GroupResources{Group, Resources, ResourceNames}
AUDIT_POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "rules"],
    "properties": {
        "apiVersion": {"const": "audit.k8s.io/v1"},
        "kind": {"const": "Policy"},
        "metadata": _OBJECT_META,
        "omitStages": {"type": "array", "items": {"enum": ["RequestReceived", "ResponseStarted",
                                                            "ResponseComplete", "Panic"]}},
        "omitManagedFields": {"type": "boolean"},
        "rules": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["level"],
            "properties": {
                "level": {"enum": ["None", "Metadata", "Request", "RequestResponse"]},
                "users": _STRINGS, "userGroups": _STRINGS, "verbs": _STRINGS, "namespaces": _STRINGS,
                "nonResourceURLs": _STRINGS,
                "omitStages": {"type": "array", "items": {"enum": ["RequestReceived", "ResponseStarted",
                                                                    "ResponseComplete", "Panic"]}},
                "omitManagedFields": {"type": "boolean"},
                "resources": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "properties": {"group": {"type": "string"}, "resources": _STRINGS, "resourceNames": _STRINGS},
                }},
            },
        }},
    },
}

_KEYS = {"type": "object", "additionalProperties": False, "required": ["keys"], "properties": {
    "keys": {"type": "array", "minItems": 1, "items": {
        "type": "object", "additionalProperties": False, "required": ["name", "secret"],
        "properties": {"name": {"type": "string"}, "secret": {"type": "string"}}}}}}
# apiserver.config.k8s.io/v1: EncryptionConfiguration{TypeMeta, Resources []ResourceConfiguration};
# ResourceConfiguration{Resources []string, Providers []ProviderConfiguration}; ProviderConfiguration{
# AESGCM, AESCBC *AESConfiguration, Secretbox *SecretboxConfiguration, Identity *IdentityConfiguration,
# KMS *KMSConfiguration{APIVersion, Name, CacheSize *int32, Endpoint, Timeout *metav1.Duration}}
ENCRYPTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "resources"],
    "properties": {
        "apiVersion": {"const": "apiserver.config.k8s.io/v1"},
        "kind": {"const": "EncryptionConfiguration"},
        "resources": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["resources", "providers"],
            "properties": {
                "resources": _STRINGS,
                "providers": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
                    "properties": {
                        "aesgcm": _KEYS, "aescbc": _KEYS, "secretbox": _KEYS,
                        "identity": {"type": "object", "additionalProperties": False},
                        "kms": {"type": "object", "additionalProperties": False, "required": ["name", "endpoint"],
                                "properties": {"apiVersion": {"enum": ["v1", "v2"]}, "name": {"type": "string"},
                                               "cachesize": {"type": "integer"}, "endpoint": {"type": "string"},
                                               "timeout": {"type": "string"}}},
                    }}},
            }}},
    },
}


def test_schemas_reject_wrong_field_names() -> None:
    """The schemas are strict enough to catch the typos the guidance's appendices contain."""
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                             "rules": [{"level": "Metadata", "resource": []}]}, AUDIT_POLICY_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
                             "resources": [{"resources": ["secrets"], "providers": [{"kms": {
                                 "name": "x", "endpoint": "unix:///s", "cacheSize": 1}}]}]}, ENCRYPTION_SCHEMA)


def test_audit_policy_matches_the_schema_and_guidance_shape() -> None:
    doc = yaml.safe_load(render_audit_policy())
    jsonschema.validate(doc, AUDIT_POLICY_SCHEMA)
    rules = doc["rules"]
    assert doc["omitStages"] == ["RequestReceived"]
    assert rules[0]["level"] == "Metadata" and "secrets" in rules[0]["resources"][0]["resources"]
    assert rules[-1] == {"level": "Metadata"}
    assert not any(r["level"] == "None" for r in rules)


@pytest.mark.parametrize("provider", ["secretbox", "aesgcm", "aescbc", "kms"])
def test_encryption_config_matches_the_schema(provider: str) -> None:
    options = EncryptionOptions(provider, kms_endpoint="unix:///var/run/kmsplugin/socket.sock")
    doc = yaml.safe_load(render_encryption_config(options))
    jsonschema.validate(doc, ENCRYPTION_SCHEMA)
    providers = doc["resources"][0]["providers"]
    assert providers[-1] == {"identity": {}} and list(providers[0]) == [provider]
    assert doc["resources"][0]["resources"] == ["secrets", "configmaps"]
    if provider == "kms":
        assert providers[0]["kms"]["apiVersion"] == "v2"
    else:
        assert len(base64.b64decode(providers[0][provider]["keys"][0]["secret"])) == 32


def test_each_generated_key_is_fresh() -> None:
    first = render_encryption_config(EncryptionOptions())
    second = render_encryption_config(EncryptionOptions())
    assert first != second


def test_kms_needs_an_endpoint() -> None:
    with pytest.raises(GeneratorError, match="kms-endpoint"):
        render_encryption_config(EncryptionOptions("kms"))
    result = CliRunner().invoke(cli, ["generate", "encryption-config", "--provider", "kms"])
    assert result.exit_code == 2 and "--kms-endpoint" in result.output


def _install(root: Path, enc_text: str | None = None) -> Path:
    """A hardened node whose audit policy / encryption config are the generated files, mounted as the
    --flags output says."""
    if enc_text is not None:
        write(root, "/etc/kubernetes/enc/encryption-config.yaml", enc_text, 0o600)
    return root


@pytest.mark.parametrize("provider", ["secretbox", "aesgcm", "kms", "aescbc"])
def test_generated_files_pass_the_node_checks(tmp_path: Path, provider: str) -> None:
    root = build_node(tmp_path / "n", True)  # its audit policy is render_audit_policy()
    options = EncryptionOptions(provider, kms_endpoint="unix:///var/run/kmsplugin/socket.sock")
    _install(root, render_encryption_config(options))
    result = scan_node(root)
    for control in ("KH-LOG-001", "KH-LOG-002", "KH-LOG-003", "KH-LOG-004", "KH-LOG-005", "KH-LOG-006",
                    "KH-LOG-008", "KH-SEC-001", "KH-SEC-002", "KH-SEC-004", "KH-SEC-005"):
        assert status_of(result, control) is Status.PASS, (control, node_results(result)[control].findings)
    # aescbc is the user's explicit choice and is reported as legacy; the others pass
    expected = Status.FAIL if provider == "aescbc" else Status.PASS
    assert status_of(result, "KH-SEC-003") is expected


def test_flags_snippet_is_consistent_with_the_generated_files(tmp_path: Path) -> None:
    """The snippet's flags and mounts, applied to kubeadm's API server, make the audit controls pass."""
    from kubeharden.nodeconf.manifests import flags_for, static_pod

    root = build_node(tmp_path / "n", False)
    audit = audit_snippet(AuditOptions())
    enc = encryption_snippet(EncryptionOptions())
    pod = static_pod("kube-apiserver", flags_for("kube-apiserver"))
    container = pod["spec"]["containers"][0]  # type: ignore[index]
    for snippet in (audit, enc):
        container["command"] += snippet.flags
        container["volumeMounts"] += [{"name": m.name, "mountPath": m.path, "readOnly": m.read_only}
                                      for m in snippet.mounts]
        pod["spec"]["volumes"] += [{"name": m.name, "hostPath": {"path": m.path, "type": m.type}}  # type: ignore[index]
                                   for m in snippet.mounts]
    write(root, "/etc/kubernetes/manifests/kube-apiserver.yaml", yaml.safe_dump(pod), 0o600)
    write(root, AuditOptions().policy_path, render_audit_policy(), 0o600)
    write(root, EncryptionOptions().config_path, render_encryption_config(EncryptionOptions()), 0o600)
    result = scan_node(root)
    for control in ("KH-LOG-001", "KH-LOG-002", "KH-LOG-003", "KH-LOG-004", "KH-LOG-005", "KH-LOG-008",
                    "KH-SEC-001", "KH-SEC-002", "KH-SEC-003", "KH-SEC-004", "KH-SEC-005"):
        assert status_of(result, control) is Status.PASS, (control, node_results(result)[control].findings)
    rendered = audit.render()
    assert "--audit-policy-file=/etc/kubernetes/audit/audit-policy.yaml" in rendered
    assert "type: File" in rendered and "type: DirectoryOrCreate" in rendered


def test_cli_writes_files_safely(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "enc.yaml"
    result = runner.invoke(cli, ["generate", "encryption-config", "-o", str(out), "--flags"])
    assert result.exit_code == 0, result.output
    assert os.stat(out).st_mode & 0o777 == 0o600
    assert "--encryption-provider-config=/etc/kubernetes/enc/encryption-config.yaml" in result.stdout
    assert "secret:" not in result.stdout  # the key goes to the file only
    before = out.read_text()
    refused = runner.invoke(cli, ["generate", "encryption-config", "-o", str(out)])
    assert refused.exit_code == 2 and "--force" in refused.output and out.read_text() == before
    os.chmod(out, 0o644)
    forced = runner.invoke(cli, ["generate", "encryption-config", "-o", str(out), "--force"])
    assert forced.exit_code == 0 and out.read_text() != before and os.stat(out).st_mode & 0o777 == 0o600
    policy = tmp_path / "policy.yaml"
    made = runner.invoke(cli, ["generate", "audit-policy", "-o", str(policy)])
    assert made.exit_code == 0 and yaml.safe_load(policy.read_text())["kind"] == "Policy"
    printed = runner.invoke(cli, ["generate", "audit-policy"])
    assert yaml.safe_load(printed.stdout) == yaml.safe_load(policy.read_text())
    only = runner.invoke(cli, ["generate", "audit-policy", "--flags-only", "--policy-path", "/srv/p.yaml"])
    assert "--audit-policy-file=/srv/p.yaml" in only.stdout and "path: /srv/p.yaml" in only.stdout
    kms = runner.invoke(cli, ["generate", "encryption-config", "--provider", "kms", "--kms-endpoint",
                              "unix:///var/run/kmsplugin/socket.sock", "--flags-only"])
    assert "path: /var/run/kmsplugin" in kms.stdout


def test_leaving_secrets_out_is_warned_about() -> None:
    result = CliRunner().invoke(cli, ["generate", "encryption-config", "--resource", "configmaps"])
    assert result.exit_code == 0 and "secrets are not among --resource" in result.stderr
    assert yaml.safe_load(result.stdout)["resources"][0]["resources"] == ["configmaps"]
    quiet = CliRunner().invoke(cli, ["generate", "encryption-config"])
    assert "warning" not in quiet.stderr


@pytest.mark.parametrize("args", [
    ["audit-policy", "--policy-path", ""],
    ["audit-policy", "--log-path", "relative/audit.log"],
    ["encryption-config", "--config-path", "/"],
    ["encryption-config", "--resource", ""],
])
def test_generate_refuses_paths_and_resources_that_make_an_invalid_config(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["generate", *args, "--flags-only"])
    assert result.exit_code == 2
    assert "Invalid value" in result.output


@pytest.mark.parametrize(("subjects", "log_005", "log_006"), [
    ("users: [system:anonymous]", Status.PASS, Status.FAIL),
    ("userGroups: [system:unauthenticated]", Status.PASS, Status.FAIL),
    ("userGroups: [system:authenticated]", Status.FAIL, Status.PASS),  # everyone who can change RBAC
])
def test_a_none_rule_for_anonymous_only_is_not_an_rbac_logging_gap(
        tmp_path: Path, subjects: str, log_005: Status, log_006: Status) -> None:
    root = build_node(tmp_path / "n", True)
    policy = yaml.safe_load(render_audit_policy())
    policy["rules"].insert(0, {"level": "None", **yaml.safe_load(f"{{{subjects}}}")})
    write(root, AuditOptions().policy_path, yaml.safe_dump(policy), 0o600)
    result = scan_node(root)
    assert status_of(result, "KH-LOG-005") is log_005, node_results(result)["KH-LOG-005"].findings
    assert status_of(result, "KH-LOG-006") is log_006
