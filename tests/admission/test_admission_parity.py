"""Scan, webhook and generated ValidatingAdmissionPolicies agree, per control and object.

For every control with a CEL form: on each of its examples, on every shared Pod Security Standards
fixture (at the fixture's policy version) and on every workload of ../shared/corpus/real, the verdict of
`scan` (the engine over the loaded file), of the webhook (an AdmissionReview of the object through the
admission evaluator) and of the policies (their CEL, evaluated offline) is the same. A disagreement
fails naming the object and the control.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cel", reason="needs common-expression-language (the CEL evaluator)")

from kubeharden.admission import vap
from kubeharden.admission.celcheck import PolicySet
from kubeharden.admission.evaluate import AdmissionEvaluator
from kubeharden.admission.review import parse_review, review_body
from kubeharden.catalog import Control, Settings, all_controls
from kubeharden.engine import Engine
from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, load_paths
from kubeharden.model import Resource, Status

PROFILES = {"nsa", "pss-baseline", "pss-restricted"}


def _candidates() -> list[Control]:
    return [c for c in all_controls() if c.profiles & PROFILES]


class Judges:
    """The three judges for one set of settings, over the controls that have a CEL form for them."""

    def __init__(self, settings: Settings) -> None:
        generated = vap.generate(_candidates(), settings)
        self.controls = generated.expressed
        self.settings = settings
        self.policies = PolicySet(generated.documents)
        self.webhook = AdmissionEvaluator(self.controls, settings)

    def compare(self, resources: list[Resource], label: str) -> list[str]:
        """Disagreements on the workloads of ``resources`` (one loaded file)."""
        result = Engine(self.controls, self.settings).run(Inventory(resources))
        scan_fails: dict[int, set[str]] = defaultdict(set)
        for f in result.active_findings():
            if f.resource is not None:
                scan_fails[id(f.resource)].add(f.control_id)
        problems = []
        for res in resources:
            if res.kind not in vap.KIND_RESOURCES:
                continue
            decision = self.webhook.evaluate(parse_review(review_body(res.obj)))
            # the bindings leave kube-system out, as the webhook's namespaceSelector does: the logic is compared
            vap_verdicts = {v.control: v for v in self.policies.evaluate(res.obj, all_namespaces=True)}
            for ctrl in self.controls:
                scan = ctrl.id in scan_fails.get(id(res.ref()), set())
                hook = decision.verdicts.get(ctrl.id)
                verdict = vap_verdicts.get(ctrl.id)
                vap_fail = verdict is not None and not verdict.allowed
                if hook is None or scan != (hook is Status.FAIL) or scan != vap_fail:
                    detail = verdict.error or "; ".join(verdict.messages) if verdict else "no policy matched"
                    problems.append(f"{label} {res.display()} {ctrl.id}: scan={'fail' if scan else 'pass'} "
                                    f"webhook={hook or decision.skipped.get(ctrl.id)} "
                                    f"vap={'fail' if vap_fail else 'pass'} ({detail[:160]})")
        return problems


def _report(problems: list[str], checked: int) -> None:
    assert checked > 0
    assert not problems, f"{len(problems)} disagreements (of {checked} objects):\n" + "\n".join(problems[:40])


def _load_text(text: str, tmp_path: Path, name: str) -> list[Resource]:
    path = tmp_path / name
    path.write_text(text)
    loaded = load_paths([str(path)], LoadContext())
    assert not loaded.errors, loaded.errors
    return loaded.resources


def test_every_cel_control_has_parity_on_its_examples(tmp_path: Path) -> None:
    judges: dict[tuple[Any, ...], Judges] = {}
    problems: list[str] = []
    checked = 0
    expressed = {c.id for c in Judges(Settings()).controls}
    assert len(expressed) >= 40  # privileged, host namespaces, hostPath, capabilities, seccomp, images, PSS ...
    for ctrl in _candidates():
        for i, example in enumerate(ctrl.examples):
            key = (example.kubernetes_version, example.allowed_registries)
            if key not in judges:
                judges[key] = Judges(Settings(kubernetes_version=example.kubernetes_version,
                                              allowed_registries=example.allowed_registries))
            resources = _load_text(example.yaml, tmp_path, f"{ctrl.id}-{i}.yaml")
            problems += judges[key].compare(resources, f"{ctrl.id} example {i}")
            checked += 1
    _report(problems, checked)


def test_parity_on_the_pss_conformance_fixtures(shared_dir: Path) -> None:
    base = shared_dir / "conformance" / "pss"
    if not (base / "cases.jsonl").is_file():
        pytest.skip(f"no PSS conformance fixtures at {base}")
    cases = [json.loads(line) for line in (base / "cases.jsonl").read_text().splitlines() if line.strip()]
    judges = {v: Judges(Settings(extra={"pss_version": v})) for v in sorted({c["version"] for c in cases})}
    problems: list[str] = []
    for case in cases:
        loaded = load_paths([str(base / case["file"])], LoadContext())
        assert not loaded.errors
        problems += judges[case["version"]].compare(loaded.resources, case["file"])
    _report(problems, len(cases))


def _corpus_files(root: Path) -> Iterable[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file())


def test_parity_on_the_real_corpus(shared_dir: Path) -> None:
    root = shared_dir / "corpus" / "real"
    if not root.is_dir():
        pytest.skip(f"no corpus at {root}")
    judge = Judges(Settings())
    problems: list[str] = []
    workloads = 0
    for path in _corpus_files(root):
        text = path.read_bytes()
        # most of the corpus is CRDs, RBAC and config: only files that can hold a pod template are judged
        if not any(f"kind: {k}".encode() in text or f'"kind": "{k}"'.encode() in text for k in vap.KIND_RESOURCES):
            continue
        loaded = load_paths([str(path)], LoadContext())
        resources = loaded.resources
        workloads += sum(1 for r in resources if r.kind in vap.KIND_RESOURCES)
        problems += judge.compare(resources, str(path.relative_to(root)))
    _report(problems, workloads)


def test_a_wrong_policy_is_caught_naming_object_and_control(tmp_path: Path) -> None:
    judge = Judges(Settings())
    privileged = judge.policies.policies[vap.policy_name("KH-POD-005")]
    wrong = vap.policy_documents(next(c for c in judge.controls if c.id == "KH-POD-005"),
                                 [vap.per_container("true")], vap.Severity.HIGH)  # a policy that admits everything
    judge.policies.policies[privileged.name] = PolicySet(wrong).policies[privileged.name]
    bad = next(e for e in next(c for c in judge.controls if c.id == "KH-POD-005").examples if e.bad)
    problems = judge.compare(_load_text(bad.yaml, tmp_path, "bad.yaml"), "example")
    assert problems and all("KH-POD-005" in p and "Pod/" in p and "vap=pass" in p for p in problems)
