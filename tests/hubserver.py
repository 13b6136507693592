"""A small stand-in for the Hugging Face Hub on loopback, for offline tests of the real client.

It answers the endpoints huggingface_hub uses for model info (with ``expand`` and ``blobs``), file
listing (tree, paths-info) and file downloads (``resolve``, HEAD and GET with HTTP Range), serving
real local files, and counts the bytes it serves per file. Repos can be made gated or private.

    python tests/hubserver.py owner/repo=/path/a.gguf,/path/b.gguf ...   # serve until Ctrl-C
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Repo:
    files: dict[str, Path]
    gated: bool = False
    private: bool = False
    gguf: dict | None = None
    oid: str | None = None  # report this content hash instead of the real one (a hostile endpoint)


@dataclass
class HubState:
    repos: dict[str, Repo] = field(default_factory=dict)
    bytes_served: dict[str, int] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _sha: dict[Path, str] = field(default_factory=dict)

    def sha256(self, p: Path) -> str:
        for r in self.repos.values():
            if r.oid is not None and p in r.files.values():
                return r.oid
        if p not in self._sha:
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            self._sha[p] = h.hexdigest()
        return self._sha[p]


def _handler(state: HubState):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        # -- helpers ------------------------------------------------------------------------
        def _send_json(self, obj, status=200, headers=None):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status, code, message):
            self._send_json({"error": message}, status, {"X-Error-Code": code, "X-Error-Message": message})

        def _repo(self, repo_id: str) -> Repo | None:
            repo = state.repos.get(repo_id)
            if repo is None or (repo.private and not self._authorized()):
                self._error(404 if repo is None or not self.headers.get("authorization") else 401, "RepoNotFound",
                            "Repository Not Found for url: " + self.path)
                return None
            if repo.gated and not self._authorized():
                self._error(401, "GatedRepo", "Access to model is restricted. You must have access to it and be authenticated.")
                return None
            return repo

        def _authorized(self) -> bool:
            return self.headers.get("authorization", "") == "Bearer hf_test_token"

        def _entry(self, name: str, p: Path) -> dict:
            size = p.stat().st_size
            return {"type": "file", "path": name, "size": size, "oid": hashlib.sha1(name.encode()).hexdigest(),
                    "lfs": {"oid": state.sha256(p), "size": size, "pointerSize": 134}}

        # -- routes -------------------------------------------------------------------------
        def do_GET(self):
            self._route()

        def do_HEAD(self):
            self._route()

        def do_POST(self):
            self._route()

        def _route(self):
            u = urlparse(self.path)
            path = unquote(u.path)
            with state.lock:
                state.requests.append(f"{self.command} {self.path}")
            if self.command == "POST":
                n = int(self.headers.get("content-length") or 0)
                self._body = self.rfile.read(n) if n else b""
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
            if m:
                return self._model_info(m.group(1), parse_qs(u.query))
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/paths-info/([^/]+)", path)
            if m:
                return self._paths_info(m.group(1))
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
            if m:
                return self._tree(m.group(1), m.group(3) or "")
            m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            if m:
                return self._resolve(m.group(1), m.group(3))
            self._error(404, "EntryNotFound", f"no route for {path}")

        def _model_info(self, repo_id, q):
            repo = self._repo(repo_id)
            if repo is None:
                return
            expand = q.get("expand", []) + q.get("expand[]", [])
            full = {"_id": "x", "id": repo_id, "modelId": repo_id, "sha": COMMIT, "private": repo.private,
                    "gated": "auto" if repo.gated else False, "disabled": False, "downloads": 0, "likes": 0,
                    "tags": ["gguf"], "lastModified": "2026-01-01T00:00:00.000Z", "createdAt": "2026-01-01T00:00:00.000Z",
                    "siblings": [{"rfilename": n} for n in repo.files]}
            if q.get("blobs") == ["true"]:
                full["siblings"] = [{"rfilename": n, "size": p.stat().st_size,
                                     "blobId": hashlib.sha1(n.encode()).hexdigest(),
                                     "lfs": {"sha256": state.sha256(p), "size": p.stat().st_size, "pointerSize": 134}}
                                    for n, p in repo.files.items()]
            if repo.gguf:
                full["gguf"] = repo.gguf
            if expand:
                full = {k: v for k, v in full.items() if k in expand or k in ("_id", "id")}
            self._send_json(full)

        def _paths_info(self, repo_id):
            repo = self._repo(repo_id)
            if repo is None:
                return
            body = self._body.decode()
            try:
                paths = json.loads(body)["paths"]
            except ValueError:
                paths = parse_qs(body).get("paths", [])
            self._send_json([self._entry(p, repo.files[p]) for p in paths if p in repo.files])

        def _tree(self, repo_id, sub):
            repo = self._repo(repo_id)
            if repo is None:
                return
            self._send_json([self._entry(n, p) for n, p in repo.files.items() if n.startswith(sub)])

        def _resolve(self, repo_id, name):
            repo = self._repo(repo_id)
            if repo is None:
                return
            p = repo.files.get(name)
            if p is None:
                return self._error(404, "EntryNotFound", f"{name} does not exist in {repo_id}")
            size = p.stat().st_size
            start, end = 0, size - 1
            rng = self.headers.get("range")
            status = 200
            if rng:
                m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
                if not m:
                    return self._error(416, "RangeNotSatisfiable", rng)
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                else:  # suffix range
                    start = max(size - int(m.group(2)), 0)
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            length = end - start + 1
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(length))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            etag = f'"{state.sha256(p)}"'
            self.send_header("ETag", etag)
            self.send_header("X-Linked-Etag", etag)
            self.send_header("X-Linked-Size", str(size))
            self.send_header("X-Repo-Commit", COMMIT)
            self.end_headers()
            if self.command == "HEAD":
                return
            with open(p, "rb") as fh:
                fh.seek(start)
                left = length
                while left:
                    chunk = fh.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        break
                    left -= len(chunk)
                    with state.lock:
                        state.bytes_served[name] = state.bytes_served.get(name, 0) + len(chunk)

    return H


class HubServer:
    def __init__(self, state: HubState, port: int = 0) -> None:
        self.state = state
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(state))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    st = HubState()
    for arg in sys.argv[1:]:
        rid, _, files = arg.partition("=")
        st.repos[rid] = Repo({Path(f).name: Path(f) for f in files.split(",")})
    with HubServer(st, int(os.environ.get("PORT", "8765"))) as srv:
        print(f"serving {list(st.repos)} at {srv.url}  (export HF_ENDPOINT={srv.url})", flush=True)
        try:
            srv.thread.join()
        except KeyboardInterrupt:
            pass
