"""A hostile or broken API server or kubeconfig never crashes, hangs or leaks a credential."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_apiserver import Behaviour
from live_support import fake_cluster, run

from kubeharden.sources.cluster import (
    MAX_RETRY_WAIT,
    ApiReader,
    ClusterError,
    ClusterOptions,
    _retry_after,
    max_pages,
    read_cluster,
)

TOKEN = "tok-9f8e7d6c5b4a"  # a distinctive credential: it must appear in no message


def _failed(read: Any, kind: str) -> str:
    [outcome] = [o for o in read.lists if o.target.kind == kind and not o.target.field_selector]
    assert outcome.failed is not None, outcome
    assert not outcome.items
    return str(outcome.failed)


def _scan(kubeconfig: Path, *args: str) -> Any:
    return run("scan", "--cluster", "--kubeconfig", str(kubeconfig), "-c", "KH-POD-005", "-f", "json",
               "--fail-on", "none", *args)


# --- answers of the wrong shape -------------------------------------------------------------

CORE = "/api/v1"
DISCOVERY_BREAKS_THE_READ = [
    ("/apis", {"groups": ["apps", 5]}, "/apis: groups[0] is a string, not an object"),
    ("/apis", {"groups": {"name": "apps"}}, "/apis: groups is an object, not an array"),
    ("/apis", {"groups": [{"name": 7}]}, "/apis: groups[0].name is a number, not a string"),
    ("/apis", {"groups": [{"name": "apps", "versions": ["v1"]}]}, "groups[0].versions[0] is a string"),
    ("/apis", {"groups": [{"name": "apps", "versions": [{"version": "v1"}], "preferredVersion": "v1"}]},
     "groups[0].preferredVersion is a string, not an object"),
    (CORE, {"resources": "pods"}, "/api/v1: resources is a string, not an array"),
    (CORE, {"resources": [None, 1]}, "/api/v1: resources[0] is null, not an object"),
    (CORE, {"resources": [{"name": "pods", "kind": ["Pod"]}]}, "resources[0].kind is an array, not a string"),
    (CORE, {"resources": [{"name": "pods", "kind": "Pod", "verbs": "list"}]}, "resources[0].verbs is a string"),
    (CORE, {"resources": [{"name": "pods", "kind": "Pod", "verbs": [1]}]}, "verbs holds a value that is not"),
    (CORE, {"resources": [{"name": "pods", "kind": "Pod", "namespaced": "yes"}]}, "namespaced is a string"),
    (CORE, {"resources": [{"kind": "Pod"}]}, "/api/v1: resources[0].name is missing"),
    (CORE, ["not", "an", "object"], "/api/v1: the answer is an array, not an object"),
    ("/version", {"gitVersion": {"v": 1}}, "/version: gitVersion is an object, not a string"),
]


@pytest.mark.parametrize(("path", "body", "message"), DISCOVERY_BREAKS_THE_READ)
def test_malformed_discovery_is_a_clean_error(tmp_path: Path, path: str, body: Any, message: str) -> None:
    with fake_cluster(tmp_path, behaviour=Behaviour(replace={path: body})) as (_server, kubeconfig):
        with pytest.raises(ClusterError, match="malformed response") as caught:
            read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), retries=0))
        result = _scan(kubeconfig)
    assert message in str(caught.value)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_malformed_group_discovery_makes_its_kinds_unreadable(tmp_path: Path) -> None:
    behaviour = Behaviour(replace={"/apis/apps/v1": {"resources": [{"name": "deployments", "kind": 3}]}})
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), retries=0))
        result = _scan(kubeconfig)
    reason = _failed(read, "Deployment")
    assert "discovery of apps/v1 failed: malformed response: /apis/apps/v1: resources[0].kind is a number" in reason
    assert any(o.target.kind == "Pod" and o.items for o in read.lists)  # the other groups are read
    assert result.exit_code == 2 and "cannot list Deployment" in result.stderr
    assert "Traceback" not in result.stderr


PAGES = [
    ({"items": "pods"}, "/api/v1/pods: items is a string, not an array"),
    ({"items": {"a": {}}}, "/api/v1/pods: items is an object, not an array"),
    ({"items": [{"metadata": {"name": "a"}}, 42]}, "/api/v1/pods: items[1] is a number, not an object"),
    ({"items": [{"metadata": ["name", "a"]}]}, "/api/v1/pods: items[0].metadata is an array, not an object"),
    ({"items": [], "metadata": "x"}, "/api/v1/pods: metadata is a string, not an object"),
    ({"items": [], "metadata": {"continue": 12}}, "/api/v1/pods: metadata.continue is a number, not a string"),
    ({"items": [], "metadata": {"continue": ["t"]}}, "/api/v1/pods: metadata.continue is an array, not a string"),
]


@pytest.mark.parametrize(("page", "message"), PAGES)
def test_malformed_list_page_fails_that_kind_only(tmp_path: Path, page: Any, message: str) -> None:
    behaviour = Behaviour(replace={"/api/v1/pods": page})
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), retries=2, backoff=0.01))
        result = _scan(kubeconfig, "--retries", "2")
    reason = _failed(read, "Pod")
    assert message in reason and "retries" not in reason  # a wrong shape is not retried
    assert any(o.target.kind == "Deployment" and o.items for o in read.lists)
    assert result.exit_code == 2 and f"cannot list Pod: malformed response: {message}" in result.stderr
    assert "Traceback" not in result.stderr


# --- lists that never end --------------------------------------------------------------------

def test_a_new_continue_token_on_every_page_stops_at_the_page_limit(tmp_path: Path) -> None:
    with fake_cluster(tmp_path, behaviour=Behaviour(endless={"pods": "fresh"})) as (server, kubeconfig):
        options = ClusterOptions(kubeconfig=str(kubeconfig), page_size=5, max_objects=20)
        read = read_cluster(options)
        requests = len(server.list_requests("pods"))
    assert max_pages(options) == 18  # 2 x the 4 full pages of 20 objects, plus 10
    assert requests == 18
    assert "did not end within 18 pages" in _failed(read, "Pod")
    assert sum(len(o.items) for o in read.lists) > 0  # the other kinds are read


def test_default_page_limit_is_generous_but_finite() -> None:
    assert 4000 <= max_pages(ClusterOptions()) < 10_000


@pytest.mark.parametrize(("token", "requests", "message"), [
    ("again", 2, "sent a continue token it had sent before"),
])
def test_a_repeated_continue_token_is_an_error(tmp_path: Path, token: str, requests: int, message: str) -> None:
    with fake_cluster(tmp_path, behaviour=Behaviour(endless={"pods": token})) as (server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig)))
        count = len(server.list_requests("pods"))
    assert count == requests
    assert message in _failed(read, "Pod")


def test_a_non_string_continue_token_is_an_error(tmp_path: Path) -> None:
    with fake_cluster(tmp_path, behaviour=Behaviour(endless={"pods": {"next": 1}})) as (server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig)))
        count = len(server.list_requests("pods"))
    assert count == 1
    assert "metadata.continue is an object, not a string" in _failed(read, "Pod")


def test_too_many_objects_in_one_list_is_an_error(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), page_size=2, max_objects=3))
    assert "more than 3 objects" in _failed(read, "Pod")  # five pods in the fixture


# --- slow answers and long waits ----------------------------------------------------------

def test_a_trickled_answer_respects_the_request_timeout_in_total(tmp_path: Path) -> None:
    # one byte every 0.5 s: every single read succeeds, so only a total deadline ends it
    with fake_cluster(tmp_path, behaviour=Behaviour(trickle={"pods": 0.5})) as (server, kubeconfig):
        started = time.monotonic()
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), timeout=1.0, retries=1, backoff=0.01))
        elapsed = time.monotonic() - started
        attempts = len(server.list_requests("pods"))
        started = time.monotonic()
        result = _scan(kubeconfig, "--request-timeout", "1", "--retries", "0")
        cli_elapsed = time.monotonic() - started
    reason = _failed(read, "Pod")
    assert "timed out" in reason and "within 1 s" in reason and "after 1 retries" in reason
    assert attempts == 2
    assert elapsed < 4.0  # two attempts of 1 s each, not the minutes the trickle would take
    assert result.exit_code == 2 and "cannot list Pod" in result.stderr and "timed out" in result.stderr
    assert cli_elapsed < 4.0


def test_huge_retry_after_gives_up_within_the_retry_budget(tmp_path: Path) -> None:
    behaviour = Behaviour(fail_next={"configmaps": [503] * 10}, retry_after="100000")
    with fake_cluster(tmp_path, behaviour=behaviour) as (server, kubeconfig):
        started = time.monotonic()
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), timeout=0.5, retries=3))
        elapsed = time.monotonic() - started
        attempts = len(server.list_requests("configmaps"))
    reason = _failed(read, "ConfigMap")
    assert "asked to wait 100000 s" in reason and "retry budget 2 s" in reason
    assert attempts == 1 and elapsed < 3.0


def test_each_wait_before_a_retry_is_capped(tmp_path: Path) -> None:
    behaviour = Behaviour(fail_next={"configmaps": [429, 503, 429]}, retry_after="100000")
    waits: list[float] = []
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        options = ClusterOptions(kubeconfig=str(kubeconfig), retries=3)  # budget 4 x 30 s
        read = read_cluster(options, reader=ApiReader(options, sleep=waits.append))
    assert waits == [MAX_RETRY_WAIT] * 3  # asked for 100000 s each time
    [configmaps] = [o for o in read.lists if o.target.kind == "ConfigMap"]
    assert configmaps.failed is None and len(configmaps.items) == 2


@pytest.mark.parametrize(("value", "seconds"), [
    ("3", 3.0), (" 1.5 ", 1.5), ("0", 0.0), ("-5", None), ("nan", None), ("inf", None), ("1e9", None),
    ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("", None),
])
def test_retry_after_values(value: str, seconds: float | None) -> None:
    assert _retry_after({"Retry-After": value}) == seconds


# --- kubeconfig files ------------------------------------------------------------------------

def _edit(config: dict[str, Any], change: str) -> Any:
    cluster, user, context = config["clusters"][0], config["users"][0], config["contexts"][0]
    if change == "user is a string":
        user["user"] = "reader"
    elif change == "users is a mapping":
        config["users"] = {"reader": {"token": TOKEN}}
    elif change == "a user without a name":
        del user["name"]
    elif change == "cluster is a string":
        cluster["cluster"] = "https://127.0.0.1"
    elif change == "server is a number":
        cluster["cluster"]["server"] = 443
    elif change == "no server":
        del cluster["cluster"]["server"]
    elif change == "insecure-skip-tls-verify is a string":
        cluster["cluster"]["insecure-skip-tls-verify"] = "yes"
    elif change == "context is a string":
        context["context"] = "fake"
    elif change == "context without user":
        del context["context"]["user"]
    elif change == "token is a list":
        user["user"]["token"] = [TOKEN]
    elif change == "exec without command":
        user["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "args": [TOKEN]}}
    elif change == "current-context is a number":
        config["current-context"] = 5
    elif change == "the file is a list":
        return [config]
    return config


KUBECONFIG_CHANGES = [
    ("user is a string", "users[0] (reader).user is a string, not a mapping"),
    ("users is a mapping", "users is an object, not a list"),
    ("a user without a name", "users[0].name is null, not a name"),
    ("cluster is a string", "clusters[0] (fake).cluster is a string, not a mapping"),
    ("server is a number", "clusters[0] (fake).cluster.server is a number, not a string"),
    ("no server", "cluster 'fake' has no server"),
    ("insecure-skip-tls-verify is a string",
     "clusters[0] (fake).cluster.insecure-skip-tls-verify is a string, not a boolean"),
    ("context is a string", "contexts[0] (fake).context is a string, not a mapping"),
    ("context without user", "context 'fake' names no user"),
    ("token is a list", "users[0] (reader).user.token is an array, not a string"),
    ("exec without command", "users[0] (reader).user.exec.command is null, not a command"),
    ("current-context is a number", "current-context is a number, not a string"),
    ("the file is a list", "the file is an array, not a mapping"),
]


@pytest.mark.parametrize(("change", "message"), KUBECONFIG_CHANGES)
def test_malformed_kubeconfig_is_an_error_naming_the_file(tmp_path: Path, change: str, message: str) -> None:
    with fake_cluster(tmp_path) as (server, _kubeconfig):
        good = server.kubeconfig(tmp_path / "good.yaml", token=TOKEN)
        config = _edit(yaml.safe_load(good.read_text()), change)
        broken = tmp_path / "broken.yaml"
        broken.write_text(yaml.safe_dump(config))
        with pytest.raises(ClusterError) as caught:
            ApiReader(ClusterOptions(kubeconfig=str(broken)))
        result = _scan(broken)
    assert f"kubeconfig {broken}: {message}" in str(caught.value)
    assert result.exit_code == 2 and str(broken) in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr and TOKEN not in result.stderr
    assert result.stdout == ""


def test_unreadable_or_missing_kubeconfig_and_bad_yaml(tmp_path: Path) -> None:
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("clusters: [\n")
    cases = [
        (tmp_path, f"cannot read kubeconfig {tmp_path}"),  # a directory
        (tmp_path / "missing.yaml", f"kubeconfig {tmp_path / 'missing.yaml'} does not exist"),
        (invalid, f"kubeconfig {invalid} is not valid YAML (line 2)"),
    ]
    for path, message in cases:
        with pytest.raises(ClusterError) as caught:
            ApiReader(ClusterOptions(kubeconfig=str(path)))
        assert message in str(caught.value)
        result = run("scan", "--cluster", "--kubeconfig", str(path))  # the CLI checks paths first
        assert result.exit_code == 2 and str(path) in result.stderr and "Traceback" not in result.stderr


def test_missing_files_of_a_kubeconfig_list_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent.yaml'}:{kubeconfig}")  # as kubectl does
        read = read_cluster(ClusterOptions())
    assert read.source_name == "cluster:fake" and any(o.items for o in read.lists)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(ClusterError, match="cannot load cluster configuration"):
        ApiReader(ClusterOptions())


def test_client_errors_never_show_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the client's own messages may quote a kubeconfig entry (its repr of a user with a token):
    # the credentials of the files are redacted from them
    from kubernetes import config

    def failing_loader(**_kwargs: Any) -> None:
        raise AttributeError(f"unexpected entry {{'name': 'reader', 'user': {{'token': '{TOKEN}'}}}}")

    with fake_cluster(tmp_path) as (server, _kubeconfig):
        kubeconfig = server.kubeconfig(tmp_path / "good.yaml", token=TOKEN)
    monkeypatch.setattr(config, "load_kube_config", failing_loader)
    with pytest.raises(ClusterError) as caught:
        ApiReader(ClusterOptions(kubeconfig=str(kubeconfig)))
    message = str(caught.value)
    assert message.startswith(f"cannot load cluster configuration ({kubeconfig}): AttributeError: ")
    assert TOKEN not in message and "<redacted>" in message
