"""`kubeharden images`: every image the inputs use -- where (workload, container), tag and digest, default
user, vulnerabilities by severity -- as a table, JSON or CSV; `--scan trivy|grype` runs the scanner
on each unique image (fixed argument lists, no shell, a few at a time, cached by digest).

Also the image options `scan` shares (image_options): --registry-lookup, --vulns, --platform,
--offline, --registry-config, --registry-ca; they reach kubeharden.images.enrich through
Settings.extra.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from kubeharden import safeio
from kubeharden.catalog import Settings
from kubeharden.commands import echo_json, report_console
from kubeharden.controls.pod_images import image_user, is_addon_image, scans_of, unrendered_placeholder
from kubeharden.images.evidence import ContainerImage, image_evidence
from kubeharden.images.vulns import SEVERITIES, ReportError, parse_report
from kubeharden.inventory import Inventory, as_dict, as_list
from kubeharden.loader import LoadContext
from kubeharden.model import Resource, Source
from kubeharden.scanner import ScanRequest, build_inventory

SCANNERS: dict[str, Callable[[str], list[str]]] = {
    # fixed argument lists: the image is one argument, never parsed by a shell
    "trivy": lambda image: ["trivy", "image", "--format", "json", "--quiet", "--scanners", "vuln", image],
    "grype": lambda image: ["grype", image, "-o", "json", "-q"],
}
SCAN_WORKERS = 3
SCAN_TIMEOUT = 900.0
_STDERR_SHOWN = 1000


def image_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The image options of `scan` and `images`."""
    options = [
        click.option("--registry-lookup", is_flag=True,
                     help="Read each image's config (default user, digest of the tag, created) from its registry."),
        click.option("--vulns", "vulns", multiple=True, metavar="[IMAGE=]FILE",
                     help="Vulnerability report to join (Trivy, trivy k8s, Grype, CycloneDX 1.4-1.6 or SARIF JSON); "
                     "repeatable. IMAGE= names the image of a report that does not."),
        click.option("--platform", default="linux/amd64", show_default=True, metavar="OS/ARCH[/VARIANT]",
                     help="Image of a multi-platform index to read."),
        click.option("--offline", is_flag=True,
                     help="No network at all: registry lookups answer from the on-disk cache only."),
        click.option("--registry-config", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Docker config.json with registry credentials (default: ~/.docker/config.json)."),
        click.option("--registry-ca", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
                     help="CA certificates to trust for registries instead of the system's."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def image_settings(registry_lookup: bool, vulns: tuple[str, ...], platform: str, offline: bool,
                   registry_config: str | None, registry_ca: str | None) -> dict[str, Any]:
    """Settings.extra entries of the image options (checked here, so a typo is a usage error)."""
    from kubeharden.images.registry import parse_platform

    try:
        parse_platform(platform)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--platform") from None
    return {"registry_lookup": registry_lookup, "vulns": vulns, "platform": platform, "offline": offline,
            "registry_config": registry_config, "registry_ca": registry_ca}


# ---------------------------------------------------------------------------------------------
# Running a scanner


def scan_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubeharden" / "scans"


def run_scanner(scanner: str, image: str, digest: str | None, timeout: float = SCAN_TIMEOUT) -> bytes:
    """The scanner's JSON report for one image (from the cache when the digest was scanned before)."""
    cached = scan_cache_dir() / f"{scanner}-{digest.split(':', 1)[1]}.json" if digest else None
    if cached is not None and cached.is_file():
        try:
            return safeio.read_regular(cached, 256 * 1024 * 1024)
        except OSError:
            pass
    try:
        done = subprocess.run(SCANNERS[scanner](image), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ReportError(f"{scanner} did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise ReportError(f"cannot run {scanner}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip()[:_STDERR_SHOWN]
        raise ReportError(f"{scanner} failed (exit {done.returncode}): {stderr}")
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with safeio.atomic_output(cached, mode=0o600) as fp:
                fp.write(done.stdout)
        except OSError:
            pass
    return done.stdout


def scan_images(scanner: str, targets: dict[str, str | None]) -> tuple[list[Resource], list[str]]:
    """ImageScan resources for every image (image -> digest), and the errors."""
    import json

    def one(item: tuple[str, str | None]) -> tuple[str, list[dict[str, Any]] | str]:
        image, digest = item
        pinned = f"{image.split('@', 1)[0]}@{digest}" if digest and "@" not in image else image
        try:
            return image, parse_report(json.loads(run_scanner(scanner, pinned, digest)), image)
        except ReportError as exc:
            return image, exc.message
        except ValueError:
            return image, f"{scanner} did not write JSON"

    resources: list[Resource] = []
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=SCAN_WORKERS) as pool:
        for image, outcome in pool.map(one, sorted(targets.items())):
            if isinstance(outcome, str):
                errors.append(f"{image}: {outcome}")
                continue
            source = Source(f"{scanner} image {image}", None, origin=scanner)
            resources.extend(Resource.from_obj(obj, source) for obj in outcome)
    return resources, errors


# ---------------------------------------------------------------------------------------------
# The inventory


def image_rows(inventory: Inventory) -> list[dict[str, Any]]:
    found = image_evidence(inventory)
    rows: dict[str, dict[str, Any]] = {}
    for item in found.containers:
        key = item.ref.normalized()
        row = rows.setdefault(key, {"image": key, "written": item.image, "digest": None, "user": None,
                                    "user_from": None, "created": None, "addon": False, "used_by": [],
                                    "vulnerabilities": dict.fromkeys(SEVERITIES[:4], 0), "scanned": False})
        row["used_by"].append(item.where())
        row["addon"] = row["addon"] or is_addon_image(item)
        config = found.config_for(item)
        spec = as_dict(config.obj.get("spec")) if config is not None else {}
        row["digest"] = row["digest"] or item.digest or spec.get("indexDigest") or spec.get("digest")
        row["created"] = row["created"] or spec.get("created")
        known = image_user(found, item)
        if known is not None and row["user"] is None:
            row["user"], row["user_from"] = known.user or "(none: root)", known.origin
        _count(row, found, item)
    return sorted(rows.values(), key=lambda r: r["image"])


def _count(row: dict[str, Any], found: Any, item: ContainerImage) -> None:
    if row["scanned"]:
        return
    matched, _ = scans_of(found, item)
    if not matched:
        return
    row["scanned"] = True
    seen: set[tuple[str, str]] = set()
    for scan in matched:
        for vuln in as_list(as_dict(scan.obj.get("spec")).get("vulnerabilities")):
            key = (str(vuln.get("id")), str(vuln.get("package")))
            if key not in seen:
                seen.add(key)
                severity = str(vuln.get("severity"))
                if severity in row["vulnerabilities"]:
                    row["vulnerabilities"][severity] += 1


def _vuln_text(row: dict[str, Any]) -> str:
    if not row["scanned"]:
        return "not scanned"
    counts = row["vulnerabilities"]
    return " ".join(f"{k[0].upper()}{v}" for k, v in counts.items()) if any(counts.values()) else "none"


def _print_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"{len(rows)} images")
    for column in ("Image", "Digest", "User", "Vulnerabilities", "Used by"):
        table.add_column(column, overflow="fold")
    for row in rows:
        digest = (row["digest"] or "-")[:19] + ("…" if row["digest"] else "")
        table.add_row(row["image"] + (" (add-on)" if row["addon"] else ""), digest, row["user"] or "unknown",
                      _vuln_text(row), "\n".join(row["used_by"]))
    report_console().print(table)


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image", "digest", "user", "created", "addon", *SEVERITIES[:4], "scanned", "used_by"])
    for row in rows:
        writer.writerow([row["image"], row["digest"] or "", row["user"] or "", row["created"] or "",
                         str(row["addon"]).lower(), *row["vulnerabilities"].values(), str(row["scanned"]).lower(),
                         "; ".join(row["used_by"])])
    return out.getvalue()


@click.command("images")
@click.argument("paths", nargs=-1, required=True)
@image_options
@click.option("--scan", "scanner", type=click.Choice(sorted(SCANNERS)),
              help="Run this scanner on each unique image (it must be installed) and join its report.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
def images(paths: tuple[str, ...], registry_lookup: bool, vulns: tuple[str, ...], platform: str, offline: bool,
           registry_config: str | None, registry_ca: str | None, scanner: str | None, fmt: str) -> None:
    """Every image the inputs use: where, tag and digest, default user, vulnerabilities by severity."""
    if scanner and offline:
        raise click.UsageError(f"--scan {scanner} pulls images and vulnerability data: not with --offline")
    if scanner and shutil.which(scanner) is None:
        raise click.UsageError(f"--scan {scanner}: {scanner} is not installed (not found on PATH); install it, or "
                               "give its reports with --vulns FILE")
    settings = Settings()
    settings.extra.update(image_settings(registry_lookup, vulns, platform, offline, registry_config, registry_ca))
    inventory, loaded = build_inventory(ScanRequest(paths=paths, settings=settings, load=LoadContext()))
    for error in loaded.errors:
        click.echo(f"error: {error.source}{f':{error.line}' if error.line else ''}: {error.message}", err=True)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning.source}: {warning.message}", err=True)
    failed = bool(loaded.errors)
    if scanner:
        found = image_evidence(inventory)
        targets: dict[str, str | None] = {}
        for item in found.containers:
            if unrendered_placeholder(item.image):
                continue
            config = found.config_for(item)
            digest = item.digest or (as_dict(config.obj.get("spec")).get("digest") if config is not None else None)
            targets.setdefault(item.image, digest)
        scans, errors = scan_images(scanner, targets)
        for problem in errors:
            click.echo(f"error: {scanner}: {problem}", err=True)
        failed = failed or bool(errors)
        inventory = Inventory([*inventory.resources, *scans], inventory.facts)
    rows = image_rows(inventory)
    if fmt == "json":
        echo_json({"images": rows})
    elif fmt == "csv":
        sys.stdout.write(_csv(rows))
    else:
        _print_table(rows)
    sys.exit(2 if failed else 0)


COMMANDS = [images]
