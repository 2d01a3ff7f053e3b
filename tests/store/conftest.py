"""Store fixtures: a real PostgreSQL server (Debian `postgresql`), started once per session as an
unprivileged cluster listening only on a unix socket in a temporary directory, and a fresh
database (or SQLite file) per test."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_START_TIMEOUT = 60
_counter = itertools.count()


def _pg_bin() -> str | None:
    override = os.environ.get("KUBEHARDEN_PG_BIN")
    if override:
        return override if os.path.isfile(os.path.join(override, "initdb")) else None
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _as_unprivileged(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run as `nobody` then."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "nobody", "--", *argv]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dict[str, str]]:
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (Debian: apt-get install postgresql; "
                    "or set KUBEHARDEN_PG_BIN to the directory holding initdb and pg_ctl)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg 3 is not installed (pip install 'psycopg[binary]')")
    base = tempfile.mkdtemp(prefix="kh-pg-")  # short: a unix socket path is at most 107 bytes
    os.chmod(base, 0o755)
    data, sock = os.path.join(base, "data"), os.path.join(base, "sock")
    for directory in (data, sock):
        os.mkdir(directory, 0o700)
        if os.geteuid() == 0:
            shutil.chown(directory, "nobody", "nogroup" if _group_exists("nogroup") else None)
    log = os.path.join(sock, "server.log")
    try:
        subprocess.run(_as_unprivileged([f"{bindir}/initdb", "-D", data, "--auth=trust", "-U", "kh", "-E", "UTF8",
                                         "--no-sync"]), check=True, capture_output=True, timeout=120)
        options = f"-k {sock} -c listen_addresses='' -c fsync=off -c max_connections=50"
        subprocess.run(_as_unprivileged([f"{bindir}/pg_ctl", "-D", data, "-l", log, "-o", options, "-w",
                                         "-t", str(PG_START_TIMEOUT), "start"]),
                       check=True, capture_output=True, timeout=PG_START_TIMEOUT + 10)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc}: {output.decode(errors='replace')[-2000:]}")
    try:
        yield {"socket": sock, "user": "kh", "bindir": bindir}
    finally:
        subprocess.run(_as_unprivileged([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def postgres_url(server: dict[str, str], database: str) -> str:
    return f"postgresql://{server['user']}@/{database}?host={server['socket']}"


@pytest.fixture
def postgres_database(postgres_server: dict[str, str]) -> str:
    import psycopg

    name = f"kh_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(postgres_url(postgres_server, "postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return postgres_url(postgres_server, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests against both backends."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'results.db'}"
    return str(request.getfixturevalue("postgres_database"))
