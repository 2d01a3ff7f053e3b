"""The registry client's bearer-token flow and retries against a loopback fake (tests/images/fake_registry.py):
the challenge's realm/service/scope, tokens for docker-config credentials or anonymous, expired tokens,
429 with Retry-After (capped), 503s bounded by the retries and by the deadline; --registry-config
through the CLI."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_registry import SERVICE, FakeRegistry

from kubeharden.cli import cli
from kubeharden.images.registry import RegistryClient, RegistryError, RegistryOptions

USER, PASSWORD = "robot", "tok-Pw-9f3!never-shown"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeRegistry]:
    registry = FakeRegistry(tmp_path)
    registry.behaviour.users = {USER: PASSWORD}
    registry.add_image("shop/public", "1.0", "10001")
    registry.add_image("team/private", "2.0", "root")
    registry.behaviour.private = {"team/private"}
    with registry.running():
        yield registry


def config_file(tmp_path: Path, host: str, password: str = PASSWORD) -> Path:
    path = tmp_path / "docker-config.json"
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return path


def client(fake: FakeRegistry, tmp_path: Path, sleeps: list[float] | None = None, **options: object) -> RegistryClient:
    opts = RegistryOptions(ca_file=str(fake.ca), cache_dir="", docker_config=str(tmp_path / "none.json"))
    for key, value in options.items():
        setattr(opts, key, value)
    if sleeps is None:
        return RegistryClient(opts)
    return RegistryClient(opts, sleep=sleeps.append)


def test_anonymous_token_from_the_challenge_realm_with_service_and_scope(fake: FakeRegistry, tmp_path: Path) -> None:
    info = client(fake, tmp_path).lookup(f"{fake.host}/shop/public:1.0")
    assert info.user == "10001"
    tokens = [s for s in fake.seen if s.server == "token"]
    assert len(tokens) == 1  # one token for the repository, reused for the config blob
    assert tokens[0].query == {"scope": ["repository:shop/public:pull"], "service": [SERVICE]}
    assert tokens[0].auth == ""  # no credentials for the registry: anonymous
    registry = [s for s in fake.seen if s.server == "registry"]
    # challenge, manifest with the token, config blob with the same token
    assert [s.auth for s in registry] == ["", "Bearer", "Bearer"]


def test_token_fetched_with_basic_credentials_of_the_docker_config(fake: FakeRegistry, tmp_path: Path) -> None:
    c = client(fake, tmp_path, docker_config=str(config_file(tmp_path, fake.host)))
    info = c.lookup(f"{fake.host}/team/private:2.0")
    assert info.user == "root"
    tokens = [s for s in fake.seen if s.server == "token"]
    assert [t.auth for t in tokens] == [f"Basic {USER}"]
    # the registry itself never gets the password: only the token service does
    assert all(s.auth in ("", "Bearer") for s in fake.seen if s.server == "registry")


def test_private_repository_without_credentials_says_so(fake: FakeRegistry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="refused anonymous access") as info:
        client(fake, tmp_path).lookup(f"{fake.host}/team/private:2.0")
    assert fake.host in info.value.message


def test_wrong_password_is_refused_and_never_shown(fake: FakeRegistry, tmp_path: Path) -> None:
    wrong = "wrong-Pw-31"
    with pytest.raises(RegistryError, match="token service refused the credentials") as info:
        client(fake, tmp_path, docker_config=str(config_file(tmp_path, fake.host, wrong))).lookup(
            f"{fake.host}/team/private:2.0")
    assert wrong not in info.value.message and PASSWORD not in info.value.message


def test_expired_token_is_challenged_again_and_renewed(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.behaviour.token_uses = 1  # every token works once
    info = client(fake, tmp_path).lookup(f"{fake.host}/shop/public:1.0")
    assert info.user == "10001"
    assert len([s for s in fake.seen if s.server == "token"]) == 2  # the blob request renewed it
    assert [s.auth for s in fake.seen if s.server == "registry"] == ["", "Bearer", "Bearer", "Bearer"]


def test_429_waits_for_retry_after_capped(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.behaviour.rate_limited, fake.behaviour.retry_after = 1, "3600"
    sleeps: list[float] = []
    info = client(fake, tmp_path, sleeps, max_retry_after=2.0).lookup(f"{fake.host}/shop/public:1.0")
    assert info.user == "10001"
    assert sleeps == [2.0]  # an hour asked, the cap waited


def test_429_short_retry_after_is_honoured(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.behaviour.rate_limited, fake.behaviour.retry_after = 1, "1"
    sleeps: list[float] = []
    client(fake, tmp_path, sleeps).lookup(f"{fake.host}/shop/public:1.0")
    assert sleeps == [1.0]


def test_429_beyond_the_retries_is_an_error_naming_the_rate_limit(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.behaviour.rate_limited, fake.behaviour.retry_after = 10, "1"
    sleeps: list[float] = []
    with pytest.raises(RegistryError, match="rate limited"):
        client(fake, tmp_path, sleeps, retries=2).lookup(f"{fake.host}/shop/public:1.0")
    assert len(sleeps) == 2
    assert len([s for s in fake.seen if s.server == "registry"]) == 3


def test_503_is_retried_then_succeeds(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.behaviour.unavailable = 2
    sleeps: list[float] = []
    assert client(fake, tmp_path, sleeps, retries=2).lookup(f"{fake.host}/shop/public:1.0").user == "10001"
    assert len(sleeps) == 2


def test_503_retry_after_is_honoured_and_capped(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.behaviour.unavailable, fake.behaviour.retry_after = 2, "7"
    sleeps: list[float] = []
    client(fake, tmp_path, sleeps, max_retry_after=5.0).lookup(f"{fake.host}/shop/public:1.0")
    assert sleeps == [5.0, 5.0]


def test_503_retries_bounded(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.behaviour.unavailable = -1
    sleeps: list[float] = []
    with pytest.raises(RegistryError, match="HTTP 503"):
        client(fake, tmp_path, sleeps, retries=2).lookup(f"{fake.host}/shop/public:1.0")
    assert len([s for s in fake.seen if s.server == "registry"]) == 3


def test_503_retries_stop_at_the_deadline(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.behaviour.unavailable = -1
    started = time.monotonic()
    with pytest.raises(RegistryError, match="deadline"):
        client(fake, tmp_path, retries=1000, deadline=1.5).lookup(f"{fake.host}/shop/public:1.0")
    assert time.monotonic() - started < 10
    assert len([s for s in fake.seen if s.server == "registry"]) < 20  # backoff, not a busy loop


def test_registry_config_through_the_cli(fake: FakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-such-dir"))
    pod = tmp_path / "pod.yaml"
    pod.write_text(f"""\
apiVersion: v1
kind: Pod
metadata: {{name: app, namespace: team}}
spec:
  containers:
  - name: app
    image: {fake.host}/team/private:2.0
""")
    args = ["scan", str(pod), "-c", "KH-POD-001", "-f", "json", "--fail-on", "none", "--registry-lookup",
            "--registry-ca", str(fake.ca)]
    without = CliRunner().invoke(cli, args)
    assert without.exit_code == 0, without.output
    (control,) = [c for c in json.loads(without.stdout)["controls"] if c["id"] == "KH-POD-001"]
    assert control["status"] == "not_assessed"
    result = CliRunner().invoke(cli, [*args, "--registry-config", str(config_file(tmp_path, fake.host))])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (finding,) = [f for f in report["findings"] if f["control_id"] == "KH-POD-001"]
    assert finding["evidence"]["image_user"] == "root"
    assert finding["evidence"]["image_config"]["source"] == f"https://{fake.host}/v2/team/private/manifests/2.0"
    assert PASSWORD not in result.output and PASSWORD not in (result.stderr or "")
    assert [s.auth for s in fake.seen if s.server == "token"][-1] == f"Basic {USER}"
