"""Encryption of Secrets at rest (guidance §1.6 "Secrets", §2.6, NSA-SEC-3..5, Appendices H, I).

The EncryptionConfiguration is the file kube-apiserver --encryption-provider-config names: read
from the node (--root/--bundle) by its host path, or found by kind among the scanned files."""

from __future__ import annotations

from collections.abc import Iterator

from kubeharden.catalog import Context, Example, control
from kubeharden.model import NotAssessed, Resource, Section, Severity, Violation
from kubeharden.nodeconf import encryption as enc
from kubeharden.nodeconf.checks import file_mode_violations
from kubeharden.nodeconf.evidence import NEEDS, evidence_of, missing_file_violation
from kubeharden.nodeconf.manifests import example

API = "kube-apiserver"
ENC_FLAG = "encryption-provider-config"
ENC_PATH = "/etc/kubernetes/enc/encryption-config.yaml"
_KEY32 = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluaywgc28gaXQ="  # 32 bytes, for examples only
_KEY16 = "MDEyMzQ1Njc4OWFiY2RlZg=="  # 16 bytes


def _keyed(provider: str, key: str = _KEY32) -> str:
    return f"  - {provider}:\n      keys:\n      - name: k\n        secret: {key}\n"

GOOD_ENCRYPTION = f"""apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets, configmaps]
  providers:
  - aesgcm:
      keys:
      - name: key1
        secret: {_KEY32}
  - identity: {{}}
"""


def _enc_doc(providers: str, resources: str = "[secrets]") -> str:
    return f"""apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: {resources}
  providers:
{providers}"""


def _with_enc(doc: str) -> str:
    return example(API, False, "v1.30.2", doc, encryption_provider_config=ENC_PATH)


def _configs(ctx: Context) -> Iterator[tuple[Resource, str]]:
    """(EncryptionConfiguration, the API server it belongs to) for each API server that has one."""
    ev = evidence_of(ctx)
    apis = ev.require(API)
    problems: list[str] = []
    found = False
    for api in apis:
        ref = ev.referenced_config(api, ENC_FLAG, "EncryptionConfiguration")
        if not ref.flag_value:
            problems.append(f"{api.label}: --{ENC_FLAG} is not set (see KH-SEC-001)")
            continue
        if not ref.resources:
            problems.append(f"{api.label}: {ref.problem}")
            continue
        for res in ref.resources:
            found = True
            yield res, api.label
    if not found:
        raise NotAssessed("no EncryptionConfiguration to judge: " + "; ".join(problems))


@control(
    id="KH-SEC-001",
    title="Secrets are not encrypted at rest",
    section=Section.SECRETS,
    guidance=("NSA-SEC-3", "NSA-CP-9"),
    severity=Severity.HIGH,
    needs=NEEDS[API],
    what="kube-apiserver has no --encryption-provider-config, so Secrets are stored in etcd as plain "
    "(base64) data.",
    why="Anyone with a copy of etcd's data or a backup reads every Secret.",
    fix="Generate an EncryptionConfiguration (kubeharden generate encryption-config), mount it into the "
    "API server pod and set --encryption-provider-config=<path>; then rewrite all Secrets.",
    examples=(Example(True, example(API)), Example(False, _with_enc(GOOD_ENCRYPTION))),
)
def encryption_enabled(ctx: Context) -> Iterator[Violation]:
    ev = evidence_of(ctx)
    for api in ev.require(API):
        if not api.value(ENC_FLAG):
            yield api.flag_violation(ENC_FLAG, f"--{ENC_FLAG} is not set: Secrets are stored unencrypted in etcd")
            continue
        ref = ev.referenced_config(api, ENC_FLAG, "EncryptionConfiguration")
        if ref.missing:
            yield missing_file_violation(api, ENC_FLAG, ref)


@control(
    id="KH-SEC-002",
    title="EncryptionConfiguration leaves Secrets unencrypted",
    section=Section.SECRETS,
    guidance=("NSA-SEC-3",),
    severity=Severity.HIGH,
    needs="node configuration: kube-apiserver with --encryption-provider-config and its EncryptionConfiguration",
    what="The EncryptionConfiguration does not cover secrets, or the first provider for secrets is "
    "identity (which writes plain text), or the entry lists no usable provider.",
    why="The API server encrypts with the first provider of the first entry that lists the resource; "
    "identity first means new Secrets are written unencrypted.",
    fix="List secrets (and configmaps) under resources[].resources and put aesgcm, secretbox or kms first; "
    "identity only last, for reading old data.",
    examples=(Example(True, _with_enc(_enc_doc("  - identity: {}\n  - aesgcm:\n      keys:\n      - name: k\n"
                                                f"        secret: {_KEY32}\n"))),
              Example(True, _with_enc(_enc_doc(f"  - aesgcm:\n      keys:\n      - name: k\n        secret: {_KEY32}\n",
                                               "[configmaps]"))),
              Example(False, _with_enc(GOOD_ENCRYPTION))),
)
def encryption_covers_secrets(ctx: Context) -> Iterator[Violation]:
    for res, _api in _configs(ctx):
        found = enc.entry_for(res.obj, "secrets")
        if found is None:
            yield Violation(res, ("resources",), "no resources[] entry covers secrets: Secrets are stored "
                            "unencrypted", has_value=False)
            continue
        index, _entry = found
        providers = enc.providers(res.obj, index)
        if not providers:
            yield Violation(res, ("resources", index, "providers"), "the entry for secrets has no valid provider")
            continue
        first = providers[0]
        if first.name == "identity":
            yield Violation(res, first.path, "identity is the first provider for secrets: new Secrets are "
                            "written unencrypted", "identity", has_value=True)


@control(
    id="KH-SEC-003",
    title="Secrets encrypted with a legacy provider (aescbc) or KMS v1",
    section=Section.SECRETS,
    guidance=("NSA-SEC-4",),
    severity=Severity.MEDIUM,
    needs="node configuration: kube-apiserver with --encryption-provider-config and its EncryptionConfiguration",
    what="The provider that encrypts Secrets is aescbc (legacy, padding-oracle prone) or KMS v1 "
    "(deprecated). secretbox and aesgcm pass (rotate their keys; KMS v2 keeps the key off the node).",
    why="aescbc is no longer recommended by Kubernetes and KMS v1 is deprecated since 1.28; a local key "
    "sits next to the data it protects, so KMS v2 is the strongest choice.",
    fix="Use a kms provider with apiVersion: v2 backed by an external KMS; otherwise secretbox or aesgcm "
    "with regular key rotation, never aescbc.",
    examples=(Example(True, _with_enc(_enc_doc(_keyed("aescbc")))),
              Example(False, _with_enc(_enc_doc("  - kms:\n      apiVersion: v2\n      name: vault\n"
                                                "      endpoint: unix:///var/run/kms/socket.sock\n")))),
)
def encryption_provider_strength(ctx: Context) -> Iterator[Violation]:
    for res, _api in _configs(ctx):
        found = enc.entry_for(res.obj, "secrets")
        if found is None:
            continue
        providers = enc.providers(res.obj, found[0])
        if not providers or providers[0].name == "identity":
            continue
        first = providers[0]
        if first.name == "aescbc":
            yield Violation(res, first.path, "Secrets are encrypted with aescbc, a legacy provider (CBC mode, "
                            "key on local disk)", "aescbc", has_value=True)
        elif first.name == "kms":
            api_version = str(first.config.get("apiVersion") or "v1")
            if api_version != "v2":
                yield Violation(res, (*first.path, "apiVersion"), f"KMS provider uses apiVersion {api_version} "
                                "(KMS v1 is deprecated; use v2)", api_version, has_value=True)


@control(
    id="KH-SEC-004",
    title="Encryption key of the wrong length or not base64",
    section=Section.SECRETS,
    guidance=("NSA-SEC-3",),
    severity=Severity.HIGH,
    needs="node configuration: kube-apiserver with --encryption-provider-config and its EncryptionConfiguration",
    what="An aesgcm/aescbc/secretbox key is not valid base64 or decodes to a length the provider rejects "
    "(AES: 16, 24 or 32 bytes; secretbox: 32), or an AES key is shorter than 32 bytes.",
    why="An invalid key stops the API server from starting; a short key weakens the encryption.",
    fix="Generate a 32-byte random key: head -c 32 /dev/urandom | base64 (or kubeharden generate "
    "encryption-config).",
    examples=(Example(True, _with_enc(_enc_doc(_keyed("aesgcm", _KEY16)))),
              Example(False, _with_enc(GOOD_ENCRYPTION))),
)
def encryption_key_length(ctx: Context) -> Iterator[Violation]:
    for res, _api in _configs(ctx):
        for problem in enc.key_problems(res.obj):
            # the key itself never goes into a finding: only its decoded length
            if not problem.valid:
                size = "not valid base64" if problem.size is None else f"{problem.size} bytes"
                yield Violation(res, problem.path, f"key {problem.key_name!r} is {size}: the provider rejects it",
                                problem.size, has_value=problem.size is not None, evidence={"key_bytes": problem.size})
            else:
                violation = Violation(res, problem.path, f"key {problem.key_name!r} is {problem.size} bytes "
                                      "(32 recommended)", problem.size, has_value=True,
                                      evidence={"key_bytes": problem.size})
                violation.severity = Severity.MEDIUM
                yield violation


@control(
    id="KH-SEC-005",
    title="Encryption configuration file readable by others",
    section=Section.SECRETS,
    guidance=("NSA-SEC-5",),
    severity=Severity.HIGH,
    needs=NEEDS["files"],
    what="The file --encryption-provider-config names is more permissive than 0600 or not owned by root.",
    why="It holds the keys that decrypt every Secret in etcd.",
    fix="chmod 600 the EncryptionConfiguration file; chown root:root.",
)
def encryption_config_permissions(ctx: Context) -> Iterator[Violation]:
    ev = evidence_of(ctx)
    snapshot = ev.require_snapshot()
    records = [r for r in snapshot.with_role("encryption-config") if r.exists]
    if not records:
        raise NotAssessed("no EncryptionConfiguration file found on the node (see KH-SEC-001)")
    for record in records:
        yield from file_mode_violations(ev, record, 0o600, "encryption configuration")
