"""The fast builder must produce what yaml.safe_load produces (YAML 1.1), except where Kubernetes'
YAML decoder (sigs.k8s.io/yaml over go-yaml v2) reads a value differently: there it must read
what Kubernetes reads."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from kubeharden.yamlsafe import Limits, YamlInputError, iter_yaml_documents

EDGE_CASES = """\
strings: [plain, "double", 'single', "", ~x]
ints: [1, -2, 0x1F, 0o17, 017, 1_000, "3"]
floats: [1.5, .inf, -.Inf, .nan, 1e3]
bools: [true, false, yes, no, on, off, True]
nulls: [null, ~, ]
explicit: !!str 123
base: &base {x: 1, z: 2}
merged:
  <<: *base
  z: 3
alias_list: &l [1, 2]
again: *l
? complex
: value
nested: {a: [{b: {c: [1, {d: e}]}}]}
block: |
  line one
  line two
folded: >-
  folded
  text
"""

# (YAML, what Kubernetes reads, what YAML 1.1 / yaml.safe_load reads)
KUBERNETES_READS_DIFFERENTLY = [
    ("[y, Y, n, N]", [True, True, False, False], ["y", "Y", "n", "N"]),  # go-yaml v2's bool table
    ("['y', \"N\"]", ["y", "N"], ["y", "N"]),  # quoted stays a string in both
    ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
    ("2024-01-02", "2024-01-02", dt.date(2024, 1, 2)),  # go-yaml hands timestamps over as text
    ("1:30", "1:30", 90),  # no base 60
    ("!!binary aGVsbG8=", "hello", b"hello"),
    ("{123: int key, 1.50: float key, yes: bool key}", {"123": "int key", "1.5": "float key", "true": "bool key"},
     {123: "int key", 1.5: "float key", True: "bool key"}),  # JSON keys are strings
    ("{y: 1, n: 2}", {"true": 1, "false": 2}, {"y": 1, "n": 2}),  # go-yaml's famous one
]


@pytest.mark.parametrize(("text", "kubernetes", "yaml11"), KUBERNETES_READS_DIFFERENTLY)
def test_values_are_read_as_kubernetes_reads_them(text: str, kubernetes: object, yaml11: object) -> None:
    errors: list[YamlInputError] = []
    [doc] = [d.data for d in iter_yaml_documents(f"v: {text}\n".encode(), Limits(), errors)]
    assert not errors
    assert doc == {"v": kubernetes}
    assert yaml.safe_load(f"v: {text}\n") == {"v": yaml11}  # the difference is real


def test_builder_matches_safe_load() -> None:
    errors: list[YamlInputError] = []
    docs = [d.data for d in iter_yaml_documents(EDGE_CASES.encode(), Limits(), errors)]
    assert not errors
    assert docs == [yaml.safe_load(EDGE_CASES)]


def test_multi_document_positions() -> None:
    text = b"a: 1\n---\n\n# c\nb: 2\n---\n- x\n"
    errors: list[YamlInputError] = []
    docs = list(iter_yaml_documents(text, Limits(), errors))
    assert [(d.data, d.start_line) for d in docs] == [({"a": 1}, 1), ({"b": 2}, 5), (["x"], 7)]
