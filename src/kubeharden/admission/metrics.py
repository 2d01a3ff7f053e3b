"""Webhook metrics in the Prometheus text exposition format (no client library needed for a few series)."""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Sequence

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, str]] = Counter()  # (operation, kind, outcome)
        self.denials: Counter[str] = Counter()  # by control
        self.bad_requests: Counter[str] = Counter()  # by HTTP status
        self.timeouts = 0
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0

    def observe(self, operation: str, kind: str, outcome: str, seconds: float, denied_by: list[str]) -> None:
        with self._lock:
            self.requests[(operation, kind, outcome)] += 1
            for control in denied_by:
                self.denials[control] += 1
            self.bucket_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self.latency_sum += seconds
            self.latency_count += 1

    def bad_request(self, status: int) -> None:
        with self._lock:
            self.bad_requests[str(status)] += 1

    def timeout(self) -> None:
        with self._lock:
            self.timeouts += 1

    def render(self, in_flight: int, tls_reloads: int, tls_reload_failures: int,
               extra: Sequence[tuple[str, str, str, float]] = ()) -> bytes:
        """The text format; ``extra`` adds (name, help, type, value) series of other parts (connections,
        the cluster context)."""
        with self._lock:
            lines = [
                "# HELP kubeharden_admission_requests_total Admission reviews answered.",
                "# TYPE kubeharden_admission_requests_total counter",
            ]
            for (operation, kind, outcome), n in sorted(self.requests.items()):
                lines.append(f'kubeharden_admission_requests_total{{operation="{_label(operation)}",'
                             f'kind="{_label(kind)}",outcome="{outcome}"}} {n}')
            lines += ["# HELP kubeharden_admission_denials_total Denials by the control that caused them.",
                      "# TYPE kubeharden_admission_denials_total counter"]
            for control, n in sorted(self.denials.items()):
                lines.append(f'kubeharden_admission_denials_total{{control="{_label(control)}"}} {n}')
            lines += ["# HELP kubeharden_admission_bad_requests_total Requests refused before evaluation.",
                      "# TYPE kubeharden_admission_bad_requests_total counter"]
            for status, n in sorted(self.bad_requests.items()):
                lines.append(f'kubeharden_admission_bad_requests_total{{code="{status}"}} {n}')
            lines += ["# HELP kubeharden_admission_timeouts_total Reviews answered by the timeout policy.",
                      "# TYPE kubeharden_admission_timeouts_total counter",
                      f"kubeharden_admission_timeouts_total {self.timeouts}",
                      "# HELP kubeharden_admission_duration_seconds Time to answer an admission review.",
                      "# TYPE kubeharden_admission_duration_seconds histogram"]
            cumulative = 0
            for bound, n in zip(LATENCY_BUCKETS, self.bucket_counts, strict=False):
                cumulative += n
                lines.append(f'kubeharden_admission_duration_seconds_bucket{{le="{bound}"}} {cumulative}')
            lines.append(f'kubeharden_admission_duration_seconds_bucket{{le="+Inf"}} {self.latency_count}')
            lines.append(f"kubeharden_admission_duration_seconds_sum {self.latency_sum:.6f}")
            lines.append(f"kubeharden_admission_duration_seconds_count {self.latency_count}")
        lines += ["# HELP kubeharden_admission_in_flight Reviews being evaluated.",
                  "# TYPE kubeharden_admission_in_flight gauge",
                  f"kubeharden_admission_in_flight {in_flight}",
                  "# HELP kubeharden_tls_reloads_total Serving certificate reloads after a file change.",
                  "# TYPE kubeharden_tls_reloads_total counter",
                  f"kubeharden_tls_reloads_total {tls_reloads}",
                  "# HELP kubeharden_tls_reload_failures_total Changed certificate files that could not be loaded.",
                  "# TYPE kubeharden_tls_reload_failures_total counter",
                  f"kubeharden_tls_reload_failures_total {tls_reload_failures}"]
        for name, text, kind, value in extra:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
        return ("\n".join(lines) + "\n").encode()
