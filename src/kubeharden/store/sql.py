"""What both SQL backends share: the schema, its migrations, and the queries.

Statements are written with `?` placeholders; a backend with another paramstyle rewrites them
(no statement holds a literal `?`). Values always travel as parameters, never in the SQL text.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from kubeharden.store import (
    SEVERITY_ORDER,
    ControlRow,
    FindingRow,
    RunInfo,
    RunRecord,
    Store,
    label_key,
    new_and_fixed,
)

SCHEMA_VERSION = 1
FINDING_COLUMNS = ("run_id", "fingerprint", "control_id", "severity", "section", "kind", "namespace", "name",
                   "path", "file", "line", "message", "excepted")
_RUN_COLUMNS = ("id", "labels", "started_at", "tool_version", "profile", "kubernetes_version", "resources",
                "duration", "score", "sections", "findings", "excepted", "errors", "critical", "high", "medium",
                "low", "new_findings", "fixed_findings", "previous_run")


def migrations(id_column: str) -> list[list[str]]:
    """The schema, one list of statements per version (index 0 is version 1). Append, never edit."""
    return [[
        f"""CREATE TABLE kh_runs (
            id {id_column},
            label_key TEXT NOT NULL,
            labels TEXT NOT NULL,
            started_at TEXT NOT NULL,
            tool_version TEXT NOT NULL,
            profile TEXT NOT NULL,
            kubernetes_version TEXT NOT NULL,
            resources INTEGER NOT NULL,
            duration DOUBLE PRECISION NOT NULL,
            score DOUBLE PRECISION,
            sections TEXT NOT NULL,
            findings INTEGER NOT NULL,
            excepted INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            critical INTEGER NOT NULL,
            high INTEGER NOT NULL,
            medium INTEGER NOT NULL,
            low INTEGER NOT NULL,
            new_findings INTEGER,
            fixed_findings INTEGER,
            previous_run BIGINT)""",
        "CREATE INDEX kh_runs_series ON kh_runs (label_key, id)",
        """CREATE TABLE kh_run_labels (
            run_id BIGINT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (run_id, key))""",
        "CREATE INDEX kh_run_labels_lookup ON kh_run_labels (key, value, run_id)",
        """CREATE TABLE kh_findings (
            run_id BIGINT NOT NULL,
            fingerprint TEXT NOT NULL,
            control_id TEXT NOT NULL,
            severity TEXT NOT NULL,
            section TEXT NOT NULL,
            kind TEXT,
            namespace TEXT,
            name TEXT,
            path TEXT NOT NULL,
            file TEXT,
            line INTEGER,
            message TEXT NOT NULL,
            excepted INTEGER NOT NULL)""",
        "CREATE INDEX kh_findings_run ON kh_findings (run_id)",
        """CREATE TABLE kh_controls (
            run_id BIGINT NOT NULL,
            control_id TEXT NOT NULL,
            status TEXT NOT NULL,
            findings INTEGER NOT NULL,
            reason TEXT,
            PRIMARY KEY (run_id, control_id))""",
    ]]


class SQLStore(Store):
    placeholder = "?"
    id_column = "INTEGER PRIMARY KEY"

    def __init__(self, url: str) -> None:
        self.url = url
        self._connect()
        self._migrate()

    # -- what a backend provides -----------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    @contextmanager
    def _transaction(self, lock: str | None = None) -> Iterator[Any]:
        """A write transaction (yields a cursor), exclusive for `lock` among concurrent writers."""
        yield None

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read statement outside a write transaction; all rows."""

    @abstractmethod
    def _insert_run(self, cur: Any, columns: Sequence[str], values: Sequence[Any]) -> int: ...

    @abstractmethod
    def _insert_findings(self, cur: Any, rows: list[tuple[Any, ...]]) -> None: ...

    # -- shared ----------------------------------------------------------------------------------

    @property
    def display(self) -> str:
        """The store as messages name it (never with a password)."""
        from kubeharden.store import redact_url, sqlite_path

        return sqlite_path(self.url) if self.placeholder == "?" else redact_url(self.url)

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    @abstractmethod
    def _table_names(self, cur: Any) -> set[str]:
        """The tables of the database (schema) the store lives in."""

    # True where a database with tables of its own is not ours to add tables to (a SQLite file).
    foreign_tables_refused = False

    def _migrate(self) -> None:
        from kubeharden.store import StoreError

        steps = migrations(self.id_column)
        with self._transaction(lock="schema") as cur:
            tables = self._table_names(cur)
            if "kh_schema" not in tables:
                ours = sorted(t for t in tables if t.startswith("kh_"))
                if ours or (tables and self.foreign_tables_refused):
                    raise StoreError(f"{self.display}: not a kubeharden results store (it has tables "
                                     f"{', '.join(sorted(ours or tables)[:5])} but no kh_schema); nothing changed")
            cur.execute("CREATE TABLE IF NOT EXISTS kh_schema (version INTEGER NOT NULL)")
            cur.execute("SELECT version FROM kh_schema")
            rows = cur.fetchall()
            current = rows[0][0] if rows else 0
            if len(rows) > 1 or not isinstance(current, int) or isinstance(current, bool) or current < 0:
                raise StoreError(f"{self.display}: the store's schema version is unreadable (kh_schema holds "
                                 f"{len(rows)} row(s)); nothing changed")
            if current > len(steps):
                raise StoreError(f"the store's schema is version {current}, newer than this kubeharden knows "
                                 f"({len(steps)}): upgrade kubeharden")
            for version in range(current + 1, len(steps) + 1):
                for statement in steps[version - 1]:
                    cur.execute(statement)
            if current == 0:
                cur.execute(self.sql("INSERT INTO kh_schema (version) VALUES (?)"), (len(steps),))
            elif current < len(steps):
                cur.execute(self.sql("UPDATE kh_schema SET version = ?"), (len(steps),))

    def record(self, run: RunRecord, keep_runs: int | None = None) -> RunInfo:
        key = label_key(run.labels)
        active = [f.fingerprint for f in run.findings if not f.excepted]
        with self._transaction(lock=f"series:{key}") as cur:
            cur.execute(self.sql("SELECT MAX(id) FROM kh_runs WHERE label_key = ?"), (key,))
            row = cur.fetchone()
            previous = row[0] if row and row[0] is not None else None
            new = fixed = None
            if previous is not None:
                cur.execute(self.sql("SELECT fingerprint FROM kh_findings WHERE run_id = ? AND excepted = 0"),
                            (previous,))
                new, fixed = new_and_fixed((r[0] for r in cur.fetchall()), active)
            counts = [run.by_severity.get(s, 0) for s in SEVERITY_ORDER]
            values = [key, json.dumps(run.labels, sort_keys=True), run.started_at, run.tool_version, run.profile,
                      run.kubernetes_version, run.resources, run.duration, run.score,
                      json.dumps(run.sections, sort_keys=True), len(active), run.excepted, run.errors, *counts,
                      new, fixed, previous]
            columns = ["label_key", *_RUN_COLUMNS[1:]]
            run_id = self._insert_run(cur, columns, values)
            if run.labels:
                cur.executemany(self.sql("INSERT INTO kh_run_labels (run_id, key, value) VALUES (?, ?, ?)"),
                                [(run_id, k, v) for k, v in run.labels.items()])
            self._insert_findings(cur, [
                (run_id, f.fingerprint, f.control_id, f.severity, f.section, f.kind, f.namespace, f.name, f.path,
                 f.file, f.line, f.message, int(f.excepted))
                for f in run.findings])
            if run.controls:
                cur.executemany(self.sql(
                    "INSERT INTO kh_controls (run_id, control_id, status, findings, reason) VALUES (?, ?, ?, ?, ?)"),
                    [(run_id, c.control_id, c.status, c.findings, c.reason) for c in run.controls])
            if keep_runs is not None:
                self._expire(cur, key, keep_runs)
        return RunInfo(run_id, dict(run.labels), run.started_at, run.tool_version, run.profile,
                       run.kubernetes_version, run.resources, run.duration, run.score, run.sections,
                       dict(run.by_severity), len(active), run.excepted, run.errors, new, fixed, previous)

    def _expire(self, cur: Any, key: str, keep_runs: int) -> None:
        cur.execute(self.sql("SELECT id FROM kh_runs WHERE label_key = ? ORDER BY id DESC"), (key,))
        old = [(r[0],) for r in cur.fetchall()[keep_runs:]]
        if not old:
            return
        for table, column in (("kh_findings", "run_id"), ("kh_controls", "run_id"), ("kh_run_labels", "run_id"),
                              ("kh_runs", "id")):
            cur.executemany(self.sql(f"DELETE FROM {table} WHERE {column} = ?"), old)

    def runs(self, labels: Mapping[str, str] | None = None, limit: int | None = None) -> list[RunInfo]:
        where: list[str] = []
        params: list[Any] = []
        for k, v in (labels or {}).items():
            where.append("id IN (SELECT run_id FROM kh_run_labels WHERE key = ? AND value = ?)")
            params += [k, v]
        sql = f"SELECT {', '.join(_RUN_COLUMNS)}, label_key FROM kh_runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._execute(self.sql(sql + " ORDER BY id"), params)
        out = []
        for row in rows:
            try:
                out.append(_run_info(row))
            except (ValueError, TypeError, AttributeError):  # a row not written by kubeharden
                from kubeharden.store import StoreError

                raise StoreError(f"{self.display}: run {row[0]!r} cannot be read (a corrupt row)") from None
        if limit is None:
            return out
        # the newest `limit` of each series, still oldest first
        by_series: dict[str, int] = {}
        kept: list[RunInfo] = []
        for row, info in zip(reversed(rows), reversed(out), strict=True):
            series = row[-1]
            by_series[series] = by_series.get(series, 0) + 1
            if by_series[series] <= limit:
                kept.append(info)
        return kept[::-1]

    def findings(self, run_id: int) -> list[FindingRow]:
        rows = self._execute(self.sql(f"SELECT {', '.join(FINDING_COLUMNS[1:])} FROM kh_findings WHERE run_id = ?"),
                             (run_id,))
        return [FindingRow(fingerprint=r[0], control_id=r[1], severity=r[2], section=r[3], kind=r[4], namespace=r[5],
                           name=r[6], path=r[7], file=r[8], line=r[9], message=r[10], excepted=bool(r[11]))
                for r in rows]

    def controls(self, run_id: int) -> list[ControlRow]:
        rows = self._execute(self.sql(
            "SELECT control_id, status, findings, reason FROM kh_controls WHERE run_id = ? ORDER BY control_id"),
            (run_id,))
        return [ControlRow(*row) for row in rows]


def _run_info(row: Sequence[Any]) -> RunInfo:
    (run_id, labels, started_at, tool_version, profile, kubernetes_version, resources, duration, score, sections,
     findings, excepted, errors, critical, high, medium, low, new, fixed, previous) = row[:len(_RUN_COLUMNS)]
    labels, sections = json.loads(labels), json.loads(sections)
    if (not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values())
            or not isinstance(sections, dict) or not isinstance(started_at, str)):
        raise ValueError("not a run kubeharden wrote")
    return RunInfo(
        id=int(run_id), labels=labels, started_at=started_at, tool_version=tool_version,
        profile=profile, kubernetes_version=kubernetes_version, resources=resources, duration=duration,
        score=score, sections=sections,
        by_severity=dict(zip(SEVERITY_ORDER, (critical, high, medium, low), strict=True)),
        findings=findings, excepted=excepted, errors=errors, new=new, fixed=fixed, previous=previous,
    )
