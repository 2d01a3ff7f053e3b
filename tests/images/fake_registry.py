"""A small registry front and token service on 127.0.0.1, over TLS (certificates from cryptography),
for the auth and retry paths a real registry does not let a test provoke: the Bearer challenge
(realm, service, scope), tokens for basic credentials or anonymous, tokens that expire, 429 with
Retry-After, 503s. Every request is recorded (path, query, Authorization scheme and user)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from registry_support import OCI_CONFIG, OCI_MANIFEST, make_certificates

SERVICE = "fake-registry.test"


@dataclass
class Seen:
    server: str  # "registry" or "token"
    path: str
    query: dict[str, list[str]]
    auth: str  # "", "Basic <user>", "Bearer"


@dataclass
class Behaviour:
    users: dict[str, str] = field(default_factory=dict)  # basic credentials the token service accepts
    private: set[str] = field(default_factory=set)  # repositories that need a user's token
    token_uses: int = 0  # a token is refused after this many uses (0: never)
    rate_limited: int = 0  # the first N registry requests get 429
    retry_after: str | None = None
    unavailable: int = 0  # the next N registry requests get 503 (-1: all)


class FakeRegistry:
    def __init__(self, directory: Path) -> None:
        self.ca, cert, key = make_certificates(directory)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.behaviour = Behaviour()
        self.seen: list[Seen] = []
        self.tokens: dict[str, tuple[str, str | None, int]] = {}  # token -> (scope, user, uses)
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self.host = ""
        self.token_host = ""

    # -- content ----------------------------------------------------------------------------

    def add_image(self, repo: str, tag: str, user: str) -> str:
        config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-05-06T07:08:09Z",
                             "config": {"User": user}, "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.blobs[config_digest] = config
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                               "config": {"mediaType": OCI_CONFIG, "digest": config_digest,
                                          "size": len(config)}}).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        self.manifests[(repo, tag)] = manifest
        self.manifests[(repo, digest)] = manifest
        return digest

    # -- servers ----------------------------------------------------------------------------

    @contextmanager
    def running(self) -> Iterator[FakeRegistry]:
        registry = self._serve(self._registry_handler())
        token = self._serve(self._token_handler())
        self.host = f"127.0.0.1:{registry.server_address[1]}"
        self.token_host = f"127.0.0.1:{token.server_address[1]}"
        try:
            yield self
        finally:
            for server in self._servers:
                server.shutdown()
                server.server_close()

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.socket = self.context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._servers.append(server)
        return server

    def _record(self, server: str, handler: BaseHTTPRequestHandler) -> tuple[str, dict[str, list[str]], str]:
        parts = urlsplit(handler.path)
        header = handler.headers.get("Authorization", "")
        auth = ""
        if header.startswith("Basic "):
            auth = "Basic " + base64.b64decode(header[6:]).decode().partition(":")[0]
        elif header.startswith("Bearer "):
            auth = "Bearer"
        query = parse_qs(parts.query)
        with self.lock:
            self.seen.append(Seen(server, parts.path, query, auth))
        return parts.path, query, header

    def _registry_handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                path, _, header = fake._record("registry", self)
                b = fake.behaviour
                with fake.lock:
                    if b.rate_limited:
                        b.rate_limited -= 1
                        self.reply(429, b"", {"Retry-After": b.retry_after} if b.retry_after else {})
                        return
                    if b.unavailable:
                        b.unavailable -= 1 if b.unavailable > 0 else 0
                        self.reply(503, b"", {"Retry-After": b.retry_after} if b.retry_after else {})
                        return
                parts = path.split("/")
                # /v2/<repo...>/manifests/<ref> or /v2/<repo...>/blobs/<digest>
                if len(parts) < 5 or parts[1] != "v2" or parts[-2] not in ("manifests", "blobs"):
                    self.reply(404, b"")
                    return
                repo, what, ref = "/".join(parts[2:-2]), parts[-2], parts[-1]
                if not fake._authorized(header, repo):
                    realm = f"https://{fake.token_host}/token"
                    self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {
                        "WWW-Authenticate": f'Bearer realm="{realm}",service="{SERVICE}",'
                                            f'scope="repository:{repo}:pull"'})
                    return
                body = fake.manifests.get((repo, ref)) if what == "manifests" else fake.blobs.get(ref)
                if body is None:
                    self.reply(404, b"")
                    return
                media = OCI_MANIFEST if what == "manifests" else "application/octet-stream"
                self.reply(200, body, {"Content-Type": media})

        return Handler

    def _authorized(self, header: str, repo: str) -> bool:
        if not header.startswith("Bearer "):
            return False
        token = header[7:]
        found = self.tokens.get(token)
        if found is None:
            return False
        scope, user, uses = found
        if scope != f"repository:{repo}:pull" or (repo in self.behaviour.private and user is None):
            return False
        if self.behaviour.token_uses and uses >= self.behaviour.token_uses:
            return False  # expired
        self.tokens[token] = (scope, user, uses + 1)
        return True

    def _token_handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                path, query, header = fake._record("token", self)
                if path != "/token" or query.get("service") != [SERVICE]:
                    self.reply(400, b"")
                    return
                user = None
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if fake.behaviour.users.get(name) != password:
                        self.reply(401, b'{"details":"bad credentials"}')
                        return
                    user = name
                scope = (query.get("scope") or [""])[0]
                repo = scope.split(":")[1] if scope.count(":") == 2 else ""
                if repo in fake.behaviour.private and user is None:
                    self.reply(401, b'{"details":"authentication required"}')
                    return
                token = secrets.token_urlsafe(16)
                with fake.lock:
                    fake.tokens[token] = (scope, user, 0)
                self.reply(200, json.dumps({"token": token, "expires_in": 60}).encode(),
                           {"Content-Type": "application/json"})

        return Handler


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status: int, body: bytes, headers: dict[str, Any] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass
