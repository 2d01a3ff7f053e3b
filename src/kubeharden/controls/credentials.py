"""Credentials outside Secrets, weak Secret types and legacy tokens (NSA-SEC-1, SEC-7, AUTH-5).

Values that look like credentials are never reported: findings name the key, not its content.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from itertools import pairwise

from kubeharden.catalog import Context, Example, control
from kubeharden.controls.pod_common import WORKLOADS
from kubeharden.inventory import as_dict, as_list
from kubeharden.model import Section, Severity, Violation

# A setting holds a credential when a word of its name says so (DB_PASSWORD, adminToken,
# AWS_SECRET_ACCESS_KEY) and no other word says it is about the credential rather than the
# credential itself (PASSWORD_FILE, SECRET_NAME, MAX_TOKENS, TOKEN_TTL).
_CREDENTIAL_WORDS = frozenset({"PASSWORD", "PASSWD", "PWD", "PASS", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY",
                               "CREDENTIAL", "CREDENTIALS"})
_CREDENTIAL_PAIRS = frozenset({("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY"), ("SECRET", "KEY"),
                               ("AUTH", "KEY"), ("CLIENT", "SECRET"), ("SIGNING", "KEY"), ("ACCOUNT", "KEY")})
# Names with a credential word that are public identifiers (etcd's initial-cluster-token only keeps
# two clusters apart; it authenticates nothing).
_NOT_CREDENTIALS = (("INITIAL", "CLUSTER", "TOKEN"),)
_QUALIFIER_WORDS = frozenset({"FILE", "PATH", "DIR", "NAME", "USER", "USERNAME", "ID", "REF", "VERSION", "MAX",
                              "MIN", "COUNT", "LENGTH", "LEN", "SIZE", "TTL", "EXPIRY", "EXPIRATION", "TIMEOUT",
                              "LIMIT", "NUM", "ENABLED", "ENABLE", "TYPE", "HEADER", "FIELD", "MODE", "POLICY",
                              "TOKENS", "ALLOW", "EMPTY", "URL", "ENDPOINT", "AUDIENCE", "PROVIDER", "MOUNT",
                              "REFRESH"})
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
# "changeme" is not here: a manifest that ships it ships a working default password in plain text.
_PLACEHOLDER = re.compile(r"^(|true|false|yes|no|none|null|\$\(.+\)|\$\{.+\}|<.+>|\*+|/.*)$",
                          re.IGNORECASE)
_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
# A PEM private key is one only with a body: a header alone is documentation or a template.
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----\s*(?:[A-Za-z-]+:[^\n]*\n\s*)*"
                          r"[A-Za-z0-9+/=]{16}")
# Value formats of issued credentials (the issuers' documented prefixes and lengths). AWS's documented
# example key ids end in EXAMPLE and are placeholders.
_AWS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])")
_GITHUB_TOKEN = re.compile(r"(?<![A-Za-z0-9_])(?:gh[opsur]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})"
                           r"(?![A-Za-z0-9_])")
_SLACK_TOKEN = re.compile(r"(?<![A-Za-z0-9])xox[abeoprs]-(?:[0-9]+-)+[A-Za-z0-9-]{8,}")
_JWT = re.compile(r"(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{8,})\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
# An Authorization header value: a Bearer token of token68 characters, or Basic with base64 of user:password.
_AUTH_HEADER = re.compile(r"(?<![A-Za-z0-9])(Bearer|Basic)[ \t]+([A-Za-z0-9._~+/-]+=*)(?![A-Za-z0-9._~+/=$-])",
                          re.IGNORECASE)
_KEY_MATERIAL = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX = re.compile(r"[0-9a-fA-F]{32,}")
# Words before a final KEY that make it a public identifier rather than key material.
_PUBLIC_KEY_WORDS = frozenset({"PUBLIC", "PUB", "LABEL", "ANNOTATION", "TOPOLOGY", "PARTITION", "ROUTING", "SORT",
                               "CACHE", "OBJECT", "PRIMARY", "FOREIGN", "GPG", "PGP"})


def _words(name: str) -> list[str]:
    return [w.upper() for w in _WORD_SPLIT.split(name) if w]


def _names_a_credential(name: str) -> bool:
    words = _words(name)
    if not words or _QUALIFIER_WORDS.intersection(words):
        return False
    if any(tuple(words[i:i + len(n)]) == n for n in _NOT_CREDENTIALS for i in range(len(words))):
        return False
    return bool(_CREDENTIAL_WORDS.intersection(words)) or any(
        pair in _CREDENTIAL_PAIRS for pair in pairwise(words)
    )


def _names_a_key(name: str) -> bool:
    """AZURE_STORAGE_KEY, ENCRYPTION_KEY, masterKey: a name ending in KEY that no word qualifies."""
    words = _words(name)
    return (len(words) >= 2 and words[-1] == "KEY" and words[-2] not in _PUBLIC_KEY_WORDS
            and not _QUALIFIER_WORDS.intersection(words))


def _is_key_material(value: str) -> bool:
    """Random-looking: base64 or hex of at least 16 characters mixing letters and digits (a name such
    as `orders-2024-queue` has no capitals; a hex key has at least 32 digits)."""
    if _HEX.fullmatch(value):
        return any(ch.isdigit() for ch in value) and any(ch.isalpha() for ch in value)
    return bool(_KEY_MATERIAL.fullmatch(value)) and any(ch.isdigit() for ch in value) and \
        any(ch.isupper() for ch in value) and any(ch.islower() for ch in value)


def _is_jwt(header: str) -> bool:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


def _is_auth_header(scheme: str, credentials: str) -> bool:
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (ValueError, binascii.Error):
            return False
        _user, sep, password = decoded.partition(":")
        return bool(sep and password) and decoded.isprintable()
    # A Bearer token is opaque: require the length and mix of characters of a generated one.
    return len(credentials) >= 16 and any(ch.isdigit() for ch in credentials) and \
        any(ch.isalpha() for ch in credentials)


def _value_format(value: str) -> str | None:
    """What an issued credential in the value is, by its format alone."""
    if _PRIVATE_KEY.search(value):
        return "a private key"
    if any(not m.group().endswith("EXAMPLE") for m in _AWS_KEY_ID.finditer(value)):
        return "an AWS access key id"
    if _GITHUB_TOKEN.search(value):
        return "a GitHub token"
    if _SLACK_TOKEN.search(value):
        return "a Slack token"
    if any(_is_jwt(m.group(1)) for m in _JWT.finditer(value)):
        return "a JSON Web Token"
    for m in _AUTH_HEADER.finditer(value):
        if _is_auth_header(m.group(1), m.group(2)):
            return f"an HTTP {m.group(1).capitalize()} authorization value"
    if _URL_WITH_PASSWORD.search(value):
        return "a URL with an embedded password"
    return None


def _credential_reason(name: str, value: object) -> str | None:
    """Why the setting holds a credential (never quoting it), or None."""
    if not isinstance(value, str):
        return None
    by_format = _value_format(value)
    if by_format:
        return by_format
    stripped = value.strip()
    if _PLACEHOLDER.match(stripped):
        return None
    if _names_a_credential(name):
        return "a credential-like setting"
    if _names_a_key(name) and _is_key_material(stripped):
        return "key material"
    return None


@control(
    id="KH-CRED-001",
    title="Credential in a container environment literal",
    section=Section.SECRETS,
    guidance=("NSA-SEC-1",),
    severity=Severity.HIGH,
    kinds=WORKLOADS,
    what="A container's env sets a password, token, key or a URL with a password as a literal value.",
    why="Literal values are stored in plain text in the manifest, in etcd with the workload, in "
    "version control and in every `kubectl get -o yaml`; Secrets can be access-controlled and encrypted.",
    fix="Move the value into a Secret and reference it with env[].valueFrom.secretKeyRef (or mount it).",
    examples=(
        Example(True, """
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  containers:
  - name: app
    image: registry.example/app:1.0
    env:
    - {name: DB_PASSWORD, value: hunter2}
"""),
        Example(False, """
apiVersion: v1
kind: Pod
metadata: {name: good}
spec:
  containers:
  - name: app
    image: registry.example/app:1.0
    env:
    - name: DB_PASSWORD
      valueFrom: {secretKeyRef: {name: db, key: password}}
    - {name: DB_PASSWORD_FILE, value: /run/secrets/db}
"""),
    ),
)
def credential_in_env(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        for c in pod.containers():
            for i, env in enumerate(as_list(c.obj.get("env"))):
                if not isinstance(env, dict) or "value" not in env:
                    continue
                reason = _credential_reason(str(env.get("name", "")), env.get("value"))
                if reason:
                    yield c.violation(("env", i, "value"),
                                      f"container '{c.name}' sets {env.get('name')} to {reason} in plain text")


@control(
    id="KH-CRED-002",
    title="Credential stored in a ConfigMap",
    section=Section.SECRETS,
    guidance=("NSA-SEC-1",),
    severity=Severity.HIGH,
    kinds=("ConfigMap",),
    what="A ConfigMap key holds a password, token, private key or a URL with a password.",
    why="ConfigMaps are readable by anyone who may read configuration and are never encrypted at "
    "rest; credentials belong in Secrets.",
    fix="Move the key to a Secret (kubectl create secret generic ...) and mount or reference that instead.",
    examples=(
        Example(True, """
apiVersion: v1
kind: ConfigMap
metadata: {name: bad, namespace: shop}
data:
  DATABASE_URL: postgres://shop:s3cr3t@db:5432/shop
"""),
        Example(False, """
apiVersion: v1
kind: ConfigMap
metadata: {name: good, namespace: shop}
data:
  DATABASE_HOST: db
  LOG_LEVEL: info
"""),
    ),
)
def credential_in_configmap(ctx: Context) -> Iterator[Violation]:
    for cm in ctx.inventory.of_kind("ConfigMap"):
        for key, value in as_dict(cm.obj.get("data")).items():
            reason = _credential_reason(str(key), value)
            if reason:
                yield Violation(cm, ("data", str(key)), f"ConfigMap key '{key}' holds {reason}")


@control(
    id="KH-CRED-003",
    title="Secret of type kubernetes.io/basic-auth",
    section=Section.SECRETS,
    guidance=("NSA-SEC-7",),
    severity=Severity.MEDIUM,
    kinds=("Secret",),
    what="A Secret has type kubernetes.io/basic-auth (a static username and password).",
    why="Static passwords are long-lived, shared and replayable; the guidance asks for strong "
    "authentication instead of static password files.",
    fix="Replace basic-auth with token- or certificate-based credentials (e.g. kubernetes.io/tls, "
    "OIDC, workload identity) and delete the Secret.",
    examples=(
        Example(True, """
apiVersion: v1
kind: Secret
metadata: {name: bad, namespace: shop}
type: kubernetes.io/basic-auth
stringData: {username: admin, password: admin}
"""),
        Example(False, """
apiVersion: v1
kind: Secret
metadata: {name: good, namespace: shop}
type: kubernetes.io/tls
data: {tls.crt: "", tls.key: ""}
"""),
    ),
)
def basic_auth_secret(ctx: Context) -> Iterator[Violation]:
    for secret in ctx.inventory.of_kind("Secret"):
        if secret.obj.get("type") == "kubernetes.io/basic-auth":
            yield Violation(secret, ("type",), "Secret holds a static username and password",
                            "kubernetes.io/basic-auth", has_value=True)


@control(
    id="KH-CRED-004",
    title="Long-lived ServiceAccount token Secret",
    section=Section.AUTH,
    guidance=("NSA-AUTH-5",),
    severity=Severity.MEDIUM,
    kinds=("Secret",),
    what="A Secret of type kubernetes.io/service-account-token holds a non-expiring API token.",
    why="Legacy token Secrets never expire and work from outside the cluster; anyone who can read "
    "the Secret is that ServiceAccount until the Secret is deleted.",
    fix="Delete the Secret and use bound tokens (projected serviceAccountToken volumes or "
    "`kubectl create token`), which expire and are tied to a pod.",
    examples=(
        Example(True, """
apiVersion: v1
kind: Secret
metadata:
  name: bad
  namespace: shop
  annotations: {kubernetes.io/service-account.name: ci}
type: kubernetes.io/service-account-token
"""),
        Example(False, """
apiVersion: v1
kind: Secret
metadata: {name: good, namespace: shop}
type: Opaque
data: {key: ""}
"""),
    ),
)
def legacy_token_secret(ctx: Context) -> Iterator[Violation]:
    for secret in ctx.inventory.of_kind("Secret"):
        if secret.obj.get("type") == "kubernetes.io/service-account-token":
            account = secret.annotations.get("kubernetes.io/service-account.name", "?")
            yield Violation(secret, ("type",), f"long-lived API token for ServiceAccount '{account}'",
                            "kubernetes.io/service-account-token", has_value=True)
