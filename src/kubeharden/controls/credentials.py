"""Credentials outside Secrets, weak Secret types and legacy tokens (NSA-SEC-1, SEC-7, AUTH-5).

Values that look like credentials are never reported: findings name the key, not its content.
"""

from __future__ import annotations

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
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")


def _names_a_credential(name: str) -> bool:
    words = [w.upper() for w in _WORD_SPLIT.split(name) if w]
    if not words or _QUALIFIER_WORDS.intersection(words):
        return False
    if any(tuple(words[i:i + len(n)]) == n for n in _NOT_CREDENTIALS for i in range(len(words))):
        return False
    return bool(_CREDENTIAL_WORDS.intersection(words)) or any(
        pair in _CREDENTIAL_PAIRS for pair in pairwise(words)
    )


def _credential_reason(name: str, value: object) -> str | None:
    if not isinstance(value, str):
        return None
    if _PRIVATE_KEY.search(value):
        return "a private key"
    if _URL_WITH_PASSWORD.search(value):
        return "a URL with an embedded password"
    if _names_a_credential(name) and not _PLACEHOLDER.match(value.strip()):
        return "a credential-like setting"
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
