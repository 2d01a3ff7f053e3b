"""Fuzzing the inputs: random bytes, YAML-ish text built from hostile fragments, type-mutated
workloads and exceptions files. Whatever comes in, no exception escapes, every input error names
its file, no control fails internally, and no mapping key reaching a control is anything but a
string.

Bounded and derandomized so CI runs the same few hundred examples in seconds; set
KUBEHARDEN_FUZZ_EXAMPLES=5000 (or more) for a longer, randomized run.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is a test dependency (pip install hypothesis)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kubeharden.exceptions import ExceptionsFileError, load_exceptions_file  # noqa: E402
from kubeharden.loader import LoadContext, load_bytes  # noqa: E402
from kubeharden.scanner import ScanRequest, run_scan  # noqa: E402
from kubeharden.yamlsafe import Limits  # noqa: E402

EXAMPLES = int(os.environ.get("KUBEHARDEN_FUZZ_EXAMPLES", "0") or 0)
FUZZ = settings(
    max_examples=EXAMPLES or 150,
    derandomize=not EXAMPLES,  # the CI run is the same every time; a long run explores
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
LIMITS = Limits(max_file_bytes=256 * 1024, max_depth=64, max_aliases=50, max_expanded_nodes=20_000)

FRAGMENTS = [
    "apiVersion: v1\n", "apiVersion: apps/v1\n", "kind: Pod\n", "kind: Deployment\n", "kind: List\n", "Kind: Pod\n",
    "apiversion: v1\n", "metadata: {name: x, namespace: n}\n", "metadata:\n  name: y\n", "spec:\n", "  containers:\n",
    "  - name: c\n", "    image: i\n", "    securityContext: {privileged: Y}\n", "  hostNetwork: y\n",
    "  volumes: [{name: v, 2020-01-01: x, hostPath: {path: /}}]\n", "items:\n", "- ", "---\n", "...\n",
    "!!int hunter2", "!!float x", "!!bool maybe", "!!timestamp x", '!!int ""', "!!map [1]", "!!seq {a: 1}",
    "!foo ", "!!binary ???", "!!binary aGk=", "!!python/object:os.system x", "!!set {a}", "!Secr3t",
    "&a ", "*a ", "*b", "<<: *a\n", "<<: 5\n", "? [a, b]\n: c\n", "~: 1\n", "null: x\n", "1.5: x\n", "true: x\n",
    "0x10: x\n", "y: n\n", "=: x\n", "1:30\n", "[", "]", "{", "}", ", ", ": ", "'", '"', "#", " # c\n", "\t",
    "  ", "    ", "\n", "|\n  text\n", ">-\n  folded\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "\\u0000",
    "9" * 30, "-" * 5, "\u2028", "é", "\ufeff", "\x00", "\x85", "{a: [b, {c: d}]}\n", "[" * 40, "]" * 40,
]
BOMS = {"utf-8": b"", "utf-8-sig": b"", "utf-16": b"", "utf-32": b"", "utf-16-le": b"\xff\xfe"}


def yamlish() -> st.SearchStrategy[bytes]:
    text = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)
    return st.tuples(text, st.sampled_from(sorted(BOMS))).map(
        lambda pair: BOMS[pair[1]] + pair[0].encode(pair[1], "surrogatepass"))


def keys_of(value: Any) -> Iterator[Any]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield from item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_loaded(data: bytes, name: str) -> None:
    result = load_bytes(data, name, LoadContext(LIMITS), keep_text=True)
    for problem in result.errors + result.warnings:
        assert problem.source == name, problem
        assert problem.line is None or problem.line >= 1
    for resource in result.resources:
        assert all(isinstance(key, str) for key in keys_of(resource.obj))
        json.dumps(resource.obj)  # only JSON's types reach the controls


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes_never_crash_the_loader(data: bytes) -> None:
    check_loaded(data, "fuzz.yaml")
    check_loaded(data, "fuzz.json")


@FUZZ
@given(yamlish())
def test_yamlish_text_never_crashes_the_loader(data: bytes) -> None:
    check_loaded(data, "fuzz.yaml")


def scan_file(directory: str, name: str, data: bytes, profile: str = "nsa") -> None:
    path = Path(directory) / name
    path.write_bytes(data)
    result = run_scan(ScanRequest(paths=[str(path)], profile=profile, load=LoadContext(LIMITS)))
    for problem in result.errors + result.warnings:
        assert not problem.internal, problem  # no control failed on what the loader handed it
        assert problem.source == str(path), problem


@FUZZ
@given(yamlish())
def test_yamlish_text_never_crashes_a_scan(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        scan_file(directory, "fuzz.yaml", data)


# ------------------------------------------------------------------------------ type-mutated workloads

CONTAINER = {
    "name": "app", "image": "registry.example/app:1.0", "command": ["run"], "args": ["--x"],
    "ports": [{"containerPort": 8080, "hostPort": 80, "protocol": "TCP", "name": "http"}],
    "env": [{"name": "A", "value": "b"}, {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
    "envFrom": [{"secretRef": {"name": "s"}}],
    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m"}},
    "securityContext": {"privileged": True, "allowPrivilegeEscalation": True, "runAsUser": 0, "runAsNonRoot": False,
                        "readOnlyRootFilesystem": False, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                        "seccompProfile": {"type": "Unconfined"}, "procMount": "Unmasked",
                        "seLinuxOptions": {"type": "spc_t"}, "appArmorProfile": {"type": "Unconfined"}},
    "volumeMounts": [{"name": "v", "mountPath": "/host"}],
    "livenessProbe": {"httpGet": {"path": "/", "port": 8080}},
    "imagePullPolicy": "Always",
}
POD_SPEC = {
    "hostNetwork": True, "hostPID": True, "hostIPC": True, "serviceAccountName": "default",
    "automountServiceAccountToken": True, "securityContext": {"runAsUser": 0, "sysctls": [{"name": "a", "value": "1"}],
                                                              "supplementalGroups": [0], "fsGroup": 0},
    "initContainers": [copy.deepcopy(CONTAINER)], "containers": [copy.deepcopy(CONTAINER)],
    "ephemeralContainers": [copy.deepcopy(CONTAINER)],
    "volumes": [{"name": "v", "hostPath": {"path": "/", "type": "Directory"}},
                {"name": "s", "secret": {"secretName": "s"}}, {"name": "p", "projected": {"sources": []}}],
    "imagePullSecrets": [{"name": "r"}], "nodeSelector": {"a": "b"}, "tolerations": [{"operator": "Exists"}],
}
META = {"name": "web", "namespace": "shop", "labels": {"app": "web"},
        "annotations": {"kubeharden.io/ignore": "KH-POD-005: fuzz", "seccomp.security.alpha.kubernetes.io/pod": "x"}}
WORKLOADS = [
    {"apiVersion": "v1", "kind": "Pod", "metadata": META, "spec": POD_SPEC},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": META,
     "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
              "template": {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}}},
    {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": META,
     "spec": {"schedule": "* * * * *",
              "jobTemplate": {"spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}}}}},
]
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=4)), max_size=3),
    st.dictionaries(st.text(max_size=6), st.one_of(st.none(), st.integers(), st.text(max_size=4)), max_size=3),
)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += paths_of(item, (*prefix, i))
    return out


@st.composite
def mutated_workload(draw: st.DrawFn) -> dict[str, Any]:
    obj = copy.deepcopy(draw(st.sampled_from(WORKLOADS)))
    paths = [p for p in paths_of(obj) if p[:1] != ("apiVersion",) and p[:1] != ("kind",)]
    for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=6)):
        parent: Any = obj
        try:
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = draw(ODD_VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a parent
    return obj


@FUZZ
@given(mutated_workload(), st.sampled_from(["nsa", "pss-restricted"]))
def test_type_mutated_workloads_never_crash_a_control(obj: dict[str, Any], profile: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        scan_file(directory, "workload.json", json.dumps(obj).encode(), profile)


# ------------------------------------------------------------------------------ exceptions files

EXCEPTION_FRAGMENTS = [
    "exceptions:\n", "  - control: KH-POD-005\n", "  - control: KH-POD-*\n", "    reason: agent\n",
    "    resource: {kind: Pod, namespace: '*', name: x}\n", "    resource: [1]\n", "    expires: 2099-01-01\n",
    "    expires: 2099-13-45\n", "    expires: !!timestamp x\n", "    expires: 5\n", "    owner: {a: b}\n",
    "    path: /etc/*\n", "    control: !!int x\n", "    reason: !Secr3t\n", "    control: [a]\n", "- ", "---\n",
    "~: x\n", "&a ", "*a\n", "<<: *a\n", "[", "]", "{", "}", "'", "\t", "\n", "    reason: yes\n", "\ufeff",
]


@FUZZ
@given(st.lists(st.sampled_from(EXCEPTION_FRAGMENTS), max_size=25).map("".join))
def test_exceptions_files_never_crash(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "exceptions.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            rules = load_exceptions_file(str(path))
        except ExceptionsFileError as exc:
            assert str(exc).startswith(str(path))
            assert "Secr3t" not in str(exc)
        else:
            assert all(rule.control and rule.reason for rule in rules)
