"""Vector configuration (TOML through tomllib, YAML, JSON): ``sources``, ``transforms`` and
``sinks`` tables of components, each with a ``type``; the global ``data_dir``."""

from __future__ import annotations

from typing import Any

from kubeharden.logpipeline import AgentConfig, Block, Param, Problem
from kubeharden.logpipeline.structured import LineFinder

_KINDS = {"sources": "input", "transforms": "filter", "sinks": "output"}


def looks_vector(data: Any) -> bool:
    return isinstance(data, dict) and (isinstance(data.get("sinks"), dict) or isinstance(data.get("sources"), dict))


def parse(data: dict[str, Any], where: str, lines: LineFinder) -> AgentConfig:
    config = AgentConfig("vector", where)
    service = Block("service", "", line=None, file=where)
    for key in ("data_dir", "acknowledgements"):
        if key in data:
            service.params[key] = Param(data[key], lines((key,)))
    config.blocks.append(service)
    for table, kind in _KINDS.items():
        components = data.get(table)
        if components is None:
            continue
        if not isinstance(components, dict):
            config.problems.append(Problem(f"{table} is not a table", lines((table,)), where))
            continue
        for name, body in components.items():
            if not isinstance(body, dict):
                config.problems.append(Problem(f"{table}.{name} is not a table", lines((table, name)), where))
                continue
            block = Block(kind, str(body.get("type", "")).lower(), line=lines((table, name)), name=str(name),
                          file=where)
            for key, value in body.items():
                block.params[str(key)] = Param(value, lines((table, name, key)))
            config.blocks.append(block)
    return config
