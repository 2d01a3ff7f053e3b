"""Write a large JSON document with one big list serialised a chunk at a time.

The output is byte for byte `orjson.dumps(document, option=OPTIONS)` with the list in place; only
a chunk of the list's items exists as Python objects at any moment, so a report of 200,000
findings does not hold 200,000 dicts (and a second copy of its bytes) in memory.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, TypeVar

import orjson

from kubeharden import jsonout

OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
PLACEHOLDER = "\x00streamed list\x00"  # cannot occur in output: orjson escapes control characters
CHUNK = 2000

T = TypeVar("T")


def dumps(value: Any) -> bytes:
    return jsonout.dumps(value, OPTIONS)


def stream(build: Callable[[list[Any]], Any], items: Sequence[T], to_json: Callable[[T], Any],
           out: BinaryIO) -> None:
    """`build(list)` returns the document with `list` where the items go; it is called once, with
    the real (empty) list when there are no items, else with a placeholder."""
    if not items:
        out.write(dumps(build([])) + b"\n")
        return
    head, tail = dumps(build([PLACEHOLDER])).split(dumps(PLACEHOLDER))
    indent = len(head) - head.rfind(b"\n") - 1  # the placeholder's column: where items start
    reindent = b"\n" + b" " * (indent - 2)
    out.write(head)
    for start in range(0, len(items), CHUNK):
        if start:
            out.write(b",\n" + b" " * indent)
        chunk = dumps([to_json(item) for item in items[start:start + CHUNK]])
        # A top-level list dumps as "[\n  {...},\n  {...}\n]": drop the brackets and move its items
        # to their depth in the document. JSON strings hold no raw newline, so this is safe.
        out.write(chunk[4:-2].replace(b"\n", reindent))
    out.write(tail + b"\n")


def render(build: Callable[[list[Any]], Any], items: Sequence[T], to_json: Callable[[T], Any]) -> bytes:
    buffer = io.BytesIO()
    stream(build, items, to_json, buffer)
    return buffer.getvalue()
