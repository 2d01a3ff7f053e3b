"""Issue 12 item 7: an exceptions file with an unknown key is an error naming file:line, never a
wider exception than written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeharden.cli import cli
from kubeharden.exceptions import ExceptionsFileError, load_exceptions_file

PRIVILEGED = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: c
        image: registry.example.com/agent:1.0
        securityContext: {{privileged: true}}
"""


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("text", "line", "expected"), [
    # the case: a misspelt namespace made the exception apply in every namespace
    ("exceptions:\n  - control: KH-POD-005\n    resource:\n      kind: DaemonSet\n      nmespace: kube-system\n"
     "    reason: CNI\n", 5, "unknown key 'nmespace' in 'resource' (did you mean 'namespace'?)"),
    ("exceptions:\n  - control: KH-POD-005\n    reson: CNI\n", 3, "did you mean 'reason'?"),
    ("exceptions:\n  - control: KH-POD-005\n    namespace: kube-system\n    reason: CNI\n", 3,
     "'namespace' belongs under 'resource:'"),
    ("exceptions:\n  - control: KH-POD-005\n    reason: CNI\n    expire: 2030-01-01\n", 4, "did you mean 'expires'?"),
    ("exeptions:\n  - control: KH-POD-005\n    reason: CNI\n", 1, "did you mean 'exceptions'?"),
    ("exceptions:\n  - control: KH-POD-005\n    reason: CNI\n    resource: {kind: Pod, nam: web}\n", 4,
     "did you mean 'name'?"),
])
def test_unknown_keys_are_errors_with_line_and_suggestion(tmp_path: Path, text: str, line: int, expected: str) -> None:
    path = _write(tmp_path, "exceptions.yaml", text)
    with pytest.raises(ExceptionsFileError) as caught:
        load_exceptions_file(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert expected in caught.value.message


def test_known_keys_still_load(tmp_path: Path) -> None:
    path = _write(tmp_path, "exceptions.yaml", (
        "exceptions:\n  - control: KH-POD-005\n"
        "    resource: {kind: DaemonSet, namespace: kube-system, name: 'calico-*'}\n"
        "    reason: CNI\n    owner: platform\n    expires: 2030-01-01\n  - control: KH-CP-030\n    path: /etc/x\n"
        "    reason: r\n"))
    rules = load_exceptions_file(path)
    assert [(r.control, r.namespace) for r in rules] == [("KH-POD-005", "kube-system"), ("KH-CP-030", "*")]


def test_scan_with_a_misspelt_key_excepts_nothing_and_exits_2(tmp_path: Path) -> None:
    manifests = tmp_path / "k8s"
    manifests.mkdir()
    for i in range(3):
        (manifests / f"agent{i}.yaml").write_text(PRIVILEGED.format(name=f"agent{i}", namespace=f"team{i}"))
    (manifests / "calico.yaml").write_text(PRIVILEGED.format(name="calico-node", namespace="kube-system"))
    exceptions = _write(tmp_path, "exceptions.yaml", (
        "exceptions:\n  - control: KH-POD-005\n    resource: {kind: DaemonSet, nmespace: kube-system}\n"
        "    reason: CNI needs privileged mode\n"))
    result = CliRunner().invoke(cli, ["scan", str(manifests), "--exceptions", exceptions, "-f", "json"])
    assert result.exit_code == 2
    assert f"{exceptions}:3" in result.stderr and "nmespace" in result.stderr
    assert '"excepted"' not in result.stdout  # no report was produced with a widened exception
