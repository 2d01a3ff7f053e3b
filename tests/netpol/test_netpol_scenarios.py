"""Golden NetworkPolicy scenarios: isolation and `can` answers checked by hand."""

from __future__ import annotations

from typing import Any

import pytest
from netpol_fixtures import load_scenarios, model_of, scenario_yaml

from kubeharden.netpol import EGRESS, INGRESS, NetworkModel, Verdict, parse_address, parse_port_query

SCENARIOS = load_scenarios()
QUESTIONS = [(s, q) for s in SCENARIOS for q in s.get("can", [])]
_models: dict[str, NetworkModel] = {}


def _model(scenario: dict[str, Any]) -> NetworkModel:
    if scenario["name"] not in _models:
        _models[scenario["name"]] = model_of(scenario_yaml(scenario))
    return _models[scenario["name"]]


def ask(model: NetworkModel, q: dict[str, Any]) -> Verdict:
    port = parse_port_query(str(q["port"])) if q.get("port") is not None else None
    if "to_ip" in q:
        return model.can_reach_address(model.find(q["from"]), parse_address(q["to_ip"]), port)
    if "from_ip" in q:
        return model.can_be_reached_from_address(parse_address(q["from_ip"]), model.find(q["to"]), port)
    return model.can(model.find(q["from"]), model.find(q["to"]), port)


def test_there_are_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 40
    assert len(QUESTIONS) >= 150


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_isolation(scenario: dict[str, Any]) -> None:
    model = _model(scenario)
    assert len(model.problems) == scenario.get("problems", 0), [p.message for p in model.problems]
    for ref, directions in (scenario.get("isolated") or {}).items():
        endpoint = model.find(ref)
        got = [d.lower() for d in (INGRESS, EGRESS) if model.isolated(endpoint, d)]
        assert got == directions, f"{ref}: isolated for {got}, expected {directions}"


@pytest.mark.parametrize(
    ("scenario", "question"), QUESTIONS,
    ids=[f"{s['name'][:50]}|{q.get('from', q.get('from_ip'))}->{q.get('to', q.get('to_ip'))}:{q.get('port', '*')}"
         for s, q in QUESTIONS],
)
def test_can(scenario: dict[str, Any], question: dict[str, Any]) -> None:
    verdict = ask(_model(scenario), question)
    assert verdict.allowed is question["allowed"], verdict.reasons + verdict.notes
    rules = {f"{m.policy.key} {m.rule.field_name}" for m in verdict.deciding}
    for rule in question.get("by", []):
        assert rule in rules, f"{rule} not among the deciding rules {rules}"
    denials = {f"{m.policy.key} {m.rule.field_name}" for side in (verdict.egress, verdict.ingress) if side
               for m in side.denials}
    for rule in question.get("denied_by", []):
        assert rule in denials, f"{rule} not among the denying rules {denials}"
    if not verdict.allowed:
        assert not verdict.deciding
    # every answer explains both sides it judged
    assert verdict.reasons
