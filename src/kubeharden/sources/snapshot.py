"""Cluster snapshots: what a live scan reads, saved to a gzip'd JSON file and scanned later.

``kubeharden snapshot --cluster -o cluster.json.gz`` writes one; ``kubeharden scan
cluster.json.gz`` reads it through the path hook below and gives the same findings as the
live scan it came from: both turn a ``ClusterRead`` into resources and facts with the same
functions (kubeharden.sources.cluster.to_load_result).

Secrets are stored as metadata only: a live read never receives their data.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import zlib
from pathlib import Path as FsPath
from typing import IO, Any

import orjson

from kubeharden import safeio
from kubeharden.loader import InputProblem, LoadContext, LoadResult, register_path_hook
from kubeharden.sources.cluster import (
    ClusterRead,
    ListOutcome,
    ListTarget,
    facts_of,
    share_strings,
    to_load_result,
)

SNAPSHOT_KIND = "KubehardenSnapshot"
SNAPSHOT_API_VERSION = "kubeharden.io/v1alpha1"
SNAPSHOT_SUFFIXES = (".json.gz", ".snapshot.json")
# A snapshot compresses 10 to 40-fold; its decompressed size may exceed the file-size limit by
# this factor before reading stops (1 GiB with the default limit).
_EXPANSION_ALLOWED = 16
# A compression bomb expands about a thousandfold: beyond the first 16 MiB, more than 200 bytes
# out per byte in is refused, so memory stays near what the compressed input justifies.
_MAX_RATIO = 200
_RATIO_FLOOR = 16 * 1024 * 1024
_CHUNK = 1024 * 1024


def snapshot_document(read: ClusterRead, created: dt.datetime | None = None) -> dict[str, Any]:
    facts = facts_of(read)
    lists = []
    for outcome in read.lists:
        target = outcome.target
        items = []
        for item in outcome.items:
            if target.kind == "Secret":  # never stored, even if a read brought them
                item = {k: v for k, v in item.items() if k not in ("data", "stringData")}
            items.append(item)
        lists.append({
            "group": target.group, "version": target.version, "resource": target.resource,
            "kind": target.kind, "namespaced": target.namespaced, "namespace": target.namespace,
            "forbidden": outcome.forbidden, "failed": outcome.failed, "items": items,
        })
    return {
        "apiVersion": SNAPSHOT_API_VERSION,
        "kind": SNAPSHOT_KIND,
        "created": (created or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": read.source_name,
        "context": read.context,
        "serverVersion": read.server_version,
        "namespaces": list(read.namespaces),
        "nodes": facts["nodes"],  # for people reading the file; recomputed on load
        "forbiddenKinds": facts["forbidden_kinds"],
        "notes": read.notes,
        "lists": lists,
    }


def write_snapshot(read: ClusterRead, path: str | os.PathLike[str], created: dt.datetime | None = None,
                   force: bool = True) -> int:
    """Write the snapshot (gzip'd when the name ends in .gz); returns the number of objects.

    Atomic (a temporary file created with O_EXCL next to it, renamed when complete): a failed
    write leaves neither half a snapshot under the real name nor the temporary file, and a
    leftover file or link of any name is never followed. Owner-only: ConfigMaps, annotations and
    env values of a whole cluster are sensitive."""
    document = snapshot_document(read, created)
    data = orjson.dumps(document)
    with safeio.atomic_output(path, mode=0o600, force=force) as raw:
        if os.fspath(path).endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, filename="", mtime=0) as out:
                out.write(data)
        else:
            raw.write(data)
    return sum(len(entry["items"]) for entry in document["lists"])


def read_snapshot_document(path: FsPath, max_bytes: int) -> dict[str, Any]:
    raw = _read_limited(path, max_bytes)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputProblem(f"invalid JSON in snapshot: {exc.msg}", exc.lineno) from None
    if not isinstance(value, dict) or value.get("kind") != SNAPSHOT_KIND:
        raise InputProblem(
            f"not a kubeharden snapshot (kind is not {SNAPSHOT_KIND}); decompress it to scan plain manifests"
        )
    if value.get("apiVersion") != SNAPSHOT_API_VERSION:
        raise InputProblem(f"unsupported snapshot apiVersion {value.get('apiVersion')!r} "
                           f"(this kubeharden reads {SNAPSHOT_API_VERSION})")
    if not isinstance(value.get("lists"), list):
        raise InputProblem("snapshot has no 'lists'")
    return value


def _read_limited(path: FsPath, max_bytes: int) -> bytes | bytearray:
    try:
        with safeio.open_regular(path) as raw:
            if os.fstat(raw.fileno()).st_size > max_bytes:
                raise InputProblem(f"file is larger than {max_bytes} bytes (limit: max_file_bytes)")
            if not path.name.endswith(".gz"):
                return safeio.read_limited(raw, max_bytes, "file")
            return _gunzip_limited(raw, max_bytes * _EXPANSION_ALLOWED)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputProblem(f"not a valid gzip file: {exc}") from None
    except OSError as exc:  # UnsafePathError included (a FIFO, a device)
        raise InputProblem(f"cannot read: {exc.strerror or exc}") from None


def _gunzip_limited(raw: IO[bytes], limit: int) -> bytearray:
    """Stream-decompress with a running cap on the total and on the expansion ratio: a bomb is
    refused after a few megabytes, never held in memory."""
    out = bytearray()
    with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
        while chunk := stream.read(_CHUNK):
            out += chunk
            if len(out) > limit:
                raise InputProblem(f"snapshot decompresses to more than {limit} bytes (limit: {_EXPANSION_ALLOWED} "
                                   "x max_file_bytes): refused")
            if len(out) > _RATIO_FLOOR and len(out) > _MAX_RATIO * max(raw.tell(), 1):
                raise InputProblem(f"snapshot expands more than {_MAX_RATIO}-fold when decompressed (a "
                                   "compression bomb, not a snapshot kubeharden wrote): refused")
    return out


def cluster_read_of(document: dict[str, Any]) -> ClusterRead:
    lists: list[ListOutcome] = []
    for i, entry in enumerate(document["lists"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("items"), list):
            raise InputProblem(f"snapshot lists[{i}] is not a list entry with items")
        try:
            target = ListTarget(
                str(entry.get("group") or ""), str(entry["version"]), str(entry["resource"]),
                str(entry["kind"]), bool(entry.get("namespaced")), entry.get("namespace"),
            )
        except KeyError as exc:
            raise InputProblem(f"snapshot lists[{i}] lacks {exc.args[0]!r}") from None
        # A snapshot may have been edited: objects without a mapping as metadata are dropped.
        items = [item for item in entry["items"]
                 if isinstance(item, dict) and isinstance(item.get("metadata", {}), dict)]
        for item in items:
            share_strings(item)  # as a live read does: the same memory for the same cluster
        forbidden, failed = _text_or_none(entry.get("forbidden")), _text_or_none(entry.get("failed"))
        lists.append(ListOutcome(target, items, forbidden, failed))
    source = str(document.get("source") or f"cluster:{document.get('context') or 'snapshot'}")
    return ClusterRead(
        source_name=source,
        context=str(document.get("context") or ""),
        server_version=document.get("serverVersion"),
        lists=lists,
        notes=[str(n) for n in _list(document.get("notes"))],
        namespaces=tuple(str(n) for n in _list(document.get("namespaces"))),
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None


def load_snapshot(path: FsPath, ctx: LoadContext) -> LoadResult:
    document = read_snapshot_document(path, ctx.limits.max_file_bytes)
    read = cluster_read_of(document)
    result = to_load_result(read)
    result.stats.files = 1
    result.stats.bytes = path.stat().st_size
    notes = result.facts.setdefault("notes", [])
    notes.append(f"read from snapshot {path.name} of {read.source_name}, taken {document.get('created')}")
    return result


def snapshot_hook(path: FsPath, ctx: LoadContext) -> LoadResult | None:
    if not path.is_file() or not path.name.endswith(SNAPSHOT_SUFFIXES):
        return None
    return load_snapshot(path, ctx)


register_path_hook(snapshot_hook)
