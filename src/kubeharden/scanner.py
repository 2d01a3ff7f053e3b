"""The scan pipeline: inputs -> inventory -> engine -> ScanResult. Shared by every command."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from kubeharden.catalog import Control, Settings, all_controls, controls_for_profile, profiles
from kubeharden.engine import Engine, ScanResult, select_controls
from kubeharden.exceptions import ExceptionRule, ExceptionsFileError, load_exceptions_file
from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, LoadResult, load_paths, paused_gc

# Other input sources (a live cluster, node files) register a loader here by name; each takes
# the request and returns a LoadResult plus facts for the inventory.
SourceLoader = Callable[["ScanRequest"], tuple[LoadResult, dict[str, Any]]]
_SOURCES: dict[str, SourceLoader] = {}


def register_source(name: str, loader: SourceLoader) -> None:
    _SOURCES[name] = loader


class UsageError(Exception):
    """Bad usage: unknown profile or control, unreadable exceptions file (exit code 2)."""


@dataclass
class ScanRequest:
    paths: Sequence[str] = ()
    profile: str = "nsa"
    settings: Settings = field(default_factory=Settings)
    load: LoadContext = field(default_factory=LoadContext)
    only: Sequence[str] = ()
    skip: Sequence[str] = ()
    exceptions_file: str | None = None
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # e.g. {"cluster": {...}}
    today: dt.date | None = None


# Modules with enrich(request, loaded) -> facts, run once the inputs are read: they add evidence
# about what the inputs name (image configs from registries, vulnerability reports).
ENRICHER_MODULES = ("kubeharden.images.enrich", "kubeharden.logpipeline.enrich")


def build_inventory(request: ScanRequest) -> tuple[Inventory, LoadResult]:
    loaded = load_paths(request.paths, request.load) if request.paths else LoadResult()
    facts: dict[str, Any] = dict(loaded.facts)
    for name in request.sources:
        if name not in _SOURCES:
            _import_source(name)
        extra, extra_facts = _SOURCES[name](request)
        loaded.extend(extra)
        facts.update(extra_facts)
    for module in ENRICHER_MODULES:
        facts.update(importlib.import_module(module).enrich(request, loaded))
    return Inventory(loaded.resources, facts), loaded


def _import_source(name: str) -> None:
    try:
        importlib.import_module(f"kubeharden.sources.{name}")
    except ImportError as exc:
        raise UsageError(f"input source {name!r} is not available: {exc}") from None
    if name not in _SOURCES:
        raise UsageError(f"input source {name!r} is not available")


def profile_controls(profile: str, only: Sequence[str] = (), skip: Sequence[str] = ()) -> list[Control]:
    """The controls of a profile after --control/--skip (UsageError for an unknown name)."""
    if profile not in profiles():
        raise UsageError(f"unknown profile {profile!r} (known: {', '.join(sorted(profiles()))})")
    try:
        return select_controls(controls_for_profile(profile), only, skip)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def exception_rules(path: str | None) -> list[ExceptionRule]:
    """The rules of an exceptions file (UsageError naming FILE:LINE for a bad one)."""
    rules: list[ExceptionRule] = []
    if path:
        try:
            rules = load_exceptions_file(path)
        except ExceptionsFileError as exc:
            raise UsageError(str(exc)) from None  # FILE:LINE: reason
        # a mistyped id would otherwise make an exception that silently never applies
        known = [c.id for c in all_controls()]
        for rule in rules:
            if not any(fnmatchcase(control_id, rule.control) for control_id in known):
                raise UsageError(f"{rule.origin}: unknown control {rule.control!r} (see `kubeharden controls`)")
    return rules


def run_scan(request: ScanRequest) -> ScanResult:
    controls = profile_controls(request.profile, request.only, request.skip)
    rules = exception_rules(request.exceptions_file)
    with paused_gc():
        inventory, loaded = build_inventory(request)
        engine = Engine(controls, request.settings, rules, request.today)
        return engine.run(
            inventory,
            profile=request.profile,
            errors=loaded.errors,
            warnings=loaded.warnings,
            stats=loaded.stats,
        )
