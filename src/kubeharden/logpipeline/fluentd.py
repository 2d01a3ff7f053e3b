"""Fluentd configuration: ``<directive arg>`` ... ``</directive>`` blocks (source, match,
filter, label, system, and the sections inside them: buffer, server, store, transport,
security ...), ``key value`` parameters and ``@include``. Parameter names are case-sensitive in
Fluentd; directive names are kept in lower case."""

from __future__ import annotations

import re

from kubeharden.logpipeline import MAX_BLOCKS, MAX_INCLUDE_DEPTH, AgentConfig, Block, Param, Problem
from kubeharden.logpipeline.fluentbit import Includer

_OPEN_RE = re.compile(r"^<\s*([A-Za-z_][\w-]*)\s*([^>]*?)\s*>\s*(?:#.*)?$")
_CLOSE_RE = re.compile(r"^</\s*([A-Za-z_][\w-]*)\s*>\s*(?:#.*)?$")
_KINDS = {"source": "input", "match": "output", "filter": "filter", "system": "service"}


def looks_fluentd(text: str) -> bool:
    return bool(re.search(r"^\s*<\s*(match|source)\b", text, re.M))


def parse(text: str, where: str, include: Includer | None = None) -> AgentConfig:
    config = AgentConfig("fluentd", where)
    stack: list[Block] = []
    _parse_into(config, text, where, include, stack, 0)
    for block in stack:
        config.problems.append(Problem(f"<{block.directive}> is not closed", block.line, block.file))
    return config


def _value(raw: str) -> str:
    value = raw.strip()
    if value[:1] in ("'", '"') and value[-1:] == value[:1] and len(value) >= 2:
        return value[1:-1]
    # an unquoted value ends at a comment (not at "#{...}", embedded Ruby)
    return re.split(r"\s+#(?!\{)", value, maxsplit=1)[0].strip()


def _parse_into(config: AgentConfig, text: str, file: str, include: Includer | None, stack: list[Block],
                depth: int) -> None:
    count = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        opened = _OPEN_RE.match(line)
        if opened:
            name = opened.group(1).lower()
            count += 1
            if count > MAX_BLOCKS:
                config.problems.append(Problem(f"more than {MAX_BLOCKS} directives: the rest is not read",
                                               number, file))
                return
            kind = _KINDS.get(name, name) if not stack or stack[-1].kind == "label" else name
            block = Block(kind, "", line=number, name=opened.group(2).strip(), file=file, directive=name)
            if kind == "label":
                block.name = opened.group(2).strip()
            (stack[-1].children if stack else config.blocks).append(block)
            stack.append(block)
            continue
        closed = _CLOSE_RE.match(line)
        if closed:
            name = closed.group(1).lower()
            if not stack:
                config.problems.append(Problem(f"</{name}> without an opening <{name}>", number, file))
                continue
            stack.pop()
            continue
        if line.startswith("@include"):
            target = line[len("@include"):].strip()
            if depth >= MAX_INCLUDE_DEPTH:
                config.problems.append(Problem(f"@include nested deeper than {MAX_INCLUDE_DEPTH}: not read",
                                               number, file))
                continue
            found = include(file, target) if include is not None else []
            if not found:
                config.problems.append(Problem(f"@include {target}: not found", number, file, maybe_elsewhere=True))
            for name, included in found:
                if not config.may_include(number, file):
                    break
                _parse_into(config, included, name, include, stack, depth + 1)
            continue
        if not stack:
            config.problems.append(Problem("a parameter outside any directive", number, file))
            continue
        key, _, rest = line.partition(" ")
        if "\t" in key:
            key, _, more = key.partition("\t")
            rest = more + " " + rest
        block = stack[-1]
        if key == "@type" or (key == "type" and not block.type):  # "type" is the v0.12 spelling
            block.type = _value(rest).lower()
        block.params[key] = Param(_value(rest), number)


def outputs(config: AgentConfig) -> list[Block]:
    """Every <match> of the configuration, also those inside <label> directives."""
    found: list[Block] = []

    def visit(blocks: list[Block], in_label: bool) -> None:
        for block in blocks:
            if block.kind == "output" or (in_label and block.kind == "match"):
                block.kind = "output"
                found.append(block)
            elif block.kind == "label":
                visit(block.children, True)

    visit(config.blocks, False)
    return found


def inputs(config: AgentConfig) -> list[Block]:
    return [b for b in config.blocks if b.kind == "input"]
