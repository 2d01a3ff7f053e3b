"""`.kubeharden.yaml`: defaults for the options of `scan` (and `node`), per repository.

Precedence, as click resolves it: command-line flags > ``KUBEHARDEN_<COMMAND>_<OPTION>`` environment
variables > the config file > built-in defaults. Keys are the long option names (``fail-on``,
``exceptions``, ``skip``); an unknown key is an error naming file:line with the key probably meant.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Any

import click
from yaml.nodes import MappingNode

from kubeharden.loader import InputProblem, decode_input
from kubeharden.safeio import UnsafePathError, read_regular
from kubeharden.yamlsafe import Limits, YamlInputError, compose_documents, iter_yaml_documents

CONFIG_NAME = ".kubeharden.yaml"
# the commands whose options the file sets (each takes the keys it has)
CONFIG_COMMANDS = ("scan", "node")


class ConfigError(Exception):
    """str() is `FILE:LINE: reason`."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.path, self.message, self.line = path, message, line

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class _Key:
    param: click.Parameter
    command: str


def _option_keys(commands: dict[str, click.Command]) -> dict[str, list[_Key]]:
    """Long option name without dashes (``fail-on``) -> the (command, parameter) pairs it sets."""
    keys: dict[str, list[_Key]] = {}
    for name, command in commands.items():
        for param in command.params:
            if not isinstance(param, click.Option) or param.name is None or param.hidden:
                continue
            longs = [opt for opt in param.opts if opt.startswith("--")]
            if not longs or longs[0] in ("--help", "--version"):
                continue
            keys.setdefault(longs[0][2:], []).append(_Key(param, name))
    return keys


def find_config(explicit: str | None) -> str | None:
    """The config file to read: --config (or KUBEHARDEN_CONFIG), else ./.kubeharden.yaml if present."""
    if explicit:
        return explicit
    return CONFIG_NAME if os.path.isfile(CONFIG_NAME) else None


def load_config(path: str, commands: dict[str, click.Command]) -> dict[str, dict[str, Any]]:
    """The file as click's ``default_map``: {command: {parameter name: value}}."""
    limits = Limits()
    try:
        raw, _ = decode_input(read_regular(path, limits.max_file_bytes))
    except UnsafePathError as exc:
        raise ConfigError(path, f"cannot read config file: {exc.message}") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read config file: {exc.strerror or exc}") from None
    except InputProblem as problem:
        raise ConfigError(path, problem.message, problem.line) from None
    problems: list[YamlInputError] = []
    documents = list(iter_yaml_documents(raw, limits, problems))
    problems += [w for doc in documents for w in doc.warnings]  # our own file: duplicate keys are errors
    if problems:
        first = min(problems, key=lambda p: p.line or 0)
        raise ConfigError(path, f"invalid YAML: {first.message}", first.line)
    if len(documents) > 1:
        raise ConfigError(path, "expected one YAML document", documents[1].start_line)
    data = documents[0].data if documents else None
    if data is None:
        return {}
    node = next(iter(compose_documents(raw)), None)
    if not isinstance(data, dict) or not isinstance(node, MappingNode):
        raise ConfigError(path, "expected a mapping of option names to values (e.g. fail-on: high)", 1)
    lines = {str(key.value): key.start_mark.line + 1 for key, _ in node.value}
    known = _option_keys(commands)
    base = os.path.dirname(path)
    out: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        line = lines.get(key)
        targets = known.get(key)
        if targets is None:
            meant = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
            hint = f" (did you mean '{meant[0]}'?)" if meant else ""
            raise ConfigError(path, f"unknown key '{key[:60]}'{hint}; keys are the long options of "
                              f"{' and '.join(CONFIG_COMMANDS)} (see `kubeharden scan --help`)", line)
        for target in targets:
            out.setdefault(target.command, {})[str(target.param.name)] = _value(target.param, key, value, base,
                                                                               path, line)
    return out


def _value(param: click.Parameter, key: str, value: Any, base: str, path: str, line: int | None) -> Any:
    is_flag = isinstance(param, click.Option) and param.is_flag and not param.multiple
    if is_flag:
        if not isinstance(value, bool):
            raise ConfigError(path, f"'{key}' is a flag: give true or false", line)
        return value
    items = value if isinstance(value, list) else [value]
    if not param.multiple and isinstance(value, list):
        raise ConfigError(path, f"'{key}' takes one value, not a list", line)
    for item in items:
        if isinstance(item, (dict, list)) or item is None:
            raise ConfigError(path, f"'{key}' takes {'a list of ' if param.multiple else ''}text or numbers", line)
    texts = [str(item).lower() if isinstance(item, bool) else str(item) for item in items]
    if isinstance(param.type, click.Path) and base:
        # a path in the file is relative to the file, wherever kubeharden runs
        texts = [t if os.path.isabs(t) or t == "-" else os.path.join(base, t) for t in texts]
    return texts if param.multiple else texts[0]
