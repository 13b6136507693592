"""Guards between slmplan and a Hub endpoint it does not trust: a timeout on every request, and only
well-formed content hashes and commit ids where they become file names.

huggingface_hub's shared HTTP client has no timeout, and several of its calls pass ``timeout=None``
(no limit), so an endpoint that accepts the connection and never answers hangs ``hub list`` and
``pull`` forever. It also names a downloaded blob after the file's ETag and the snapshot folder after
X-Repo-Commit without checking them, so ``ETag: "../../../elsewhere"`` writes outside its cache.
Anyone controlling ``HF_ENDPOINT``, a mirror or an ``http://`` endpoint could pick those names.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from slmplan.errors import RuntimeFailure, env_float
from slmplan.textsafe import clean

DEFAULT_TIMEOUT_S = 15.0
_timeout_set: float | None = None


def hub_timeout() -> float:
    """Seconds to wait for the Hub to answer (SLMPLAN_HUB_TIMEOUT, default 15)."""
    t = env_float("SLMPLAN_HUB_TIMEOUT", 0.1, 3600, "a number of seconds",
                  "Set it to a number between 0.1 and 3600, e.g. 15, or unset it")
    return DEFAULT_TIMEOUT_S if t is None else t


def set_timeouts(hf) -> None:
    """Give every request of huggingface_hub a timeout. Its shared client has none, and several of its
    calls pass ``timeout=None`` explicitly (no limit): an endpoint that accepts the connection and never
    answers would otherwise hang ``hub list`` and ``pull`` forever."""
    global _timeout_set
    t = hub_timeout()
    if _timeout_set == t:
        return
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    for name in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"):
        if not os.environ.get(name):  # the user's own setting wins
            setattr(constants, name, t)
    # huggingface_hub names the module it uses differently across versions: resolved at run time
    httpx: Any = getattr(_http, "httpx2", None) or _http.httpx  # type: ignore[attr-defined]

    class Client(httpx.Client):
        def send(self, request, **kw):
            tm = request.extensions.get("timeout")
            if isinstance(tm, dict):
                request.extensions["timeout"] = {k: t if v is None else v for k, v in tm.items()}
            response = super().send(request, **kw)
            check_file_headers(response)
            return response

    def factory():
        return Client(event_hooks={"request": [_http.hf_request_event_hook]}, follow_redirects=True, timeout=t)

    hf.set_client_factory(factory)
    _timeout_set = t


HASH = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # a git blob id (sha1) or an LFS / sha256 object id
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")


def content_key(sha, blob_id, spec: str) -> str | None:
    """The content hash the Hub reported, if well-formed. It names a cache folder, so anything else
    (``../../elsewhere``, an absolute path) from a hostile or broken endpoint is refused."""
    for v in (sha, blob_id):
        if v is None:
            continue
        k = str(v).strip()
        k = k[2:] if k.startswith("W/") else k  # the ETag forms: W/"hash", "hash"
        k = k.strip('"').lower()
        if not HASH.fullmatch(k):
            raise RuntimeFailure(f"{spec}: the Hub reported a malformed content hash {clean(str(v))[:80]!r}; "
                                 "refusing to use it as a cache folder name",
                                 "Check HF_ENDPOINT: it does not behave like the Hugging Face Hub")
        return k
    return None


def safe_name(s: str) -> str:
    """A single, harmless path component for ``s`` (readable when it is already one)."""
    s = s.replace("/", "--")
    if SAFE_NAME.fullmatch(s) and s not in (".", ".."):
        return s
    return "x-" + hashlib.sha256(s.encode()).hexdigest()[:32]


class HostileResponse(Exception):
    """The endpoint sent a header that huggingface_hub would turn into a path outside its cache."""


def check_file_headers(response) -> None:
    """huggingface_hub names a downloaded blob after the file's ETag and its snapshot folder after
    X-Repo-Commit, unchecked: an endpoint answering ``ETag: "../../../elsewhere"`` makes ``pull`` write
    outside the Hugging Face cache. Only well-formed hashes pass."""
    if "/resolve/" not in response.request.url.path:
        return
    etag = response.headers.get("X-Linked-Etag") or response.headers.get("ETag")
    commit = response.headers.get("X-Repo-Commit")
    if etag is not None:
        content_key(etag, None, str(response.request.url.path))
    if commit is not None and not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise HostileResponse(f"malformed commit hash {clean(commit)[:80]!r}")


def is_timeout(e: BaseException) -> bool:
    x: BaseException | None = e
    seen = 0
    while x is not None and seen < 8:
        if isinstance(x, TimeoutError) or type(x).__name__.endswith(("Timeout", "TimeoutException", "TimeoutError")):
            return True
        x, seen = x.__cause__ or x.__context__, seen + 1
    return False
