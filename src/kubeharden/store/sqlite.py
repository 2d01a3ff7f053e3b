"""SQLite backend (stdlib sqlite3): one file, WAL journal, one writer at a time.

Writers from several processes queue on the database lock (BEGIN IMMEDIATE, with a busy timeout)
instead of failing; readers never block them. Put the file on a local disk or a ReadWriteOnce
volume: SQLite's locking is not reliable on network file systems (NFS, SMB).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kubeharden import safeio
from kubeharden.store import StoreError, sqlite_path
from kubeharden.store.sql import FINDING_COLUMNS, SQLStore

BUSY_TIMEOUT = 120.0  # seconds a writer waits for another's transaction (a 100,000-finding run takes ~1 s)


class SQLiteStore(SQLStore):
    placeholder = "?"
    id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"  # ids never reused after retention deletes

    def _connect(self) -> None:
        path = sqlite_path(self.url)
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise StoreError(f"{path}: the directory {directory} does not exist")
        try:
            st = os.stat(path)  # through a symlink: what SQLite would open
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise StoreError(f"{path}: cannot open the store: {exc.strerror or exc}") from None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise StoreError(f"{path}: the store must be a regular file, not {safeio.kind_of(st.st_mode)}")
        if safeio.is_input(path):
            raise StoreError(f"{path}: refusing to use an input file as the store")
        try:
            # autocommit mode: transactions are ours (BEGIN IMMEDIATE), not the module's implicit ones
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
            self._db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at checkpoints, never corrupt
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the store: {exc}") from None

    @contextmanager
    def _transaction(self, lock: str | None = None) -> Iterator[Any]:
        cur = self._db.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")  # the write lock now: two writers never both read "previous"
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{sqlite_path(self.url)}: cannot read the store: {exc}") from None

    def _table_names(self, cur: Any) -> set[str]:
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in cur.fetchall()}

    # A SQLite file is a database of its own: one with other tables is someone else's.
    foreign_tables_refused = True

    def _insert_run(self, cur: Any, columns: Sequence[str], values: Sequence[Any]) -> int:
        marks = ", ".join("?" for _ in columns)
        cur.execute(f"INSERT INTO kh_runs ({', '.join(columns)}) VALUES ({marks})", tuple(values))
        return int(cur.lastrowid)

    def _insert_findings(self, cur: Any, rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" for _ in FINDING_COLUMNS)
        cur.executemany(f"INSERT INTO kh_findings ({', '.join(FINDING_COLUMNS)}) VALUES ({marks})", rows)

    def record(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().record(*args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(f"{sqlite_path(self.url)}: cannot write the run: {exc}") from None

    def _migrate(self) -> None:
        try:
            super()._migrate()
            # WAL is written into the file's header: only once the file is known to be a store
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            raise StoreError(f"{sqlite_path(self.url)}: cannot create the schema: {exc}") from None

    def close(self) -> None:
        self._db.close()
