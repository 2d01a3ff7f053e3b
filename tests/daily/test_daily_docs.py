"""Issue 12 item 12: the README's first screen says what kubeharden is and why, before the commands, while
the quick start (read by .ci/run) stays the first section; docs/rbac.md matches the built-in roles."""

from __future__ import annotations

import re
from pathlib import Path

from kubeharden.rbac.engine import _bootstrap

REPO = Path(__file__).resolve().parents[2]
QUICK_START_COMMANDS = [
    "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/kubeharden scan examples/",
    "python3 -m venv .venv && .venv/bin/python -m pip install -c constraints.txt -e '.[test]' "
    "&& .venv/bin/python -m pytest",
]


def test_readme_first_screen_then_the_quick_start() -> None:
    text = (REPO / "README.md").read_text()
    intro, _, rest = text.partition("\n## ")
    assert rest.startswith("Quick start\n"), "the first section heading is the quick start"
    assert "```" not in intro, "no commands before the quick start"
    assert len(intro.splitlines()) <= 30, "the pitch fits one screen"
    for point in ("Kubescape", "Trivy", "line", "not assessed", "Offline", "rbac", "netpol", "--pss-version",
                  "exceptions", "collect-node", "audit", "fix"):
        assert point.lower() in intro.lower(), point
    quick_start = rest.split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)\n```", quick_start, re.S)
    assert blocks[:2] == QUICK_START_COMMANDS
    # .ci/run runs the second one verbatim (with -q)
    ci = (REPO / ".ci" / "run").read_text()
    assert QUICK_START_COMMANDS[1].replace("pip install -c", "pip install -q -c") in ci


def test_rbac_doc_says_the_controller_roles_are_included() -> None:
    doc = (REPO / "docs" / "rbac.md").read_text()
    assert "are not included" not in doc
    names = [r["metadata"]["name"] for r in _bootstrap()["clusterRoles"]]
    controller_roles = [n for n in names if n.startswith("system:controller:")]
    assert controller_roles and "`system:controller:*` ClusterRoles are included" in doc
