"""A stand-in for `helm template` in tests where Helm is not installed: a small Go-template renderer
for the few forms the test charts use, with Helm's semantics for them.

Supported: ``{{ .Release.Name }}``, references (``.Values.a.b``, ``$.Values.a``, ``.``, ``.a``, ``$v.a``),
``toYaml X | nindent N`` / ``indent N``, ``with``, ``if``, ``else``, ``range X`` and ``range $k, $v := X``
(maps in sorted key order, like Go), ``end``, and the ``{{-`` / ``-}}`` whitespace trimming. Values:
the chart's values.yaml, then every ``--values=FILE`` merged over it (maps merged, a null deletes,
everything else replaced), as Helm does. Output: each template as ``---`` + ``# Source: CHART/templates/F``.
Anything else in a template is an error (exit 1), so a test cannot silently rely on an unsupported form.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

_TOKEN = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


def merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(base.get(key), value)
        return out
    return over


def tokens(text: str) -> list[tuple[str, str]]:
    """[("text", s) | ("action", s)] with Go's trim markers applied."""
    out: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for m in _TOKEN.finditer(text):
        chunk = text[pos:m.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if m.group(1):
            chunk = chunk.rstrip()
        out.append(("text", chunk))
        out.append(("action", m.group(2)))
        trim_next = bool(m.group(3))
        pos = m.end()
    tail = text[pos:]
    out.append(("text", tail.lstrip() if trim_next else tail))
    return out


def parse(toks: list[tuple[str, str]], i: int = 0, stop: tuple[str, ...] = ()) -> tuple[list[Any], int, str]:
    nodes: list[Any] = []
    while i < len(toks):
        kind, value = toks[i]
        i += 1
        if kind == "text":
            nodes.append(("text", value))
            continue
        word = value.split(" ", 1)[0]
        if word in ("end", "else"):
            if word not in stop:
                raise SystemExit(f"fake helm: unexpected {{{{ {value} }}}}")
            return nodes, i, word
        if word in ("with", "if", "range"):
            body, i, ended = parse(toks, i, ("end", "else"))
            other: list[Any] = []
            if ended == "else":
                other, i, _ = parse(toks, i, ("end",))
            nodes.append((word, value[len(word):].strip(), body, other))
            continue
        if value.startswith("/*"):
            continue
        nodes.append(("expr", value))
    if stop:
        raise SystemExit("fake helm: missing {{ end }}")
    return nodes, i, ""


def lookup(expr: str, dot: Any, root: dict[str, Any], variables: dict[str, Any]) -> Any:
    if expr == ".":
        return dot
    if expr.startswith("$."):
        base, rest = root, expr[2:]
    elif expr.startswith("$"):
        name, _, rest = expr.partition(".")
        base = variables[name]
    elif expr.startswith("."):
        base, rest = dot, expr[1:]
    else:
        raise SystemExit(f"fake helm: unsupported expression {expr!r}")
    for part in (rest.split(".") if rest else []):
        base = base.get(part) if isinstance(base, dict) else None
    return base


def evaluate(expr: str, dot: Any, root: dict[str, Any], variables: dict[str, Any]) -> Any:
    parts = [p.strip() for p in expr.split("|")]
    head = parts[0].split()
    if head[0] == "toYaml":
        value: Any = to_yaml(lookup(head[1], dot, root, variables))
    elif len(head) == 1:
        value = lookup(head[0], dot, root, variables)
    else:
        raise SystemExit(f"fake helm: unsupported expression {expr!r}")
    for pipe in parts[1:]:
        name, _, arg = pipe.partition(" ")
        if name not in ("nindent", "indent"):
            raise SystemExit(f"fake helm: unsupported function {name!r}")
        pad = " " * int(arg)
        text = "\n".join(pad + line for line in str(value).split("\n"))
        value = "\n" + text if name == "nindent" else text
    return value


def to_yaml(value: Any) -> str:
    if value is None:
        return "null"
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


def text_of(value: Any) -> str:
    if value is None:
        return ""  # helm drops "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise SystemExit("fake helm: printing a collection needs toYaml")
    return str(value)


def render(nodes: list[Any], dot: Any, root: dict[str, Any], variables: dict[str, Any]) -> str:
    out = []
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "expr":
            out.append(text_of(evaluate(node[1], dot, root, variables)))
        elif kind in ("with", "if"):
            value = evaluate(node[1], dot, root, variables)
            if value:
                out.append(render(node[2], value if kind == "with" else dot, root, variables))
            else:
                out.append(render(node[3], dot, root, variables))
        else:  # range
            head = node[1]
            names: list[str] = []
            if ":=" in head:
                left, _, head = head.partition(":=")
                names = [n.strip() for n in left.split(",")]
            value = evaluate(head.strip(), dot, root, variables)
            items = sorted(value.items()) if isinstance(value, dict) else list(enumerate(value or []))
            for key, item in items:
                scope = dict(variables)
                if len(names) == 2:
                    scope[names[0]], scope[names[1]] = key, item
                elif names:
                    scope[names[0]] = item
                out.append(render(node[2], item, root, scope))
    return "".join(out)


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "template" or "--" not in argv:
        print("fake helm: expected template [--values=F]... -- RELEASE CHART", file=sys.stderr)
        return 1
    sep = argv.index("--")
    release, chart = argv[sep + 1], Path(argv[sep + 2])
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    values: Any = yaml.safe_load((chart / "values.yaml").read_text()) if (chart / "values.yaml").exists() else {}
    for flag in argv[1:sep]:
        if flag.startswith("--values="):
            values = merge(values or {}, yaml.safe_load(Path(flag[len("--values="):]).read_text()) or {})
        else:
            print(f"fake helm: unsupported flag {flag}", file=sys.stderr)
            return 1
    root = {"Values": values or {}, "Release": {"Name": release}, "Chart": {"Name": meta["name"]}}
    for template in sorted((chart / "templates").glob("*.yaml")):
        nodes, _, _ = parse(tokens(template.read_text()))
        body = render(nodes, root, root, {"$": root})
        sys.stdout.write(f"---\n# Source: {meta['name']}/templates/{template.name}\n{body.strip(chr(10))}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
