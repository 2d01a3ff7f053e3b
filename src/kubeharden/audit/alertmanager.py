"""``--alertmanager URL``: post alerts to an Alertmanager (API v2, POST /api/v2/alerts).

Only the URL the user gave is contacted. Alerts are batched; a failed post is retried a bounded
number of times with backoff, then the batch is counted as lost (never an endless loop). Secret
values never leave: an alert carries what the report carries (already redacted).
"""

from __future__ import annotations

import datetime as dt
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import orjson

from kubeharden.model import Finding

API_PATH = "/api/v2/alerts"


def alerts_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"--alertmanager {url!r}: give an http:// or https:// URL")
    trimmed = url.rstrip("/")
    return trimmed if trimmed.endswith(API_PATH) else trimmed + API_PATH


def to_alert(f: Finding) -> dict[str, object]:
    ev = f.evidence
    ref = f.resource or {}
    labels = {
        "alertname": f"kubeharden{f.control_id}",
        "detector": f.control_id,
        "severity": f.severity.label,
        "guidance": ",".join(ev.get("guidance") or []),
        "user": str(ev.get("user") or ""),
        "namespace": str(ref.get("namespace") or ""),
        "resource": f"{ref.get('kind') or ''}/{ref.get('name') or ''}".strip("/"),
        "correlation": str(ev.get("correlation") or ""),
    }
    starts = ev.get("time") or dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    return {
        "labels": {k: v for k, v in labels.items() if v},
        "annotations": {"summary": f"{f.control_id} {f.title}", "description": f.message,
                        "response": f.remediation, "auditID": str(ev.get("auditID") or ""),
                        "where": str(ev.get("where") or "")},
        "startsAt": starts,
    }


@dataclass
class AlertmanagerSink:
    url: str
    batch_size: int = 100
    retries: int = 3
    timeout: float = 5.0
    backoff: float = 0.5
    pending: list[dict[str, object]] = field(default_factory=list)
    sent: int = 0
    lost: int = 0
    errors: list[str] = field(default_factory=list)
    max_pending: int = 10_000

    def __post_init__(self) -> None:
        self.url = alerts_url(self.url)

    def __call__(self, finding: Finding) -> None:
        if finding.excepted:
            return
        if len(self.pending) >= self.max_pending:
            self.lost += 1
            return
        self.pending.append(to_alert(finding))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:self.batch_size], self.pending[self.batch_size:]
            if self._post(batch):
                self.sent += len(batch)
            else:
                self.lost += len(batch)

    def _post(self, batch: list[dict[str, object]]) -> bool:
        body = orjson.dumps(batch)
        last = ""
        for attempt in range(self.retries):
            request = urllib.request.Request(self.url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if 200 <= response.status < 300:
                        return True
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if 400 <= exc.code < 500 and exc.code != 429:
                    break  # the receiver refuses these alerts: retrying will not help
            except (urllib.error.URLError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
            if attempt + 1 < self.retries:
                time.sleep(self.backoff * (2 ** attempt))
        if len(self.errors) < 20:
            self.errors.append(f"alertmanager {self.url}: {len(batch)} alerts not delivered ({last})")
        return False
