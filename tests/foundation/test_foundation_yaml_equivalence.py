"""The fast builder must produce exactly what yaml.safe_load produces (YAML 1.1 semantics)."""

from __future__ import annotations

import yaml

from kubeharden.yamlsafe import Limits, YamlInputError, iter_yaml_documents

EDGE_CASES = """\
strings: [plain, "double", 'single', "", ~x]
ints: [1, -2, 0x1F, 0o17, 017, 1_000, "3"]
floats: [1.5, .inf, -.Inf, .nan, 1e3]
bools: [true, false, yes, no, on, off, True]
nulls: [null, ~, ]
timestamp: 2024-01-02T03:04:05Z
date: 2024-01-02
sexagesimal: 1:30
binary: !!binary aGVsbG8=
explicit: !!str 123
set: !!set {a, b}
base: &base {x: 1, y: 2}
merged:
  <<: *base
  y: 3
alias_list: &l [1, 2]
again: *l
? complex
: value
123: int key
null: null key
nested: {a: [{b: {c: [1, {d: e}]}}]}
block: |
  line one
  line two
folded: >-
  folded
  text
"""


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
