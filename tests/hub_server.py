"""A fake Hugging Face Hub on 127.0.0.1 for the download tests: the part of the HTTP API that huggingface_hub's
``HfApi.model_info`` and ``snapshot_download`` use, served from memory by a thread in the test process. File names
are repo paths and may name folders (``guardrail/face_blur_filter/Resnet50_Final.pth`` inside a model repo, as on
the Hub).

Routes (as the Hub answers them, reduced to what the client reads):

* ``GET /api/models/<owner>/<name>/revision/<rev>``: ``{"id", "sha", "gated", "siblings": [{"rfilename", "size",
  "blobId", "lfs"}]}``. A bad token gets 401 with ``X-Error-Message: Invalid credentials in Authorization header``.
* ``HEAD|GET /<owner>/<name>/resolve/<rev>/<path>``: ``X-Repo-Commit``, ``ETag`` (the SHA-256, as for LFS files),
  ``Content-Length``; ``Range: bytes=N-`` gets 206. Gated repos: 401 + ``X-Error-Code: GatedRepo`` without a token,
  403 + ``GatedRepo`` with a token that was not granted access.

Bounded: after ``max_requests`` every request gets 429 (not retried by the client), and a watchdog shuts the server
down after ``lifetime`` seconds whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

API = re.compile(r"^/api/models/([^/]+/[^/]+)/revision/([^/]+)$")
RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    token: str | None


@dataclass
class FakeHub:
    repos: dict[str, dict[str, bytes]]
    gated: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=lambda: {"hf_granted", "hf_not_granted"})
    granted: set[str] = field(default_factory=lambda: {"hf_granted"})
    max_requests: int = 400
    lifetime: float = 120.0
    # (repo, file) -> bytes sent before the connection is cut, for the next GET of that file only.
    cut: dict[tuple[str, str], int] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)

    def sha(self, repo: str) -> str:
        return hashlib.sha1(repo.encode()).hexdigest()

    def start(self) -> FakeHub:
        hub = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _send(self, status: int, headers: dict[str, str], payload: bytes = b"", body: bool = True) -> None:
                headers = {"Content-Length": str(len(payload)), **headers}
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if body and payload:
                    self.wfile.write(payload)

            def _error(self, status: int, code: str | None, message: str, body: bool) -> None:
                headers = {"X-Error-Message": message}
                if code:
                    headers["X-Error-Code"] = code
                self._send(status, headers, json.dumps({"error": message}).encode(), body)

            def _serve(self, body: bool) -> None:
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
                path = unquote(urlsplit(self.path).path)
                with lock:
                    hub.log.append(Request(self.command, path, self.headers.get("Range"), token))
                    over = len(hub.log) > hub.max_requests
                if over:
                    return self._error(429, None, "test server request limit", body)
                if token is not None and token not in hub.tokens:
                    return self._error(401, None, "Invalid credentials in Authorization header", body)
                if m := API.match(path):
                    return self._api(m.group(1), m.group(2), body)
                if m := RESOLVE.match(path):
                    return self._resolve(m.group(1), m.group(2), m.group(3), token, body)
                return self._error(404, None, "not found", body)

            def _api(self, repo: str, rev: str, body: bool) -> None:
                if repo not in hub.repos or rev not in ("main", hub.sha(repo)):
                    return self._error(404, "RepoNotFound", "Repository not found", body)
                siblings = [
                    {
                        "rfilename": name,
                        "size": len(data),
                        "blobId": hashlib.sha1(data).hexdigest(),
                        "lfs": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134},
                    }
                    for name, data in sorted(hub.repos[repo].items())
                ]
                info = {
                    "_id": repo,
                    "id": repo,
                    "modelId": repo,
                    "sha": hub.sha(repo),
                    "private": False,
                    "gated": "manual" if repo in hub.gated else False,
                    "siblings": siblings,
                }
                self._send(200, {"Content-Type": "application/json"}, json.dumps(info).encode(), body)

            def _resolve(self, repo: str, rev: str, name: str, token: str | None, body: bool) -> None:
                if repo not in hub.repos or rev not in ("main", hub.sha(repo)):
                    return self._error(404, "RepoNotFound", "Repository not found", body)
                if repo in hub.gated and token is None:
                    return self._error(
                        401,
                        "GatedRepo",
                        f"Access to model {repo} is restricted. You must have "
                        "access to it and be authenticated to access it. Please log in.",
                        body,
                    )
                if repo in hub.gated and token not in hub.granted:
                    return self._error(
                        403,
                        "GatedRepo",
                        f"Access to model {repo} is restricted and you are not in "
                        f"the authorized list. Visit https://huggingface.co/{repo} to ask for access.",
                        body,
                    )
                data = hub.repos[repo].get(name)
                if data is None:
                    return self._error(404, "EntryNotFound", f"{name} does not exist", body)
                headers = {
                    "X-Repo-Commit": hub.sha(repo),
                    "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                    "Accept-Ranges": "bytes",
                    "Content-Type": "application/octet-stream",
                }
                status, start = 200, 0
                if body and (rng := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")):
                    status, start = 206, int(rng.group(1))
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                part = data[start:]
                headers["Content-Length"] = str(len(part))
                with lock:
                    cut = hub.cut.pop((repo, name), None) if body else None
                if cut is None:
                    return self._send(status, headers, part, body)
                self._send(status, headers, part[:cut], body)  # promises len(part) bytes, sends `cut`
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._watchdog = threading.Timer(self.lifetime, self._server.shutdown)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def stop(self) -> None:
        self._watchdog.cancel()
        self._server.shutdown()
        self._server.server_close()

    def requests_for(self, repo: str, method: str | None = None) -> list[Request]:
        return [r for r in self.log if repo in r.path and (method is None or r.method == method)]


def closed_port_url() -> str:
    """A 127.0.0.1 URL where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
