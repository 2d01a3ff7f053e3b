#!/usr/bin/env python3
"""HTML dashboard at scale: report size, time to write it, and time until the page is usable in
headless Chromium (Debian `chromium` + `chromium-driver`, selenium), for the corpus scan and for
its findings replicated to --findings (the resource name carries the replica).

    python benchmarks/bench_dashboard.py                 # corpus, then 100,000 findings
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

from kubeharden.engine import ScanResult
from kubeharden.reporters import html
from kubeharden.scanner import ScanRequest, run_scan

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "real"
USABLE_FLOOR = 5.0  # seconds until the first page of findings is shown and filters answer


def replicated(result: ScanResult, findings: int) -> ScanResult:
    rows = []
    replica = 0
    while len(rows) < findings:
        for f in result.findings:
            if len(rows) == findings:
                break
            resource = dict(f.resource or {}, name=f"{(f.resource or {}).get('name')}-r{replica}")
            rows.append(dataclasses.replace(f, resource=resource))
        replica += 1
    return dataclasses.replace(result, findings=rows)


def load_in_browser(page: Path) -> tuple[float, float, int, float]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import Select, WebDriverWait

    profile = tempfile.mkdtemp(prefix="kh-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    try:
        driver.set_page_load_timeout(300)
        started = time.perf_counter()
        driver.get(page.as_uri())
        WebDriverWait(driver, 300).until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
        usable = time.perf_counter() - started
        script_ms = float(driver.execute_script("return document.body.dataset.renderMs"))
        started = time.perf_counter()
        Select(driver.find_element("id", "f-severity")).select_by_value("1")
        driver.execute_script("return document.getElementById('page-info').textContent")
        filter_seconds = time.perf_counter() - started
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        return usable, script_ms, len(errors), filter_seconds
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def measure(name: str, result: ScanResult, tmp: Path) -> None:
    started = time.perf_counter()
    text = html.render(result)
    render_seconds = time.perf_counter() - started
    page = tmp / f"{name}.html"
    page.write_text(text)
    usable, script_ms, errors, filter_seconds = load_in_browser(page)
    status = "ok" if usable < USABLE_FLOOR else "SLOWER than"
    print(f"{name}: {len(result.findings):,} findings, {len(text) / 1e6:.1f} MB, written in {render_seconds:.1f} s; "
          f"usable in Chromium after {usable:.2f} s (script {script_ms / 1000:.2f} s; {status} the "
          f"{USABLE_FLOOR:.0f} s bound), a filter change {filter_seconds * 1000:.0f} ms, console errors: {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--findings", type=int, default=100_000)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus not found: {args.corpus} (give --corpus)")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        sys.exit("needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    result = run_scan(ScanRequest(paths=[str(args.corpus)]))
    with tempfile.TemporaryDirectory() as tmp:
        measure("corpus", result, Path(tmp))
        measure(f"replicated-{args.findings}", replicated(result, args.findings), Path(tmp))


if __name__ == "__main__":
    main()
