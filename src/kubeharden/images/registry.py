"""A read-only OCI distribution (v2) client: tag -> digest and the image config (User,
ExposedPorts, created) of the platform asked for.

Used only with ``--registry-lookup``, and only towards the registries the images name (plus the
token service a registry's challenge names, and the blob storage a registry redirects to, over HTTPS,
without the registry's Authorization header). ``--offline`` answers from the on-disk cache only and
never opens a connection.

* HTTP: urllib3 with certificate verification (the system trust store, or ``ca_file``); HTTPS only.
* Auth: anonymous first; a ``WWW-Authenticate: Bearer`` challenge is answered with a pull token from its
  realm (with the user's credentials when the docker config has some for the registry), a ``Basic``
  challenge with the credentials. Credentials come from ``~/.docker/config.json`` (``$DOCKER_CONFIG``)
  or the file given; they never appear in a message, a cache file or a report.
* Manifest lists and OCI indexes: the manifest of the platform asked for (``linux/amd64`` default).
* Limits: a timeout per request, a deadline for the whole run, bounded retries of connection errors and
  5xx; 429 and 503 wait for Retry-After (capped), all within the deadline; manifests and configs have
  size limits; every document fetched by digest is checked against it.
* Caches: per run, every reference is looked up once; on disk (``$XDG_CACHE_HOME/kubeharden/registry``),
  manifests and the few config fields kept, by digest (content-addressed, so never stale). Tags are
  always asked again, since they move.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3

from kubeharden import safeio
from kubeharden.images.reference import DIGEST_RE, ImageRef, parse_image
from kubeharden.inventory import as_dict, as_list

INDEX_TYPES = frozenset({"application/vnd.oci.image.index.v1+json",
                         "application/vnd.docker.distribution.manifest.list.v2+json"})
MANIFEST_TYPES = frozenset({"application/vnd.oci.image.manifest.v1+json",
                            "application/vnd.docker.distribution.manifest.v2+json"})
CONFIG_TYPES = frozenset({"application/vnd.oci.image.config.v1+json",
                          "application/vnd.docker.container.image.v1+json"})
ACCEPT = ", ".join(sorted(INDEX_TYPES | MANIFEST_TYPES))
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 8 * 1024 * 1024
MAX_TOKEN_BYTES = 1024 * 1024
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_CHALLENGE_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io", "docker.io")


class RegistryError(Exception):
    """A lookup that failed, with a message fit for the user (never a credential)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class RegistryOptions:
    platform: str = "linux/amd64"
    docker_config: str | None = None  # a docker config.json; default $DOCKER_CONFIG or ~/.docker
    cache_dir: str | None = None  # default $XDG_CACHE_HOME/kubeharden/registry; "" for none
    ca_file: str | None = None  # trusted CAs instead of the system's
    timeout: float = 10.0  # seconds per request
    deadline: float = 120.0  # seconds for all lookups of a run
    retries: int = 2
    max_retry_after: float = 10.0
    offline: bool = False


@dataclass(frozen=True)
class ImageInfo:
    reference: str  # normalized reference looked up
    registry: str
    repository: str
    tag: str | None
    digest: str  # the image manifest's digest (of the platform's manifest when the tag names an index)
    index_digest: str | None
    platform: str | None
    config_digest: str
    user: str
    exposed_ports: tuple[str, ...]
    created: str | None
    source: str  # URL of the manifest asked for

    def to_object(self) -> dict[str, Any]:
        """The ImageConfig resource (kubeharden.images) that controls judge."""
        from kubeharden.images import API_VERSION, IMAGE_CONFIG_KIND

        spec: dict[str, Any] = {
            "reference": self.reference, "registry": self.registry, "repository": self.repository,
            "tag": self.tag, "digest": self.digest, "indexDigest": self.index_digest, "platform": self.platform,
            "configDigest": self.config_digest, "user": self.user, "exposedPorts": list(self.exposed_ports),
            "created": self.created, "source": self.source,
        }
        return {"apiVersion": API_VERSION, "kind": IMAGE_CONFIG_KIND, "metadata": {"name": self.reference},
                "spec": {k: v for k, v in spec.items() if v is not None}}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    origin: str = ""  # the config file they came from

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def docker_config_path(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _registry_of_key(key: str) -> str:
    """An auths key (https://index.docker.io/v1/, host:port, https://host/path) -> registry host."""
    host = urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]
    host = host.lower()
    return "docker.io" if key in _DOCKER_HUB_KEYS or host in _DOCKER_HUB_KEYS else host


def load_credentials(path: Path) -> tuple[dict[str, Credentials], list[str]]:
    """Registry host -> credentials from a docker config.json, and notes on entries not usable
    (credential helpers are programs: kubeharden does not run them)."""
    notes: list[str] = []
    try:
        data = json.loads(safeio.read_regular(path, 1024 * 1024))
    except FileNotFoundError:
        return {}, notes
    except (OSError, ValueError) as exc:
        reason = exc.message if isinstance(exc, safeio.UnsafePathError) else type(exc).__name__
        raise RegistryError(f"{path}: cannot read the docker config ({reason})") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: the docker config is not a JSON object")
    out: dict[str, Credentials] = {}
    auths = data.get("auths")
    for key, entry in (auths.items() if isinstance(auths, dict) else []):
        if not isinstance(entry, dict):
            continue
        user, password = entry.get("username"), entry.get("password")
        if isinstance(entry.get("auth"), str) and entry["auth"]:
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                notes.append(f"{path}: the auth of {_registry_of_key(str(key))} is not base64 user:password")
                continue
        if isinstance(user, str) and user and isinstance(password, str):
            out[_registry_of_key(str(key))] = Credentials(user, password, str(path))
        elif entry.get("identitytoken"):
            notes.append(f"{path}: {_registry_of_key(str(key))} has an identity token only (not supported)")
    for helper_key in ("credsStore", "credHelpers"):
        if data.get(helper_key):
            notes.append(f"{path}: {helper_key} names credential helper programs, which kubeharden does not run")
    return out, notes


def parse_platform(text: str) -> tuple[str, str, str | None]:
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform {text!r} is not OS/ARCH[/VARIANT] (e.g. linux/amd64)")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _CHALLENGE_PARAM_RE.finditer(rest)}
    return scheme.lower(), params


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _user_error(exc: Exception) -> str:
    """Name a transport failure without its text beyond the reason (it may quote a URL, never a credential)."""
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, urllib3.exceptions.SSLError) or isinstance(exc, urllib3.exceptions.SSLError):
        return "TLS verification failed (the registry's certificate is not trusted)"
    if isinstance(reason, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return "timed out"
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return "cannot connect"
    return type(reason).__name__


@dataclass
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes


class RegistryClient:
    """One client per run: its caches, tokens and deadline are the run's."""

    def __init__(self, options: RegistryOptions | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.options = options or RegistryOptions()
        self.platform = parse_platform(self.options.platform)
        self._sleep = sleep
        self._deadline = time.monotonic() + self.options.deadline
        self._lock = threading.Lock()
        self._results: dict[str, ImageInfo | RegistryError] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        self._basic: set[str] = set()  # hosts that asked for Basic auth
        self._credentials: dict[str, Credentials] | None = None
        self.notes: list[str] = []
        self.requests = 0
        self._pool: urllib3.PoolManager | None = None

    # -- public ---------------------------------------------------------------------------

    def lookup(self, image: str) -> ImageInfo:
        ref = parse_image(image)
        key = f"{ref.normalized()} {self.options.platform}"
        with self._lock:
            known = self._results.get(key)
        if known is None:
            try:
                known = self._lookup(ref)
            except RegistryError as exc:
                known = exc
            with self._lock:
                self._results[key] = known
        if isinstance(known, RegistryError):
            raise known
        return known

    # -- lookup ---------------------------------------------------------------------------

    def _lookup(self, ref: ImageRef) -> ImageInfo:
        if ref.digest and not DIGEST_RE.match(ref.digest):
            raise RegistryError(f"digest {ref.digest} is not a sha256 digest")
        reference = ref.digest or ref.tag or "latest"
        url = self._url(ref, f"manifests/{reference}")
        body, media_type, digest = self._manifest(ref, reference)
        index_digest = None
        platform = None
        if media_type in INDEX_TYPES:
            index_digest = digest
            chosen, platform = self._pick_platform(ref, body)
            body, media_type, digest = self._manifest(ref, chosen)
        if media_type not in MANIFEST_TYPES:
            raise RegistryError(f"{ref.normalized()}: unsupported manifest type {media_type or 'unknown'}")
        manifest = _json_object(body, "manifest")
        config_desc = manifest.get("config")
        if not isinstance(config_desc, dict) or not DIGEST_RE.match(str(config_desc.get("digest") or "")):
            raise RegistryError(f"{ref.normalized()}: the manifest has no config descriptor")
        if config_desc.get("mediaType") not in CONFIG_TYPES:
            raise RegistryError(f"{ref.normalized()}: not a container image (config type "
                                f"{config_desc.get('mediaType')})")
        config = self._config(ref, str(config_desc["digest"]))
        if platform is None and config.get("os") and config.get("architecture"):
            platform = f"{config['os']}/{config['architecture']}"
        return ImageInfo(
            reference=ref.normalized(), registry=ref.registry, repository=ref.repository, tag=ref.tag,
            digest=digest, index_digest=index_digest, platform=platform, config_digest=str(config_desc["digest"]),
            user=str(config.get("user") or ""), exposed_ports=tuple(config.get("exposedPorts") or ()),
            created=config.get("created"), source=url,
        )

    def _pick_platform(self, ref: ImageRef, body: bytes) -> tuple[str, str]:
        index = _json_object(body, "index")
        want_os, want_arch, want_variant = self.platform
        offered: list[str] = []
        fallback: tuple[str, str] | None = None
        for entry in as_list(index.get("manifests")):
            if not isinstance(entry, dict) or not isinstance(entry.get("platform"), dict):
                continue
            plat = entry["platform"]
            os_name, arch, variant = (str(plat.get(k) or "").lower() for k in ("os", "architecture", "variant"))
            if os_name == "unknown":
                continue  # attestation manifests of buildx
            text = "/".join(p for p in (os_name, arch, variant) if p)
            offered.append(text)
            digest = str(entry.get("digest") or "")
            if os_name != want_os or arch != want_arch or not DIGEST_RE.match(digest):
                continue
            if want_variant is None or variant == want_variant:
                if want_variant is None and variant and fallback is None:
                    fallback = (digest, text)  # e.g. arm64/v8 for arm64; keep looking for an exact one
                    continue
                return digest, text
        if fallback is not None:
            return fallback
        raise RegistryError(f"{ref.normalized()}: no {self.options.platform} image in the index "
                            f"(it has: {', '.join(offered) or 'none'}; choose one with --platform)")

    def _manifest(self, ref: ImageRef, reference: str) -> tuple[bytes, str, str]:
        pinned = reference if DIGEST_RE.match(reference) else None
        if pinned:
            cached = self._cache_read("manifest", pinned)
            if cached is not None and _sha256(cached) == pinned:
                return cached, _media_type(cached, ""), pinned
        if self.options.offline:
            raise RegistryError(f"{ref.normalized()}: --offline and "
                                f"{'the manifest is not in the cache' if pinned else 'a tag needs the registry'}")
        response = self._get(ref, f"manifests/{reference}", {"Accept": ACCEPT}, MAX_MANIFEST_BYTES, "manifest")
        digest = _sha256(response.body)
        if pinned and digest != pinned:
            raise RegistryError(f"{ref.normalized()}: the registry's manifest does not match its digest {pinned}")
        self._cache_write("manifest", digest, response.body)
        return response.body, _media_type(response.body, response.headers.get("content-type", "")), digest

    def _config(self, ref: ImageRef, digest: str) -> dict[str, Any]:
        cached = self._cache_read("config", digest)
        if cached is not None:
            try:
                value = json.loads(cached)
                if _is_kept_config(value):
                    return value
            except (ValueError, RecursionError):
                pass  # a corrupt or planted cache entry is a miss, never trusted
        if self.options.offline:
            raise RegistryError(f"{ref.normalized()}: --offline and the image config is not in the cache")
        response = self._get(ref, f"blobs/{digest}", {}, MAX_CONFIG_BYTES, "image config", follow_redirects=True)
        if _sha256(response.body) != digest:
            raise RegistryError(f"{ref.normalized()}: the image config does not match its digest {digest}")
        config = _json_object(response.body, "image config")
        inner = as_dict(config.get("config"))
        ports = as_dict(inner.get("ExposedPorts"))
        # Only what the controls read is kept: Env and labels of a private image may hold secrets.
        kept = {"user": str(inner.get("User") or ""), "exposedPorts": sorted(str(p) for p in ports),
                "created": config.get("created") if isinstance(config.get("created"), str) else None,
                "os": config.get("os"), "architecture": config.get("architecture")}
        self._cache_write("config", digest, json.dumps(kept).encode())
        return kept

    # -- HTTP ------------------------------------------------------------------------------

    def _url(self, ref: ImageRef, tail: str) -> str:
        return f"https://{ref.api_host}/v2/{ref.repository}/{tail}"

    def _pool_manager(self) -> urllib3.PoolManager:
        if self._pool is None:
            self._pool = urllib3.PoolManager(
                num_pools=16, maxsize=4, cert_reqs="CERT_REQUIRED", ca_certs=self.options.ca_file or None,
                retries=False,
            )
        return self._pool

    def credentials(self, registry: str) -> Credentials | None:
        with self._lock:
            if self._credentials is None:
                found, notes = load_credentials(docker_config_path(self.options.docker_config))
                self._credentials = found
                self.notes.extend(notes)
        return self._credentials.get(registry)

    def _get(self, ref: ImageRef, tail: str, headers: dict[str, str], limit: int, what: str,
             follow_redirects: bool = False) -> _Response:
        url = self._url(ref, tail)
        scope = f"repository:{ref.repository}:pull"
        auth = self._authorization(ref)
        response = self._request("GET", url, {**headers, **auth}, limit, what, follow_redirects)
        if response.status == 401:
            challenge = response.headers.get("www-authenticate", "")
            auth = self._answer(ref, challenge, scope)
            response = self._request("GET", url, {**headers, **auth}, limit, what, follow_redirects)
            if response.status == 401:
                who = self.credentials(ref.registry)
                raise RegistryError(f"{ref.normalized()}: the registry refused the credentials"
                                    + (f" from {who.origin}" if who else " (no credentials for "
                                       f"{ref.registry} in {docker_config_path(self.options.docker_config)})"))
        if response.status == 404:
            raise RegistryError(f"{ref.normalized()}: {what} not found in the registry")
        if response.status == 403:
            raise RegistryError(f"{ref.normalized()}: access to the {what} denied")
        if response.status != 200:
            raise RegistryError(f"{ref.normalized()}: the registry answered HTTP {response.status} for the {what}")
        return response

    def _authorization(self, ref: ImageRef) -> dict[str, str]:
        with self._lock:
            token = self._tokens.get((ref.api_host, ref.repository))
            basic = ref.api_host in self._basic
        if token:
            return {"Authorization": f"Bearer {token}"}
        if basic:
            creds = self.credentials(ref.registry)
            if creds:
                return {"Authorization": creds.basic()}
        return {}

    def _answer(self, ref: ImageRef, challenge: str, scope: str) -> dict[str, str]:
        scheme, params = parse_challenge(challenge)
        creds = self.credentials(ref.registry)
        if scheme == "basic":
            if creds is None:
                raise RegistryError(f"{ref.normalized()}: the registry needs credentials and "
                                    f"{docker_config_path(self.options.docker_config)} has none for {ref.registry}")
            with self._lock:
                self._basic.add(ref.api_host)
            return {"Authorization": creds.basic()}
        if scheme != "bearer" or not params.get("realm"):
            raise RegistryError(f"{ref.normalized()}: the registry asks for unsupported authentication "
                                f"({scheme or 'no challenge'})")
        realm = params["realm"]
        if urlsplit(realm).scheme != "https":
            raise RegistryError(f"{ref.normalized()}: the token service {urlsplit(realm).netloc} is not HTTPS")
        query = {"scope": params.get("scope") or scope}
        if params.get("service"):
            query["service"] = params["service"]
        headers = {"Authorization": creds.basic()} if creds else {}
        sep = "&" if "?" in realm else "?"
        response = self._request("GET", f"{realm}{sep}{urlencode(query)}", headers, MAX_TOKEN_BYTES, "token")
        if response.status in (401, 403):
            raise RegistryError(f"{ref.normalized()}: the token service refused "
                                + (f"the credentials from {creds.origin}" if creds else "anonymous access "
                                   f"(no credentials for {ref.registry})"))
        if response.status != 200:
            raise RegistryError(f"{ref.normalized()}: the token service answered HTTP {response.status}")
        body = _json_object(response.body, "token response")
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{ref.normalized()}: the token service gave no token")
        with self._lock:
            self._tokens[(ref.api_host, ref.repository)] = token
        return {"Authorization": f"Bearer {token}"}

    def _remaining(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise RegistryError(f"registry lookups stopped: the deadline of {self.options.deadline:g} s was reached")
        return remaining

    def _request(self, method: str, url: str, headers: dict[str, str], limit: int, what: str,
                 follow_redirects: bool = False) -> _Response:
        if self.options.offline:  # never reached with --offline; a guard, not a path
            raise RegistryError("--offline: no registry traffic")
        attempt = 0
        redirects = 0
        while True:
            remaining = self._remaining()
            timeout = urllib3.Timeout(connect=min(5.0, remaining), read=min(self.options.timeout, remaining))
            try:
                self.requests += 1
                raw = self._pool_manager().request(method, url, headers={**headers, "User-Agent": "kubeharden"},
                                                   timeout=timeout, redirect=False, preload_content=False)
                try:
                    body = raw.read(limit + 1, decode_content=True)
                finally:
                    raw.release_conn()
            except urllib3.exceptions.HTTPError as exc:
                reason = _user_error(exc)
                if attempt < self.options.retries and "TLS" not in reason:
                    attempt += 1
                    self._sleep(min(0.5 * 2 ** attempt, self._remaining()))
                    continue
                raise RegistryError(f"{urlsplit(url).netloc}: {reason} ({what})") from None
            if len(body) > limit:
                raise RegistryError(f"{urlsplit(url).netloc}: the {what} is larger than {limit} bytes")
            response_headers = {k.lower(): v for k, v in raw.headers.items()}
            status = raw.status
            if status in (301, 302, 303, 307, 308) and follow_redirects and redirects < 3:
                location = response_headers.get("location", "")
                target = urlsplit(location)
                if target.scheme and target.scheme != "https":
                    raise RegistryError(f"{urlsplit(url).netloc}: redirected to a non-HTTPS location for the {what}")
                if target.netloc and target.netloc != urlsplit(url).netloc:
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                if not target.netloc:
                    base = urlsplit(url)
                    location = f"{base.scheme}://{base.netloc}{location}"
                url = location
                redirects += 1
                continue
            if status == 429 or status in _RETRY_STATUSES:
                if attempt < self.options.retries:
                    attempt += 1
                    # 429 and 503 may say when to come back (RFC 9110 10.2.3); capped all the same
                    wait = _retry_after(response_headers.get("retry-after")) if status in (429, 503) else None
                    wait = 0.5 * 2 ** attempt if wait is None else wait
                    self._sleep(min(wait, self.options.max_retry_after, self._remaining()))
                    continue
                if status == 429:
                    raise RegistryError(f"{urlsplit(url).netloc}: rate limited (HTTP 429) for the {what}")
            return _Response(status, response_headers, body)

    # -- disk cache ---------------------------------------------------------------------------

    def _cache_dir(self) -> Path | None:
        if self.options.cache_dir == "":
            return None
        if self.options.cache_dir:
            return Path(self.options.cache_dir)
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "kubeharden" / "registry"

    def _cache_path(self, kind: str, digest: str) -> Path | None:
        directory = self._cache_dir()
        if directory is None or not DIGEST_RE.match(digest):
            return None
        return directory / f"{kind}-{digest.split(':', 1)[1]}.json"

    def _cache_read(self, kind: str, digest: str) -> bytes | None:
        path = self._cache_path(kind, digest)
        if path is None:
            return None
        try:
            return safeio.read_regular(path, MAX_MANIFEST_BYTES if kind == "manifest" else MAX_CONFIG_BYTES)
        except OSError:
            return None

    def _cache_write(self, kind: str, digest: str, data: bytes) -> None:
        path = self._cache_path(kind, digest)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with safeio.atomic_output(path, mode=0o600) as fp:
                fp.write(data)
        except OSError:
            pass  # a cache that cannot be written only costs a lookup next time


def _is_kept_config(value: Any) -> bool:
    """The shape `_config` writes to the cache, and nothing else."""
    return (isinstance(value, dict) and isinstance(value.get("user"), str)
            and isinstance(value.get("exposedPorts"), list) and all(isinstance(p, str) for p in value["exposedPorts"])
            and all(value.get(k) is None or isinstance(value.get(k), str) for k in ("created", "os", "architecture")))


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise RegistryError(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise RegistryError(f"the {what} is not a JSON object")
    return value


def _media_type(body: bytes, header: str) -> str:
    try:
        value = json.loads(body)
    except ValueError:
        return header.split(";", 1)[0].strip()
    media = value.get("mediaType") if isinstance(value, dict) else None
    if isinstance(media, str) and media:
        return media
    if isinstance(value, dict) and isinstance(value.get("manifests"), list):
        return "application/vnd.oci.image.index.v1+json"  # OCI allows the field to be absent
    return header.split(";", 1)[0].strip() or "application/vnd.oci.image.manifest.v1+json"
