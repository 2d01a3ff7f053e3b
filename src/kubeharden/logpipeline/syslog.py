"""Node log forwarding outside a log agent: rsyslog (legacy ``*.* @@host:port`` and RainerScript
``action(type="omfwd" ...)``, with the global ``$DefaultNetstreamDriver``) and
systemd-journal-upload (``[Upload] URL=``)."""

from __future__ import annotations

import re

from kubeharden.logpipeline import AgentConfig, Block, Param

_LEGACY_RE = re.compile(r"^\s*[^#\s$][^\s]*\s+(@@?)(\(o\))?\[?([^\]\s:;]+)\]?(?::(\d+))?")
_ACTION_RE = re.compile(r"action\s*\(([^)]*)\)", re.I | re.S)
_PARAM_RE = re.compile(r"([A-Za-z.]+)\s*=\s*\"([^\"]*)\"")
_DIRECTIVE_RE = re.compile(r"^\s*\$([A-Za-z]+)\s+(\S+)")
_GLOBAL_RE = re.compile(r"global\s*\(([^)]*)\)", re.I | re.S)


def parse_rsyslog(text: str, where: str) -> AgentConfig:
    config = AgentConfig("rsyslog", where)
    config.blocks.append(Block("input", "syslog", line=1, file=where))  # rsyslog reads the local system log
    service = Block("service", "", file=where)
    config.blocks.append(service)
    for number, line in enumerate(text.splitlines(), 1):
        directive = _DIRECTIVE_RE.match(line)
        if directive:
            service.params[directive.group(1).lower()] = Param(directive.group(2), number)
            continue
        legacy = _LEGACY_RE.match(line)
        if legacy and not line.lstrip().startswith("#"):
            block = Block("output", "omfwd", line=number, file=where)
            block.params["target"] = Param(legacy.group(3), number)
            block.params["protocol"] = Param("tcp" if legacy.group(1) == "@@" else "udp", number)
            if legacy.group(4):
                block.params["port"] = Param(legacy.group(4), number)
            config.blocks.append(block)
    for match in _GLOBAL_RE.finditer(text):
        number = text.count("\n", 0, match.start()) + 1
        for key, value in _PARAM_RE.findall(match.group(1)):
            service.params[key.lower()] = Param(value, number)
    for match in _ACTION_RE.finditer(text):
        params = {k.lower(): v for k, v in _PARAM_RE.findall(match.group(1))}
        kind = params.get("type", "").lower()
        if kind not in ("omfwd", "omrelp", "omhttp"):
            continue
        number = text.count("\n", 0, match.start()) + 1
        block = Block("output", kind, line=number, file=where)
        block.params.update({k: Param(v, number) for k, v in params.items()})
        config.blocks.append(block)
    return config


def parse_journal_upload(text: str, where: str) -> AgentConfig:
    config = AgentConfig("systemd-journal-upload", where)
    config.blocks.append(Block("input", "journal", line=1, file=where))
    block = Block("output", "journal-upload", line=None, file=where)
    section = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]").strip()
            continue
        key, _, value = line.partition("=")
        if section == "Upload" and value.strip():
            block.params[key.strip().lower()] = Param(value.strip(), number)
            block.line = block.line or number
    if "url" in block.params:
        config.blocks.append(block)
    return config
