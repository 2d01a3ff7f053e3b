"""A chart's or overlay's own files that cannot be read or edited are an error for that path, never a
traceback, never their text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from kubeharden.fix import rendered
from kubeharden.fix.edit import EditRefused
from kubeharden.fix.files import FileProblem


def test_values_that_are_a_fifo_or_too_deep_map_nothing(tmp_path: Path) -> None:
    fifo = tmp_path / "values.yaml"
    os.mkfifo(fifo)
    assert rendered._load_values(fifo) == {}  # returns at once: a FIFO is not read
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 5000 + "]" * 5000)
    assert rendered._load_values(deep) == {}


@pytest.mark.parametrize("problem", [
    FileProblem("a FIFO, not a regular file: not read"),
    EditRefused("the node is an alias"),
    yaml.safe_load_all,  # replaced below by a real MarkedYAMLError
    OSError(13, "Permission denied"),
])
def test_problems_become_errors_without_the_files_text(problem: object, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    if problem is yaml.safe_load_all:
        try:
            yaml.safe_load("password: [hunter2-secret")
        except yaml.YAMLError as exc:
            problem = exc

    def raising(*args: object) -> None:
        raise problem  # type: ignore[misc]

    monkeypatch.setattr(rendered, "_fix_overlay", raising)
    request = rendered.FixRequest(paths=["overlays/prod"])  # type: ignore[call-arg]
    assert rendered.run(request, helm=False, values_file=None, fail_on=None) == 2
    err = capsys.readouterr().err
    assert "error: overlays/prod: " in err and "hunter2" not in err
