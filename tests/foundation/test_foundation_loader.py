"""Loaders: every input form, line numbers, and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import CLEAN_POD, PRIVILEGED_POD, scan_json, write

from kubeharden.loader import LoadContext, load_paths
from kubeharden.yamlsafe import Limits


def kinds(result) -> list[str]:
    return sorted(f"{r.kind}/{r.name}" for r in result.resources)


def test_directory_is_read_recursively_with_all_suffixes(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", PRIVILEGED_POD)
    write(tmp_path, "sub/b.yml", CLEAN_POD.replace("clean", "b"))
    write(tmp_path, "sub/deeper/c.json", json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"}}))
    write(tmp_path, "notes.txt", "kind: Pod")  # not a manifest suffix
    write(tmp_path, ".git/d.yaml", CLEAN_POD.replace("clean", "hidden"))  # hidden dirs skipped
    result = load_paths([str(tmp_path)])
    assert kinds(result) == ["Pod/b", "Pod/c", "Pod/priv"]
    assert result.stats.files == 3
    assert not result.errors


def test_multi_document_and_lists(tmp_path: Path) -> None:
    text = PRIVILEGED_POD + "---\n" + CLEAN_POD + "---\n" + """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cm}
- apiVersion: v1
  kind: Service
  metadata: {name: svc}
"""
    result = load_paths([str(write(tmp_path, "multi.yaml", text))])
    assert kinds(result) == ["ConfigMap/cm", "Pod/clean", "Pod/priv", "Service/svc"]


def test_typed_list_items_inherit_kind_and_api_version(tmp_path: Path) -> None:
    doc = {"apiVersion": "v1", "kind": "PodList", "items": [{"metadata": {"name": "p1"}, "spec": {}}]}
    result = load_paths([str(write(tmp_path, "pods.json", json.dumps(doc)))])
    assert [(r.api_version, r.kind, r.name) for r in result.resources] == [("v1", "Pod", "p1")]


def test_non_kubernetes_yaml_is_skipped_and_counted(tmp_path: Path) -> None:
    write(tmp_path, "values.yaml", "replicaCount: 3\nimage: {tag: 1.0}\n")
    write(tmp_path, "pod.yaml", CLEAN_POD)
    result = load_paths([str(tmp_path)])
    assert kinds(result) == ["Pod/clean"]
    assert result.stats.skipped_non_kubernetes == 1
    assert not result.errors


def test_empty_documents_are_skipped(tmp_path: Path) -> None:
    text = "---\n# Source: chart/templates/x.yaml\n---\n" + CLEAN_POD + "---\n"
    result = load_paths([str(write(tmp_path, "helm.yaml", text))])
    assert kinds(result) == ["Pod/clean"]
    assert result.stats.skipped_empty >= 1
    assert not result.errors


def test_stdin_and_helm_source_comments() -> None:
    text = "---\n# Source: shop/templates/pod.yaml\n" + PRIVILEGED_POD
    code, report = scan_json("-", input=text)
    assert code == 1
    [finding] = report["findings"]
    assert finding["source"] == {"file": "<stdin>", "line": 13}
    assert finding["evidence"]["origin"] == "shop/templates/pod.yaml"


def test_finding_points_at_offending_line_not_line_one(tmp_path: Path) -> None:
    text = CLEAN_POD + "---\n" + PRIVILEGED_POD
    path = write(tmp_path, "two.yaml", text)
    code, report = scan_json(str(path))
    assert code == 1
    [finding] = report["findings"]
    lines = text.splitlines()
    assert lines[finding["source"]["line"] - 1].strip() == "privileged: true"
    assert finding["path"] == "spec.containers[0].securityContext.privileged"


def test_lines_inside_json_lists(tmp_path: Path) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": [{"name": "c"}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"},
         "spec": {"hostNetwork": True, "containers": [{"name": "c"}]}},
    ]}
    text = json.dumps(doc, indent=2)
    path = write(tmp_path, "list.json", text)
    _, report = scan_json(str(path))
    [finding] = report["findings"]
    assert finding["resource"]["name"] == "b"
    assert '"hostNetwork": true' in text.splitlines()[finding["source"]["line"] - 1]


# ------------------------------------------------------------------------------ bad input


def errors_of(path: Path, limits: Limits | None = None, strict: bool = False) -> list[tuple[str, int | None, str]]:
    result = load_paths([str(path)], LoadContext(limits or Limits(), strict=strict))
    return [(e.source, e.line, e.message) for e in result.errors]


def test_malformed_yaml_names_file_and_line_and_later_documents_still_load(tmp_path: Path) -> None:
    text = CLEAN_POD + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: broken\nspec: {}\n---\n" + PRIVILEGED_POD
    path = write(tmp_path, "bad.yaml", text)
    result = load_paths([str(path)])
    assert kinds(result) == ["Pod/clean", "Pod/priv"]
    [(source, line, message)] = [(e.source, e.line, e.message) for e in result.errors]
    assert source.endswith("bad.yaml") and "invalid YAML" in message
    assert line is not None and 12 <= line <= 14


def test_malformed_json_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '{\n  "apiVersion": "v1",\n  "kind": "Pod",\n  oops\n}\n')
    [(_, line, message)] = errors_of(path)
    assert "invalid JSON" in message and line == 4


def test_binary_file(tmp_path: Path) -> None:
    path = write(tmp_path, "blob.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    [(_, _, message)] = errors_of(path)
    assert "binary" in message


def test_invalid_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "latin1.yaml", b"apiVersion: v1\nkind: ConfigMap\ndata: {a: \xe9t\xe9}\n")
    [(_, line, message)] = errors_of(path)
    assert "UTF-8" in message and line == 3


def test_empty_file(tmp_path: Path) -> None:
    [(_, _, message)] = errors_of(write(tmp_path, "empty.yaml", "\n\n"))
    assert "empty" in message


def test_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "list.yaml", CLEAN_POD + "---\n- just\n- a list\n")
    result = load_paths([str(path)])
    assert kinds(result) == ["Pod/clean"]
    [error] = result.errors
    assert "not a mapping" in error.message and error.line == 11


def test_duplicate_keys_are_reported_with_line(tmp_path: Path) -> None:
    text = PRIVILEGED_POD + "      privileged: false\n"
    [(_, line, message)] = errors_of(write(tmp_path, "dup.yaml", text), strict=True)
    assert "duplicate key 'privileged'" in message and line == 12


def test_duplicate_keys_in_json_are_reported_with_line(tmp_path: Path) -> None:
    text = '{\n "apiVersion": "v1",\n "kind": "Pod",\n "metadata": {"name": "a",\n   "name": "b"},\n "spec": {}\n}\n'
    path = write(tmp_path, "dup.json", text)
    [(_, line, message)] = errors_of(path, strict=True)
    assert "duplicate key 'name'" in message and line == 5
    assert [r.name for r in load_paths([str(path)]).resources] == ["b"]  # what the API server would keep


def test_json_nan_and_deep_nesting_are_errors(tmp_path: Path) -> None:
    nan = write(tmp_path, "nan.json", '{"apiVersion": "v1", "kind": "Pod", "spec": {"x": NaN}}')
    deep = write(tmp_path, "deep.json", "[" * 50_000 + "]" * 50_000)
    assert "NaN is not JSON" in errors_of(nan)[0][2]
    assert "nested too deeply" in errors_of(deep)[0][2]


def test_unclosed_flow_collection_does_not_hide_the_next_document(tmp_path: Path) -> None:
    # libyaml reports the unclosed '[' at the next '---', the marker reading must resume from
    broken = "apiVersion: v1\nkind: Pod\nmetadata: {name: broken}\nspec:\n  containers: [{name: c}\n"
    inline = "--- [unclosed\n"
    last = CLEAN_POD.replace("clean", "last")
    text = CLEAN_POD + "---\n" + broken + "---\n" + PRIVILEGED_POD + inline + "---\n" + last
    result = load_paths([str(write(tmp_path, "mixed.yaml", text))])
    assert kinds(result) == ["Pod/clean", "Pod/last", "Pod/priv"]
    assert len(result.errors) == 2


def test_date_like_text_that_is_no_date_stays_text(tmp_path: Path) -> None:
    # YAML 1.1's timestamp pattern matches these, PyYAML's constructor raises ValueError on them
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ts, creationTimestamp: 2024-02-30T10:00:00Z}\n"
            "data: {d: 2024-13-45}\n")
    result = load_paths([str(write(tmp_path, "ts.yaml", text)), str(write(tmp_path, "pod.yaml", CLEAN_POD))])
    assert not result.errors and kinds(result) == ["ConfigMap/ts", "Pod/clean"]
    [config] = [r for r in result.resources if r.kind == "ConfigMap"]
    assert config.obj["data"]["d"] == "2024-13-45"
    assert config.obj["metadata"]["creationTimestamp"] == "2024-02-30T10:00:00Z"


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    [(_, line, message)] = errors_of(path)
    assert "alias" in message and line is not None


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "cycle.yaml", "apiVersion: v1\nkind: ConfigMap\ndata: &d\n  self: *d\n")
    [(_, _, message)] = errors_of(path)
    assert "recursive" in message


def test_aliases_within_limits_are_fine(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: &l {a: b}, annotations: *l}\n"
    result = load_paths([str(write(tmp_path, "ok.yaml", text))])
    assert not result.errors
    assert result.resources[0].obj["metadata"]["annotations"] == {"a": "b"}


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "- " * 100_000 + "x"])
def test_absurd_nesting_is_refused_without_crashing(tmp_path: Path, text: str) -> None:
    deep = write(tmp_path, "deep.yaml", text)
    pod = write(tmp_path, "pod.yaml", PRIVILEGED_POD)
    result = load_paths([str(deep), str(pod)])
    [error] = result.errors  # one error, for that file, with a line; the other file is read
    assert error.source == str(deep) and error.line is not None and error.line >= 1
    assert kinds(result) == ["Pod/priv"]


def test_deep_but_legal_nesting_within_limit(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nx: " + "[" * 100 + "]" * 100 + "\n"
    result = load_paths([str(write(tmp_path, "ok.yaml", text))])
    assert not result.errors and kinds(result) == ["ConfigMap/x"]


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "big.yaml", CLEAN_POD + "#" * 5000 + "\n")
    [(_, _, message)] = errors_of(path, Limits(max_file_bytes=1000))
    assert "larger than 1000 bytes" in message


def test_missing_path(tmp_path: Path) -> None:
    [(_, _, message)] = errors_of(tmp_path / "nope.yaml")
    assert "no such file" in message


def test_bad_input_does_not_stop_the_run_and_exits_2_with_findings(tmp_path: Path) -> None:
    write(tmp_path, "a-bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n")
    write(tmp_path, "b-priv.yaml", PRIVILEGED_POD)
    code, report = scan_json(str(tmp_path))
    assert code == 2
    assert [f["resource"]["name"] for f in report["findings"]] == ["priv"]
    [error] = report["errors"]
    assert error["source"].endswith("a-bad.yaml") and error["line"] >= 3


def test_secret_values_are_never_kept(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: aHVudGVyMg==}\n" \
           "stringData: {token: plain-text-token}\n"
    result = load_paths([str(write(tmp_path, "s.yaml", text))])
    [secret] = result.resources
    assert secret.obj["data"] == {"password": "<redacted>"}
    assert "plain-text-token" not in json.dumps(secret.obj)


def test_inventory_indexes(tmp_path: Path) -> None:
    from kubeharden.inventory import Inventory

    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, uid: d1, labels: {app: web, tier: front}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers: [{name: init, image: i}]
      containers: [{name: web, image: w}]
      ephemeralContainers: [{name: debug, image: d}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-1
  namespace: shop
  uid: r1
  labels: {app: web}
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: d1, controller: true}]
spec:
  template:
    spec: {containers: [{name: web, image: w}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: job, namespace: shop}
spec:
  jobTemplate:
    spec:
      template:
        spec: {containers: [{name: c, image: c}]}
"""
    inv = Inventory(load_paths([str(write(tmp_path, "w.yaml", text))]).resources)
    assert [r.name for r in inv.with_labels({"app": "web"})] == ["web", "web-1"]
    assert [r.name for r in inv.with_labels({"app": "web", "tier": "front"})] == ["web"]
    deployment = inv.get("Deployment", "shop", "web")
    assert deployment is not None
    assert [r.name for r in inv.owned_by(deployment)] == ["web-1"]
    # the ReplicaSet is judged through its Deployment: one pod spec per template
    specs = {(p.resource.kind, p.path) for p in inv.pod_specs()}
    assert specs == {("Deployment", ("spec", "template", "spec")),
                     ("CronJob", ("spec", "jobTemplate", "spec", "template", "spec"))}
    web = next(p for p in inv.pod_specs() if p.resource.kind == "Deployment")
    assert [(c.field, c.name, c.path[-2:]) for c in web.containers()] == [
        ("initContainers", "init", ("initContainers", 0)),
        ("containers", "web", ("containers", 0)),
        ("ephemeralContainers", "debug", ("ephemeralContainers", 0)),
    ]
