"""The control catalog: one control = one small function plus its metadata.

Controls are registered with the ``@control`` decorator in modules under
``kubeharden.controls`` (one module per guidance section). A control receives a
``Context`` and yields ``Violation``s; it never prints. It may raise ``NotAssessed``
when the input lacks the evidence it needs.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubeharden.inventory import Inventory, PodSpecView
from kubeharden.model import Section, Severity, Violation

KubeVersion = tuple[int, int]
CheckFn = Callable[["Context"], Iterable[Violation]]
RequiresFn = Callable[["Context"], "str | None"]

# KH-<AREA>-<NNN> for controls; D<NN> for the audit-event detectors of guidance §3.2
CONTROL_ID_RE = re.compile(r"^(KH-[A-Z]+-\d{3}|D\d{2})$")
GUIDANCE_ID_RE = re.compile(r"^NSA-(POD|NET|CP|NODE|ENC|SEC|CLOUD|AUTH|RBAC|LOG|UPG)-\d+$")


@dataclass(frozen=True)
class Example:
    """A manifest snippet: ``bad`` ones must make the control fail, good ones must not.
    ``kubernetes_version`` and ``allowed_registries`` are the settings it is judged with."""

    bad: bool
    yaml: str
    description: str = ""
    kubernetes_version: tuple[int, int] | None = None
    allowed_registries: tuple[str, ...] = ()


@dataclass
class Settings:
    """User choices that controls may read."""

    kubernetes_version: KubeVersion | None = None  # None: newest supported
    allowed_registries: tuple[str, ...] = ()
    as_cluster: bool = False  # treat the whole input as one cluster's contents
    builtin_exceptions: bool = True  # except system components' expected findings (kubeharden.builtin_exceptions)
    extra: dict[str, Any] = field(default_factory=dict)  # options owned by a control module


@dataclass
class Context:
    inventory: Inventory
    settings: Settings
    kubernetes_version: KubeVersion

    def pod_specs(self) -> list[PodSpecView]:
        return self.inventory.pod_specs()

    @property
    def whole_cluster(self) -> bool:
        """True when the input stands for a whole cluster: a live scan, a snapshot, or
        ``--as-cluster``. Cross-resource controls judge absences only then, or for
        namespaces whose Namespace object is part of the input."""
        return self.settings.as_cluster or bool(self.inventory.facts.get("cluster"))


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    section: Section
    guidance: tuple[str, ...]
    severity: Severity
    what: str
    why: str
    fix: str
    check: CheckFn | None
    kinds: tuple[str, ...] = ()  # resource kinds it reads; none present -> not_assessed
    needs: str = ""  # human wording of the evidence it needs (for `controls`)
    requires: RequiresFn | None = None  # returns a reason when the evidence is absent
    examples: tuple[Example, ...] = ()
    profiles: frozenset[str] = frozenset({"nsa"})
    manual: str | None = None  # set for recommendations no input can prove: always not_assessed
    min_version: KubeVersion | None = None  # applies from this Kubernetes version
    max_version: KubeVersion | None = None  # applies up to and including this version
    references: tuple[str, ...] = ()
    module: str = ""

    def applies_to_version(self, version: KubeVersion) -> bool:
        if self.min_version and version < self.min_version:
            return False
        return not (self.max_version and version > self.max_version)


_REGISTRY: dict[str, Control] = {}


def control(
    *,
    id: str,
    title: str,
    section: Section,
    guidance: Iterable[str],
    severity: Severity,
    what: str,
    why: str,
    fix: str,
    kinds: Iterable[str] = (),
    needs: str = "",
    requires: RequiresFn | None = None,
    examples: Iterable[Example] = (),
    profiles: Iterable[str] = ("nsa",),
    min_version: KubeVersion | None = None,
    max_version: KubeVersion | None = None,
    references: Iterable[str] = (),
) -> Callable[[CheckFn], CheckFn]:
    """Register the decorated function as a control."""

    def register(fn: CheckFn) -> CheckFn:
        add(
            Control(
                id=id, title=title, section=section, guidance=tuple(guidance), severity=severity,
                what=what, why=why, fix=fix, check=fn, kinds=tuple(kinds), needs=needs,
                requires=requires, examples=tuple(examples), profiles=frozenset(profiles),
                min_version=min_version, max_version=max_version, references=tuple(references),
                module=fn.__module__,
            )
        )
        return fn

    return register


def manual_control(
    *, id: str, title: str, section: Section, guidance: Iterable[str], severity: Severity,
    what: str, why: str, fix: str, reason: str, profiles: Iterable[str] = ("nsa",),
) -> None:
    """A recommendation kubeharden cannot judge from its inputs: listed, always not_assessed."""
    add(
        Control(
            id=id, title=title, section=section, guidance=tuple(guidance), severity=severity,
            what=what, why=why, fix=fix, check=None, manual=reason, profiles=frozenset(profiles),
        )
    )


def add(ctrl: Control) -> None:
    if not CONTROL_ID_RE.match(ctrl.id):
        raise ValueError(f"control id {ctrl.id!r} does not look like KH-XXX-000 (or D00 for a detector)")
    for ref in ctrl.guidance:
        if not GUIDANCE_ID_RE.match(ref):
            raise ValueError(f"{ctrl.id}: guidance id {ref!r} is not an NSA-* id")
    existing = _REGISTRY.get(ctrl.id)
    if existing is not None and existing.module != ctrl.module:
        raise ValueError(f"control id {ctrl.id} registered twice ({existing.module}, {ctrl.module})")
    _REGISTRY[ctrl.id] = ctrl


_loaded = False
# Packages whose every module registers controls: the scan's controls and the audit-event detectors.
CATALOG_PACKAGES = ("kubeharden.controls", "kubeharden.audit.detectors")


def load_all() -> None:
    """Import every module of the catalog packages so their controls register."""
    global _loaded
    if _loaded:
        return
    for name in CATALOG_PACKAGES:
        pkg = importlib.import_module(name)
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            importlib.import_module(f"{pkg.__name__}.{info.name}")
    _loaded = True


def all_controls() -> list[Control]:
    load_all()
    return sorted(_REGISTRY.values(), key=lambda c: c.id)


def get_control(control_id: str) -> Control | None:
    load_all()
    return _REGISTRY.get(control_id.upper())


# ---------------------------------------------------------------------------------------------
# Profiles: named selections of controls.


@dataclass(frozen=True)
class Profile:
    name: str
    description: str


_PROFILES: dict[str, Profile] = {
    "nsa": Profile("nsa", "every control implementing the NSA/CISA Kubernetes Hardening Guidance v1.2"),
}


def register_profile(profile: Profile) -> None:
    _PROFILES[profile.name] = profile


def profiles() -> dict[str, Profile]:
    load_all()
    return dict(_PROFILES)


def controls_for_profile(name: str) -> list[Control]:
    if name not in profiles():
        raise KeyError(name)
    return [c for c in all_controls() if name in c.profiles]
