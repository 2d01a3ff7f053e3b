"""A throwaway PostgreSQL server for the tests and the store benchmark: `initdb` and `pg_ctl` from
the Debian `postgresql` package (or $KUBEHARDEN_PG_BIN), run as an unprivileged user, listening
only on a unix socket in a fresh temporary directory (no TCP port at all), removed on exit."""

from __future__ import annotations

import glob
import grp
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

START_TIMEOUT = 60
SUPERUSER = "kh"


class Unavailable(Exception):
    """PostgreSQL cannot be started here (the message says why and what to install)."""


@dataclass(frozen=True)
class TempServer:
    socket_dir: str
    bindir: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}"


def server_bindir() -> str | None:
    override = os.environ.get("KUBEHARDEN_PG_BIN")
    if override:
        return override if os.path.isfile(os.path.join(override, "initdb")) else None
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _unprivileged(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root
    return argv if os.geteuid() != 0 else ["runuser", "-u", "nobody", "--", *argv]


@contextmanager
def temporary_postgres() -> Iterator[TempServer]:
    bindir = server_bindir()
    if bindir is None:
        raise Unavailable("PostgreSQL server binaries not found (Debian: apt-get install postgresql; "
                          "or set KUBEHARDEN_PG_BIN to the directory holding initdb and pg_ctl)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise Unavailable("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
    base = tempfile.mkdtemp(prefix="kh-pg-")  # short: a unix socket path is at most 107 bytes
    os.chmod(base, 0o755)
    data, sock = os.path.join(base, "data"), os.path.join(base, "sock")
    for directory in (data, sock):
        os.mkdir(directory, 0o700)
        if os.geteuid() == 0:
            shutil.chown(directory, "nobody", _nobody_group())
    try:
        try:
            subprocess.run(_unprivileged([f"{bindir}/initdb", "-D", data, "--auth=trust", "-U", SUPERUSER,
                                          "-E", "UTF8", "--no-sync"]), check=True, capture_output=True, timeout=120)
            options = f"-k {sock} -c listen_addresses='' -c fsync=off -c max_connections=50"
            subprocess.run(_unprivileged([f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(sock, "server.log"),
                                          "-o", options, "-w", "-t", str(START_TIMEOUT), "start"]),
                           check=True, capture_output=True, timeout=START_TIMEOUT + 10)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output = (getattr(exc, "stderr", None) or b"").decode(errors="replace")[-2000:]
            raise RuntimeError(f"could not start PostgreSQL: {exc}: {output}") from None
        try:
            yield TempServer(sock, bindir)
        finally:
            subprocess.run(_unprivileged([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]),
                           capture_output=True, timeout=60)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _nobody_group() -> str | None:
    for name in ("nogroup", "nobody"):
        try:
            grp.getgrnam(name)
        except KeyError:
            continue
        return name
    return None
