"""Credentials outside Secrets are found, named, and never printed."""

from __future__ import annotations

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
