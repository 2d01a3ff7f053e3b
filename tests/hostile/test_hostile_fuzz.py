"""Fuzzing the readers added after issue 11: the Dockerfile reader, the vulnerability report
readers, the log agent parsers, `fix --ops` and `diff`. Whatever comes in, no exception escapes
(exit 3 is a bug), and every error names the file it is about.

Bounded and derandomized so CI runs the same examples in a few seconds; set
KUBEHARDEN_FUZZ_EXAMPLES=5000 (or more) for a longer, randomized run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is a test dependency (pip install hypothesis)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kubeharden.cli import cli  # noqa: E402
from kubeharden.images.dockerfile import parse_dockerfile, read_dockerfile  # noqa: E402
from kubeharden.images.vulns import ReportError, parse_report, read_report  # noqa: E402
from kubeharden.loader import InputProblem, LoadContext  # noqa: E402
from kubeharden.logpipeline import AgentConfig  # noqa: E402
from kubeharden.logpipeline.fluentbit import include_from  # noqa: E402
from kubeharden.logpipeline.sources import parse_text  # noqa: E402

EXAMPLES = int(os.environ.get("KUBEHARDEN_FUZZ_EXAMPLES", "0") or 0)


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=EXAMPLES or examples,
        derandomize=not EXAMPLES,  # the CI run is the same every time; a long run explores
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.function_scoped_fixture],
    )


def text_of(fragments: list[str], max_size: int = 40) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(fragments), max_size=max_size).map("".join)


# JSON values of any shape, wrong types included
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)

# ---------------------------------------------------------------------------------------------
# Dockerfiles

DOCKERFILE_FRAGMENTS = [
    "FROM alpine\n", "FROM ${BASE}\n", "FROM a AS b\n", "FROM --platform=$X b\n", "ARG BASE=x\n", "ARG U\n",
    "USER root\n", "USER $U\n", "USER ${U:-1000}\n", "USER ${U:+x}\n", "USER 0:0\n", "ENV A=1 B=\"two\"\n",
    "ENV legacy value\n", "RUN <<EOF\n", "RUN <<-'X' <<Y\n", "EOF\n", "\tX\n", "COPY --from=b / /\n",
    "# escape=`\n", "# syntax=x\n", "# escape=?\n", "\\\n", "`\n", "\\", "${", "}", "$", "\"", "'", "\n", " ",
    "\r\n", "ONBUILD USER x\n", "HEALTHCHECK NONE\n", "é", "\u202e", "${A:-${B:-${C}}}", "USER\n", "FROM\n",
]


@fuzz(200)
@given(text=text_of(DOCKERFILE_FRAGMENTS, 60))
def test_dockerfile_parser_never_raises(text: str) -> None:
    parsed = parse_dockerfile(text)
    for line, message in parsed.warnings:
        assert isinstance(line, int) and isinstance(message, str)


@fuzz(60)
@given(data=st.binary(max_size=200) | text_of(DOCKERFILE_FRAGMENTS).map(str.encode),
       encoding=st.sampled_from(["", "utf-16", "utf-8-sig"]))
def test_dockerfile_reader_errors_are_input_problems(tmp_path_factory: pytest.TempPathFactory, data: bytes,
                                                     encoding: str) -> None:
    path = tmp_path_factory.mktemp("df") / "Dockerfile"
    path.write_bytes(data.decode("utf-8", "replace").encode(encoding) if encoding else data)
    try:
        read_dockerfile(path, LoadContext())
    except InputProblem as problem:
        assert problem.message


# ---------------------------------------------------------------------------------------------
# Vulnerability reports: the documented shapes with every field replaced by any JSON value

SHAPES: list[dict[str, Any]] = [
    {"SchemaVersion": 2, "ArtifactName": "a", "ArtifactType": "container_image", "Metadata": {"RepoDigests": []},
     "Results": [{"Target": "t", "Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgName": "p",
                                                       "Severity": "HIGH", "FixedVersion": "1"}]}]},
    {"ClusterName": "c", "Resources": [{"Namespace": "n", "Kind": "Pod", "Name": "p", "Results": [
        {"Target": "img", "Vulnerabilities": [{"VulnerabilityID": "CVE-1"}]}], "Metadata": [{"RepoDigests": []}]}]},
    {"matches": [{"vulnerability": {"id": "CVE-1", "severity": "High", "fix": {"versions": ["1"]}},
                  "artifact": {"name": "p", "version": "0"}}],
     "source": {"type": "image", "target": {"userInput": "a", "repoDigests": [], "manifestDigest": None}}},
    {"bomFormat": "CycloneDX", "specVersion": "1.5", "metadata": {"component": {"name": "a", "purl": "pkg:oci/a"}},
     "components": [{"bom-ref": "x", "name": "p"}],
     "vulnerabilities": [{"id": "CVE-1", "ratings": [{"severity": "high", "score": 7}], "affects": [{"ref": "x"}]}]},
    {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t", "rules": [{"id": "CVE-1"}]}},
                                   "results": [{"ruleId": "CVE-1", "level": "error", "message": {"text": "m"}}],
                                   "properties": {"imageName": "a"}}]},
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(doc))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


@fuzz(300)
@given(data=st.data())
def test_vulnerability_readers_raise_only_report_errors(data: st.DataObject) -> None:
    shape = data.draw(st.sampled_from(SHAPES))
    doc = shape
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        doc = _replaced(doc, path, data.draw(json_values))
    image = data.draw(st.none() | st.sampled_from(["nginx:1", "a", "", "x@sha256:" + "1" * 64]))
    try:
        scans = parse_report(doc, image)
    except ReportError as exc:
        assert str(exc)
        return
    json.dumps(scans)  # what becomes ImageScan resources is plain data


def test_vulnerability_report_files_huge_deep_and_special(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * 2048)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for path, limit in ((deep, 1 << 20), (huge, 1024), (fifo, 1 << 20), (Path("/dev/zero"), 1 << 20)):
        with pytest.raises(ReportError):
            read_report(str(path), limit)


# ---------------------------------------------------------------------------------------------
# Log agent configurations

AGENT_FRAGMENTS = [
    "[SERVICE]\n", "[INPUT]\n", "[OUTPUT]\n", "[FILTER]\n", "[ bogus ]\n", "    Name es\n", "    Host 10.0.0.1\n",
    "    tls On\n", "    tls.verify Off\n", "    Match *\n", "Key\n", "@INCLUDE a.conf\n", "@INCLUDE *.conf\n",
    "@INCLUDE self.conf\n", "@SET x=1\n", "${x}", "<source>\n", "</source>\n", "<match **>\n", "</match>\n",
    "<buffer>\n", "</buffer>\n", "  @type forward\n", "  transport tls\n", "@include a.conf\n", "</x>\n", "<x\n",
    "pipeline:\n", "  inputs:\n", "  outputs:\n", "    - name: es\n", "      tls: on\n", "  inputs: 5\n", "- 1\n",
    "sinks:\n", "  s:\n", "    type: http\n", "    uri: http://x\n", "sources: [1]\n", "clients:\n", "  - url: x\n",
    "clients: 7\n", "scrape_configs: {}\n", "[sinks.s]\n", "type = \"http\"\n", "[sinks]\n", "sinks = 5\n",
    "x = [\n", "\"", "'", "#", "\n", "  ", "\t", "{", "[", ":", "!!int x", "&a ", "*a ", "é", "\x00",
]
AGENT_NAMES = ["fluent-bit.conf", "fluentd.conf", "vector.toml", "vector.yaml", "promtail.yaml", "fluent-bit.yaml",
               "rsyslog.conf", "journal-upload.conf", "config.json"]


@fuzz(300)
@given(text=text_of(AGENT_FRAGMENTS), name=st.sampled_from(AGENT_NAMES),
       includes=st.dictionaries(st.sampled_from(["a.conf", "self.conf", "b.conf"]), text_of(AGENT_FRAGMENTS, 10),
                                max_size=3))
def test_log_agent_parsers_never_raise_and_name_the_file(text: str, name: str, includes: dict[str, str]) -> None:
    files = {**includes, "self.conf": includes.get("self.conf", "@INCLUDE self.conf\n"), name: text}
    config = parse_text(text, name, f"ConfigMap logging/agent data[{name}]", include_from(files))
    if config is None:
        return
    assert isinstance(config, AgentConfig)
    for problem in config.problems:
        assert problem.message and (problem.file or config.where)
        assert problem.line is None or problem.line >= 1


# ---------------------------------------------------------------------------------------------
# fix --ops and diff through the command line: exit 0/1/2, never 3, and errors name the file

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    image: nginx:1.25
    securityContext:
      privileged: true
"""


def _run(args: list[str], cwd: Path) -> tuple[int, str]:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, args, catch_exceptions=True)
    finally:
        os.chdir(old)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout + result.stderr


path_items = st.one_of(st.sampled_from(["spec", "containers", "securityContext", "metadata", "x", ""]),
                       st.integers(-3, 3), json_values)
ops = st.lists(st.fixed_dictionaries(
    {"file": st.sampled_from(["pod.yaml", "missing.yaml", "", 5, None]),
     "op": st.sampled_from(["set", "delete", "append", "remove-item", "bogus", 1])},
    optional={"doc": st.integers(-1, 3) | json_values, "path": st.lists(path_items, max_size=5) | json_values,
              "value": json_values}), max_size=4)


@fuzz(80)
@given(document=ops | json_values)
def test_fix_ops_never_crash(tmp_path_factory: pytest.TempPathFactory, document: Any) -> None:
    work = tmp_path_factory.mktemp("ops")
    (work / "pod.yaml").write_text(POD)
    (work / "ops.json").write_text(json.dumps(document))
    code, out = _run(["fix", "--ops", "ops.json", "--dry-run"], work)
    assert code in (0, 1, 2), out
    assert "internal error" not in out
    if code == 2:
        assert "ops.json" in out


@fuzz(60)
@given(document=json_values, findings=st.lists(st.dictionaries(
    st.sampled_from(["control_id", "severity", "path", "resource", "source", "fingerprint", "message", "excepted",
                     "value", "section"]), json_values, max_size=6), max_size=3))
def test_diff_of_malformed_reports_never_crashes(tmp_path_factory: pytest.TempPathFactory, document: Any,
                                                  findings: list[dict[str, Any]]) -> None:
    work = tmp_path_factory.mktemp("diff")
    (work / "a.json").write_text(json.dumps(document))
    (work / "b.json").write_text(json.dumps({"tool": {"name": "kubeharden"}, "findings": findings}))
    for args in (["diff", "a.json", "b.json"], ["diff", "b.json", "b.json", "-f", "markdown", "--fail-on", "low"],
                 ["diff", "b.json", "b.json", "-f", "json"]):
        code, out = _run(args, work)
        assert code in (0, 1, 2), out
        assert "internal error" not in out
        if code == 2:
            assert "a.json" in out or "b.json" in out
