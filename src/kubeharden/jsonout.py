"""orjson serialisation that accepts every value a YAML or JSON input can hold.

orjson refuses integers beyond 64 bits, which a manifest can carry (`replicas: 1e30` is a float,
but `runAsUser: 99999999999999999999999` is an int); such a document must still be reported.
The rare document that holds one is serialised again with those integers as raw JSON numbers,
so the common path costs nothing extra.
"""

from __future__ import annotations

from typing import Any

import orjson

_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def _widen(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _widen(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_widen(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64_MIN <= value <= _UINT64_MAX:
        return orjson.Fragment(str(value).encode())
    return value


def dumps(value: Any, option: int = 0) -> bytes:
    try:
        return orjson.dumps(value, option=option, default=str)
    except TypeError:
        return orjson.dumps(_widen(value), option=option, default=str)
