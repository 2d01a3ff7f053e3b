"""Where log agent configurations come from: ConfigMaps of the input (every data key that
holds a configuration, Fluent Bit / Fluentd includes resolved among the keys of the same
ConfigMap, which are mounted as one directory) and, with ``kubeharden node --root``, the agents'
files on the node, read through the node root as a chroot (``resolve_in_root``)."""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from kubeharden import safeio
from kubeharden.inventory import Inventory
from kubeharden.logpipeline import (
    MAX_CONFIG_BYTES,
    AgentConfig,
    Block,
    Problem,
    fluentbit,
    fluentd,
    promtail,
    syslog,
    vector,
)
from kubeharden.logpipeline.structured import read_toml, read_yaml
from kubeharden.model import Resource
from kubeharden.nodeconf.snapshot import resolve_in_root

# Node files of the agents people install on hosts (packages put them here).
NODE_FILES = (
    "/etc/fluent-bit/fluent-bit.conf", "/etc/fluent-bit/fluent-bit.yaml", "/etc/fluent-bit/fluent-bit.yml",
    "/etc/td-agent-bit/td-agent-bit.conf",
    "/etc/fluent/fluentd.conf", "/etc/fluent/fluent.conf", "/etc/fluentd/fluent.conf", "/etc/td-agent/td-agent.conf",
    "/etc/vector/vector.toml", "/etc/vector/vector.yaml", "/etc/vector/vector.yml", "/etc/vector/vector.json",
    "/etc/promtail/config.yml", "/etc/promtail/config.yaml", "/etc/promtail/promtail.yaml",
    "/etc/rsyslog.conf", "/etc/systemd/journal-upload.conf",
)
NODE_DIRS = ("/etc/rsyslog.d",)
_INCLUDE_RE = re.compile(r"^\s*@include\s+(\S+)", re.I | re.M)


@dataclass
class Pipelines:
    configs: list[AgentConfig] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why some evidence could not be read

    def problems(self) -> list[tuple[AgentConfig, Problem]]:
        return [(c, p) for c in self.configs for p in c.problems]


def parse_text(text: str, name: str, where: str, include: fluentbit.Includer | None = None) -> AgentConfig | None:
    """The configuration in ``text`` (a file or ConfigMap key named ``name``), or None when it is
    no log agent's configuration."""
    lower = name.lower()
    base = posixpath.basename(lower)
    if base == "journal-upload.conf":
        return syslog.parse_journal_upload(text, where)
    if base == "rsyslog.conf" or (lower.startswith("/etc/rsyslog.d/") and base.endswith(".conf")):
        return syslog.parse_rsyslog(text, where)
    if lower.endswith(".toml"):
        data, lines, problem = read_toml(text)
        if problem is not None:
            return _unreadable("vector", where, problem) if "sinks" in text or "sources" in text else None
        return vector.parse(data, where, lines) if vector.looks_vector(data) else None
    if lower.endswith((".yaml", ".yml", ".json")):
        data, lines, problem = read_yaml(text)
        if problem is not None:
            guess = ("fluent-bit" if "pipeline:" in text else "vector" if "sinks:" in text
                     else "promtail" if "scrape_configs" in text else None)
            return _unreadable(guess, where, problem) if guess else None
        if fluentbit.looks_yaml(data):
            return fluentbit.parse_yaml(data, where, lines)
        if promtail.looks_promtail(data):
            return promtail.parse(data, where, lines)
        if vector.looks_vector(data):
            return vector.parse(data, where, lines)
        return None
    if fluentd.looks_fluentd(text):
        return fluentd.parse(text, where, include)
    if fluentbit.looks_classic(text):
        return fluentbit.parse_classic(text, where, include)
    return None


def _unreadable(agent: str, where: str, problem: tuple[str, int | None]) -> AgentConfig:
    config = AgentConfig(agent, where)
    config.problems.append(Problem(problem[0], problem[1], where))
    return config


def from_configmaps(inventory: Inventory) -> list[AgentConfig]:
    found: list[AgentConfig] = []
    for cm in inventory.of_kind("ConfigMap"):
        data = cm.obj.get("data")
        if not isinstance(data, dict):
            continue
        texts = {str(k): v for k, v in data.items() if isinstance(v, str) and len(v) <= MAX_CONFIG_BYTES}
        # a key another key includes is read as part of it (a key including itself does not count)
        included = {name for key, text in texts.items() for target in _INCLUDE_RE.findall(text)
                    for name in texts if name != key and fnmatch.fnmatchcase(name, posixpath.basename(target))}
        if texts and included >= set(texts):
            included = set()  # keys that all include each other: none is the main file, read each
        include = fluentbit.include_from(texts)
        for key in sorted(texts):
            if key in included:
                continue  # read as part of the file that includes it
            config = parse_text(texts[key], key, f"ConfigMap {_name(cm)} data[{key}]", include)
            if config is not None:
                config.resource, config.key = cm, key
                found.append(config)
    return found


def _name(res: Resource) -> str:
    return f"{res.namespace}/{res.name}" if res.namespace else res.name


def from_root(root: str, display: Any) -> Pipelines:
    """The agents' files under a node root. ``display(path)`` names a node path in findings."""
    out = Pipelines()
    paths = list(NODE_FILES)
    for directory in NODE_DIRS:
        paths += [f"{directory}/{name}" for name in _listdir(root, directory) if name.endswith(".conf")]
    for path in paths:
        text, problem = _read(root, path)
        if problem:
            out.notes.append(f"{display(path)}: {problem}")
        if text is None:
            continue

        def include(including: str, target: str, main: str = path) -> list[tuple[str, str]]:
            directory = posixpath.dirname(including if including.startswith("/") else main)
            pattern = target if target.startswith("/") else posixpath.join(directory, target)
            found = []
            for candidate in sorted(_glob(root, pattern)):
                content, _ = _read(root, candidate)
                if content is not None:
                    found.append((candidate, content))
            return found

        config = parse_text(text, path, path, include)  # node paths while reading, for includes
        if config is not None:
            config.where = config.display = display(path)
            config.node_path = path
            items: list[Problem | Block] = [*config.problems, *_all_blocks(config.blocks)]
            for item in items:
                item.file = display(item.file or path)
            out.configs.append(config)
    return out


def _all_blocks(blocks: list[Block]) -> list[Block]:
    return [x for b in blocks for x in (b, *_all_blocks(b.children))]


def _read(root: str, path: str) -> tuple[str | None, str | None]:
    try:
        real, _ = resolve_in_root(root, path)
        raw = safeio.read_regular(real, MAX_CONFIG_BYTES, follow_symlinks=False)
    except FileNotFoundError:
        return None, None
    except safeio.UnsafePathError as exc:
        return None, str(exc)
    except OSError as exc:
        if isinstance(exc, (NotADirectoryError, IsADirectoryError)):
            return None, None
        return None, f"cannot read: {exc.strerror or exc}"
    return raw.decode("utf-8", "replace"), None


def _listdir(root: str, directory: str) -> list[str]:
    try:
        real, _ = resolve_in_root(root, directory)
        return sorted(os.listdir(real))
    except (OSError, safeio.UnsafePathError):
        return []


def _glob(root: str, pattern: str) -> list[str]:
    directory, name = posixpath.split(pattern)
    if not any(c in name for c in "*?["):
        return [pattern]
    return [posixpath.join(directory, n) for n in _listdir(root, directory) if fnmatch.fnmatchcase(n, name)]


def pipelines(inventory: Inventory) -> Pipelines:
    """Every log agent configuration of the input, built once per scan."""
    return inventory.analysis(_build)


def _build(inventory: Inventory) -> Pipelines:
    out = Pipelines(from_configmaps(inventory))
    facts = inventory.facts.get("node")
    snapshot = getattr(facts, "snapshot", None)
    if snapshot is not None:
        if snapshot.origin == "root":
            node = from_root(snapshot.location, snapshot.display)
            out.configs += node.configs
            out.notes += node.notes
        else:
            out.notes.append("a node bundle holds no log agent files (collect-node does not copy them); "
                             "read the node with --root")
    return out
