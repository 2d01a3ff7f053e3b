"""Safe, fast YAML reading: libyaml for the bulk, with guards against hostile input.

libyaml's composer recurses in C, so absurd nesting crashes the interpreter; aliases can
expand exponentially ("billion laughs") or form cycles. Both are checked before any data
reaches a control. The checks are cheap bounds on the raw text; only when a bound trips do
we pay for an exact count.

Values are read as Kubernetes reads them (sigs.k8s.io/yaml over go-yaml v2), not as YAML 1.1
says: go-yaml's boolean table (`y`, `N`, `on` ...), no base-60 numbers, timestamps kept as their
text, mapping keys always strings. A tag whose value does not fit (`!!int hunter2`), an unknown
tag, or a key Kubernetes refuses (null, a collection) is an error for its document, which is
skipped; the message never repeats the value (it may be a Secret's).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from array import array
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from itertools import accumulate
from sys import intern
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# libyaml (0.2.6, in PyYAML 6.0.4's wheels) refuses more than 1000 flow levels or 999 block
# levels with an error of its own. Our limit stays below, so that its verdict is always ours.
LIBYAML_MAX_NESTING = 1000
MAX_DEPTH_LIMIT = LIBYAML_MAX_NESTING - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """Input limits. Every one is a setting (CLI flags on `scan`) with a safe default."""

    max_file_bytes: int = 64 * 1024 * 1024
    max_depth: int = 256
    max_aliases: int = 1000  # alias uses per document
    max_expanded_nodes: int = 2_000_000  # nodes per document once aliases are expanded

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= MAX_DEPTH_LIMIT:
            raise ValueError(f"max_depth must be between 1 and {MAX_DEPTH_LIMIT}")
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


_TAG_PREFIX = "tag:yaml.org,2002:"
_STR_TAG = _TAG_PREFIX + "str"
_MAP_TAG = _TAG_PREFIX + "map"
_SEQ_TAG = _TAG_PREFIX + "seq"
_MERGE_TAG = _TAG_PREFIX + "merge"
# Scalar tags with a meaning: what a value so tagged must be (for the error when it is not).
_SCALAR_TAGS = {
    _TAG_PREFIX + "int": "an integer",
    _TAG_PREFIX + "float": "a number",
    _TAG_PREFIX + "bool": "a boolean",
    _TAG_PREFIX + "null": "null",
    _TAG_PREFIX + "timestamp": "a timestamp",
    _TAG_PREFIX + "binary": "base64 data",
}

# go-yaml v2's resolve table (resolve.go), which Kubernetes' YAML decoder uses: YAML 1.1's
# booleans plus y/Y/n/N. Only plain scalars are resolved; quoted ones stay strings.
_BOOL_RE = re.compile(r"""^(?:y|Y|yes|Yes|YES|true|True|TRUE|on|On|ON
                            |n|N|no|No|NO|false|False|FALSE|off|Off|OFF)$""", re.X)
_BOOL_VALUES = {"y": True, "yes": True, "true": True, "on": True, "n": False, "no": False, "false": False, "off": False}
# YAML 1.1 numbers without base 60 (go-yaml reads `1:30` as the string "1:30"; PyYAML as 90).
_INT_RE = re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""")
_FLOAT_RE = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
                             |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
                             |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X)
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")


class _Loader(yaml.CSafeLoader):
    """CSafeLoader with Kubernetes' implicit types (see the module docstring). Its constructors
    are used only for scalars with a non-string tag; collections are built by _Builder."""

    bool_values = _BOOL_VALUES
    duplicates: list[tuple[str, int]]

    def construct_yaml_int(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # more digits than Python converts (4300): go-yaml keeps such text too
            if _INT_RE.match(node.value) is None:
                raise
            return node.value

    def construct_yaml_null(self, node: ScalarNode) -> Any:
        if _NULL_RE.match(self.construct_scalar(node)) is None:  # !!null with a value
            raise ValueError("not null")
        return None

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        # only explicit !!timestamp gets here: it must be one; the text is what Kubernetes sees
        value = self.construct_scalar(node)
        match = self.timestamp_regexp.match(value)
        if match is None:
            raise ValueError("not a timestamp")
        super().construct_yaml_timestamp(node)  # ValueError for 2024-13-45
        return value

    def construct_yaml_binary(self, node: ScalarNode) -> Any:
        # go-yaml decodes !!binary into a string: the decoded bytes, as JSON would carry them
        text = "".join(str(self.construct_scalar(node)).split())  # line breaks and spaces are allowed
        try:
            data = base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise ValueError("not base64") from exc
        return data.decode("utf-8", "replace")


# Our own table, not YAML 1.1's: no timestamps (go-yaml hands their text to Kubernetes), no `=`
# "value" tag (PyYAML has no constructor for it: `a: =` would not load at all).
_Loader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in (
    ("bool", _BOOL_RE, "yYnNtTfFoO"),
    ("float", _FLOAT_RE, "-+0123456789."),
    ("int", _INT_RE, "-+0123456789"),
    ("merge", re.compile(r"^(?:<<)$"), "<"),
    ("null", _NULL_RE, ["~", "n", "N", ""]),
):
    _Loader.add_implicit_resolver(_TAG_PREFIX + _tag, _regexp, list(_first))
_Loader.add_constructor(_TAG_PREFIX + "int", _Loader.construct_yaml_int)
_Loader.add_constructor(_TAG_PREFIX + "null", _Loader.construct_yaml_null)
_Loader.add_constructor(_TAG_PREFIX + "timestamp", _Loader.construct_yaml_timestamp)
_Loader.add_constructor(_TAG_PREFIX + "binary", _Loader.construct_yaml_binary)


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _tag_problem(node: Node) -> YamlInputError:
    """The error for a value its tag does not fit. Names the tag only when it is a standard
    one: an unquoted value starting with '!' (a password ...) is read as a tag."""
    tag = node.tag or ""
    if tag in _SCALAR_TAGS and isinstance(node, ScalarNode):
        reason = f"a value tagged !!{tag[len(_TAG_PREFIX):]} is not {_SCALAR_TAGS[tag]}"
    elif tag in (_MAP_TAG, _SEQ_TAG, _STR_TAG) or tag in _SCALAR_TAGS:
        kind = {ScalarNode: "a scalar", SequenceNode: "a sequence", MappingNode: "a mapping"}[type(node)]
        reason = f"!!{tag[len(_TAG_PREFIX):]} on {kind}"
    else:
        reason = "unknown YAML tag (only !!str, !!int, !!float, !!bool, !!null, !!timestamp, !!binary, !!map and !!seq)"
    return YamlInputError(f"{reason}; the document is skipped (Kubernetes refuses it too)", _line(node))


def _go_float_key(value: float) -> str:
    """A float mapping key as sigs.k8s.io/yaml writes it: strconv.FormatFloat(v, 'g', -1, 32)."""
    if math.isnan(value):
        return ".nan"
    try:
        single = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        single = math.copysign(math.inf, value)
    if math.isinf(single):
        return ".inf" if single > 0 else "-.inf"
    if single == 0:
        return "-0" if math.copysign(1, single) < 0 else "0"
    for precision in range(1, 10):  # the shortest digits that read back as the same float32
        text = f"{single:.{precision - 1}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            break
    mantissa, exponent_text = text.split("e")
    exponent = int(exponent_text)
    digits = mantissa.replace("-", "").replace(".", "").rstrip("0") or "0"
    sign = "-" if single < 0 else ""
    if exponent < -4 or exponent >= 6:  # Go's 'g' for the shortest form switches at 1e6
        rest = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{rest}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return sign + f"{abs(single):.{max(len(digits) - 1 - exponent, 0)}f}"


class _Builder:
    """Builds Python objects from libyaml's nodes. Plain strings, mappings and sequences (nearly
    everything in a manifest) are built directly; other scalars (int, bool, null, float ...) go
    to _Loader's constructors. About twice as fast as construct_document. Raises YamlInputError
    (with the node's line, never its value) for what Kubernetes would refuse."""

    def __init__(self, loader: _Loader, track_aliases: bool) -> None:
        self.loader = loader
        self.memo: dict[int, Any] | None = {} if track_aliases else None

    def build(self, node: Node) -> Any:
        cls = node.__class__
        if cls is ScalarNode:
            if node.tag == _STR_TAG:
                return node.value
            if node.tag not in _SCALAR_TAGS:
                raise _tag_problem(node)
            try:
                return self.loader.construct_object(node)
            except Exception:  # ValueError, KeyError, ConstructorError ... whose text may hold the value
                raise _tag_problem(node) from None
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
        raise _tag_problem(node)

    def _mapping(self, node: MappingNode, memo: dict[int, Any] | None) -> dict[str, Any]:
        merged = 0  # pairs at the front that came from merge keys: later keys override them silently
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                # PyYAML's flatten puts the merged pairs in front of the mapping's own ones
                own_pairs = sum(1 for k, _ in node.value if k.tag != _MERGE_TAG)
                try:
                    self.loader.flatten_mapping(node)
                except yaml.YAMLError:
                    raise YamlInputError("'<<' merges something that is not a mapping", _line(key_node)) from None
                merged = len(node.value) - own_pairs
                break
        out: dict[str, Any] = {}
        if memo is not None:
            memo[id(node)] = out
        build = self.build
        duplicates = self.loader.duplicates
        if merged:
            own: set[str] = set()  # merged pairs come first: only the mapping's own keys can repeat
            for i, (key_node, value_node) in enumerate(node.value):
                key = self._key(key_node)
                if i >= merged:
                    if key in own:
                        duplicates.append((key, key_node.start_mark.line + 1))
                    own.add(key)
                out[key] = build(value_node)
            return out
        for key_node, value_node in node.value:
            # keys repeat across every object ("name", "image" ...): interning them saves memory
            key = intern(key_node.value) if key_node.tag == _STR_TAG and key_node.__class__ is ScalarNode \
                else self._key(key_node)
            if key in out:
                duplicates.append((key, key_node.start_mark.line + 1))
            out[key] = build(value_node)
        return out

    def _key(self, key_node: Node) -> str:
        """A key as sigs.k8s.io/yaml turns it into JSON's string key."""
        if key_node.__class__ is ScalarNode and key_node.tag == _STR_TAG:
            return intern(key_node.value)
        if key_node.__class__ is not ScalarNode:
            raise YamlInputError(
                "a mapping key is a sequence or mapping; the document is skipped (Kubernetes refuses it too)",
                _line(key_node),
            )
        value = self.build(key_node)
        if isinstance(value, str):
            return value
        if value is None:
            raise YamlInputError(
                "a mapping key is null (~, null or empty); the document is skipped (Kubernetes refuses it too)",
                _line(key_node),
            )
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return _go_float_key(value)
        return str(key_node.value)


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
                    return _depth_error(limit, event.start_mark)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        # libyaml scans ahead: dense nesting ("[[[[...") reaches its own limit before the
        # events that would show ours. When the text up to the error is nested beyond libyaml's
        # limit, that was the error (deeper than ours, which is lower); anything else is a syntax
        # error that the real parse reports with its position.
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            prefix = data[: _line_end(data, mark.line)]
            if _flow_depth_bound(prefix) > LIBYAML_MAX_NESTING or _deep_block_indent(prefix, LIBYAML_MAX_NESTING - 1):
                return _depth_error(limit, mark)
    except yaml.YAMLError:
        pass
    return None


def _depth_error(limit: int, mark: Any) -> YamlInputError:
    return YamlInputError(f"nesting deeper than {limit} levels (limit: max_depth)", mark.line + 1 if mark else None)


def _line_end(data: bytes, line: int) -> int:
    """Byte offset just past the 0-based ``line``."""
    pos = 0
    for _ in range(line + 1):
        nl = data.find(b"\n", pos)
        if nl < 0:
            return len(data)
        pos = nl + 1
    return pos


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
    while True:  # once per syntax error: a loop, not recursion, however many bad documents
        resume = yield from _read_documents(data, limits, errors, line_offset, check_anchors)
        if resume is None:
            return
        offset_bytes, resume_line = resume
        data = data[offset_bytes:]
        line_offset += resume_line


def _read_documents(
    data: bytes, limits: Limits, errors: list[YamlInputError], line_offset: int, check_anchors: bool
) -> Generator[Document, None, tuple[int, int] | None]:
    """The documents up to the end or a syntax error; returns where to resume after the error."""
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
            problem = _check_aliases(root, limits) if check_anchors else None
            value = None
            if problem is None:
                try:
                    value = _Builder(loader, check_anchors).build(root)
                except YamlInputError as error:  # a document Kubernetes would refuse: skip it
                    problem = error
                finally:
                    loader.constructed_objects = {}
            if problem is not None:
                if problem.line is not None:
                    problem.line += line_offset
                errors.append(problem)
                loader.duplicates = []
                index += 1
                continue
            warnings = [
                YamlInputError(f"duplicate key {key!r}", line + line_offset)
                for key, line in loader.duplicates
            ]
            loader.duplicates = []
            yield Document(value, index, start, end, warnings)
            index += 1
    except yaml.YAMLError as exc:
        line = _line_of(exc)
        errors.append(YamlInputError(_describe(exc), None if line is None else line + line_offset))
        if line is not None:
            return _next_doc_start(data, line)  # resume after the next '---' that follows the error
    except RecursionError:
        errors.append(YamlInputError("nesting too deep to read", None))
    finally:
        loader.dispose()
    return None


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


class KubernetesDumper(yaml.SafeDumper):
    """SafeDumper that quotes the strings Kubernetes would read as something else (`y`, `N` ...:
    YAML 1.1 leaves them plain, go-yaml reads booleans), so what we write reads back the same."""


KubernetesDumper.add_implicit_resolver(_TAG_PREFIX + "bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
