"""Where a rendered field comes from in a Helm template: a path in the chart's values, or a line
of the template itself.

The template is read as text, line by line, with the YAML structure followed by indentation
(block mappings and sequences, compact or indented) and the template actions that change what
``.`` is (``with``, ``range``) kept on a stack. Three forms make a field values-driven:

* ``key: {{ .Values.a.b }}`` (or ``$.Values.a.b``, ``.b`` inside ``with .Values.a``): the field is
  the value ``a.b``;
* ``key:`` followed by ``{{- toYaml .Values.a | nindent N }}`` (or ``key: {{- toYaml ... }}``, or
  ``toYaml .`` inside ``with``): every field below ``key`` is the same field below ``a``;
* the above inside ``range .Values.list`` / ``range $k, $v := .Values.map``, when that range makes
  every item of its list in the rendered output: item ``i`` is element ``i`` of the list, or the
  ``i``-th key of the map in sorted order (Go's order).

Anything else (pipelines such as ``default`` or ``quote``, ``include``, ``tpl``, a field both
hard-coded and read from values, two places that could render it) is not mapped: the caller then
points at the template line. Only a mapping is computed here; whether the edited values render
what was meant is proved by rendering them again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kubeharden.model import Path

_ACTION_RE = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_KEY_RE = re.compile(r"""^(?P<key>[A-Za-z0-9_./-]+|"[^"]*"|'[^']*')\s*:(?:\s+(?P<rest>.*)|\s*)$""")
_REF_RE = re.compile(r"^(?:\$|\$?[A-Za-z_]\w*)?(?:\.[A-Za-z_]\w*)*$|^\.$")
_TO_YAML_RE = re.compile(r"^toYaml\s+(\S+)\s*\|\s*n?indent\s+(\d+)$")
_RANGE_RE = re.compile(r"^range\s+(?:(\$\w+)\s*(?:,\s*(\$\w+))?\s*:=\s*)?(\S+)$")
_WITH_RE = re.compile(r"^with\s+(\S+)$")
ROOT = ("<root>",)  # `.` at the top of a template: the root object, not a values path


@dataclass(frozen=True)
class Slot:
    """The item index a range produces: element i of the values at ``values``."""

    frame: int
    values: Path


@dataclass(frozen=True)
class Site:
    path: tuple[Any, ...]  # rendered path from the document root (str, int or Slot)
    values: tuple[Any, ...]  # values path (str, int or Slot)
    kind: str  # "scalar": the field is the value; "map": fields below path are fields below values
    line: int


@dataclass(frozen=True)
class Target:
    values: Path  # path in the values
    keep_depth: int  # a values key a template reads as a map: emptied, it stays {} / []
    line: int  # the template line that reads it


@dataclass
class _Frame:
    kind: str  # with, range, if, other
    dot: tuple[Any, ...] | None  # what `.` is inside: ROOT, a values path, None when unknown
    variables: dict[str, tuple[Any, ...] | None] = field(default_factory=dict)
    slot: Slot | None = None
    list_parent: tuple[Any, ...] | None = None  # the rendered list the range's items go to (its first `- `)


@dataclass
class _Entry:
    indent: int
    path: tuple[Any, ...]
    is_key: bool
    empty: bool  # a key with nothing after the colon: its value is on the next lines


@dataclass
class TemplateMap:
    sites: list[Site] = field(default_factory=list)
    literal: dict[tuple[Any, ...], int] = field(default_factory=dict)  # hard-coded key path -> line
    items: dict[tuple[Any, ...], list[Any]] = field(default_factory=dict)  # list path -> literal count / slots

    def line_of(self, path: Path) -> int | None:
        """The line of the deepest key of ``path`` the template names (literally or read from values)."""
        best: tuple[int, int] | None = None
        for candidate, line in [*self.literal.items(), *((s.path, s.line) for s in self.sites)]:
            depth = _matched_prefix(candidate, path)
            if depth is not None and (best is None or depth > best[0]):
                best = (depth, line)
        return best[1] if best else None

    def target(self, path: Path, values: Any) -> Target | None:
        """The values path that renders ``path`` (None when it is not read from values, or not only)."""
        found: list[Target] = []
        for site in self.sites:
            n = len(site.path)
            if (site.kind == "scalar" and n != len(path)) or (site.kind == "map" and n > len(path)):
                continue
            binding = _bind(site.path, path[:n], self)
            if binding is None:
                continue
            if any(_matched_prefix(lit, path) == len(lit) and len(lit) > n for lit in self.literal):
                return None  # a hard-coded key below the site: the values would duplicate it
            resolved = _resolve(site.values, binding, values)
            if resolved is None:
                return None
            rest = tuple(path[n:])
            found.append(Target((*resolved, *rest), len(resolved) if site.kind == "map" else 0, site.line))
        return found[0] if len(found) == 1 else None


def _matched_prefix(candidate: tuple[Any, ...], path: Path) -> int | None:
    """How many items of candidate match path's start (slots match any index); None if not a prefix."""
    if len(candidate) > len(path):
        return None
    for a, b in zip(candidate, path, strict=False):
        if isinstance(a, Slot):
            if not isinstance(b, int):
                return None
        elif a != b:
            return None
    return len(candidate)


def _bind(pattern: tuple[Any, ...], path: Path, tmap: TemplateMap) -> dict[Slot, int] | None:
    binding: dict[Slot, int] = {}
    for i, (a, b) in enumerate(zip(pattern, path, strict=True)):
        if isinstance(a, Slot):
            if not isinstance(b, int) or tmap.items.get(pattern[:i]) != [a]:
                return None  # the list has other items than the range's: index i is not element i
            binding[a] = b
        elif a != b:
            return None
    return binding


def _resolve(values_path: tuple[Any, ...], binding: dict[Slot, int], values: Any) -> Path | None:
    out: list[str | int] = []
    node = values
    for item in values_path:
        if isinstance(item, Slot):
            index = binding.get(item)
            if index is None:
                return None
            if isinstance(node, list) and 0 <= index < len(node):
                out.append(index)
                node = node[index]
            elif isinstance(node, dict) and 0 <= index < len(node):
                key = sorted(node, key=str)[index]
                out.append(str(key))
                node = node[key]
            else:
                return None
        else:
            out.append(item)
            node = node.get(item) if isinstance(node, dict) else None
    return tuple(out)


# ---------------------------------------------------------------------------------------------


def _unquote(key: str) -> str:
    return key[1:-1] if key[:1] in "'\"" and key[-1:] == key[:1] and len(key) > 1 else key


def _reference(expr: str, frames: list[_Frame]) -> tuple[Any, ...] | None:
    """The values path an expression names, or None."""
    expr = expr.strip()
    if not _REF_RE.match(expr):
        return None
    dot = next((f.dot for f in reversed(frames) if f.kind in ("with", "range")), ROOT)
    if expr == ".":
        base, rest = dot, ""
    elif expr.startswith("$."):
        base, rest = ROOT, expr[2:]
    elif expr.startswith("$"):
        name, _, rest = expr.partition(".")
        base = next((f.variables[name] for f in reversed(frames) if name in f.variables), None)
    elif expr.startswith("."):
        base, rest = dot, expr[1:]
    else:
        return None
    parts = tuple(rest.split(".")) if rest else ()
    if base is None:
        return None
    if base == ROOT:
        if parts[:1] != ("Values",):
            return None
        return parts[1:] if len(parts) > 1 else None
    if parts[:1] == ("Values",):
        return None  # .Values under a with/range: not the chart's values
    return (*base, *parts)


def parse_template(text: str) -> TemplateMap:
    tmap = TemplateMap()
    frames: list[_Frame] = []
    stack: list[_Entry] = []
    counters: dict[tuple[Any, ...], int] = {}
    frame_ids = 0

    def parent_for(indent: int, dash: bool) -> tuple[Any, ...]:
        while stack:
            top = stack[-1]
            if top.indent < indent or (dash and top.indent == indent and top.is_key and top.empty):
                break
            stack.pop()
        return stack[-1].path if stack else ()

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0] if "{{" not in raw else raw
        actions = _ACTION_RE.findall(line)
        bare = _ACTION_RE.sub("", line)
        if not bare.strip():
            if not actions:
                continue
            for action in actions:
                frame_ids = _control(action, frames, stack, tmap, number, frame_ids, parent_for)
            continue
        if bare.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        content = line.strip()
        dash = False
        if content.startswith("- ") or content == "-":
            dash = True
            parent = parent_for(indent, True)
            range_frame = next((f for f in reversed(frames) if f.kind == "range"), None)
            item: Any
            if range_frame is not None and range_frame.slot is not None and \
                    range_frame.list_parent in (None, parent):
                range_frame.list_parent = parent
                item = range_frame.slot
                record = tmap.items.setdefault(parent, [])
                if item not in record:
                    record.append(item)
            else:
                item = counters.get(parent, 0)
                counters[parent] = item + 1
                tmap.items.setdefault(parent, []).append("literal")
            stack.append(_Entry(indent, (*parent, item), False, False))
            content = content[1:].lstrip()
            indent = indent + (len(line.strip()) - len(content))
            if not content:
                continue
        match = _KEY_RE.match(content)
        if match is None:
            continue  # a scalar item or text the structure does not need
        parent = parent_for(indent, False) if not dash else stack[-1].path
        key = _unquote(match.group("key"))
        path = (*parent, key)
        rest = (match.group("rest") or "").strip()
        if rest.startswith("#"):
            rest = ""
        stack.append(_Entry(indent, path, True, not rest))
        if not rest:
            tmap.literal.setdefault(path, number)
            continue
        whole = re.fullmatch(r"\{\{-?\s*(.*?)\s*-?\}\}", rest)
        if whole is None:
            if "{{" not in rest:
                tmap.literal.setdefault(path, number)
            continue
        expr = whole.group(1)
        to_yaml = _TO_YAML_RE.match(expr)
        if to_yaml is not None:
            values = _reference(to_yaml.group(1), frames)
            if values is not None:
                tmap.sites.append(Site(path, values, "map", number))
            stack[-1].empty = True
            continue
        values = _reference(expr, frames)
        if values is not None:
            tmap.sites.append(Site(path, values, "scalar", number))
    return tmap


def _control(action: str, frames: list[_Frame], stack: list[_Entry], tmap: TemplateMap, number: int,
             frame_ids: int, parent_for: Any) -> int:
    word = action.split(" ", 1)[0]
    if action.startswith("/*") or word in ("", "-"):
        return frame_ids
    if word == "end":
        if frames:
            frames.pop()
        return frame_ids
    if word == "else":
        if frames:
            frames[-1].dot, frames[-1].variables, frames[-1].slot = None, {}, None  # what `.` is: not known
            frames[-1].kind = "with" if frames[-1].kind in ("with", "range") else frames[-1].kind
        return frame_ids
    with_match = _WITH_RE.match(action)
    if with_match is not None:
        frames.append(_Frame("with", _reference(with_match.group(1), frames)))
        return frame_ids
    range_match = _RANGE_RE.match(action)
    if range_match is not None:
        frame_ids += 1
        values = _reference(range_match.group(3), frames)
        slot = Slot(frame_ids, values) if values is not None else None
        element = (*values, slot) if values is not None and slot is not None else None
        first, second = range_match.group(1), range_match.group(2)
        variables: dict[str, tuple[Any, ...] | None] = {}
        if second:
            variables = {first: None, second: element}
        elif first:
            variables = {first: element}
        frames.append(_Frame("range", element, variables, slot))
        return frame_ids
    if word in ("if", "define", "block"):
        # `if` keeps `.`; inside define/block `.` is whatever include passes: not known
        frames.append(_Frame("if", None) if word == "if" else _Frame("with", None))
        return frame_ids
    to_yaml = _TO_YAML_RE.match(action)
    if to_yaml is not None:
        values = _reference(to_yaml.group(1), frames)
        column = int(to_yaml.group(2))
        parent = parent_for(column, False)
        if values is not None and stack and stack[-1].is_key and stack[-1].empty:
            tmap.sites.append(Site(parent, values, "map", number))
    return frame_ids
