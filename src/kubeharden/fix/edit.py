"""Byte-exact edits of YAML and JSON text.

The text is parsed only to find where things are (libyaml's node tree, with character
positions); each edit splices new text into the original, so every byte outside the edited
span stays as it was: comments, blank lines, key order, quoting, indentation, line endings.
New text follows the file's own style: the indentation of the mapping it joins, compact or
indented block sequences, flow collections edited inside the flow, JSON written as JSON with
the file's indentation, the file's line ending.

What is refused (EditRefused, with the reason): a path through a node an alias also points at
(the edit would change every place that uses it), a value that comes from a merge key (`<<`),
a duplicated key, a path through a scalar, a sequence index that does not exist.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kubeharden.model import FIX_OPS, Path, PathItem

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# image references (host:port/repo:tag@sha256:...) stay plain; a value ending in ':' does not
_PLAIN_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_./:@-]*[A-Za-z0-9_./@-])?")
# go-yaml v2 (what Kubernetes reads with) takes these as booleans, YAML 1.1 some more: never plain.
_BOOL_WORDS = frozenset({"y", "yes", "n", "no", "on", "off", "true", "false", "null", "~"})
MAX_EDIT_ROUNDS = 64  # remove-item removes one match per parse; a bound, not a limit anyone reaches


class EditRefused(Exception):
    """An edit that is not made, with the reason (shown to the user)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Edit:
    """One operation with its value resolved (needs-value fixes get theirs from --set)."""

    op: str
    path: Path
    value: Any = None

    def __post_init__(self) -> None:
        if self.op not in FIX_OPS:
            raise ValueError(f"unknown operation {self.op!r} (expected {', '.join(FIX_OPS)})")


@dataclass(slots=True)
class Style:
    """How the file writes what we add."""

    newline: str = "\n"
    indent: int = 2  # a nested mapping's keys, relative to its parent key
    seq_offset: int = 0  # a block sequence's dash relative to its key (0: compact `key:\n- a`)
    item_offset: int = 2  # an item's content relative to its dash
    json: bool = False


# The encodings the loader reads (UTF-8, UTF-16/UTF-32 with a byte order mark): a file is
# written back in the encoding it came in.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF8, "utf-8"),
)


class Text:
    """A document stream being edited: text without BOM, with its BOM and encoding kept aside.
    EditRefused when the bytes are not text in one of those encodings."""

    def __init__(self, data: bytes) -> None:
        self.bom, self.codec = b"", "utf-8"
        for bom, codec in _BOMS:
            if data.startswith(bom):
                self.bom, self.codec = bom, codec
                break
        try:
            self.text = data[len(self.bom):].decode(self.codec)
        except UnicodeDecodeError:
            raise EditRefused(f"the file is not {self.codec.upper()} text") from None

    def encode(self) -> bytes:
        return self.bom + self.text.encode(self.codec)


def compose_all(text: str) -> list[Node | None]:
    try:
        return list(yaml.compose_all(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError as exc:
        raise EditRefused(f"the file no longer parses as YAML ({type(exc).__name__})") from None


def detect_style(text: str, root: Node | None, json_mode: bool) -> Style:
    style = Style(newline="\r\n" if "\r\n" in text else "\n", json=json_mode)
    if root is None:
        return style
    found_indent = found_seq = False
    for key, value in _pairs(root):
        if not found_indent and isinstance(value, MappingNode) and not value.flow_style and value.value:
            diff = value.value[0][0].start_mark.column - key.start_mark.column
            if diff > 0:
                style.indent, found_indent = diff, True
        if not found_seq and isinstance(value, SequenceNode) and not value.flow_style and value.value:
            dash = value.start_mark.column
            if value.start_mark.line > key.start_mark.line:
                style.seq_offset = max(0, dash - key.start_mark.column)
                item = value.value[0]
                style.item_offset = max(1, item.start_mark.column - dash) if item.start_mark.line == \
                    value.start_mark.line else 2
                found_seq = True
        if found_indent and found_seq:
            break
    if json_mode:
        style.indent = _json_indent(text, root) or style.indent
    return style


def _json_indent(text: str, root: Node) -> int | None:
    """The indentation step of pretty-printed JSON: a member's column minus its container's line's."""
    lines = text.split("\n")
    for node in _walk(root):
        if isinstance(node, MappingNode | SequenceNode) and node.value:
            first = node.value[0][0] if isinstance(node, MappingNode) else node.value[0]
            if first.start_mark.line > node.start_mark.line:
                line = lines[node.start_mark.line]
                step = int(first.start_mark.column) - (len(line) - len(line.lstrip(" ")))
                if step > 0:
                    return step
    return None


def _walk(root: Node) -> Iterator[Node]:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, MappingNode):
            for k, v in reversed(node.value):
                stack.append(v)
                stack.append(k)
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))


def _pairs(root: Node) -> Iterator[tuple[Node, Node]]:
    for node in _walk(root):
        if isinstance(node, MappingNode):
            yield from node.value


def _ref_counts(root: Node) -> dict[int, int]:
    """How many places refer to each node: more than one means an alias shares it."""
    counts: dict[int, int] = {id(root): 1}
    stack = [root]
    while stack:
        node = stack.pop()
        children: list[Node] = []
        if isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, SequenceNode):
            children = list(node.value)
        for child in children:
            counts[id(child)] = counts.get(id(child), 0) + 1
            if counts[id(child)] == 1:
                stack.append(child)
    return counts


def construct(node: Node) -> Any:
    return SafeConstructor().construct_document(node)


# ---------------------------------------------------------------------------------------------
# Rendering new text


def render_scalar(value: Any, style: Style, like: ScalarNode | None = None) -> str:
    if style.json:
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    quote = like.style if like is not None and like.style in ("'", '"') else None
    if quote == '"':
        return json.dumps(text, ensure_ascii=False)
    if quote is None and _plain_ok(text):
        return text
    return "'" + text.replace("'", "''") + "'"


def _plain_ok(text: str) -> bool:
    if not _PLAIN_RE.fullmatch(text) or text.lower() in _BOOL_WORDS:
        return False
    try:
        return bool(yaml.safe_load(text) == text)
    except yaml.YAMLError:
        return False


def render_key(key: PathItem, style: Style) -> str:
    return render_scalar(str(key), style)


def render_flow(value: Any, style: Style) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{render_key(k, style)}: {render_flow(v, style)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render_flow(v, style) for v in value) + "]"
    return render_scalar(value, style)


def render_json_block(value: Any, style: Style, col: int) -> str:
    """Indented JSON whose first line is already placed at ``col``."""
    text = json.dumps(value, indent=style.indent, ensure_ascii=False)
    return text.replace("\n", style.newline + " " * col)


def render_block_entry(key: PathItem, value: Any, col: int, style: Style) -> list[str]:
    """Lines (without line ends) of `key: value` in block style, the key at ``col``."""
    head = " " * col + render_key(key, style) + ":"
    if isinstance(value, dict) and value:
        lines = [head]
        for k, v in value.items():
            lines += render_block_entry(k, v, col + style.indent, style)
        return lines
    if isinstance(value, list) and value:
        return [head, *render_block_items(value, col + style.seq_offset, style)]
    return [head + " " + render_flow(value, style)]


def render_block_items(items: list[Any], dash_col: int, style: Style, like: Node | None = None) -> list[str]:
    lines: list[str] = []
    for item in items:
        if isinstance(item, dict) and item:
            entries: list[str] = []
            for k, v in item.items():
                entries += render_block_entry(k, v, dash_col + style.item_offset, style)
            first = entries[0][dash_col + style.item_offset:]
            lines.append(" " * dash_col + "-" + " " * (style.item_offset - 1) + first)
            lines += entries[1:]
        else:
            rendered = render_scalar(item, style, like) if isinstance(like, ScalarNode) and not isinstance(
                item, dict | list) else render_flow(item, style)
            lines.append(" " * dash_col + "-" + " " * (style.item_offset - 1) + rendered)
    return lines


def nest(path: Path, value: Any) -> Any:
    """The value to create for the missing part of a path (mappings only: no index is invented)."""
    for item in reversed(path):
        if isinstance(item, int):
            raise EditRefused(f"cannot create sequence item [{item}]: it does not exist")
        value = {item: value}
    return value


# ---------------------------------------------------------------------------------------------
# The editor


@dataclass(slots=True)
class _Step:
    """One node on the path: the collection, and the key node when it is a mapping entry."""

    node: Node
    key: ScalarNode | None = None  # key node of the entry that holds ``node``
    parent: Node | None = None


class DocumentEditor:
    """Edits one document (by index) of a YAML or JSON stream."""

    def __init__(self, text: Text, doc_index: int, json_mode: bool = False, keep_depth: int = 0) -> None:
        self.text = text
        self.doc_index = doc_index
        self.json_mode = json_mode
        # A mapping entry whose value a delete or remove-item empties goes with its key (and so on up),
        # except at a depth up to keep_depth: there it becomes {} / [] (a values key a template reads).
        self.keep_depth = keep_depth
        self._style: Style | None = None

    # -- parsing ------------------------------------------------------------------------------

    def _root(self) -> Node:
        docs = compose_all(self.text.text)
        if self.doc_index >= len(docs) or docs[self.doc_index] is None:
            raise EditRefused(f"document {self.doc_index} is not in the file")
        root = docs[self.doc_index]
        assert root is not None
        if self._style is None:
            self._style = detect_style(self.text.text, root, self.json_mode)
        return root

    @property
    def style(self) -> Style:
        if self._style is None:
            self._root()
        assert self._style is not None
        return self._style

    def _walk_path(self, root: Node, path: Path) -> tuple[list[_Step], Path]:
        """The steps to the deepest existing node of path, and the part of path that is missing."""
        counts = _ref_counts(root)
        steps = [_Step(root)]
        node: Node = root
        for depth, item in enumerate(path):
            if counts.get(id(node), 1) > 1:
                raise EditRefused(f"{_where(path[:depth])} is shared through a YAML alias: editing it would change "
                                  "every place that uses it")
            if isinstance(node, MappingNode) and isinstance(item, str):
                matches = [(k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == item
                           and k.tag != _MERGE_TAG]
                if len(matches) > 1:
                    raise EditRefused(f"{_where(path[: depth + 1])} is a duplicated key")
                if not matches:
                    if any(k.tag == _MERGE_TAG for k, _ in node.value):
                        raise EditRefused(f"{_where(path[:depth])} has a merge key (<<): its fields may come from "
                                          "an anchor shared with other places")
                    return steps, path[depth:]
                key, value = matches[0]
                assert isinstance(key, ScalarNode)
                steps.append(_Step(value, key, node))
                node = value
            elif isinstance(node, SequenceNode) and isinstance(item, int):
                if not 0 <= item < len(node.value):
                    raise EditRefused(f"{_where(path[: depth + 1])} does not exist")
                steps.append(_Step(node.value[item], None, node))
                node = node.value[item]
            elif _is_null(node):
                return steps, path[depth:]
            else:
                raise EditRefused(f"{_where(path[:depth])} is not a {'mapping' if isinstance(item, str) else 'list'}")
        if counts.get(id(node), 1) > 1:
            raise EditRefused(f"{_where(path)} is shared through a YAML alias: editing it would change every place "
                              "that uses it")
        return steps, ()

    # -- operations ---------------------------------------------------------------------------

    def apply(self, edit: Edit) -> bool:
        """Apply one edit; False when it changes nothing (already so)."""
        before = self.text.text
        if edit.op == "set":
            self._set(edit.path, edit.value)
        elif edit.op == "delete":
            self._delete(edit.path)
        elif edit.op == "append":
            self._append(edit.path, edit.value)
        else:
            for _ in range(MAX_EDIT_ROUNDS):
                if not self._remove_one(edit.path, edit.value):
                    break
        return self.text.text != before

    def _set(self, path: Path, value: Any) -> None:
        if not path:
            raise EditRefused("cannot replace a whole document")
        root = self._root()
        steps, missing = self._walk_path(root, path)
        last = steps[-1]
        if not missing:
            node = last.node
            if isinstance(node, ScalarNode) and not isinstance(value, dict | list):
                if construct(node) == value and type(construct(node)) is type(value):
                    return
                self._splice(node.start_mark.index, self._scalar_end(node), render_scalar(value, self.style, node))
                return
            if _same_value(node, value):
                return
            self._replace_value(last, value)
            return
        if _is_null(last.node) and last.parent is not None:
            self._replace_value(last, nest(missing, value))
            return
        if not isinstance(last.node, MappingNode) or not isinstance(missing[0], str):
            raise EditRefused(f"{_where(path[: len(path) - len(missing)])} is not a mapping")
        first, rest = missing[0], missing[1:]
        self._insert_entry(last.node, first, nest(rest, value))

    def _delete(self, path: Path) -> None:
        root = self._root()
        steps, missing = self._walk_path(root, path)
        if missing:
            return  # already absent
        if len(steps) < 2 or steps[-1].parent is None:
            raise EditRefused("cannot delete a whole document")
        self._remove_member(steps[:-1], _index_in_parent(steps[-1]))

    def _append(self, path: Path, item: Any) -> None:
        root = self._root()
        steps, missing = self._walk_path(root, path)
        if missing:
            self._set(path, [item])
            return
        last = steps[-1]
        node = last.node
        if _is_null(node):
            self._replace_value(last, [item])
            return
        if not isinstance(node, SequenceNode):
            raise EditRefused(f"{_where(path)} is not a list")
        if any(_same_value(n, item) for n in node.value):
            return
        if node.flow_style or not node.value:
            like = node.value[-1] if node.value and isinstance(node.value[-1], ScalarNode) else None
            rendered = render_scalar(item, self.style, like) if like is not None and not isinstance(
                item, dict | list) else render_flow(item, self.style)
            self._insert_flow(node, rendered if not self.style.json else None, item)
            return
        last_item = node.value[-1]
        text = self.text.text
        dash = _dash_index(text, last_item)
        dash_col = dash - self._line_start(dash)
        offset = int(last_item.start_mark.column) - dash_col if dash != last_item.start_mark.index else \
            self.style.item_offset
        item_style = Style(self.style.newline, self.style.indent, self.style.seq_offset, max(1, offset),
                           self.style.json)
        pos = self._after_line(self._content_end(last_item))
        lines = render_block_items([item], dash_col, item_style, last_item)
        self._insert_lines(pos, lines)

    def _remove_one(self, path: Path, value: Any) -> bool:
        root = self._root()
        steps, missing = self._walk_path(root, path)
        if missing or _is_null(steps[-1].node):
            return False
        node = steps[-1].node
        if not isinstance(node, SequenceNode):
            raise EditRefused(f"{_where(path)} is not a list")
        for i, item in enumerate(node.value):
            if _same_value(item, value):
                self._remove_member(steps, i)
                return True
        return False

    # -- splicing -----------------------------------------------------------------------------

    def _splice(self, start: int, end: int, new: str) -> None:
        text = self.text.text
        self.text.text = text[:start] + new + text[end:]

    def _scalar_end(self, node: ScalarNode) -> int:
        end = int(node.end_mark.index)
        if node.style in ("|", ">"):  # a block scalar ends after its line break(s): keep one
            text = self.text.text
            while end > node.start_mark.index and text[end - 1] in "\r\n":
                end -= 1
        return end

    def _content_end(self, node: Node) -> int:
        """Where a node's own text ends (block collections: their last leaf, not the comments after)."""
        while isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
            node = node.value[-1][1] if isinstance(node, MappingNode) else node.value[-1]
        if isinstance(node, ScalarNode):
            if node.style in ("|", ">") and "+" in self.text.text[node.start_mark.index:node.start_mark.index + 4]:
                return int(node.end_mark.index)  # `|+` keeps its trailing blank lines: they are its value
            return self._scalar_end(node)
        return int(node.end_mark.index)

    def _after_line(self, pos: int) -> int:
        nl = self.text.text.find("\n", pos)
        return len(self.text.text) if nl < 0 else nl + 1

    def _line_start(self, pos: int) -> int:
        return self.text.text.rfind("\n", 0, pos) + 1

    def _insert_lines(self, pos: int, lines: list[str]) -> None:
        nl = self.style.newline
        text = self.text.text
        block = nl.join(lines)
        if pos == len(text) and text and not text.endswith("\n"):
            self._splice(pos, pos, nl + block)
        else:
            self._splice(pos, pos, block + nl)

    def _insert_entry(self, mapping: MappingNode, key: PathItem, value: Any) -> None:
        style = self.style
        if mapping.flow_style or not mapping.value:
            self._insert_flow(mapping, None, (key, value))
            return
        col = mapping.value[0][0].start_mark.column
        pos = self._after_line(self._content_end(mapping.value[-1][1]))
        self._insert_lines(pos, render_block_entry(key, value, col, style))

    def _insert_flow(self, node: Node, rendered: str | None, member: Any) -> None:
        """A new member of a flow mapping (member = (key, value)) or flow sequence (member = item)."""
        assert isinstance(node, MappingNode | SequenceNode)
        style = self.style
        text = self.text.text
        is_map = isinstance(node, MappingNode)
        if not node.value:
            close = int(node.end_mark.index) - 1
            if text[close] not in "]}":
                raise EditRefused("cannot find the end of a flow collection")
            if is_map:
                key, value = member
                inner = f"{render_key(key, style)}: {render_flow(value, style)}"
            else:
                inner = render_flow(member, style)
            self._splice(close, close, inner)
            return
        last = node.value[-1][1] if is_map else node.value[-1]
        first = node.value[0][0] if is_map else node.value[0]
        end = self._content_end(last)
        multiline = first.start_mark.line > node.start_mark.line
        col = first.start_mark.column
        if is_map:
            key, value = member
            if multiline and style.json:
                body = f"{render_key(key, style)}: {render_json_block(value, style, col)}"
            else:
                body = f"{render_key(key, style)}: {render_flow(value, style)}"
        else:
            body = render_json_block(member, style, col) if multiline and style.json else \
                (rendered or render_flow(member, style))
        sep = "," + style.newline + " " * col if multiline else ", "
        self._splice(end, end, sep + body)

    def _replace_value(self, step: _Step, value: Any) -> None:
        """Replace the value of a mapping entry or sequence item with new content."""
        style = self.style
        node, parent, key = step.node, step.parent, step.key
        start = int(node.start_mark.index)
        end = self._content_end(node) if not _is_null(node) else int(node.end_mark.index)
        in_flow = (isinstance(parent, MappingNode | SequenceNode) and parent.flow_style) or style.json
        if in_flow or not isinstance(value, dict | list) or not value:
            rendered = render_json_block(value, style, self._indent_of(key or node)) if style.json else \
                render_flow(value, style)
            if key is not None and start == end:  # `key:` with nothing after
                rendered = " " + rendered
            self._splice(start, end, rendered)
            return
        if key is None:
            raise EditRefused("cannot replace a sequence item with a block collection")
        col = key.start_mark.column
        if isinstance(value, dict):
            lines: list[str] = []
            for k, v in value.items():
                lines += render_block_entry(k, v, col + style.indent, style)
        else:
            lines = render_block_items(value, col + style.seq_offset, style)
        self._splice(int(key.end_mark.index), end, ":" + style.newline + style.newline.join(lines))

    def _indent_of(self, node: Node) -> int:
        start = self._line_start(int(node.start_mark.index))
        line = self.text.text[start:]
        return len(line) - len(line.lstrip(" "))

    def _remove_member(self, steps: list[_Step], index: int) -> None:
        """Remove entry/item ``index`` of the collection at ``steps[-1]``. A mapping entry's value that
        loses its only member is removed with its key, up to keep_depth; a sequence item or a document
        that would be removed instead becomes {} / [] (removing it would change more than was asked)."""
        holder = steps[-1]
        collection = holder.node
        assert isinstance(collection, MappingNode | SequenceNode)
        text = self.text.text
        is_map = isinstance(collection, MappingNode)
        members = collection.value
        start_node = members[index][0] if is_map else members[index]
        end_node = members[index][1] if is_map else members[index]
        if len(members) == 1:
            depth = len(steps) - 1
            if holder.key is not None and isinstance(holder.parent, MappingNode) and depth > self.keep_depth:
                self._remove_member(steps[:-1], _index_in_parent(holder))
                return
            self._empty(holder, collection)
            return
        if collection.flow_style:
            if index + 1 < len(members):
                nxt = members[index + 1][0] if is_map else members[index + 1]
                self._splice(int(start_node.start_mark.index), int(nxt.start_mark.index), "")
            else:
                prev = members[index - 1][1] if is_map else members[index - 1]
                self._splice(self._content_end(prev), self._content_end(end_node), "")
            return
        start = int(start_node.start_mark.index)
        if not is_map:
            start = _dash_index(text, start_node)
        line_start = self._line_start(start)
        if text[line_start:start].strip() == "":
            self._splice(line_start, self._after_line(self._content_end(end_node)), "")
            return
        # the first entry of a mapping on a `- ` line: the next entry moves up to the dash
        if is_map and index + 1 < len(members):
            self._splice(start, int(members[index + 1][0].start_mark.index), "")
            return
        if is_map:  # the last entry, on the line of another: `- a: 1` cannot happen for a last entry
            prev = members[index - 1][1]
            self._splice(self._content_end(prev), self._content_end(end_node), "")
            return
        raise EditRefused("a nested sequence item on a shared line")

    def _empty(self, holder: _Step, collection: MappingNode | SequenceNode) -> None:
        """A collection that loses its only member becomes {} or []."""
        empty = "{}" if isinstance(collection, MappingNode) else "[]"
        if collection.flow_style:
            self._splice(int(collection.start_mark.index), int(collection.end_mark.index), empty)
            return
        end = self._content_end(collection)
        if holder.key is not None:
            self._splice(int(holder.key.end_mark.index), end, ": " + empty)
            return
        start = int(collection.start_mark.index)
        if isinstance(collection, SequenceNode):
            start = _dash_index(self.text.text, collection.value[0])
        self._splice(start, end, empty)


def _index_in_parent(step: _Step) -> int:
    parent = step.parent
    if isinstance(parent, MappingNode):
        return next(i for i, (k, _) in enumerate(parent.value) if k is step.key)
    assert isinstance(parent, SequenceNode)
    return next(i for i, n in enumerate(parent.value) if n is step.node)


def _dash_index(text: str, item: Node) -> int:
    """Position of the `-` that introduces a block sequence item."""
    pos = int(item.start_mark.index) - 1
    while pos >= 0 and text[pos] == " ":
        pos -= 1
    if pos < 0 or text[pos] != "-":
        return int(item.start_mark.index)
    return pos


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _same_value(node: Node, value: Any) -> bool:
    try:
        current = construct(node)
    except yaml.YAMLError:
        return False
    return bool(current == value and type(current) is type(value))


def _where(path: Path) -> str:
    from kubeharden.model import format_path

    return format_path(path) or "the document"


def apply_edits(data: bytes, doc_index: int, edits: list[Edit], json_mode: bool = False) -> bytes:
    """The bytes with every edit applied to one document (EditRefused when one cannot be made)."""
    text = Text(data)
    editor = DocumentEditor(text, doc_index, json_mode)
    for edit in edits:
        editor.apply(edit)
    return text.encode()
