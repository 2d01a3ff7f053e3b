#!/usr/bin/env python3
"""Noise review of `kubeharden audit`: alerts per detector (and severity) over

* day      the synthetic small cluster's day (audit.synthetic.benign_day, with yesterday as baseline)
* corpus   every workload of ../shared/corpus/real (or KUBEHARDEN_SHARED) as its create event by the
           CD system, a deployerIdentity, with the synthetic settings (approvedImagePrefixes unset:
           D14 is not about these third-party manifests)

A benign day should raise nothing; the corpus is ordinary software deployed by the usual path,
so what fires there is what a user would see on their first day; re-applying it unchanged (an
operator or a GitOps reconcile) should add nothing. Not timed: counts only.

    python benchmarks/bench_audit_noise.py [--shared DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def corpus_objects(corpus: Path) -> tuple[list[dict], int]:
    from kubeharden.loader import load_paths

    loaded = load_paths([str(corpus)])
    return [r.obj for r in loaded.resources], len(loaded.errors)


def count(events, settings: dict, baseline=None) -> tuple[Counter[tuple[str, str]], int]:
    from kubeharden.audit.event import AuditEvent
    from kubeharden.audit.runner import run_events
    from kubeharden.audit.settings import settings_from_mapping

    run = run_events((AuditEvent(e) for e in events), settings_from_mapping(settings), baseline=baseline,
                     keep_findings=1_000_000)
    return Counter((f.control_id, f.severity.label) for f in run.findings if not f.excepted), run.events_judged


def show(title: str, counts: Counter[tuple[str, str]], events: int) -> None:
    total = sum(counts.values())
    print(f"{title}: {events} events, {total} alerts")
    per_detector: dict[str, Counter[str]] = {}
    for (det, severity), n in counts.items():
        per_detector.setdefault(det, Counter())[severity] = n
    for det in sorted(per_detector):
        bits = ", ".join(f"{sev} {n}" for sev in ("critical", "high", "medium", "low")
                         if (n := per_detector[det][sev]))
        print(f"  {det}  {sum(per_detector[det].values()):>5}  ({bits})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default=os.environ.get("KUBEHARDEN_SHARED", str(ROOT.parent / "shared")))
    args = parser.parse_args()
    from kubeharden.audit.baseline import Baseline
    from kubeharden.audit.event import AuditEvent
    from kubeharden.audit.synthetic import CD, SETTINGS, benign_day, deployed

    baseline = Baseline()
    baseline.learn_all(AuditEvent(e) for e in benign_day(6000, seed=1))
    show("synthetic day (benign)", *count(benign_day(20_000, seed=2), SETTINGS, baseline))
    corpus = Path(args.shared) / "corpus" / "real"
    if not corpus.is_dir():
        print(f"corpus: {corpus} not found (--shared DIR)")
        return
    objects, errors = corpus_objects(corpus)
    settings = {k: v for k, v in SETTINGS.items() if k != "approvedImagePrefixes"}
    events = list(deployed(objects, user=CD))
    print(f"corpus: {len(objects)} objects read ({errors} input errors), {len(events)} workloads")
    show("corpus workloads created by the CD system", *count(events, settings))
    no_deployers = {k: v for k, v in settings.items() if k != "deployerIdentities"}
    show("the same, no deployerIdentities set", *count(events, no_deployers))
    # a second day: the CD system re-applies every named workload unchanged (full updates); the
    # corpus has several objects of one name (examples), one of each here, as in a cluster
    unique: dict[tuple[str, str, str], dict] = {}
    for e in events:
        ref = e["objectRef"]
        if ref.get("name"):
            unique.setdefault((ref["resource"], ref.get("namespace", ""), ref["name"]), e)
    once = list(unique.values())
    updates = [{**e, "verb": "update", "auditID": e["auditID"] + "-u"} for e in once]
    show(f"{len(once)} named workloads created, then re-applied unchanged by the CD system",
         *count([*once, *updates], settings))


if __name__ == "__main__":
    main()
