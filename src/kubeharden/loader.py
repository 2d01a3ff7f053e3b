"""Loaders: turn files, directories and stdin into Resources. They read; they never judge."""

from __future__ import annotations

import codecs
import difflib
import gc
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path as FsPath
from typing import Any

from kubeharden.model import InputError, Path, Resource, Source
from kubeharden.safeio import UnsafePathError, read_limited, read_regular
from kubeharden.yamlsafe import Limits, YamlInputError, compose_documents, iter_yaml_documents, locate

YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)
STDIN = "-"
STDIN_NAME = "<stdin>"

# Hooks for inputs that are not plain manifests: a directory that is a Helm chart or a
# Kustomize overlay is rendered; a snapshot file is opened. Each hook claims a path and
# returns (data, Source) pairs, or a LoadResult when it also brings facts (use explode() to
# fill it), or None when the path is not its kind; it raises InputProblem when the input
# cannot be read. Registered by kubeharden.sources.
PathHook = Callable[[FsPath, "LoadContext"], "Iterable[tuple[Any, Source]] | LoadResult | None"]
_PATH_HOOKS: list[PathHook] = []
# File names other than *.yaml/*.yml/*.json that a hook reads when found inside a directory (Dockerfile).
_HOOK_FILE_NAMES: list[Callable[[str], bool]] = []


def register_path_hook(hook: PathHook, file_names: Callable[[str], bool] | None = None) -> None:
    if hook not in _PATH_HOOKS:
        _PATH_HOOKS.append(hook)
    if file_names is not None and file_names not in _HOOK_FILE_NAMES:
        _HOOK_FILE_NAMES.append(file_names)


class InputProblem(Exception):
    """Raised by a hook when its input cannot be read; becomes an InputError."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class LoadStats:
    files: int = 0
    documents: int = 0
    resources: int = 0
    skipped_non_kubernetes: int = 0
    skipped_empty: int = 0
    bytes: int = 0


@dataclass
class LoadContext:
    limits: Limits = field(default_factory=Limits)
    options: dict[str, Any] = field(default_factory=dict)  # renderer options (helm values, --set ...)
    # duplicate keys: warnings by default (the API server keeps the last value, and kubectl's strict
    # decoding is opt-in), errors when strict (--strict)
    strict: bool = False
    # directory walks leave out directories whose name or path below the walked directory matches one
    # of these globs (--skip-dirs)
    skip_dirs: tuple[str, ...] = ()
    # called with (file name, bytes) after each file is read: the CLI's progress bar (loaders never print)
    on_file: Callable[[str, int], None] | None = field(default=None, compare=False)


@dataclass
class LoadResult:
    resources: list[Resource] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    warnings: list[InputError] = field(default_factory=list)
    stats: LoadStats = field(default_factory=LoadStats)
    facts: dict[str, Any] = field(default_factory=dict)  # evidence that is not a resource (snapshots)

    def extend(self, other: LoadResult) -> None:
        self.resources.extend(other.resources)
        self.facts.update(other.facts)
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)
        for name in vars(self.stats):
            setattr(self.stats, name, getattr(self.stats, name) + getattr(other.stats, name))


def display_path(path: str | os.PathLike[str]) -> str:
    """Relative to the working directory when below it, so reports are portable."""
    text = os.fspath(path)
    if text == STDIN_NAME:
        return text
    try:
        rel = os.path.relpath(text)
    except ValueError:
        return text
    return text if rel.startswith("..") else rel


# ---------------------------------------------------------------------------------------------
# Retention: what is kept of each object. Bulky fields that no control reads are dropped so a
# 100,000-object input fits in memory; secret values are never kept at all.

REDACTED = "<redacted>"
# ConfigMap values above this size (dashboards, bundled scripts) are replaced by a note of their
# size: no check reads them, and at scale they were a third of the retained memory.
MAX_KEPT_CONFIG_VALUE = 32 * 1024
_DROP_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def _slim(obj: dict[str, Any]) -> None:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        ann = meta.get("annotations")
        if isinstance(ann, dict):
            for key in _DROP_ANNOTATIONS:
                ann.pop(key, None)
    kind = obj.get("kind")
    if kind == "Secret":
        for key in ("data", "stringData"):
            values = obj.get(key)
            if isinstance(values, dict):
                obj[key] = dict.fromkeys(values, REDACTED)
    elif kind == "ConfigMap":
        values = obj.get("data")
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, str) and len(value) > MAX_KEPT_CONFIG_VALUE:
                    values[key] = f"<{len(value)} characters not kept>"
        obj.pop("binaryData", None)
    elif kind == "CustomResourceDefinition":
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.pop("validation", None)
            versions = spec.get("versions")
            if isinstance(versions, list):
                for version in versions:
                    if isinstance(version, dict):
                        version.pop("schema", None)


# ---------------------------------------------------------------------------------------------


def _is_kubernetes(data: dict[str, Any]) -> bool:
    return bool(data.get("apiVersion")) and bool(data.get("kind"))


def _list_items(data: dict[str, Any]) -> list[Any] | None:
    kind = data.get("kind")
    items = data.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        return items
    return None


def explode(data: Any, source: Source, result: LoadResult) -> None:
    """Add one document's object(s): a single object, or the items of a List / *List."""
    result.stats.documents += 1
    if data is None:
        result.stats.skipped_empty += 1
        return
    if not isinstance(data, dict):
        result.errors.append(
            InputError(source.file, f"document is a {type(data).__name__}, not a mapping", source.line)
        )
        return
    items = _list_items(data)
    if items is not None:
        item_kind = str(data["kind"])[: -len("List")] or None
        api_version = data.get("apiVersion")
        for i, item in enumerate(items):
            item_source = Source(
                source.file, source.line, source.end_line, source.doc_index,
                (*source.base_path, "items", i), source.origin, source.text,
            )
            if not isinstance(item, dict):
                result.errors.append(InputError(source.file, f"items[{i}] is not a mapping", source.line))
                continue
            if item_kind and item_kind != "" and "kind" not in item:
                item["kind"] = item_kind  # typed lists (PodList) omit per-item kind
            if api_version and "apiVersion" not in item:
                item["apiVersion"] = api_version
            _add(item, item_source, result)
        return
    _add(data, source, result)


_IDENTITY_KEYS = ("apiVersion", "kind")


def _why_not_kubernetes(data: dict[str, Any]) -> str:
    """Why a mapping is not read as an object, with the near-miss keys that were probably meant."""
    missing = [key for key in _IDENTITY_KEYS if not data.get(key)]
    reason = f"document skipped: no {' and no '.join(missing)}, so not a Kubernetes object"
    hints = []
    present = [key for key in data if isinstance(key, str)]
    for wanted in missing:
        for key in present:
            if key == wanted:
                hints.append(f"'{key}' is empty")
            elif key.lower() == wanted.lower():
                hints.append(f"found '{key}': keys are case-sensitive")
            elif difflib.SequenceMatcher(None, key.lower(), wanted.lower()).ratio() >= 0.8:
                hints.append(f"found '{key}': did you mean '{wanted}'?")
    return reason + (f" ({'; '.join(hints)})" if hints else "")


def _add(data: dict[str, Any], source: Source, result: LoadResult) -> None:
    if not _is_kubernetes(data):
        result.stats.skipped_non_kubernetes += 1
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in source.base_path).lstrip(".")
        message = _why_not_kubernetes(data)
        result.warnings.append(InputError(source.file, f"{where}: {message}" if where else message, source.line))
        return
    _slim(data)
    result.resources.append(Resource.from_obj(data, source))
    result.stats.resources += 1


_HELM_SOURCE_RE = re.compile(rb"^# Source: (\S.*)$", re.M)


def _template_origins(data: bytes) -> list[tuple[int, str]]:
    """(1-based line, template) of every `# Source:` comment that `helm template` writes."""
    if b"# Source: " not in data:
        return []
    out = []
    for match in _HELM_SOURCE_RE.finditer(data):
        line = data.count(b"\n", 0, match.start()) + 1
        out.append((line, match.group(1).decode("utf-8", "replace").strip()))
    return out


def _origin_for(origins: list[tuple[int, str]], line: int) -> str | None:
    found = None
    for origin_line, template in origins:
        if origin_line > line:
            break
        found = template
    return found


def _looks_binary(data: bytes) -> bool:
    return b"\x00" in data[:8192]


# UTF-32 before UTF-16: the UTF-32 LE mark starts with the UTF-16 LE one.
_UNICODE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)


def decode_input(data: bytes) -> tuple[bytes, str]:
    """UTF-8 bytes (no byte order mark) and text of a file: UTF-8, or UTF-16/UTF-32 with a byte
    order mark (PowerShell writes UTF-16; kubectl reads it). InputProblem when it is not text."""
    for bom, codec, label in _UNICODE_BOMS:
        if data.startswith(bom):
            body = data[len(bom):]
            try:
                text = body.decode(codec)
            except UnicodeDecodeError as exc:
                line = body[: exc.start].decode(codec, "replace").count("\n") + 1
                raise InputProblem(f"not valid {label} text after its byte order mark: {exc.reason}", line) from None
            if "\x00" in text[:8192]:
                raise InputProblem(f"binary file ({label} text with NUL characters), not YAML or JSON")
            return text.encode("utf-8"), text
    if _looks_binary(data):
        raise InputProblem("binary file (contains NUL bytes), not YAML or JSON")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputProblem(f"not valid UTF-8 text: {exc.reason}", line) from None


def load_bytes(data: bytes, name: str, ctx: LoadContext, keep_text: bool = False) -> LoadResult:
    """Load one file's (or stdin's) content."""
    result = LoadResult()
    result.stats.files = 1
    result.stats.bytes = len(data)
    if len(data) > ctx.limits.max_file_bytes:
        result.errors.append(
            InputError(name, f"file is larger than {ctx.limits.max_file_bytes} bytes (limit: max_file_bytes)")
        )
        return result
    try:
        data, text = decode_input(data)
    except InputProblem as problem:
        result.errors.append(InputError(name, problem.message, problem.line))
        return result
    if not text.strip():
        result.errors.append(InputError(name, "file is empty"))
        return result
    kept = text if keep_text else None
    if name.endswith(JSON_SUFFIXES) or (name == STDIN_NAME and text.lstrip()[:1] in "{["):
        try:
            value = _parse_json(text)
        except _DuplicateJsonKey:
            pass  # JSON is YAML: the YAML reader below names each duplicate key and its line
        except (json.JSONDecodeError, RecursionError) as exc:
            if name.endswith(JSON_SUFFIXES):
                if isinstance(exc, RecursionError):
                    result.errors.append(InputError(name, "JSON nested too deeply"))
                else:
                    result.errors.append(InputError(name, f"invalid JSON: {exc.msg}", exc.lineno))
                return result
            # stdin starting with '[' or '{' may still be YAML flow style: fall through
        else:
            explode(value, Source(name, None, None, 0, (), None, kept), result)
            return result
    yaml_errors: list[YamlInputError] = []
    origins = _template_origins(data)
    for doc in iter_yaml_documents(data, ctx.limits, yaml_errors):
        for warning in doc.warnings:  # duplicate keys
            if ctx.strict:
                result.errors.append(InputError(name, f"{warning.message} (refused: --strict)", warning.line))
            else:
                result.warnings.append(InputError(name, f"{warning.message} (the last value is used, as the API "
                                                  "server does; --strict refuses it)", warning.line))
        origin = _origin_for(origins, doc.start_line) if origins else None
        explode(doc.data, Source(name, doc.start_line, doc.end_line, doc.index, (), origin, kept), result)
    result.errors.extend(InputError(name, e.message, e.line) for e in yaml_errors)
    return result


def _run_hooks(path: FsPath, ctx: LoadContext, result: LoadResult) -> bool:
    for hook in _PATH_HOOKS:
        try:
            claimed = hook(path, ctx)
            if claimed is None:
                continue
            if isinstance(claimed, LoadResult):  # a hook that also brings facts (snapshots)
                result.extend(claimed)
            else:
                for data, source in claimed:
                    explode(data, source, result)
        except InputProblem as problem:
            result.errors.append(InputError(display_path(path), problem.message, problem.line))
        return True
    return False


class _DuplicateJsonKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateJsonKey
    return obj


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def _parse_json(text: str) -> Any:
    """Strict JSON: duplicate keys are refused (orjson would keep the last silently), as are NaN/Infinity.
    The standard library with a pairs hook is as fast as orjson on manifests and lists."""
    return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)


def load_path(path: str, ctx: LoadContext) -> LoadResult:
    """One command-line input: stdin, a file, or a directory (read recursively). An input that
    yields no Kubernetes object at all, and no error to explain why, is an error itself:
    scanning nothing must never look like a clean pass."""
    result = LoadResult()
    if path == STDIN:
        try:
            data = read_limited(sys.stdin.buffer, ctx.limits.max_file_bytes, "standard input")
        except OSError as exc:  # UnsafePathError too: more than the limit
            result.errors.append(InputError(STDIN_NAME, _os_reason(exc)))
            return result
        result.extend(load_bytes(data, STDIN_NAME, ctx, keep_text=True))
        return _require_objects(result, STDIN_NAME)
    fs_path = FsPath(path)
    if not os.path.lexists(fs_path):
        result.errors.append(InputError(path, "no such file or directory"))
        return result
    if _run_hooks(fs_path, ctx, result):
        return _require_objects(result, display_path(fs_path))
    if fs_path.is_dir():
        _load_directory(fs_path, ctx, result)
    else:
        result.extend(_load_file(fs_path, ctx))
    return _require_objects(result, display_path(fs_path))


def _require_objects(result: LoadResult, name: str) -> LoadResult:
    if not result.resources and not result.errors and not result.facts:
        skipped = result.stats.skipped_non_kubernetes + result.stats.skipped_empty
        detail = f" ({skipped} document{'s' if skipped != 1 else ''} skipped, see the warnings)" if skipped else ""
        result.errors.append(InputError(name, f"no Kubernetes objects found in {name}{detail}"))
    return result


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, UnsafePathError):
        return exc.message
    return f"cannot read: {exc.strerror or exc}"


def _load_directory(top: FsPath, ctx: LoadContext, result: LoadResult) -> None:
    """Every YAML/JSON file below top; hidden directories are left out, charts and overlays are
    rendered whole. Symlinked directories are followed after the real ones when they lead to a
    directory inside top that was not read yet (each directory is read once, so link cycles
    end); one that leads outside top is not read and is reported: a checked-out repository
    cannot make the scan read the rest of the machine. Unreadable directories are errors."""
    top_real = os.path.realpath(top)
    visited: set[tuple[int, int]] = set()
    links: list[FsPath] = []
    starts = [top]
    candidates = 0

    def unreadable(exc: OSError) -> None:
        where = display_path(exc.filename) if exc.filename else display_path(top)
        result.errors.append(InputError(where, f"directory not read: {exc.strerror or exc}"))

    while starts:
        for root, dirs, files in os.walk(starts.pop(0), onerror=unreadable):
            root_path = FsPath(root)
            try:
                st = os.stat(root)
            except OSError as exc:
                unreadable(exc)
                dirs[:] = []
                continue
            if (st.st_dev, st.st_ino) in visited:
                dirs[:] = []
                continue
            visited.add((st.st_dev, st.st_ino))
            if root_path != top and _run_hooks(root_path, ctx, result):
                dirs[:] = []  # a chart or overlay is rendered as a whole, not read file by file
                candidates += 1
                continue
            kept = []
            for name in sorted(dirs):
                if name.startswith(".") or _skipped_dir(top, root_path / name, ctx.skip_dirs):
                    continue
                if os.path.islink(root_path / name):
                    links.append(root_path / name)
                else:
                    kept.append(name)
            dirs[:] = kept
            for fname in sorted(files):
                if any(claims(fname) for claims in _HOOK_FILE_NAMES) and _run_hooks(root_path / fname, ctx, result):
                    candidates += 1
                elif fname.endswith(YAML_SUFFIXES + JSON_SUFFIXES):
                    candidates += 1
                    result.extend(_load_file(root_path / fname, ctx))
        while links and not starts:
            link = links.pop(0)
            target = os.path.realpath(link)
            if os.path.commonpath([top_real, target]) != top_real:
                result.warnings.append(InputError(
                    display_path(link), f"symlinked directory not read: it leads outside {display_path(top)} "
                    "(give its target as an input of its own to scan it)"))
                continue
            try:
                st = os.stat(link)
            except OSError as exc:
                unreadable(exc)
                continue
            if (st.st_dev, st.st_ino) not in visited:
                starts.append(link)
    if not candidates and not result.errors:
        result.errors.append(InputError(display_path(top), "no YAML or JSON files (.yaml, .yml, .json) in it"))


def _skipped_dir(top: FsPath, path: FsPath, globs: tuple[str, ...]) -> bool:
    """--skip-dirs: a glob matches a directory's name (``vendor``, ``test*``) or its path below the
    walked directory (``charts/*/tests``)."""
    if not globs:
        return False
    relative = path.relative_to(top).as_posix()
    return any(fnmatchcase(path.name, glob) or fnmatchcase(relative, glob.strip("/")) for glob in globs)


def _load_file(path: FsPath, ctx: LoadContext) -> LoadResult:
    """A file given or found: only a regular file is read (a FIFO, socket or device, or a link to
    one, is an error: it could block or never end), and never more than the size limit."""
    name = display_path(path)
    try:
        data = read_regular(path, ctx.limits.max_file_bytes)
    except OSError as exc:
        result = LoadResult()
        result.stats.files = 1
        result.errors.append(InputError(name, _os_reason(exc)))
        return result
    if ctx.on_file is not None:
        ctx.on_file(name, len(data))
    return load_bytes(data, name, ctx)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector. Parsed manifests are millions of small acyclic
    objects that reference counting frees; letting the collector traverse them again and again
    as the heap grows made a 100,000-object scan twice as slow."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_paths(paths: Iterable[str], ctx: LoadContext | None = None) -> LoadResult:
    import kubeharden.sources  # noqa: F401  (registers path hooks: charts, overlays, snapshots)

    ctx = ctx or LoadContext()
    result = LoadResult()
    with paused_gc():
        for path in paths:
            result.extend(load_path(path, ctx))
    return result


class LineLocator:
    """Finds the lines of paths inside resources' documents after the controls have run, in one
    batch: each file is read once and each document with findings is composed once, so the
    bulk of the input (documents without findings) is parsed only once."""

    def resolve(self, requests: list[tuple[Source, Path]]) -> list[int | None]:
        out: list[int | None] = [source.line for source, _ in requests]
        by_file: dict[str, list[int]] = {}
        for i, (source, _) in enumerate(requests):
            if source.file and (source.text is not None or not source.file.startswith("<")):
                by_file.setdefault(source.file, []).append(i)
        for indexes in by_file.values():
            first = requests[indexes[0]][0]
            text = _source_text(first)
            if text is None:
                continue
            by_doc: dict[tuple[int | None, int], list[int]] = {}
            for i in indexes:
                source = requests[i][0]
                by_doc.setdefault((source.line, source.doc_index), []).append(i)
            whole_file: list[Any] | None = None
            lines: list[bytes] | None = None
            for (start, doc_index), members in by_doc.items():
                if start is None:  # JSON (or unknown position): compose the whole file once
                    if whole_file is None:
                        whole_file = compose_documents(text)
                    root = whole_file[doc_index] if doc_index < len(whole_file) else None
                    offset = 1
                else:
                    if lines is None:
                        lines = text.split(b"\n")
                    end = requests[members[0]][0].end_line or start
                    fragment = compose_documents(b"\n".join(lines[start - 1 : end]))
                    root = fragment[0] if fragment else None
                    offset = start
                if root is None:
                    continue
                for i in members:
                    source, path = requests[i]
                    line0 = locate(root, (*source.base_path, *path))
                    if line0 is not None:
                        out[i] = line0 + offset
        return out


def _source_text(source: Source) -> bytes | None:
    """The UTF-8 text the document was read from (the file again: only findings need it)."""
    if source.text is not None:
        return source.text.encode()
    try:
        return decode_input(read_regular(source.file, Limits().max_file_bytes))[0]
    except (OSError, InputProblem):
        return None
