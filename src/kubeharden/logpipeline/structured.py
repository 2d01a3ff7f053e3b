"""YAML and TOML configuration text read safely, with a way back to each path's line."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from typing import Any

from kubeharden.logpipeline import MAX_CONFIG_BYTES
from kubeharden.yamlsafe import Limits, YamlInputError, compose_documents, iter_yaml_documents, locate

LineFinder = Callable[[tuple[Any, ...]], "int | None"]
_LIMITS = Limits(max_file_bytes=MAX_CONFIG_BYTES, max_depth=64, max_aliases=100)


def read_yaml(text: str) -> tuple[Any, LineFinder, tuple[str, int | None] | None]:
    """The first document, a line finder, and the problem (message, line) when it cannot be read."""
    errors: list[YamlInputError] = []
    documents = list(iter_yaml_documents(text.encode(), _LIMITS, errors))
    if errors:
        return None, _no_lines, (errors[0].message, errors[0].line)
    data = documents[0].data if documents else None
    roots: list[Any] = []

    def lines(path: tuple[Any, ...]) -> int | None:
        if not roots:
            roots.append(compose_documents(text)[:1] or [None])
        line0 = locate(roots[0][0], path)
        return line0 + 1 if line0 is not None else None

    return data, lines, None


def read_toml(text: str) -> tuple[Any, LineFinder, tuple[str, int | None] | None]:
    """A TOML document (tomllib) and a line finder by table header ([sinks.id] or sinks.id.key)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        return None, _no_lines, ("not valid TOML", int(match.group(1)) if match else None)
    split = text.splitlines()

    def lines(path: tuple[Any, ...]) -> int | None:
        names = [str(p) for p in path if not isinstance(p, int)]
        best: int | None = None
        # the deepest table header that names a prefix of the path, then the key below it
        for depth in range(len(names), 0, -1):
            header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(_toml_key(n) for n in names[:depth]) + r"\s*\]")
            for number, line in enumerate(split, 1):
                if header.match(line):
                    best = number
                    if depth < len(names):
                        key = re.compile(r"^\s*" + _toml_key(names[depth]) + r"\s*[=.]")
                        for offset, rest in enumerate(split[number:], number + 1):
                            if rest.lstrip().startswith("["):
                                break
                            if key.match(rest):
                                return offset
                    return best
        return best

    return data, lines, None


def _toml_key(name: str) -> str:
    return r"(?:" + re.escape(name) + r"|\"" + re.escape(name) + r"\")"


def _no_lines(_path: tuple[Any, ...]) -> int | None:
    return None
