"""Shared helpers of the admission tests: certificates, a running webhook, an HTTPS client. Loopback only."""

from __future__ import annotations

import contextlib
import http.client
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import yaml

from kubeharden.admission import certs
from kubeharden.admission.evaluate import AdmissionEvaluator, AdmissionPolicy, ClusterContext
from kubeharden.admission.server import WebhookServer
from kubeharden.catalog import Settings, controls_for_profile

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def write_certs(directory: Path, name: str = "localhost") -> tuple[str, str, str]:
    """(ca.crt, tls.crt, tls.key) for ``name``, made by kubeharden's own generator."""
    bundle = certs.generate((name,))
    paths = []
    for file, data in (("ca.crt", bundle.ca_cert), ("tls.crt", bundle.cert), ("tls.key", bundle.key)):
        path = directory / file
        path.write_bytes(data)
        paths.append(str(path))
    return paths[0], paths[1], paths[2]


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def evaluator(profile: str = "nsa", policy: AdmissionPolicy | None = None, context: ClusterContext | None = None,
              settings: Settings | None = None, rules: Any = ()) -> AdmissionEvaluator:
    return AdmissionEvaluator(controls_for_profile(profile), settings or Settings(), rules, policy, context)


@contextlib.contextmanager
def running(tmp_path: Path, ev: AdmissionEvaluator | None = None, **kwargs: Any) -> Iterator[tuple[WebhookServer, str]]:
    """A started webhook on 127.0.0.1 and the CA file to trust; stopped (drained) at the end."""
    ca, cert, key = write_certs(tmp_path)
    server = WebhookServer(ev or evaluator(), ("127.0.0.1", 0), cert, key, log=lambda _: None, **kwargs)
    server.start()
    try:
        yield server, ca
    finally:
        server.stop(timeout=5)


class Client:
    """One keep-alive HTTPS connection, as the API server keeps them."""

    def __init__(self, port: int, ca: str, timeout: float = 10) -> None:
        self.context = ssl.create_default_context(cafile=ca)
        self.conn = http.client.HTTPSConnection("localhost", port, context=self.context, timeout=timeout)

    def post(self, body: bytes, path: str = "/validate", headers: dict[str, str] | None = None) -> tuple[int, Any]:
        self.conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = self.conn.getresponse()
        data = response.read()
        try:
            return response.status, orjson.loads(data)
        except orjson.JSONDecodeError:
            return response.status, data

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()
