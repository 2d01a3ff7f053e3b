"""Hostile or unlucky YAML: values their tag does not fit, keys that are not strings, booleans as
Kubernetes reads them, other encodings, nesting beyond libyaml's limit. Each is an error naming
the file and line (or is read as Kubernetes reads it), never a crash, and never repeats a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import CLEAN_POD, PRIVILEGED_POD, run, scan_json, write

from kubeharden.loader import LoadContext, load_paths
from kubeharden.yamlsafe import MAX_DEPTH_LIMIT, Limits

SECRET = "hunter2-Sup3rS3cret"

# (tag and value as written, where the value is the secret); each must be refused
BAD_TAGS = [
    f"!!int {SECRET}",
    f"!!float {SECRET}",
    f"!!bool {SECRET}",
    f"!!timestamp {SECRET}",
    f"!!null {SECRET}",
    '!!int ""',
    f"!!binary '{SECRET}!'",
    f"!!map [{SECRET}]",
    f"!!seq {{a: {SECRET}}}",
    f"!!str {{a: {SECRET}}}",
    f"!foo {SECRET}",
    f"!{SECRET}",  # an unquoted password that starts with '!' is read as a tag: name no tag
    f"!!{SECRET} x",
    f"!!python/object:os.system {SECRET}",
    f"!!python/object/apply:os.system [{SECRET}]",
    f"!!set {{{SECRET}}}",
]


def secret_doc(value: str) -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData:\n  password: {value}\n"


def load(tmp_path: Path, name: str, text: str | bytes, limits: Limits | None = None):
    return load_paths([str(write(tmp_path, name, text))], LoadContext(limits or Limits()))


@pytest.mark.parametrize("value", BAD_TAGS)
def test_a_value_its_tag_does_not_fit_skips_its_document_only(tmp_path: Path, value: str) -> None:
    text = CLEAN_POD + "---\n" + secret_doc(value) + "---\n" + PRIVILEGED_POD
    result = load(tmp_path, "mixed.yaml", text)
    assert sorted(r.name for r in result.resources) == ["clean", "priv"]  # the document alone is skipped
    [error] = result.errors
    assert error.source.endswith("mixed.yaml")
    assert error.line == 15  # the line of `password:`'s value
    assert SECRET not in error.message and SECRET.lower() not in error.message.lower()


@pytest.mark.parametrize("value", ["!!int hunter2", "!!map [x]", "!foo x"])
def test_tag_errors_reach_the_cli_as_file_line_errors_without_the_value(tmp_path: Path, value: str) -> None:
    value = value.replace("hunter2", SECRET).replace("[x]", f"[{SECRET}]").replace(" x", f" {SECRET}")
    write(tmp_path, "a-secret.yaml", secret_doc(value))
    write(tmp_path, "b-priv.yaml", PRIVILEGED_POD)
    result = run("scan", str(tmp_path), "-f", "json", "-c", "KH-POD-005")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert [f["resource"]["name"] for f in report["findings"]] == ["priv"]  # the run went on
    [error] = report["errors"]
    assert error["source"].endswith("a-secret.yaml") and error["line"] == 5
    assert SECRET not in result.output and SECRET not in result.stderr


def test_tags_that_fit_are_read(tmp_path: Path) -> None:
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  a: !!str 5\n  b: !!int '7'\n"
            "  c: !!binary aGVsbG8=\n  d: !!timestamp 2024-01-02\n  e: !!bool yes\n  f: !!map {x: 1}\n")
    result = load(tmp_path, "ok.yaml", text)
    assert not result.errors
    assert result.resources[0].obj["data"] == {"a": "5", "b": 7, "c": "hello", "d": "2024-01-02", "e": True,
                                               "f": {"x": 1}}


@pytest.mark.parametrize("value", [f"!!int {SECRET}", f"!!map [{SECRET}]", f"!{SECRET}"])
def test_exceptions_file_with_a_bad_tag_is_a_usage_error_with_line_and_no_value(tmp_path: Path, value: str) -> None:
    pod = str(write(tmp_path, "p.yaml", PRIVILEGED_POD))
    exc = write(tmp_path, "exc.yaml", f"exceptions:\n  - control: KH-POD-005\n    reason: {value}\n")
    result = run("scan", pod, "--exceptions", str(exc))
    assert result.exit_code == 2
    assert f"{exc}:3:" in result.stderr
    assert SECRET not in result.output and SECRET not in result.stderr


# ------------------------------------------------------------------------------ keys


def volumes_with_key(key: str) -> str:
    return f"""\
apiVersion: v1
kind: Pod
metadata: {{name: p, namespace: apps, labels: {{{key}: x}}}}
spec:
  hostNetwork: true
  volumes:
  - name: v
    {key}: odd
    hostPath: {{path: /etc}}
  containers:
  - name: c
    image: registry.example/app:1.0
    {key}: odd
    securityContext: {{privileged: true, {key}: odd}}
"""


# key as written -> the string Kubernetes (sigs.k8s.io/yaml) turns it into
STRING_KEYS = {
    "2020-01-01": "2020-01-01",
    "2020-01-01T10:00:00Z": "2020-01-01T10:00:00Z",
    "1.5": "1.5",
    "1.50": "1.5",
    "true": "true",
    "True": "true",
    "yes": "true",
    "Y": "true",
    "off": "false",
    "1": "1",
    "0x10": "16",
    "-7": "-7",
    ".inf": ".inf",
    "1:30": "1:30",
    "'quoted'": "quoted",
}


@pytest.mark.parametrize(("written", "expected"), STRING_KEYS.items())
def test_non_string_keys_become_the_strings_kubernetes_makes_of_them(tmp_path: Path, written: str,
                                                                     expected: str) -> None:
    result = load(tmp_path, "pod.yaml", volumes_with_key(written))
    assert not result.errors
    [pod] = result.resources
    assert pod.obj["metadata"]["labels"] == {expected: "x"}
    assert expected in pod.obj["spec"]["volumes"][0]

    def keys(value: object) -> list[object]:
        if isinstance(value, dict):
            return [*value, *(k for v in value.values() for k in keys(v))]
        if isinstance(value, list):
            return [k for v in value for k in keys(v)]
        return []

    assert all(isinstance(k, str) for k in keys(pod.obj))


@pytest.mark.parametrize("written", ["2020-01-01", "1.5", "true", "1", "y"])
def test_every_control_runs_over_non_string_keys(tmp_path: Path, written: str) -> None:
    path = write(tmp_path, "pod.yaml", volumes_with_key(written))
    result = run("scan", str(path), "-f", "json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1, report["errors"]  # findings, and no internal error in any control
    assert not report["errors"]
    ids = {f["control_id"] for f in report["findings"]}
    assert {"KH-POD-005", "KH-POD-007", "KH-POD-009"} <= ids


@pytest.mark.parametrize("key", ["~", "null", "Null", "? [a, b]\n   ", "? {a: 1}\n   "])
def test_keys_kubernetes_refuses_skip_their_document(tmp_path: Path, key: str) -> None:
    bad = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bad}}\ndata:\n   {key}: {SECRET}\n"
    result = load(tmp_path, "keys.yaml", CLEAN_POD + "---\n" + bad)
    assert [r.name for r in result.resources] == ["clean"]
    [error] = result.errors
    assert error.source.endswith("keys.yaml") and error.line == 15
    assert SECRET not in error.message


def test_keys_that_become_equal_are_duplicates(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  true: a\n  yes: b\n"
    result = load(tmp_path, "dup.yaml", text)
    assert result.resources[0].obj["data"] == {"true": "b"}
    [warning] = result.warnings  # a warning unless --strict (issue 12)
    assert not result.errors
    assert "duplicate" in warning.message and warning.line == 6


def test_merge_keys_override_without_duplicate_warnings(tmp_path: Path) -> None:
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nbase: &b {x: 1, y: 2}\n"
            "data:\n  <<: *b\n  x: 3\n  z: 4\n  z: 5\n")
    result = load(tmp_path, "merge.yaml", text)
    assert result.resources[0].obj["data"] == {"x": 3, "true": 2, "z": 5}
    [warning] = result.warnings  # only the mapping's own duplicate
    assert "duplicate" in warning.message and warning.line == 9


# ------------------------------------------------------------------------------ booleans


@pytest.mark.parametrize(("privileged", "host_network"), [("Y", "y"), ("yes", "on"), ("True", "ON")])
def test_go_yaml_booleans_are_judged_true(tmp_path: Path, privileged: str, host_network: str) -> None:
    text = PRIVILEGED_POD.replace("privileged: true", f"privileged: {privileged}").replace(
        "spec:\n", f"spec:\n  hostNetwork: {host_network}\n")
    code, report = scan_json(str(write(tmp_path, "pod.yaml", text)))
    assert code == 1
    assert sorted(f["control_id"] for f in report["findings"]) == ["KH-POD-005", "KH-POD-007"]


@pytest.mark.parametrize("value", ["N", "n", "no", "off", "'Y'", '"y"'])
def test_false_or_quoted_values_are_not_true(tmp_path: Path, value: str) -> None:
    text = PRIVILEGED_POD.replace("privileged: true", f"privileged: {value}")
    code, report = scan_json(str(write(tmp_path, "pod.yaml", text)))
    assert code == 0 and [f["control_id"] for f in report["findings"]] == []


# ------------------------------------------------------------------------------ encodings


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
                                   "utf-8-sig"])
def test_unicode_files_with_a_byte_order_mark_are_read(tmp_path: Path, codec: str) -> None:
    text = CLEAN_POD + "---\n" + PRIVILEGED_POD.replace("name: priv", "name: privé")
    data = text.encode(codec)
    if codec.endswith(("-le", "-be")):  # the explicit-endian codecs write no mark: add it
        data = "\ufeff".encode(codec) + data
    path = write(tmp_path, f"{codec}.yaml", data)
    code, report = scan_json(str(path))
    assert code == 1 and not report["errors"]
    [finding] = report["findings"]
    assert finding["resource"]["name"] == "privé"
    assert finding["source"]["line"] == 21  # lines are counted in the decoded text


def test_invalid_data_after_a_byte_order_mark_names_the_file(tmp_path: Path) -> None:
    data = "\ufeffapiVersion: v1\nkind: Pod\n".encode("utf-16-le") + b"\x00\xd8"  # a lone surrogate
    result = load(tmp_path, "broken16.yaml", data)
    [error] = result.errors
    assert error.source.endswith("broken16.yaml") and "UTF-16" in error.message and error.line == 3


def test_json_in_utf16(tmp_path: Path) -> None:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}, "spec": {"hostNetwork": True}}
    result = load(tmp_path, "pod.json", json.dumps(doc).encode("utf-16"))
    assert not result.errors and [r.name for r in result.resources] == ["j"]


# ------------------------------------------------------------------------------ nesting


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,  # dense: libyaml's scanner looks ahead past its own limit
    "{a: " * 2_000 + "1" + "}" * 2_000,
    "- " * 100_000 + "x",
    "".join(" " * i + "a:\n" for i in range(1_500)) + " " * 1_500 + "x\n",
    "x: " + "[ " * 1_200 + "]" * 1_200,
])
@pytest.mark.parametrize("max_depth", [Limits().max_depth, MAX_DEPTH_LIMIT])
def test_nesting_beyond_the_limit_is_our_error_and_the_run_goes_on(tmp_path: Path, text: str,
                                                                   max_depth: int) -> None:
    deep = write(tmp_path, "deep.yaml", text)
    pod = write(tmp_path, "pod.yaml", PRIVILEGED_POD)
    result = load_paths([str(deep), str(pod)], LoadContext(Limits(max_depth=max_depth)))
    assert [r.name for r in result.resources] == ["priv"]
    [error] = result.errors
    assert error.source.endswith("deep.yaml") and error.line is not None and error.line >= 1
    assert str(max_depth) in error.message  # our guard, naming our limit, not libyaml's


def test_max_depth_cannot_exceed_what_libyaml_reads() -> None:
    with pytest.raises(ValueError):
        Limits(max_depth=MAX_DEPTH_LIMIT + 1)
