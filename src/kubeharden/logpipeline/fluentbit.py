"""Fluent Bit configuration: the classic format (``[SECTION]`` then ``Key Value`` lines,
``@INCLUDE``, ``@SET``) and the YAML format (``service``, ``pipeline.inputs/outputs/filters``,
``includes``). Keys are case-insensitive in Fluent Bit: they are kept in lower case."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from kubeharden.logpipeline import MAX_BLOCKS, MAX_INCLUDE_DEPTH, AgentConfig, Block, Param, Problem

# name -> text of an included file (relative to the including one), or None when absent
Includer = Callable[[str, str], list[tuple[str, str]]]

_SECTION_RE = re.compile(r"^\s*\[\s*([A-Za-z_]+)\s*\]\s*(?:#.*)?$")
_VAR_RE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_KINDS = {"INPUT": "input", "OUTPUT": "output", "FILTER": "filter", "SERVICE": "service", "PARSER": "parser",
          "MULTILINE_PARSER": "parser", "UPSTREAM": "upstream", "NODE": "node", "PLUGINS": "plugins",
          "CUSTOM": "custom"}


def looks_classic(text: str) -> bool:
    return bool(re.search(r"^\s*\[\s*(INPUT|OUTPUT|SERVICE|FILTER)\s*\]", text, re.I | re.M))


def looks_yaml(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("pipeline"), dict)


def parse_classic(text: str, where: str, include: Includer | None = None) -> AgentConfig:
    config = AgentConfig("fluent-bit", where)
    variables: dict[str, str] = {}
    _parse_classic_into(config, text, where, include, variables, 0)
    return config


def _parse_classic_into(config: AgentConfig, text: str, file: str, include: Includer | None,
                        variables: dict[str, str], depth: int) -> None:
    current: Block | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        section = _SECTION_RE.match(raw)
        if section:
            name = section.group(1).upper()
            current = Block(_KINDS.get(name, name.lower()), "", line=number, file=file)
            if len(config.blocks) >= MAX_BLOCKS:
                config.problems.append(Problem(f"more than {MAX_BLOCKS} sections: the rest is not read", number, file))
                return
            config.blocks.append(current)
            continue
        if line.upper().startswith("@INCLUDE"):
            target = line[len("@INCLUDE"):].strip()
            if depth >= MAX_INCLUDE_DEPTH:
                config.problems.append(Problem(f"@INCLUDE nested deeper than {MAX_INCLUDE_DEPTH}: not read",
                                               number, file))
                continue
            found = include(file, target) if include is not None else []
            if not found:
                config.problems.append(Problem(f"@INCLUDE {target}: not found", number, file, maybe_elsewhere=True))
            for name, included in found:
                if not config.may_include(number, file):
                    break
                _parse_classic_into(config, included, name, include, variables, depth + 1)
            current = None  # an included file starts its own sections
            continue
        if line.upper().startswith("@SET"):
            key, _, value = line[len("@SET"):].strip().partition("=")
            variables[key.strip()] = value.strip()
            continue
        if current is None:
            config.problems.append(Problem("a setting outside any [SECTION]", number, file))
            continue
        parts = line.split(None, 1)
        if len(parts) < 2:
            config.problems.append(Problem(f"'{parts[0]}' has no value", number, file))
            continue
        key, value = parts[0].lower(), _VAR_RE.sub(lambda m: variables.get(m.group(1), m.group(0)), parts[1].strip())
        if key == "name":
            current.type = value.lower()
        current.params[key] = Param(value, number)


def parse_yaml(data: dict[str, Any], where: str, lines: Callable[[tuple[Any, ...]], int | None]) -> AgentConfig:
    """``data`` is the parsed YAML document; ``lines`` finds the line of a path in it."""
    config = AgentConfig("fluent-bit", where)
    service = data.get("service")
    if isinstance(service, dict):
        config.blocks.append(_yaml_block("service", service, ("service",), lines, where))
    pipeline = data.get("pipeline") or {}
    for section, kind in (("inputs", "input"), ("filters", "filter"), ("outputs", "output")):
        items = pipeline.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            config.problems.append(Problem(f"pipeline.{section} is not a list", lines(("pipeline", section)), where))
            continue
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                config.problems.append(Problem(f"pipeline.{section}[{index}] is not a mapping",
                                               lines(("pipeline", section, index)), where))
                continue
            config.blocks.append(_yaml_block(kind, item, ("pipeline", section, index), lines, where))
    return config


def _scalar(value: Any) -> Any:
    if value is True:
        return "on"
    if value is False:
        return "off"
    return value if isinstance(value, (dict, list)) else str(value)


def _yaml_block(kind: str, item: dict[str, Any], path: tuple[Any, ...],
                lines: Callable[[tuple[Any, ...]], int | None], file: str) -> Block:
    block = Block(kind, str(item.get("name", "")).lower(), line=lines(path), file=file)
    for key, value in item.items():
        block.params[str(key).lower()] = Param(_scalar(value), lines((*path, key)))
    return block


def include_from(files: dict[str, str]) -> Includer:
    """Includes resolved among a set of named texts (the keys of one ConfigMap, mounted as one
    directory): by base name, with the glob patterns Fluent Bit accepts."""

    def find(_including: str, target: str) -> list[tuple[str, str]]:
        pattern = target.rsplit("/", 1)[-1]
        return [(name, files[name]) for name in sorted(files) if fnmatch.fnmatchcase(name, pattern)]

    return find
