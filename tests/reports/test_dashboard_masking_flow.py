"""Snippets in the dashboard never show a credential written as a flow mapping."""

from __future__ import annotations

import pytest

from kubeharden.reporters.html import _mask_line


@pytest.mark.parametrize("line", [
    "        - {name: GITHUB_TOKEN, value: ghp_0123456789abcdef}",
    "  env: [{name: A, value: 'short'}, {name: DB_PASSWORD, value: pw1}]",
    "    securityContext: {privileged: true}, token: abc123",
])
def test_flow_mapping_values_are_masked(line: str) -> None:
    masked = _mask_line(line, whole_document=False)
    for secret in ("ghp_0123456789abcdef", "'short'", "pw1", "abc123"):
        assert secret not in masked
    assert "name: GITHUB_TOKEN" in masked or "name: A" in masked or "privileged: true" in masked


def test_plain_flow_values_stay_readable() -> None:
    line = "    securityContext: {privileged: true, runAsUser: 0}"
    assert _mask_line(line, whole_document=False) == line
