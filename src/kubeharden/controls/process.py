"""Process-only recommendations (guidance §2, "Where" P): listed as manual controls.

No manifest, node file or log shows them; each says what evidence an auditor should ask for, so a
report accounts for every recommendation of the guidance.
"""

from __future__ import annotations

from kubeharden.catalog import manual_control
from kubeharden.model import Section, Severity

manual_control(
    id="KH-LOG-020",
    title="Log forwarder has append-only access to external log storage",
    section=Section.LOGGING,
    guidance=("NSA-LOG-8",),
    severity=Severity.MEDIUM,
    what="The credentials the log forwarder uses can write to the external log store but not delete or "
    "overwrite (write/put-only IAM policy, object lock or WORM retention).",
    why="An intruder who takes over a node takes the forwarder's credentials; with delete rights the "
    "evidence of the intrusion goes with them.",
    fix="Give the forwarder a write-only identity (e.g. s3:PutObject without s3:DeleteObject, object lock "
    "in compliance mode; an index role without delete in Elasticsearch/OpenSearch).",
    reason="storage permissions live in the cloud or log platform, not in the cluster: ask for the IAM or "
    "role policy attached to the forwarder's credentials and the bucket's object-lock/retention settings, "
    "and a test that a delete with those credentials is refused",
)

manual_control(
    id="KH-LOG-021",
    title="SIEM correlates with Kubernetes context, not IP addresses alone",
    section=Section.LOGGING,
    guidance=("NSA-LOG-17",),
    severity=Severity.LOW,
    what="The SIEM or IDS that receives cluster logs enriches events with namespace, pod, service account "
    "and node, so that activity is attributed although pod IPs are reused.",
    why="Pod IPs change with every restart: an IP-only rule attributes an event to whichever pod holds the "
    "address now.",
    fix="Forward logs with Kubernetes metadata (Fluent Bit kubernetes filter, Vector kubernetes_logs source) "
    "and correlate on it; alert on the guidance's cases (kubeharden audit detectors D01–D20).",
    reason="the SIEM's rules are outside the cluster: ask for the correlation rules and a sample alert that "
    "names namespace, pod and service account rather than only an IP",
)

manual_control(
    id="KH-LOG-022",
    title="Traffic logs reviewed against the connection constraints",
    section=Section.LOGGING,
    guidance=("NSA-LOG-19",),
    severity=Severity.LOW,
    what="Flow logs (CNI flow visibility such as Cilium Hubble or Calico flow logs, cloud VPC flow logs) are "
    "reviewed to confirm that NetworkPolicies hold and to retire external access nobody uses.",
    why="A policy that allows more than is used is only found by comparing it with the traffic it allows.",
    fix="Enable flow logs, review them on a schedule and remove unused allow rules and exposed Services.",
    reason="flow records are runtime data kubeharden does not read: ask for the flow-log configuration and "
    "the record (ticket, report) of the last review with the rules it removed",
)

manual_control(
    id="KH-RBAC-021",
    title="RBAC reviewed periodically and when administrators change",
    section=Section.AUTH,
    guidance=("NSA-RBAC-8",),
    severity=Severity.LOW,
    what="A record exists of periodic RBAC reviews (subject → binding → effective rules) and of a review "
    "after each change of administrative staff.",
    why="Grants accumulate: a person who changed team or left keeps every binding nobody removes.",
    fix="Run `kubeharden rbac review CLUSTER-DUMP -o review-DATE.json` on a schedule and `kubeharden rbac diff` "
    "against the previous review; sign off the differences.",
    reason="whether reviews happen is an organisational record: ask for the last two review files "
    "(`kubeharden rbac review`) with their `rbac diff` and the sign-off, and the staff changes since",
)
