"""After the inputs are read: a log agent configuration in a ConfigMap that cannot be read (not
valid TOML or YAML, an unclosed Fluentd directive, a setting outside any section, an include
loop...) is an input error at the ConfigMap's file and line (the key's line plus the line inside
its value), named `ConfigMap NS/NAME data[KEY]: reason`, so a scan exits 2 on it as on any other
unreadable input. An @include that is not among the ConfigMap's keys is a warning: the agent may
mount it from another volume.

Loader side only: nothing is judged here (the logging controls still name what they could not read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubeharden.inventory import Inventory, as_dict
from kubeharden.loader import LineLocator, LoadResult
from kubeharden.logpipeline.sources import from_configmaps
from kubeharden.model import InputError

if TYPE_CHECKING:
    from kubeharden.scanner import ScanRequest

MAX_REPORTED = 20  # problems per configuration turned into input errors; the rest are counted


def enrich(request: ScanRequest, loaded: LoadResult) -> dict[str, Any]:
    configmaps = [r for r in loaded.resources if r.kind == "ConfigMap"]
    if not configmaps:
        return {}
    for config in from_configmaps(Inventory(configmaps)):
        if not config.problems or config.resource is None:
            continue
        res = config.resource
        data = as_dict(res.obj.get("data"))
        shown = config.problems[:MAX_REPORTED]
        keys = [p.file if p.file in data else config.key for p in shown]
        key_lines = LineLocator().resolve([(res.source, ("data", key)) for key in keys])
        for problem, key, key_line in zip(shown, keys, key_lines, strict=True):
            multiline = "\n" in str(data.get(key) or "")
            line = key_line + problem.line if key_line is not None and problem.line and multiline else key_line
            where = f"{config.where.rsplit('[', 1)[0]}[{key}]"
            error = InputError(res.source.file, f"{where}: {problem.message}", line)
            (loaded.warnings if problem.maybe_elsewhere else loaded.errors).append(error)
        if len(config.problems) > MAX_REPORTED:
            loaded.errors.append(InputError(res.source.file, f"{config.where}: {len(config.problems) - MAX_REPORTED} "
                                            "more problems in this configuration", key_lines[0]))
    return {}
