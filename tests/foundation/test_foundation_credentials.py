"""Credentials outside Secrets are found, named, and never printed."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from helpers import run, write

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      initContainers:
      - name: init
        image: registry.example/init:1
        env:
        - {name: GITHUB_TOKEN, value: ghp_0123456789abcdef}
      containers:
      - name: api
        image: registry.example/api:1
        env:
        - {name: MAX_INPUT_TOKENS, value: "4096"}
        - {name: SECRET_NAME, value: api-credentials}
        - {name: DB_PASSWORD_FILE, value: /run/secrets/db}
        - {name: MYSQL_ALLOW_EMPTY_PASSWORD, value: "yes"}
        - {name: CACHE_URL, value: "redis://default:topsecretpw@cache:6379"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: shop}
data:
  tls.key: |
    -----BEGIN RSA PRIVATE KEY-----
    MIIEowIBAAKCAQEA
    -----END RSA PRIVATE KEY-----
  adminPassword: letmein
  maxTokens: "12"
"""


def test_credentials_found_and_never_printed(tmp_path: Path) -> None:
    path = write(tmp_path, "app.yaml", DEPLOYMENT)
    for fmt in ("json", "sarif", "markdown", "junit", "html", "table"):
        result = run("scan", str(path), "-c", "KH-CRED-*", "-f", fmt)
        for secret in ("ghp_0123456789abcdef", "topsecretpw", "MIIEowIBAAKCAQEA", "letmein"):
            assert secret not in result.output, (fmt, secret)
    report = json.loads(run("scan", str(path), "-c", "KH-CRED-*", "-f", "json").stdout)
    found = sorted((f["control_id"], f["path"]) for f in report["findings"])
    assert found == [
        ("KH-CRED-001", "spec.template.spec.containers[0].env[4].value"),
        ("KH-CRED-001", "spec.template.spec.initContainers[0].env[0].value"),
        ("KH-CRED-002", "data.adminPassword"),
        ("KH-CRED-002", "data['tls.key']"),
    ]
    lines = DEPLOYMENT.splitlines()
    for f in report["findings"]:
        if f["control_id"] == "KH-CRED-001":
            assert "value:" in lines[f["source"]["line"] - 1]


CORPUS_NAMES = """\
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers:
  - name: app
    image: registry.example/app:1
    env:
    - {name: WORDPRESS_DB_PASSWORD, value: changeme}
    - {name: AZUREBLOB_ACCOUNT_KEY, value: c3RvcmFnZWtleQ}
    - {name: FLUENT_OPENSEARCH_CLIENT_KEY_PASS, value: kp-0123}
    - {name: ETCD_INITIAL_CLUSTER_TOKEN, value: etcd-cluster-1}
    - {name: AZUREBLOB_TOKEN_REFRESH_INTERVAL, value: "60"}
    - {name: DB_PASSWORD, value: "$(SHARED_DB_PASSWORD)"}
"""


def test_credential_names_seen_in_the_corpus(tmp_path: Path) -> None:
    # rook/deploy/examples/wordpress.yaml:56 (changeme), fluentd-daemonset-azureblob.yaml (ACCOUNT_KEY) and
    # fluentd-daemonset-opensearch.yaml (CLIENT_KEY_PASS) were missed; etcd-controller.yaml:36 was a false positive
    path = write(tmp_path, "pod.yaml", CORPUS_NAMES)
    report = json.loads(run("scan", str(path), "-c", "KH-CRED-001", "-f", "json").stdout)
    assert sorted(f["path"] for f in report["findings"]) == [
        "spec.containers[0].env[0].value", "spec.containers[0].env[1].value", "spec.containers[0].env[2].value"]
    for secret in ("changeme", "c3RvcmFnZWtleQ", "kp-0123"):
        assert secret not in json.dumps(report)


def _b64url(data: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


# Fake values in the issuers' formats (made up here, valid for nothing).
FAKE_JWT = (_b64url({"alg": "HS256", "typ": "JWT"}) + "." + _b64url({"sub": "svc-0042", "iat": "1700000000"})
            + ".ZmFrZS1zaWduYXR1cmUtZm9yLXRlc3Rz")
FAKE_BASIC = base64.b64encode(b"deployer:n0t-a-real-pass").decode()
BY_VALUE = {
    # name (chosen so that the name alone is no credential), value, what the finding must say
    "UPSTREAM_ID": ("AKIAZ7QK3M9TNX2BVW4E", "an AWS access key id"),
    "SESSION_ID": ("ASIAQ4RT8YP2LM6KD1SX", "an AWS access key id"),
    "GH_AUTOMATION": ("ghp_" + "Qx7mK2pL9vR4sT1wY6zA3bN8cD5eF0gH1jK2", "a GitHub token"),
    "GH_APP": ("ghs_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6", "a GitHub token"),
    "GH_OAUTH": ("gho_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8", "a GitHub token"),
    "GH_FINE": ("github_pat_" + "11ABCDEFG0123456789abc" + "_" + "x" * 30 + "Y7" * 14 + "q", "a GitHub token"),
    "CHAT_HOOK": ("xoxb-204815162342-8675309112358-QwErTyUiOpAsDfGhJkLzXcVb", "a Slack token"),
    "UPSTREAM_HEADER": ("Bearer " + "Zk1x9Qp4Lm7Tn2Vb8Rc5Wd3Ye6", "an HTTP Bearer authorization value"),
    "AUTHORIZATION_HEADER": ("Basic " + FAKE_BASIC, "an HTTP Basic authorization value"),
    "IDENTITY": (FAKE_JWT, "a JSON Web Token"),
    "SIGNER": ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIFakeFakeFakeFakeKeyBody0123456789\n"
               "-----END EC PRIVATE KEY-----\n", "a private key"),
    "AZURE_STORAGE_KEY": ("dGhpcyBpcyBub3QgYSByZWFsIGF6dXJlIGtleSAxMjM0NTY3ODkw==", "key material"),
    "AZURE_BATCH_KEY": ("Qm9ndXNCYXRjaEtleTAxMjM0NTY3ODlBQkNERUY=", "key material"),
    "ENCRYPTION_KEY": ("7f3a9c0e4b6d8f1a2c5e7b9d0f3a6c8e", "key material"),
}
NOT_CREDENTIALS = {
    # near misses of every format above, and the precision kept from before
    "UPSTREAM_ID": "AKIAIOSFODNN7EXAMPLE",  # AWS's documented example key id
    "BUILD_REF": "AKIA-not-a-key",
    "GH_AUTOMATION": "ghp_short",
    "CHAT_HOOK": "xoxb-notatoken",
    "IDENTITY": "eyJub3QiOiJqd3QifQ.eyJzdWIiOiJ4In0.c2ln",  # decodes to JSON without "alg"
    "UPSTREAM_HEADER": "Bearer $(API_TOKEN)",
    "AUTHORIZATION_HEADER": "Basic realm=internal",
    "DOC_NOTE": "Basic authentication is disabled",
    "SIGNER": "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
    "ENCRYPTION_KEY": "${ENCRYPTION_KEY}",
    "ROUTING_KEY": "orders-2024-queue-events",
    "PUBLIC_KEY": "dGhpcyBpcyBub3QgYSByZWFsIGF6dXJlIGtleSAxMjM0NTY3ODkw==",
    "TOPOLOGY_KEY": "topology.kubernetes.io/zone",
    "ENCRYPTION_KEY_FILE": "/etc/keys/enc.key",
    "DB_SECRET_NAME": "db-credentials",
    "MAX_TOKENS": "8192",
    "TOKEN_HEADER": "X-Auth-Token",
}


def _pod(env: list[dict[str, object]], env_from: list[dict[str, object]] | None = None) -> str:
    container: dict[str, object] = {"name": "app", "image": "registry.example/app:1", "env": env}
    if env_from:
        container["envFrom"] = env_from
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
                       "spec": {"containers": [container]}})


def test_credentials_by_value_format(tmp_path: Path) -> None:
    env = [{"name": name, "value": value} for name, (value, _) in BY_VALUE.items()]
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "shop"},
              "data": {name.lower(): value for name, (value, _) in BY_VALUE.items()}}
    path = write(tmp_path, "pod.yaml", _pod(env) + "\n---\n" + json.dumps(config))
    for fmt in ("json", "sarif", "table", "markdown"):
        output = run("scan", str(path), "-c", "KH-CRED-*", "-f", fmt).output
        for value, _ in BY_VALUE.values():
            for part in (value.split()[-1], value.splitlines()[1] if "\n" in value else value):
                assert part not in output, (fmt, part)
    report = json.loads(run("scan", str(path), "-c", "KH-CRED-*", "-f", "json").stdout)
    env_found = {f["path"]: f["message"] for f in report["findings"] if f["control_id"] == "KH-CRED-001"}
    cm_found = {f["path"]: f["message"] for f in report["findings"] if f["control_id"] == "KH-CRED-002"}
    for i, (name, (_, what)) in enumerate(BY_VALUE.items()):
        assert env_found.get(f"spec.containers[0].env[{i}].value") == \
            f"container 'app' sets {name} to {what} in plain text"
        assert cm_found.get(f"data.{name.lower()}") == f"ConfigMap key '{name.lower()}' holds {what}"
    assert len(env_found) == len(cm_found) == len(BY_VALUE)


def test_near_misses_are_not_credentials(tmp_path: Path) -> None:
    env: list[dict[str, object]] = [{"name": name, "value": value} for name, value in NOT_CREDENTIALS.items()]
    path = write(tmp_path, "pod.yaml", _pod(env, [{"secretRef": {"name": "app-credentials"}}]))
    report = json.loads(run("scan", str(path), "-c", "KH-CRED-001", "-f", "json").stdout)
    assert report["findings"] == []
    statuses = {c["id"]: c["status"] for c in report["controls"]}
    assert statuses["KH-CRED-001"] == "pass"
