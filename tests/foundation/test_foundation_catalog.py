"""The catalog: metadata is complete and every control's examples behave as documented."""

from __future__ import annotations

import re

import pytest

from kubeharden.catalog import Settings, all_controls, profiles
from kubeharden.engine import Engine
from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, load_bytes
from kubeharden.model import Status

CONTROLS = all_controls()
EXAMPLES = [(c, i, ex) for c in CONTROLS for i, ex in enumerate(c.examples)]


def test_metadata_is_complete() -> None:
    assert CONTROLS, "no controls registered"
    for c in CONTROLS:
        assert c.guidance, c.id
        assert c.title and c.what and c.why and c.fix, c.id
        assert c.profiles, c.id
        assert set(c.profiles) <= set(profiles()), c.id
        assert c.check is not None or c.manual, c.id


def test_every_checkable_control_has_a_bad_and_a_good_example() -> None:
    missing = [c.id for c in CONTROLS if c.check is not None and c.kinds
               and {ex.bad for ex in c.examples} != {True, False}]
    assert not missing, f"controls without both a bad and a good example: {missing}"


@pytest.mark.parametrize(("control", "index", "example"), EXAMPLES,
                         ids=[f"{c.id}-{'bad' if ex.bad else 'good'}{i}" for c, i, ex in EXAMPLES])
def test_example(control, index, example) -> None:
    loaded = load_bytes(example.yaml.encode(), f"{control.id}-example-{index}.yaml", LoadContext(), keep_text=True)
    assert not loaded.errors, loaded.errors
    settings = Settings(kubernetes_version=example.kubernetes_version,
                        allowed_registries=example.allowed_registries, as_cluster=True)
    result = Engine([control], settings).run(Inventory(loaded.resources), profile="nsa")
    [outcome] = result.controls
    assert not result.errors, result.errors
    if example.bad:
        assert outcome.status is Status.FAIL, f"{control.id}: bad example did not fail ({outcome.reason})"
        for f in outcome.findings:
            assert f.line is not None and f.line >= 1
    else:
        assert outcome.status is not Status.FAIL, [f.message for f in outcome.findings]


def test_guidance_ids_exist_in_the_spec(shared_dir) -> None:
    spec = (shared_dir / "spec" / "guidance.md").read_text()
    known = set(re.findall(r"\| (NSA-[A-Z]+-\d+) \|", spec))
    for c in CONTROLS:
        unknown = set(c.guidance) - known
        assert not unknown, f"{c.id} names ids not in the spec: {unknown}"
