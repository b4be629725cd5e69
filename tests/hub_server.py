"""A small local HTTP server that speaks the Hugging Face Hub's upload protocol, for offline tests.

It answers what ``huggingface_hub`` (``create_repo``, ``upload_folder``, ``create_commit``, ``hf_hub_download``)
and ``datasets.Dataset.push_to_hub`` call, keeps every repository's files in memory, and records every request (with
its headers) and every uploaded file's bytes, so that tests can check what reached "the Hub".

```python
with HubServer() as hub:
    monkeypatch_hub_endpoint(monkeypatch, hub.url)   # HF_ENDPOINT, HF_TOKEN, HF_HUB_DISABLE_XET, cached constants
    trainer.push_to_hub()
    hub.files("tester/my-model")                      # {"README.md": b"...", "model.safetensors": b"...", ...}
```

Served: ``GET /api/agent-harnesses``, ``GET /api/whoami-v2``, ``POST /api/repos/create``, ``POST /api/validate-yaml``,
``GET /api/{models,datasets}/{repo}[/revision/{rev}]`` (404 with ``X-Error-Code: RepoNotFound`` when missing),
``GET .../tree/{rev}[/{path}]``, ``POST .../paths-info/{rev}``, ``POST .../preupload/{rev}``, ``POST .../commit/{rev}``
(NDJSON), LFS ``POST /[datasets/]{repo}.git/info/lfs/objects/batch`` and ``PUT /lfs-upload/{oid}``, and
``GET|HEAD /[datasets/]{repo}/resolve/{rev}/{path}``. Anything else is answered 404 and listed in
:attr:`HubServer.unhandled`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LFS_THRESHOLD = 10 * 1024 * 1024  # files at least this large, and every *.parquet, are asked for over LFS
_REPO = r"(?P<repo>[^/]+/[^/]+?)"


@dataclass
class Repo:
    """One repository held by the server."""

    repo_id: str
    repo_type: str
    private: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commits[-1]["oid"] if self.commits else "0" * 40


@dataclass
class RecordedRequest:
    """One request as received (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class HubServer:
    """An in-memory Hub. Start it with :meth:`start` (or ``with HubServer() as hub``) and point ``HF_ENDPOINT`` at
    :attr:`url`.

    Args:
        user (`str`, defaults to ``"tester"``): The namespace of repositories created without one.
        token (`str`, *optional*): When given, API requests without ``Authorization: Bearer <token>`` get a 401.

    Attributes:
        creates (`list`): Every create request as ``(repo_type, repo_id, visibility)``, where ``visibility`` is what
            the client asked for: ``"private"``, ``"public"`` or `None` (the account's default, here public).
        repo_info_fails (`bool`): Answer 500 to ``GET /api/models/{repo}``, to simulate a Hub that cannot say
            whether a model repository is private.
    """

    def __init__(self, user: str = "tester", token: str | None = None):
        self.user = user
        self.token = token
        self.creates: list[tuple[str, str, str | None]] = []
        self.repo_info_fails = False
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[RecordedRequest] = []
        self.uploads: list[tuple[str, str, str, bytes]] = []  # (repo_type, repo_id, path, bytes), in upload order
        self.unhandled: list[str] = []
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> HubServer:
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------------ inspection
    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def files(self, repo_id: str, repo_type: str = "model") -> dict[str, bytes]:
        """The current files of a repository (latest commit)."""
        return dict(self.repo(repo_id, repo_type).files)

    def all_uploaded_bytes(self) -> list[tuple[str, bytes]]:
        """Every file ever uploaded (regular or LFS), as ``("<type>:<repo>/<path>", bytes)``, plus LFS objects."""
        out = [(f"{t}:{r}/{p}", b) for t, r, p, b in self.uploads]
        out += [(f"lfs:{oid}", b) for oid, b in self.lfs_objects.items()]
        return out

    # ------------------------------------------------------------------ operations (called by the handler)
    def create_repo(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or self.user
        repo_id = f"{namespace}/{payload['name']}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.url}/{prefix}{repo_id}"
        asked = payload.get("visibility") or {True: "private", False: "public"}.get(payload.get("private"))
        with self.lock:
            self.creates.append((repo_type, repo_id, asked))
            if (repo_type, repo_id) in self.repos:
                return 409, {"error": "You already created this repo", "url": url}
            private = payload.get("visibility") == "private" or bool(payload.get("private"))
            self.repos[(repo_type, repo_id)] = Repo(repo_id, repo_type, private=private)
        return 200, {"url": url, "name": repo_id, "id": repo_id}

    def commit(self, repo: Repo, body: bytes) -> dict[str, Any]:
        header: dict[str, Any] = {}
        changed: list[str] = []
        with self.lock:
            for line in body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    header = value
                elif key == "file":
                    content = base64.b64decode(value["content"])
                    repo.files[value["path"]] = content
                    self.uploads.append((repo.repo_type, repo.repo_id, value["path"], content))
                    changed.append(value["path"])
                elif key == "lfsFile":
                    content = self.lfs_objects[value["oid"]]
                    repo.files[value["path"]] = content
                    self.uploads.append((repo.repo_type, repo.repo_id, value["path"], content))
                    changed.append(value["path"])
                elif key == "deletedFile":
                    repo.files.pop(value["path"], None)
                elif key == "deletedFolder":
                    folder = value["path"].rstrip("/") + "/"
                    for path in [p for p in repo.files if p.startswith(folder)]:
                        del repo.files[path]
            oid = hashlib.sha1(f"{repo.repo_id}:{len(repo.commits)}:{sorted(changed)}".encode()).hexdigest()
            repo.commits.append({"oid": oid, "summary": header.get("summary", ""), "files": changed})
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return {"commitUrl": f"{self.url}/{prefix}{repo.repo_id}/commit/{oid}", "commitOid": oid, "success": True}


def _entry(path: str, content: bytes) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": "file",
        "path": path,
        "size": len(content),
        "oid": hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest(),
    }
    if path.endswith(".parquet") or len(content) >= LFS_THRESHOLD:
        entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": 130}
    return entry


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
        pass

    # ------------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None):
        body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        if raw is None:
            self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _not_found(self, code: str = "RepoNotFound", message: str = "Repository not found"):
        self._send(404, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def _authorized(self, path: str) -> bool:
        if self.hub.token is None or path.startswith("/lfs-upload/") or path == "/api/agent-harnesses":
            return True
        return self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def _handle(self):
        split = urlsplit(self.path)
        path, query = unquote(split.path), parse_qs(split.query)
        body = self._body() if self.command in ("POST", "PUT") else b""
        with self.hub.lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.hub.requests.append(RecordedRequest(self.command, self.path, headers, body))
        if not self._authorized(path):
            return self._send(401, {"error": "Invalid credentials"}, {"X-Error-Code": "Unauthorized"})
        try:
            handled = self._route(path, query, body)
        except Exception as exc:  # noqa: BLE001 - a test server answers 500 with the reason
            return self._send(500, {"error": f"{type(exc).__name__}: {exc}"})
        if handled is False:
            with self.hub.lock:
                self.hub.unhandled.append(f"{self.command} {self.path}")
            self._send(404, {"error": f"hub_server: no route for {self.command} {path}"}, {"X-Error-Code": "NoRoute"})

    do_GET = do_POST = do_PUT = do_HEAD = _handle

    # ------------------------------------------------------------------ routes
    def _route(self, path: str, query: dict[str, list[str]], body: bytes) -> bool | None:
        hub, method = self.hub, self.command
        if path == "/api/agent-harnesses":
            return self._send(200, {"standardEnvVars": [], "harnesses": {}})
        if path == "/api/whoami-v2":
            return self._send(200, {"type": "user", "name": hub.user, "orgs": [], "auth": {"type": "access_token"}})
        if path == "/api/repos/create" and method == "POST":
            status, payload = hub.create_repo(json.loads(body or b"{}"))
            return self._send(status, payload)
        if path == "/api/validate-yaml" and method == "POST":
            return self._send(200, {"errors": [], "warnings": []})
        if path.startswith("/lfs-upload/") and method == "PUT":
            oid = path.rsplit("/", 1)[-1]
            if hashlib.sha256(body).hexdigest() != oid:
                return self._send(400, {"error": "sha256 mismatch"})
            with hub.lock:
                hub.lfs_objects[oid] = body
            return self._send(200, {})

        m = re.fullmatch(rf"/(?P<prefix>datasets/|spaces/)?{_REPO}\.git/info/lfs/objects/batch", path)
        if m and method == "POST":
            payload = json.loads(body)
            objects = []
            for obj in payload.get("objects", []):
                item = {"oid": obj["oid"], "size": obj["size"]}
                if obj["oid"] not in hub.lfs_objects:
                    item["actions"] = {"upload": {"href": f"{hub.url}/lfs-upload/{obj['oid']}", "header": {}}}
                objects.append(item)
            return self._send(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

        m = re.fullmatch(rf"/api/(?P<kind>models|datasets|spaces)/{_REPO}(?P<rest>/.*)?", path)
        if m:
            return self._api_repo(m.group("kind")[:-1], m.group("repo"), m.group("rest") or "", query, body)

        m = re.fullmatch(rf"/(?P<prefix>datasets/|spaces/)?{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path)
        if m and method in ("GET", "HEAD"):
            repo_type = (m.group("prefix") or "models/")[:-2]
            repo = hub.repos.get((repo_type, m.group("repo")))
            if repo is None:
                return self._not_found()
            content = repo.files.get(m.group("file"))
            if content is None:
                return self._not_found("EntryNotFound", "Entry not found")
            etag = _entry(m.group("file"), content)["oid"]
            return self._send(
                200, raw=content, headers={"ETag": f'"{etag}"', "X-Repo-Commit": repo.sha, "Accept-Ranges": "none"}
            )
        return False

    def _api_repo(self, repo_type: str, repo_id: str, rest: str, query, body: bytes) -> bool | None:
        hub, method = self.hub, self.command
        repo = hub.repos.get((repo_type, repo_id))
        if repo is None:
            return self._not_found()
        if rest == "" or rest.startswith("/revision/"):
            if method != "GET":
                return False
            if hub.repo_info_fails and repo_type == "model":
                return self._send(500, {"error": "repo_info_fails is set"})
            return self._send(
                200,
                {
                    "id": repo.repo_id,
                    "_id": repo.repo_id,
                    "author": repo.repo_id.split("/")[0],
                    "sha": repo.sha,
                    "private": repo.private,
                    "disabled": False,
                    "gated": False,
                    "downloads": 0,
                    "likes": 0,
                    "tags": [],
                    "siblings": [{"rfilename": p} for p in sorted(repo.files)],
                    "lastModified": "2025-01-01T00:00:00.000Z",
                    "createdAt": "2025-01-01T00:00:00.000Z",
                },
            )
        m = re.fullmatch(r"/preupload/(?P<rev>[^/]+)", rest)
        if m and method == "POST":
            files = json.loads(body).get("files", [])
            modes = []
            for f in files:
                lfs = f["path"].endswith(".parquet") or int(f.get("size", 0)) >= LFS_THRESHOLD
                modes.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False})
            return self._send(200, {"files": modes, "commitOid": repo.sha})
        m = re.fullmatch(r"/commit/(?P<rev>[^/]+)", rest)
        if m and method == "POST":
            return self._send(200, hub.commit(repo, body))
        m = re.fullmatch(r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", rest)
        if m and method == "GET":
            folder = (m.group("path") or "").strip("/")
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            entries, folders = [], set()
            for p, content in sorted(repo.files.items()):
                if folder and not p.startswith(folder + "/"):
                    continue
                relative = p[len(folder) + 1 :] if folder else p
                if "/" in relative and not recursive:
                    folders.add(f"{folder}/{relative.split('/')[0]}".strip("/"))
                    continue
                entries.append(_entry(p, content))
                if recursive:
                    parts = relative.split("/")[:-1]
                    for i in range(1, len(parts) + 1):
                        folders.add("/".join(([folder] if folder else []) + parts[:i]))
            if folder and not entries and not folders:
                return self._not_found("EntryNotFound", f"{folder} does not exist")
            entries += [{"type": "directory", "path": f, "oid": "0" * 40, "size": 0} for f in sorted(folders)]
            return self._send(200, entries)
        m = re.fullmatch(r"/paths-info/(?P<rev>[^/]+)", rest)
        if m and method == "POST":
            if self.headers.get("Content-Type", "").startswith("application/json"):
                paths = json.loads(body).get("paths", [])
            else:
                paths = parse_qs(body.decode()).get("paths", [])
            out = []
            for p in paths:
                if p in repo.files:
                    out.append(_entry(p, repo.files[p]))
                elif any(f.startswith(p.rstrip("/") + "/") for f in repo.files):
                    out.append({"type": "directory", "path": p, "oid": "0" * 40, "size": 0})
            return self._send(200, out)
        return False
