"""`kubeharden fix` over a copy of ../shared/corpus/real: every file still loads, every written fix's
finding is gone, no finding is new, and a second run changes nothing.

Slow but bounded: the whole corpus takes about 50 s on one core, so a deterministic quarter of its
manifests (every fourth file in sorted order, directory layout kept) is fixed here, in about 15 s.
The figures (findings fixed per level, files touched, share of bytes changed) are printed with -s.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from kubeharden.fix.plan import Fixer, FixRequest, finding_key
from kubeharden.inventory import Inventory
from kubeharden.loader import load_paths
from kubeharden.model import FixLevel

SAMPLE_EVERY = 4
VALUES = {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001, "resources.limits.cpu": "500m",
          "resources.limits.memory": "512Mi", "resources.requests.cpu": "100m", "resources.requests.memory": "256Mi"}


def _sample(corpus: Path, dest: Path) -> list[Path]:
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json"))
    kept = files[::SAMPLE_EVERY]
    for src in kept:
        target = dest / src.relative_to(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return [dest / src.relative_to(corpus) for src in kept]


def test_corpus_round_trip(shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = shared_dir / "corpus" / "real"
    if not corpus.is_dir():
        pytest.skip(f"no corpus at {corpus}")
    monkeypatch.chdir(tmp_path)
    copied = _sample(corpus, Path("corpus"))
    originals = {p: p.read_bytes() for p in copied}
    before = load_paths(["corpus"])
    unreadable_before = {e.source for e in before.errors}

    report = Fixer(FixRequest(paths=["corpus"], level=FixLevel.TIGHTENING, values=VALUES, backup=False)).run()
    written = [c for c in report.changes if c.written]
    assert written, "the corpus has fixable findings"
    assert not [c.error for c in report.changes if c.error]

    # every file still loads, with the same resources
    after = load_paths(["corpus"])
    assert {e.source for e in after.errors} <= unreadable_before
    assert len(after.resources) == len(before.resources)

    # every written fix's finding is gone, no finding is new (a fresh scan from disk)
    fixer = Fixer(FixRequest(paths=["corpus"]))
    rescan = fixer.scan(Inventory(after.resources))
    refs = {id(r.ref()): r for r in after.resources}
    after_keys = Counter(finding_key(f, refs) for f in rescan.active_findings())
    before_refs = {id(r.ref()): r for r in report.resources}
    before_keys = Counter(finding_key(f, before_refs) for f in report.before.active_findings())
    assert not after_keys - before_keys
    fixed = [o for c in written for o in c.fixed]
    assert fixed
    for o in fixed:
        assert finding_key(o.finding, before_refs) not in after_keys, (o.file, o.finding.control_id, o.finding.path)

    # a second run is a no-op
    snapshot = {p: p.read_bytes() for p in copied}
    second = Fixer(FixRequest(paths=["corpus"], level=FixLevel.TIGHTENING, values=VALUES, backup=False)).run()
    assert not second.changes
    assert {p: p.read_bytes() for p in copied} == snapshot

    levels = Counter(o.finding.fix.level.value for o in fixed if o.finding.fix is not None)
    total = sum(len(b) for b in originals.values())
    changed = sum(len(line.encode()) - 1 for c in written for h, _ in c.hunks for line in h.lines
                  if line[:1] in "+-")
    print(f"\ncorpus sample: {len(copied)} files, {total} bytes; fixed {len(fixed)} findings "
          f"({dict(levels)}) in {len(written)} files; changed lines {changed} bytes = {100 * changed / total:.2f}%")

