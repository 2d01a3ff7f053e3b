"""``--cluster-context live``: the cluster context read once at start and kept fresh by WATCHes.

The kinds cross-object controls read (Namespaces, NetworkPolicies, RBAC, LimitRanges, ServiceAccounts,
Services, webhook configurations...) are LISTed through ``kubeharden.sources.cluster`` (its reader:
timeouts, retries, deadlines, pagination, 410 on a continue token) and then WATCHed from each list's
resourceVersion, one thread per kind. A watch the server ends is resumed from the last version seen
(BOOKMARKs keep it current); 410 Gone (the version was compacted) relists the kind; any other failure
waits with a bounded, jittered exponential backoff and tries again. Changes are published as a new
``ClusterContext`` object (built as ``scan --cluster`` builds its inventory, at most every
``PUBLISH_INTERVAL``) swapped into the evaluator in one assignment: a review reads the context it
started with and never waits for the API server. Workloads are not read (each review judges its own
object) and neither are Secrets (their types need extra lists; the controls that read them are not
assessed, with that reason).
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from kubeharden.admission.evaluate import AdmissionEvaluator, ClusterContext
from kubeharden.inventory import WORKLOAD_KINDS
from kubeharden.sources import cluster as source

NOT_WATCHED = {"Secret": "not watched by the webhook (Secret types need extra lists)"}
WATCH_SECONDS = 300  # the server ends each watch after this; it is resumed from the last version seen
MAX_BACKOFF = 30.0
PUBLISH_INTERVAL = 0.2  # changes within this are published as one new context


class ContextWatch:
    def __init__(self, options: source.ClusterOptions, *, log: Callable[[str], object] = lambda _: None,
                 reader: source.ApiReader | None = None, watch_seconds: int = WATCH_SECONDS,
                 backoff: float = 0.5) -> None:
        # One connection per watched kind (about 25) plus the relists: the reader's pool follows the workers.
        self.options = dataclasses.replace(options, workers=max(options.workers, 40))
        self.log = log
        self.reader = reader or source.ApiReader(self.options)
        self.watch_seconds = watch_seconds
        self.backoff = backoff
        self.targets: list[source.ListTarget] = []
        self.outcomes: dict[source.ListTarget, source.ListOutcome] = {}
        self._items: dict[source.ListTarget, dict[tuple[str | None, str], dict[str, Any]]] = {}
        self._server_version: str | None = None
        self._notes: list[str] = []
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._evaluators: list[AdmissionEvaluator] = []
        self.context: ClusterContext | None = None
        self.relists = 0
        self.rewatches = 0
        self.failures = 0
        self.events = 0
        self.published_at = 0.0

    # -- start-up ----------------------------------------------------------------------------------

    def start_and_wait(self) -> ClusterContext:
        """LIST every kind (ClusterError when the cluster cannot be read at all), publish, start the watches."""
        try:
            version = self.reader.get_json("/version")
            self._server_version = str(version.get("gitVersion") or "") or None
            targets, undiscovered, self._notes = source.discover(self.reader, ())
        except source._HttpError as exc:
            raise source._cluster_error(exc, self.reader) from None
        self.targets = [t for t in targets if t.kind not in WORKLOAD_KINDS and t.kind not in NOT_WATCHED
                        and not t.field_selector]
        for outcome in undiscovered:
            self.outcomes[outcome.target] = outcome
        for target in self.targets:
            self._relist(target)
        self.context = self._build()
        self.published_at = time.monotonic()
        for target in self.targets:
            thread = threading.Thread(target=self._watch_loop, args=(target,), daemon=True,
                                      name=f"kh-watch-{target.resource}")
            thread.start()
            self._threads.append(thread)
        publisher = threading.Thread(target=self._publish_loop, daemon=True, name="kh-watch-publish")
        publisher.start()
        self._threads.append(publisher)
        return self.context

    def attach(self, evaluator: AdmissionEvaluator) -> None:
        """The evaluator reads this watch's context from now on (swapped on every change)."""
        self._evaluators.append(evaluator)
        evaluator.context = self.context

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._changed.set()
        self.reader.close()  # ends the watches in flight (their connections close)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- lists and watches -------------------------------------------------------------------------

    def _relist(self, target: source.ListTarget) -> source.ListOutcome:
        outcome = source.list_all(self.reader, target)  # 401 raises: the credentials are gone
        items = {_key(item): item for item in outcome.items}
        with self._lock:
            self.outcomes[target] = outcome
            self._items[target] = items
        self._changed.set()
        return outcome

    def _watch_loop(self, target: source.ListTarget) -> None:
        attempt = 0
        while not self._stop.is_set():
            outcome = self.outcomes.get(target)
            version = outcome.resource_version if outcome is not None else None
            try:
                if outcome is None or outcome.failed or outcome.forbidden or not version:
                    outcome = self._relist(target)  # forbidden / failed lists are tried again, with backoff
                    self.relists += 1
                    if outcome.failed or outcome.forbidden or not outcome.resource_version:
                        raise source._HttpError(0, outcome.failed or outcome.forbidden or "no resourceVersion")
                    attempt = 0
                    continue
                for event in self.reader.watch(target, version, self.watch_seconds):
                    if self._stop.is_set():
                        return
                    self._apply(target, event)
                    attempt = 0
                self.rewatches += 1  # the server ended the watch: resume from the last version seen
            except source._HttpError as exc:
                if self._stop.is_set():
                    return
                if exc.status == 410:  # compacted: the version is gone, read the kind afresh
                    self.log(f"kubeharden webhook: watch of {target.label}: 410 Gone, relisting")
                    with self._lock:
                        self.outcomes[target].resource_version = None
                    continue
                self.failures += 1
                delay = min(self.backoff * 2 ** attempt, MAX_BACKOFF) * (0.5 + random.random() / 2)
                attempt = min(attempt + 1, 16)
                self.log(f"kubeharden webhook: watch of {target.label}: {exc.described}; again in {delay:.1f} s")
                self._stop.wait(delay)
            except Exception as exc:  # a bug must not end the freshness of the context silently
                self.failures += 1
                self.log(f"kubeharden webhook: watch of {target.label}: {type(exc).__name__}")
                self._stop.wait(min(self.backoff * 2 ** attempt, MAX_BACKOFF))
                attempt = min(attempt + 1, 16)

    def _apply(self, target: source.ListTarget, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event["object"]
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        version = meta.get("resourceVersion")
        with self._lock:
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                items = self._items.setdefault(target, {})
                if kind == "DELETED":
                    items.pop(_key(obj), None)
                else:
                    source._slim_item(target.kind, obj)
                    obj["apiVersion"], obj["kind"] = target.api_version, target.kind
                    items[_key(obj)] = obj
                self.events += 1
                self._changed.set()
            if isinstance(version, str) and version:
                self.outcomes[target].resource_version = version  # BOOKMARKs too

    # -- publishing --------------------------------------------------------------------------------

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            self._changed.wait()
            if self._stop.is_set():
                return
            self._stop.wait(PUBLISH_INTERVAL)  # gather the changes of a burst into one context
            self._changed.clear()
            context = self._build()
            self.context = context
            self.published_at = time.monotonic()
            for evaluator in self._evaluators:
                evaluator.context = context  # one assignment: a review keeps the context it started with

    def _build(self) -> ClusterContext:
        with self._lock:
            lists = [source.ListOutcome(o.target, list(self._items.get(o.target, {}).values()), o.forbidden,
                                        o.failed) for o in self.outcomes.values()]
        read = source.ClusterRead(f"cluster:{self.reader.context}", self.reader.context, self._server_version,
                                  lists, list(self._notes), ())
        loaded = source.to_load_result(read)
        facts = dict(loaded.facts)
        forbidden = dict(facts.get("forbidden_kinds") or {})
        forbidden.update({kind: reason for kind, reason in NOT_WATCHED.items() if kind not in forbidden})
        facts["forbidden_kinds"] = forbidden
        facts["cluster"] = True
        kept = [r for r in loaded.resources if r.kind not in WORKLOAD_KINDS]
        return ClusterContext(kept, facts, f"cluster {self.reader.context} (watched)")

    def metrics(self) -> list[tuple[str, str, str, float]]:
        context = self.context
        return [
            ("kubeharden_cluster_context_objects", "Objects of the watched cluster context.", "gauge",
             len(context.resources) if context else 0),
            ("kubeharden_cluster_context_age_seconds", "Seconds since the context was last published.", "gauge",
             round(time.monotonic() - self.published_at, 3)),
            ("kubeharden_cluster_watch_events_total", "Watch events applied.", "counter", self.events),
            ("kubeharden_cluster_watch_relists_total", "Kinds listed again (410 Gone, failed lists).", "counter",
             self.relists),
            ("kubeharden_cluster_watch_failures_total", "Watches that failed and were retried with backoff.",
             "counter", self.failures),
        ]


def _key(obj: dict[str, Any]) -> tuple[str | None, str]:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return meta.get("namespace"), str(meta.get("name") or "")
