"""Log forwarder configuration (Fluent Bit, Fluentd, Vector, Promtail) read into one model.

The parsers here are loaders: they read a configuration as the agent does and keep every
setting with its line; they never judge. ``analysis`` says what the settings mean (where an
output sends, whether with TLS and verification, how it buffers, which inputs it reads) and the
controls in ``kubeharden.controls.logging_pipeline`` judge that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubeharden.model import Resource

MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_INCLUDE_DEPTH = 8
# Included files read for one configuration in all: a glob that includes itself (or several files
# that include each other) would otherwise read files**depth times.
MAX_INCLUDES = 256
MAX_BLOCKS = 10_000


@dataclass
class Param:
    value: Any
    line: int | None = None  # 1-based, in the configuration text


@dataclass
class Block:
    """One section of a configuration: a Fluent Bit [OUTPUT], a Fluentd <match> (children:
    <buffer>, <server>, <store>), a Vector sink, a Promtail client. Keys are lower case for the
    agents whose keys are case-insensitive (Fluent Bit)."""

    kind: str  # input | output | filter | service | buffer | transport | server | store | ...
    type: str  # the plugin: tail, systemd, es, forward, elasticsearch, loki, vector ...
    params: dict[str, Param] = field(default_factory=dict)
    children: list[Block] = field(default_factory=list)
    line: int | None = None
    name: str = ""  # Vector component id, Fluentd match pattern, Promtail job name
    file: str = ""  # the file (or ConfigMap key) it was written in, when includes are followed
    directive: str = ""  # the name as written (Fluentd <source>, Fluent Bit [INPUT])

    def get(self, key: str) -> Any:
        param = self.params.get(key)
        return param.value if param is not None else None

    def line_of(self, key: str) -> int | None:
        param = self.params.get(key)
        return param.line if param is not None and param.line is not None else self.line


@dataclass
class Problem:
    message: str
    line: int | None = None
    file: str = ""
    # an @include not among the ConfigMap's keys: the agent may mount it from another volume
    maybe_elsewhere: bool = False


@dataclass
class AgentConfig:
    """One agent's configuration, from a ConfigMap data key or a node file."""

    agent: str  # fluent-bit | fluentd | vector | promtail
    where: str  # how findings name it: "ConfigMap logging/fluent-bit data[fluent-bit.conf]", a node path
    blocks: list[Block] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    resource: Resource | None = None  # the ConfigMap
    key: str = ""  # its data key
    node_path: str = ""  # the node file, for --root
    display: str = ""  # the file as findings name it
    includes_read: int = 0  # included files read so far (bounded by MAX_INCLUDES)

    def may_include(self, line: int, file: str) -> bool:
        """False (with a problem, once) when the configuration has read MAX_INCLUDES included files."""
        if self.includes_read < MAX_INCLUDES:
            self.includes_read += 1
            return True
        if self.includes_read == MAX_INCLUDES:
            self.includes_read += 1
            self.problems.append(Problem(f"more than {MAX_INCLUDES} included files (an include loop?): the rest "
                                         "is not read", line, file))
        return False

    def of_kind(self, kind: str) -> list[Block]:
        return [b for b in self.blocks if b.kind == kind]
