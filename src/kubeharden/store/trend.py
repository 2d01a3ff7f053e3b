"""`kubeharden history -o trend.html`: one self-contained page, an inline SVG chart per series
(overall and per-section score over time) and a table of its runs. No script, no external asset."""

from __future__ import annotations

from jinja2 import Environment, select_autoescape

from kubeharden.model import Section
from kubeharden.store import RunInfo

WIDTH, HEIGHT, PAD = 760, 240, 36
_COLORS = ["#1f4e9e", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#b7950b", "#2c3e50"]

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>kubeharden history</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d1d1f; }
table { border-collapse: collapse; margin: .5rem 0 2rem; font-size: .85rem; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .5rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.legend span { display: inline-block; margin-right: 1rem; font-size: .8rem; }
.legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: middle; }
.meta { color: #666; }
</style></head><body>
<h1>kubeharden history</h1>
<p class="meta">{{ store }} · {{ series|length }} series</p>
{% if not series %}<p>No runs in the store match.</p>{% endif %}
{% for s in series %}
<section class="series">
<h2>{{ s.name }}</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="{{ width }}" height="{{ height }}" role="img"
 aria-label="score over time for {{ s.name }}">
<rect x="{{ pad }}" y="{{ pad // 2 }}" width="{{ width - 2 * pad }}" height="{{ height - pad - pad // 2 }}"
 fill="#fafafa" stroke="#ddd"/>
{% for tick in [0, 25, 50, 75, 100] %}<text x="{{ pad - 4 }}" y="{{ s.y(tick) + 4 }}" font-size="10"
 text-anchor="end">{{ tick }}%</text><line x1="{{ pad }}" x2="{{ width - pad }}" y1="{{ s.y(tick) }}"
 y2="{{ s.y(tick) }}" stroke="#eee"/>{% endfor %}
{% for line in s.lines %}<polyline fill="none" stroke="{{ line.color }}" stroke-width="{{ line.width }}"
 points="{{ line.points }}"><title>{{ line.name }}</title></polyline>{% endfor %}
</svg>
<div class="legend">{% for line in s.lines %}<span><i style="background: {{ line.color }}"></i>{{ line.name }}</span>
{% endfor %}</div>
<table><tr><th>Run</th><th>When (UTC)</th><th>Score</th><th>Findings</th><th>Critical</th><th>High</th>
<th>Medium</th><th>Low</th><th>New</th><th>Fixed</th><th>Resources</th></tr>
{% for r in s.runs %}<tr><td>{{ r.id }}</td><td>{{ r.started_at[:19].replace("T", " ") }}</td>
<td>{{ "n/a" if r.score is none else "%.0f%%" % r.score }}</td><td>{{ r.findings }}</td>
<td>{{ r.by_severity.critical }}</td><td>{{ r.by_severity.high }}</td><td>{{ r.by_severity.medium }}</td>
<td>{{ r.by_severity.low }}</td><td>{{ "-" if r.new is none else r.new }}</td>
<td>{{ "-" if r.fixed is none else r.fixed }}</td><td>{{ r.resources }}</td></tr>
{% endfor %}</table>
</section>
{% endfor %}
</body></html>
"""

_ENV = Environment(autoescape=select_autoescape(default_for_string=True, default=True))


class _Series:
    def __init__(self, name: str, runs: list[RunInfo]) -> None:
        self.name = name
        self.runs = runs
        self.lines: list[dict[str, object]] = []
        scores: dict[str, list[tuple[int, float]]] = {"overall": []}
        for i, run in enumerate(runs):
            if run.score is not None:
                scores["overall"].append((i, run.score))
            for section, values in run.sections.items():
                if isinstance(values, dict) and values.get("score") is not None:
                    scores.setdefault(section, []).append((i, float(values["score"])))
        for n, (key, points) in enumerate(scores.items()):
            if not points:
                continue
            label = "Overall score" if key == "overall" else _section_label(key)
            self.lines.append({
                "name": label, "color": _COLORS[n % len(_COLORS)], "width": 3 if key == "overall" else 1.5,
                "points": " ".join(f"{self.x(i):.1f},{self.y(v):.1f}" for i, v in points),
            })

    def x(self, index: int) -> float:
        span = max(len(self.runs) - 1, 1)
        return PAD + (WIDTH - 2 * PAD) * (index / span if len(self.runs) > 1 else 0.5)

    def y(self, score: float) -> float:
        top, bottom = PAD // 2, HEIGHT - PAD
        return bottom - (bottom - top) * max(0.0, min(100.0, score)) / 100.0


def _section_label(value: str) -> str:
    try:
        return Section(value).label
    except ValueError:
        return value


def trend_html(series: dict[str, list[RunInfo]], store: str) -> str:
    return _ENV.from_string(_TEMPLATE).render(
        store=store, series=[_Series(name, runs) for name, runs in series.items()],
        width=WIDTH, height=HEIGHT, pad=PAD)
