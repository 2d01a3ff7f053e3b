"""Store fixtures: a real PostgreSQL server (Debian `postgresql`), started once per session as an
unprivileged cluster listening only on a unix socket in a temporary directory
(kubeharden.store.tempserver), and a fresh database (or SQLite file) per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeharden.store.tempserver import TempServer, Unavailable, temporary_postgres

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TempServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg 3 is not installed (pip install 'psycopg[binary]')")
    try:
        with temporary_postgres() as server:
            yield server
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def postgres_database(postgres_server: TempServer) -> str:
    import psycopg

    name = f"kh_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests against both backends."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'results.db'}"
    return str(request.getfixturevalue("postgres_database"))
