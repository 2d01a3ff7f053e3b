"""Kubelet eviction thresholds (guidance v1.2 §2.2, NSA-NET-14): eviction is not enforcement.

The guidance notes that the kubelet evicts pods only once a node runs short of memory, disk or
process IDs: it protects the node after the fact and does not stop a workload from abusing
resources, which limits, quotas and PID limits do (NSA-NET-10..13). The thresholds should still
be set, including ``pid.available``, which has no default.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeharden.catalog import Context, Example, control
from kubeharden.model import Section, Severity, Violation
from kubeharden.nodeconf.evidence import NEEDS, evidence_of

SIGNALS = ("memory.available", "nodefs.available", "pid.available")
NOTE = ("eviction is not enforcement: it acts only after the node is under pressure; keep LimitRanges, quotas, "
        "container limits and PID limits (NSA-NET-10..13)")
_HEAD = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"


@control(
    id="KH-NODE-022",
    title="Kubelet eviction thresholds incomplete",
    section=Section.NODE,
    guidance=("NSA-NET-14",),
    severity=Severity.LOW,
    needs=NEEDS["kubelet"],
    what="Informational: the kubelet's evictionHard (--eviction-hard), merged with evictionSoft, has no threshold "
    "for one of memory.available, nodefs.available or pid.available (pid.available has no default; an "
    "evictionHard that is set replaces the default list).",
    why="Without thresholds the node can run out of memory, disk or PIDs before the kubelet reacts, taking the "
    "node daemons with it. The guidance adds that eviction is not enforcement: limits must stop abuse first.",
    fix="Set evictionHard: {memory.available: \"200Mi\", nodefs.available: \"10%\", pid.available: \"10%\"} (and "
    "evictionSoft with evictionSoftGracePeriod where wanted), alongside container limits and podPidsLimit.",
    examples=(Example(True, _HEAD + "evictionHard: {memory.available: 100Mi}\n"),
              Example(False, _HEAD + "evictionHard: {memory.available: 200Mi, nodefs.available: 10%, "
                      "pid.available: 10%}\n")),
)
def eviction_thresholds(ctx: Context) -> Iterator[Violation]:
    for kubelet in evidence_of(ctx).require_kubelets():
        hard = kubelet.setting("evictionHard")
        soft = kubelet.setting("evictionSoft")
        signals = {**(soft.value if isinstance(soft.value, dict) else {}),
                   **(hard.value if isinstance(hard.value, dict) else {})}
        missing = [s for s in SIGNALS if s not in signals]
        if missing:
            yield kubelet.violation(hard, f"kubelet evicts without a threshold for {', '.join(missing)} "
                                    f"({hard.describe()}); {NOTE}", signals or None,
                                    has_value=bool(signals), missing=missing, note=NOTE)
