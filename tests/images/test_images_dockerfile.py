"""Dockerfile reader (final stage's USER, ARG/ENV, stages, directives, continuations, heredocs) and
KH-POD-001 judging Dockerfiles and the workloads built from them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kubeharden.catalog import Settings
from kubeharden.images.dockerfile import (
    USER_DYNAMIC,
    USER_NAMED,
    USER_NONROOT,
    USER_ROOT,
    USER_UNSET,
    classify_user,
    dockerfile_object,
    is_dockerfile_name,
    parse_dockerfile,
)
from kubeharden.loader import LoadContext, load_paths
from kubeharden.model import Status
from kubeharden.scanner import ScanRequest, run_scan


def final(text: str) -> dict:
    return dockerfile_object(parse_dockerfile(textwrap.dedent(text).lstrip("\n")), "Dockerfile")["spec"]["final"]


@pytest.mark.parametrize(("value", "status"), [
    ("root", USER_ROOT), ("0", USER_ROOT), ("0:0", USER_ROOT), ("root:root", USER_ROOT), ("00", USER_ROOT),
    ("ContainerAdministrator", USER_ROOT), ("10001", USER_NONROOT), ("10001:10001", USER_NONROOT),
    ("1000:0", USER_NONROOT), ("app", USER_NAMED), ("nobody:nogroup", USER_NAMED), (None, USER_UNSET),
    ("", USER_UNSET),
])
def test_classify_user(value, status) -> None:
    assert classify_user(value) == status


@pytest.mark.parametrize(("name", "claimed"), [
    ("Dockerfile", True), ("Containerfile", True), ("dockerfile", True), ("Dockerfile.prod", True),
    ("api.Dockerfile", True), ("web.containerfile", True), ("Dockerfile.dockerignore", False),
    ("Dockerfile.yaml", True), ("deploy.yaml", False), ("README.md", False),
])
def test_file_names(name, claimed) -> None:
    assert is_dockerfile_name(name) is claimed


def test_last_user_of_final_stage_wins_and_builder_stages_do_not_count() -> None:
    f = final("""
        FROM golang:1.22 AS build
        USER 10001
        RUN go build
        FROM debian:12
        USER 10001
        USER root
        """)
    assert (f["userStatus"], f["user"], f["userLine"], f["line"]) == (USER_ROOT, "root", 6, 4)


def test_unset_user_in_final_stage_even_if_builder_set_one() -> None:
    f = final("""
        FROM golang:1.22 AS build
        USER 10001
        FROM gcr.io/distroless/static
        COPY --from=build /app /app
        """)
    assert f["userStatus"] == USER_UNSET and f["user"] is None
    assert f["baseImage"] == "gcr.io/distroless/static" and f["baseLine"] == 3


def test_stage_built_from_a_stage_inherits_user_and_base() -> None:
    f = final("""
        FROM alpine:3.20 AS base
        USER 10001:10001
        FROM base AS final
        RUN echo hi
        """)
    assert (f["userStatus"], f["userLine"], f["baseImage"], f["stage"]) == (USER_NONROOT, 2, "alpine:3.20", "final")


def test_arg_and_env_substitution() -> None:
    f = final("""
        ARG UID=10001
        ARG BASE=debian:12
        FROM ${BASE}
        ARG UID
        ENV GID=${UID:-1} HOME=/home/app
        USER ${UID}:$GID
        """)
    assert (f["user"], f["userStatus"], f["baseImage"], f["userFromArg"]) == (
        "10001:10001", USER_NONROOT, "debian:12", "UID")


def test_arg_without_default_is_dynamic_and_global_arg_needs_redeclaring() -> None:
    assert final("FROM debian\nARG UID\nUSER $UID\n")["userStatus"] == USER_DYNAMIC
    # a global ARG is not visible inside a stage until declared there: the variable is empty
    assert final("ARG UID=10001\nFROM debian\nUSER ${UID}\n")["userStatus"] == USER_UNSET
    assert final("FROM debian\nENV U=0\nUSER ${U}\n")["userStatus"] == USER_ROOT
    assert final("FROM debian\nENV U=app\nUSER ${U:+10001}\n")["user"] == "10001"


def test_continuations_comments_inside_them_and_heredocs() -> None:
    f = final("""
        FROM debian:12
        RUN apt-get update && \\
        # a comment inside the continuation
            apt-get install -y curl

        RUN <<EOF
        USER root
        EOF
        COPY <<-"CONF" /etc/app.conf
        \tUSER root
        \tCONF
        USER \\
          10001
        """)
    assert (f["userStatus"], f["user"], f["userLine"]) == (USER_NONROOT, "10001", 12)


def test_escape_directive_and_syntax_directive() -> None:
    f = final("""
        # syntax=docker/dockerfile:1
        # escape=`
        FROM mcr.microsoft.com/windows/nanoserver:ltsc2022
        USER `
          ContainerAdministrator
        """)
    assert (f["userStatus"], f["userLine"]) == (USER_ROOT, 4)


def test_directive_after_a_comment_is_a_comment() -> None:
    f = final("# hello\n# escape=`\nFROM debian\nUSER 10001 `\n")
    # the backtick is no escape character here: it is part of the user
    assert f["user"] == "10001 `"


def test_platform_flag_and_scratch() -> None:
    parsed = parse_dockerfile("FROM --platform=$BUILDPLATFORM golang AS b\nFROM scratch\nCOPY --from=b /a /a\n")
    obj = dockerfile_object(parsed, "Dockerfile")
    assert obj["spec"]["stages"][0]["platform"] == "$BUILDPLATFORM"
    assert obj["spec"]["final"]["baseImage"] is None


def test_unterminated_heredoc_is_a_warning_not_a_crash() -> None:
    parsed = parse_dockerfile("FROM debian\nRUN <<EOF\necho\n")
    assert parsed.warnings and "not terminated" in parsed.warnings[0][1]


# ---------------------------------------------------------------------------------------------
# Loading and KH-POD-001


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      {pod_sc}
      containers:
      - name: main
        image: {image}
"""


def scan(paths: list[Path], control: str = "KH-POD-001"):
    result = run_scan(ScanRequest(paths=[str(p) for p in paths], settings=Settings(), only=[control]))
    (outcome,) = result.controls
    return outcome, result


def test_directory_with_dockerfiles_is_read(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"svc/api/Dockerfile": "FROM debian:12\nUSER root\n", "svc/web.Dockerfile": "FROM nginx\n",
                     "svc/ok/Containerfile": "FROM debian\nUSER 10001\n", "svc/notes.txt": "FROM x\n"})
    loaded = load_paths(["svc"], LoadContext())
    assert sorted(r.name for r in loaded.resources) == ["svc/api/Dockerfile", "svc/ok/Containerfile",
                                                       "svc/web.Dockerfile"]
    assert not loaded.errors


def test_kh_pod_001_on_dockerfiles_at_file_and_line(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"api/Dockerfile": "FROM golang AS b\nUSER 10001\nFROM debian:12\nUSER 0:0\n",
                     "web/Dockerfile": "FROM nginx:1.27\nRUN true\n",
                     "ok/Dockerfile": "FROM debian\nUSER 10001:10001\n",
                     "named/Dockerfile": "FROM debian\nUSER app\n"})
    outcome, _ = scan([tmp_path / "api", tmp_path / "web", tmp_path / "ok", tmp_path / "named"])
    assert outcome.status is Status.FAIL
    where = {(f.file, f.line, f.severity.label) for f in outcome.findings}
    assert where == {("api/Dockerfile", 4, "medium"), ("web/Dockerfile", 1, "medium"),
                     ("named/Dockerfile", 2, "low")}


def test_kh_pod_001_passes_on_a_non_root_dockerfile(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"ok/Dockerfile": "FROM debian\nUSER 10001:10001\n"})
    outcome, _ = scan([tmp_path / "ok"])
    assert outcome.status is Status.PASS


def test_kh_pod_001_not_assessed_without_image_evidence(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"deploy.yaml": DEPLOYMENT.format(name="api", image="shop/api:1.0", pod_sc="")})
    outcome, _ = scan([tmp_path / "deploy.yaml"])
    assert outcome.status is Status.NOT_ASSESSED and "--registry-lookup" in (outcome.reason or "")


def test_dockerfile_only_with_dynamic_user_is_not_assessed(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"Dockerfile": "FROM debian\nARG UID\nUSER $UID\n"})
    outcome, _ = scan([tmp_path / "Dockerfile"])
    assert outcome.status is Status.NOT_ASSESSED and "build argument" in (outcome.reason or "")


def test_workload_joined_to_dockerfile_named_after_the_image(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {
        "images/api/Dockerfile": "FROM debian:12\nUSER root\n",
        "images/worker.Dockerfile": "FROM debian:12\nUSER 10001\n",
        "k8s/api.yaml": DEPLOYMENT.format(name="api", image="registry.example/shop/api:1.0", pod_sc=""),
        "k8s/worker.yaml": DEPLOYMENT.format(name="worker", image="registry.example/shop/worker:1.0", pod_sc=""),
        "k8s/pinned.yaml": DEPLOYMENT.format(name="pinned", image="registry.example/shop/api:1.0",
                                             pod_sc="securityContext: {runAsUser: 10001}"),
        "k8s/strict.yaml": DEPLOYMENT.format(name="strict", image="registry.example/shop/api:1.0",
                                             pod_sc="securityContext: {runAsNonRoot: true}"),
    })
    outcome, _ = scan([tmp_path / "images", tmp_path / "k8s"])
    by_resource = {(f.resource or {}).get("name"): f for f in outcome.findings if f.resource and
                   f.resource["kind"] == "Deployment"}
    assert set(by_resource) == {"api", "strict"}  # worker's image is non-root; pinned overrides the user
    api = by_resource["api"]
    assert api.severity.label == "high" and api.evidence["dockerfile"] == "images/api/Dockerfile"
    assert api.evidence["joined_by"] == "Dockerfile named after the image"
    assert api.file == "k8s/api.yaml" and api.line is not None
    assert by_resource["strict"].evidence["will_not_start"] is True
    assert "refuse to start" in by_resource["strict"].message
    dockerfile_findings = [f for f in outcome.findings if f.resource and f.resource["kind"] == "Dockerfile"]
    assert [(f.file, f.line) for f in dockerfile_findings] == [("images/api/Dockerfile", 2)]


def test_workload_joined_through_skaffold(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {
        "build/root.Dockerfile": "FROM debian:12\n",
        "skaffold.yaml": """
            apiVersion: skaffold/v4beta11
            kind: Config
            build:
              artifacts:
              - image: backend
                context: build
                docker: {dockerfile: root.Dockerfile}
            """,
        "k8s/app.yaml": DEPLOYMENT.format(name="app", image="registry.example/team/backend:2.0", pod_sc=""),
    })
    outcome, _ = scan([tmp_path])
    joined = [f for f in outcome.findings if f.resource and f.resource["kind"] == "Deployment"]
    assert len(joined) == 1 and joined[0].evidence["joined_by"] == "skaffold artifact backend"
    assert "sets no user" in joined[0].message


def test_ambiguous_names_join_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {
        "a/api/Dockerfile": "FROM debian\nUSER root\n",
        "b/api/Dockerfile": "FROM debian\nUSER 10001\n",
        "k8s/api.yaml": DEPLOYMENT.format(name="api", image="registry.example/api:1.0", pod_sc=""),
    })
    outcome, _ = scan([tmp_path])
    assert not [f for f in outcome.findings if f.resource and f.resource["kind"] == "Deployment"]


def test_same_directory_join(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"app/Dockerfile": "FROM debian\nUSER root\n",
                     "app/deploy.yaml": DEPLOYMENT.format(name="x", image="registry.example/other:1", pod_sc="")})
    outcome, _ = scan([tmp_path / "app"])
    joined = [f for f in outcome.findings if f.resource and f.resource["kind"] == "Deployment"]
    assert len(joined) == 1 and joined[0].evidence["joined_by"] == "Dockerfile next to the manifest"


def test_unreadable_dockerfile_is_an_error_naming_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Dockerfile").write_bytes(b"FROM debian\n\xff\xfe\n")
    (tmp_path / "empty.Dockerfile").write_text("# nothing\n")
    loaded = load_paths([str(tmp_path / "Dockerfile"), str(tmp_path / "empty.Dockerfile")], LoadContext())
    assert [(e.source, e.line) for e in loaded.errors] == [("Dockerfile", 2), ("empty.Dockerfile", None)]
    assert "FROM" in loaded.errors[1].message
