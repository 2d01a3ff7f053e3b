"""The real-world corpus scans end to end: no crash, no control error, errors named per file."""

from __future__ import annotations

from pathlib import Path

from kubeharden.scanner import ScanRequest, run_scan


def test_corpus_scan(shared_dir: Path) -> None:
    corpus = shared_dir / "corpus" / "real"
    result = run_scan(ScanRequest(paths=[str(corpus)]))
    assert result.resources > 3900
    internal = [e for e in result.errors if e.source.startswith("control ")]
    assert not internal, internal
    for error in result.errors:
        assert (Path(error.source)).is_file(), error
        assert error.line is not None, error
    assert result.findings, "the corpus is full of findings"
    for finding in result.findings:
        if finding.file and finding.resource:
            assert finding.line is not None and finding.line >= 1, finding
