"""Helpers shared by the tests of live clusters, snapshots and rendering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from fake_apiserver import Behaviour, FakeApiServer, load_fixture_objects

from kubeharden.cli import cli

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
CLUSTER_FIXTURE = FIXTURES / "cluster.yaml"
SECRET_VALUE_B64 = "c3VwZXItc2VjcmV0LXZhbHVl"  # base64 of the fixture Secret's value
SECRET_VALUE = "super-secret-value"


def fixture_objects() -> list[dict[str, Any]]:
    return load_fixture_objects([CLUSTER_FIXTURE])


FIXTURE_COUNT = len(fixture_objects())  # counted by PyYAML, independently of kubeharden's loader


@contextmanager
def fake_cluster(tmp_path: Path, objects: list[dict[str, Any]] | None = None,
                 behaviour: Behaviour | None = None) -> Iterator[tuple[FakeApiServer, Path]]:
    with FakeApiServer(objects if objects is not None else fixture_objects(), behaviour) as server:
        yield server, server.kubeconfig(tmp_path / "kubeconfig.yaml")


def run(*args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def scan_json(*args: str, input: str | bytes | None = None) -> tuple[int, dict[str, Any], str]:
    result = run("scan", *args, "-f", "json", "--fail-on", "none", input=input)
    return result.exit_code, json.loads(result.stdout), result.stderr


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in report["controls"]}
