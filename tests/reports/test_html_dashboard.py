"""The HTML dashboard: self-contained, secret values never shown, and working in a real headless
Chromium (conftest.browser): no console error, filters change the visible rows, a screenshot."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from kubeharden.cli import cli
from kubeharden.reporters import html
from kubeharden.scanner import ScanRequest, run_scan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SECRET_VALUES = ("hunter2-Sup3rSecret", "c2VjcmV0LXRva2VuLWRhdGEtdmFsdWU=", "ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
                 "db-Passw0rd-in-configmap", "s3cr3t-in-url")
SECRETS_YAML = f"""\
apiVersion: v1
kind: Secret
metadata: {{name: db, namespace: shop}}
type: Opaque
stringData:
  password: {SECRET_VALUES[0]}
data:
  token: {SECRET_VALUES[1]}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: shop}}
data:
  DB_PASSWORD: {SECRET_VALUES[3]}
  url: postgres://app:{SECRET_VALUES[4]}@db/shop
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: leaky, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: leaky}}}}
  template:
    metadata: {{labels: {{app: leaky}}}}
    spec:
      containers:
      - name: app
        image: registry.example/leaky:latest
        env:
        - name: GITHUB_TOKEN
          value: {SECRET_VALUES[2]}
        - name: API_PASSWORD
          value: {SECRET_VALUES[0]}
        securityContext:
          privileged: true
"""


def _inputs(tmp_path: Path) -> list[str]:
    (tmp_path / "secrets.yaml").write_text(SECRETS_YAML)
    return [str(EXAMPLES / "insecure-shop"), str(tmp_path / "secrets.yaml")]


def _page_data(text: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="kh-data">(.*?)</script>', text, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_dashboard_is_self_contained_and_never_shows_a_secret_value(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["scan", *_inputs(tmp_path), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 1
    text = out.read_text()
    for value in SECRET_VALUES:
        assert value not in text
    assert "<redacted>" in json.dumps(_page_data(text)["snippets"])
    # no external asset, and a policy that forbids requests should one slip in
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "default-src 'none'" in text
    data = _page_data(text)
    scan = run_scan(ScanRequest(paths=_inputs(tmp_path)))
    assert len(data["findings"]) == len(scan.findings)
    # every finding's control has an explanation inside the page
    ids = {data["strings"][row[1]] for row in data["findings"]}
    assert all(f'id="control-{control_id}"' in text for control_id in ids)
    assert "Not assessed (" in text and "<svg" in text


def test_snippet_masking() -> None:
    mask = html._mask_line
    assert mask("      privileged: true", False) == "      privileged: true"
    assert mask("  password: x1", False) == "  password: <redacted>"
    assert mask("    value: anything", False) == "    value: <redacted>"
    assert mask("  image: registry.example/app:1.0", False) == "  image: registry.example/app:1.0"
    assert mask("  name: db", True) == "  name: db"
    assert mask("  anything: at-all", True) == "  anything: <redacted>"
    assert mask("  - --token=abc", False).endswith("<redacted>")
    assert mask("  - NET_ADMIN", False) == "  - NET_ADMIN"
    assert mask("    MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", False).strip() == "<redacted>"
    assert mask("  note: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", False).endswith("<redacted>")


def test_script_block_cannot_be_closed_by_input(tmp_path: Path) -> None:
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: \"x</script><script>alert(1)</script>\", namespace: a}\n"
           "spec:\n  containers:\n  - {name: c, image: r.example/a:1, securityContext: {privileged: true}}\n")
    (tmp_path / "p.yaml").write_text(pod)
    text = html.render(run_scan(ScanRequest(paths=[str(tmp_path / "p.yaml")])))
    assert "<script>alert(1)" not in text
    assert any("</script><script>alert(1)" in s for s in _page_data(text)["strings"])


# -- in the browser ------------------------------------------------------------------------------------


def _open(browser: Any, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(path.as_uri())
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")


def _visible_rows(browser: Any) -> int:
    return int(browser.execute_script("return document.querySelectorAll('#rows tr.finding, #rows tr.group').length"))


def _select(browser: Any, element_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", element_id)).select_by_value(value)


def _console_errors(browser: Any) -> list[dict[str, Any]]:
    return [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def test_dashboard_in_headless_chromium(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    out = tmp_path / "report.html"
    CliRunner().invoke(cli, ["scan", *_inputs(tmp_path), "-o", str(out)], catch_exceptions=False)
    scan = run_scan(ScanRequest(paths=_inputs(tmp_path)))
    active = scan.active_findings()
    _open(browser, out)
    assert _console_errors(browser) == []
    assert _visible_rows(browser) == min(100, len(active))
    assert browser.find_element(By.ID, "f-count").text == f"{len(active)} of {len(scan.findings)} findings"

    _select(browser, "f-severity", "0")  # critical only
    critical = sum(1 for f in active if f.severity.label == "critical")
    assert 0 < critical < len(active) and _visible_rows(browser) == critical
    _select(browser, "f-severity", "")
    _select(browser, "f-namespace", "shop")
    assert _visible_rows(browser) == sum(1 for f in active if (f.resource or {}).get("namespace") == "shop")
    _select(browser, "f-namespace", "")
    _select(browser, "f-section", "network")
    assert _visible_rows(browser) == sum(1 for f in active if f.section.value == "network")
    _select(browser, "f-section", "")
    _select(browser, "f-control", "KH-POD-005")
    assert _visible_rows(browser) == sum(1 for f in active if f.control_id == "KH-POD-005") >= 2

    search = browser.find_element(By.ID, "f-search")
    search.send_keys("leaky")
    browser.implicitly_wait(0)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda d: _visible_rows(d) == 1)  # KH-POD-005 of Deployment leaky
    row = browser.find_element(By.CSS_SELECTOR, "#rows tr.finding")
    row.click()
    detail = browser.find_element(By.CSS_SELECTOR, "#rows tr.detail").text
    assert "JSONPath" in detail and "securityContext.privileged" in detail and "secrets.yaml:" in detail
    assert "privileged: true" in detail and "Fix" in detail
    page_text = browser.find_element(By.TAG_NAME, "body").text
    assert not any(value in page_text for value in SECRET_VALUES)
    browser.find_element(By.CSS_SELECTOR, "#rows tr.finding a").click()
    assert browser.execute_script("return location.hash") == "#control-KH-POD-005"
    assert browser.find_element(By.ID, "control-KH-POD-005").is_displayed()

    search.clear()
    _select(browser, "f-control", "")
    browser.execute_script("window.scrollTo(0, 0)")
    browser.find_element(By.ID, "tab-resources").click()
    groups = browser.execute_script("return [...document.querySelectorAll('#rows tr.group')].map(r => r.dataset.key)")
    assert "Deployment/shop/leaky" in groups and len(groups) == len(set(groups))
    browser.find_element(By.ID, "tab-findings").click()
    _select(browser, "f-status", "")
    assert _visible_rows(browser) == min(100, len(scan.findings))
    assert _console_errors(browser) == []
    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_large_report_is_paged(browser: Any, tmp_path: Path) -> None:
    pods = "---\n".join(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: ns{i % 7}}}\nspec:\n  containers:\n"
        f"  - {{name: c, image: 'r.example/a:latest', securityContext: {{privileged: true}}}}\n" for i in range(600))
    (tmp_path / "pods.yaml").write_text(pods)
    result = run_scan(ScanRequest(paths=[str(tmp_path / "pods.yaml")]))
    assert len(result.findings) > 5000
    out = tmp_path / "big.html"
    out.write_text(html.render(result))
    _open(browser, out)
    assert _console_errors(browser) == []
    assert _visible_rows(browser) == 100
    info = browser.find_element("id", "page-info").text
    assert info == f"1–100 of {len(result.active_findings())}"
    browser.find_element("id", "next").click()
    assert browser.find_element("id", "page-info").text.startswith("101–200 of")
    _select(browser, "f-namespace", "ns3")
    assert browser.find_element("id", "page-info").text.startswith("1–100 of")


