"""Safe, fast YAML reading: libyaml for the bulk, with guards against hostile input.

libyaml's composer recurses in C, so absurd nesting crashes the interpreter; aliases can
expand exponentially ("billion laughs") or form cycles. Both are checked before any data
reaches a control. The checks are cheap bounds on the raw text; only when a bound trips do
we pay for an exact count.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from sys import intern
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_HARD_MAX_DEPTH = 5000  # the C composer is known to survive 10,000 levels; stay well below


@dataclass(frozen=True, slots=True)
class Limits:
    """Input limits. Every one is a setting (CLI flags on `scan`) with a safe default."""

    max_file_bytes: int = 64 * 1024 * 1024
    max_depth: int = 256
    max_aliases: int = 1000  # alias uses per document
    max_expanded_nodes: int = 2_000_000  # nodes per document once aliases are expanded

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= _HARD_MAX_DEPTH:
            raise ValueError(f"max_depth must be between 1 and {_HARD_MAX_DEPTH}")
        if self.max_file_bytes < 1 or self.max_aliases < 0 or self.max_expanded_nodes < 1:
            raise ValueError("limits must be positive")


class YamlInputError(Exception):
    """A problem with one document or file; ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(slots=True)
class Document:
    data: Any
    index: int
    start_line: int  # 1-based, first line of the document's content
    end_line: int  # 1-based, last line that belongs to the document
    warnings: list[YamlInputError]


_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.CSafeLoader):
    """CSafeLoader that records duplicate mapping keys instead of silently keeping the last.
    Used for the rare nodes the fast builder hands back (merge keys, explicit tags)."""

    duplicates: list[tuple[str, int]]

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        assert isinstance(node, MappingNode)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _STR_TAG:
                if key_node.value in seen:
                    self.duplicates.append((key_node.value, key_node.start_mark.line + 1))
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        # 2024-13-45 matches YAML 1.1's timestamp pattern but is no date: PyYAML raises ValueError.
        # Kubernetes would read the text as a string, so the text it is.
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return node.value


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


class _Builder:
    """Builds Python objects from libyaml's nodes. Plain strings, mappings and sequences (nearly
    everything in a manifest) are built directly; every other tag (int, bool, null, float,
    timestamp, merge keys, sets ...) goes to PyYAML's SafeConstructor, so YAML 1.1 semantics are
    exactly those of yaml.safe_load. About twice as fast as construct_document."""

    def __init__(self, loader: _Loader, track_aliases: bool) -> None:
        self.loader = loader
        self.memo: dict[int, Any] | None = {} if track_aliases else None

    def build(self, node: Node) -> Any:
        cls = node.__class__
        if cls is ScalarNode:
            if node.tag == _STR_TAG:
                return node.value
            return self.loader.construct_object(node)
        memo = self.memo
        if memo is not None and id(node) in memo:
            return memo[id(node)]
        if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
            return self._mapping(node, memo)
        if cls is SequenceNode and node.tag == _SEQ_TAG:
            items: list[Any] = []
            if memo is not None:
                memo[id(node)] = items
            build = self.build
            items.extend([build(child) for child in node.value])
            return items
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: MappingNode, memo: dict[int, Any] | None) -> dict[Any, Any]:
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                value = self.loader.construct_object(node, deep=True)
                if memo is not None:
                    memo[id(node)] = value
                return value
        out: dict[Any, Any] = {}
        if memo is not None:
            memo[id(node)] = out
        build = self.build
        for key_node, value_node in node.value:
            # keys repeat across every object ("name", "image" ...): interning them saves memory
            key = intern(key_node.value) if key_node.tag == _STR_TAG and key_node.__class__ is ScalarNode \
                else build(key_node)
            try:
                if key in out:
                    self.loader.duplicates.append((str(key), key_node.start_mark.line + 1))
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
                ) from None
            out[key] = build(value_node)
        return out


_TOKEN_START = frozenset(b" \t\r\n[{,")
_NOT_ANCHOR_NAME = frozenset(b"& \t\r\n")


def _may_have_anchors(data: bytes) -> bool:
    """Anchors, not ampersands in URLs or shell "&&": an '&' that starts a token. Most files
    have few '&' at all, so a find() loop beats a regular expression here."""
    i = data.find(b"&")
    while i >= 0:
        if (i == 0 or data[i - 1] in _TOKEN_START) and i + 1 < len(data) and data[i + 1] not in _NOT_ANCHOR_NAME:
            return True
        i = data.find(b"&", i + 1)
    return False

_BRACKET_KEEP = bytes(range(256)).translate(None, b"[]{}")
_BRACKET_SIGN = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def _flow_depth_bound(data: bytes) -> int:
    """Upper bound of flow-collection nesting (brackets in strings count too: a bound, not exact)."""
    brackets = data.translate(None, _BRACKET_KEEP)
    if not brackets:
        return 0
    return max(0, *accumulate(array("b", brackets.translate(_BRACKET_SIGN))))


def _deep_block_indent(data: bytes, width: int) -> bool:
    """Does any line start with ``width`` indentation characters? (A literal '\n' prefix keeps
    the regular expression on its fast path.)"""
    pattern = rb"[ \-?]{%d}" % width
    return re.match(pattern, data) is not None or re.search(rb"\n" + pattern, data) is not None


def _exact_depth(data: bytes, limit: int) -> YamlInputError | None:
    """Exact nesting depth from the event stream (iterative in libyaml, so safe at any depth)."""
    depth = 0
    try:
        for event in yaml.parse(data, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limit:
                    mark = event.start_mark
                    return YamlInputError(
                        f"nesting deeper than {limit} levels (limit: max_depth)", mark.line + 1 if mark else None
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return None  # the real parse reports syntax errors with their position
    return None


def check_depth(data: bytes, limits: Limits) -> YamlInputError | None:
    half = max(1, limits.max_depth // 2)
    if _flow_depth_bound(data) <= half and not _deep_block_indent(data, half):
        return None
    return _exact_depth(data, limits.max_depth)


def _check_aliases(root: Node, limits: Limits) -> YamlInputError | None:
    """Count alias uses and the size the document would have once aliases are expanded."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    aliases = 0
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            in_progress.discard(key)
            children: list[Node]
            if isinstance(node, MappingNode):
                children = [n for pair in node.value for n in pair]
            else:
                children = list(node.value)
            total = 1 + sum(sizes[id(c)] for c in children)
            sizes[key] = total
            if total > limits.max_expanded_nodes:
                return YamlInputError(
                    f"aliases expand to more than {limits.max_expanded_nodes} nodes (alias bomb?)",
                    node.start_mark.line + 1,
                )
            continue
        if key in in_progress:
            return YamlInputError("recursive alias (an anchor refers to itself)", node.start_mark.line + 1)
        if key in sizes:
            aliases += 1
            if aliases > limits.max_aliases:
                return YamlInputError(
                    f"more than {limits.max_aliases} alias uses in one document (limit: max_aliases)",
                    node.start_mark.line + 1,
                )
            continue
        if isinstance(node, ScalarNode):
            sizes[key] = 1
            continue
        in_progress.add(key)
        stack.append((node, True))
        if isinstance(node, MappingNode):
            for k, v in node.value:
                stack.append((v, False))
                stack.append((k, False))
        elif isinstance(node, SequenceNode):
            stack.extend((child, False) for child in reversed(node.value))
    return None


def _line_of(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None


def _describe(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        return f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return f"invalid YAML: {exc}"


_DOC_START_RE = re.compile(rb"^---(?:[ \t]|$)", re.M)


def iter_yaml_documents(
    data: bytes, limits: Limits, errors: list[YamlInputError], line_offset: int = 0
) -> Iterator[Document]:
    """Yield every document of a YAML stream; errors are appended, and reading resumes at the
    next document marker after a syntax error so that one bad document does not hide the rest."""
    depth_error = check_depth(data, limits)
    if depth_error is not None:
        if depth_error.line is not None:
            depth_error.line += line_offset
        errors.append(depth_error)
        return
    check_anchors = _may_have_anchors(data)
    loader = _Loader(data)
    loader.duplicates = []
    index = 0
    try:
        while loader.check_node():
            root = loader.get_node()
            if root is None:
                continue
            start = root.start_mark.line + 1 + line_offset
            end = max(root.end_mark.line + 1 + line_offset, start)
            if check_anchors:
                alias_error = _check_aliases(root, limits)
                if alias_error is not None:
                    if alias_error.line is not None:
                        alias_error.line += line_offset
                    errors.append(alias_error)
                    index += 1
                    continue
            value = _Builder(loader, check_anchors).build(root)
            loader.constructed_objects = {}
            warnings = [
                YamlInputError(f"duplicate key {key!r} (the last value is used)", line + line_offset)
                for key, line in loader.duplicates
            ]
            loader.duplicates = []
            yield Document(value, index, start, end, warnings)
            index += 1
    except yaml.YAMLError as exc:
        line = _line_of(exc)
        errors.append(YamlInputError(_describe(exc), None if line is None else line + line_offset))
        if line is not None:
            # resume after the next '---' that follows the error
            resume = _next_doc_start(data, line)
            if resume is not None:
                offset_bytes, resume_line = resume
                yield from iter_yaml_documents(data[offset_bytes:], limits, errors, line_offset + resume_line)
    except RecursionError:
        errors.append(YamlInputError("nesting too deep to read", None))
    finally:
        loader.dispose()


def _next_doc_start(data: bytes, error_line: int) -> tuple[int, int] | None:
    """Byte offset and 0-based line of the first '---' marker on ``error_line`` (1-based) or after
    it: an unclosed flow collection is reported at the marker of the next document. Never offset 0,
    so that reading always moves on."""
    pos = 0
    for _ in range(error_line - 1):
        nl = data.find(b"\n", pos)
        if nl < 0:
            return None
        pos = nl + 1
    match = _DOC_START_RE.search(data, max(pos, 1))
    if match is None:
        return None
    return match.start(), data.count(b"\n", 0, match.start())


def compose_documents(text: bytes | str) -> list[Node | None]:
    """Node trees (with positions) of every document: used only to find line numbers."""
    try:
        return list(yaml.compose_all(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        return []


def locate(root: Node | None, path: tuple[str | int, ...]) -> int | None:
    """0-based line of the deepest node on ``path`` (the key line for mapping entries)."""
    if root is None:
        return None
    node: Node = root
    line = node.start_mark.line
    for item in path:
        if isinstance(node, MappingNode) and isinstance(item, str):
            found = None
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == item:
                    found = (key_node, value_node)
            if found is None:
                return line
            line = found[0].start_mark.line
            node = found[1]
        elif isinstance(node, SequenceNode) and isinstance(item, int):
            if not 0 <= item < len(node.value):
                return line
            node = node.value[item]
            line = node.start_mark.line
        else:
            return line
    return line
