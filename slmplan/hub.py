"""Hugging Face Hub: read a remote GGUF's header without downloading the file, list a repo's GGUF
files, and download a catalog model's GGUF into the standard Hugging Face cache.

Everything goes through huggingface_hub's public API (``HfFileSystem`` range reads, ``HfApi``,
``hf_hub_download``), so ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE`` and the standard cache
behave as they do for every other Hugging Face tool. Headers are cached under slmplan's cache
directory (the header bytes themselves, keyed by repo, revision and file), so a second inspection is
instant and works offline. Tokens are never printed.
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from slmplan.errors import BadInputError, GGUFError, MissingExtraError, RuntimeFailure
from slmplan.estimate.quants import canonical_quant
from slmplan.fileio import read_state, set_aside, write_atomic
from slmplan.gguf import GGUFHeader, read_header
from slmplan.hubguard import HostileResponse, content_key, hub_timeout, is_timeout, safe_name, set_timeouts
from slmplan.localdevice import cache_dir
from slmplan.textsafe import clean, has_controls

BLOCK = 1 << 20  # range-read granularity: a header of a 262k-vocabulary model is a few MiB
QUANT_IN_NAME = re.compile(
    r"(?i)(?:^|[-_.])((?:I?Q[1-8](?:_[0-9A-Z]+)*)|F16|BF16|F32|FP16|FP32|MXFP4(?:_MOE)?)(?=[-_.]|$)")
SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


@dataclass(frozen=True)
class HfPath:
    repo_id: str
    path: str
    revision: str | None = None

    @property
    def spec(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"hf://{self.repo_id}{rev}/{self.path}"


def parse_hf_path(spec: str) -> HfPath:
    """hf://owner/repo[@revision]/path/to/file.gguf"""
    rest = spec[len("hf://"):] if spec.startswith("hf://") else spec
    parts = rest.split("/")
    if len(parts) < 3 or not all(parts[:3]):
        raise BadInputError(f"'{spec}' is not a Hub file path",
                            "Use hf://owner/repo/file.gguf (optionally hf://owner/repo@revision/file.gguf)")
    repo, _, rev = parts[1].partition("@")
    path = "/".join(parts[2:])
    if not path.lower().endswith(".gguf"):
        raise BadInputError(f"{spec} is not a .gguf file", "slmplan reads GGUF files; list a repo's with 'slmplan hub list owner/repo'")
    return HfPath(f"{parts[0]}/{repo}", path, rev or None)


def _hf():
    try:
        import huggingface_hub
        import huggingface_hub.constants  # reads the HF_* variables: int("abc") raises here
    except ImportError:
        raise MissingExtraError("huggingface_hub", "hub", "Reading files on the Hugging Face Hub") from None
    except ValueError as e:
        raise BadInputError(f"an HF_* environment variable has a value huggingface_hub cannot use ({clean(e)[:120]})",
                            "Fix or unset it (e.g. HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT take whole seconds)") from None
    set_timeouts(huggingface_hub)
    return huggingface_hub


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def quant_fromsafe_name(name: str) -> str | None:
    m = QUANT_IN_NAME.findall(Path(name).name.replace(".gguf", ""))
    return canonical_quant(m[-1]) if m else None


# ------------------------------------------------------------------------------------------ errors
def hub_error(e: Exception, what: str) -> Exception:
    """A huggingface_hub / network exception as a one-line slmplan error (never with a token in it)."""
    hf = _hf()
    errs = hf.errors
    chain: list[BaseException] = []
    x: BaseException | None = e
    while x is not None and len(chain) < 8:  # HfFileSystem wraps Hub errors (e.g. in FileNotFoundError)
        chain.append(x)
        x = x.__cause__ or x.__context__
    for cls in ("GatedRepoError", "RepositoryNotFoundError", "RevisionNotFoundError"):
        hit = next((c for c in chain if isinstance(c, getattr(errs, cls, ()))), None)
        if isinstance(hit, Exception):
            e = hit
            break
    own = next((c for c in chain if isinstance(c, (RuntimeFailure, HostileResponse))), None)
    if own is not None:  # raised by our client's header check, possibly wrapped by huggingface_hub
        why = own.message if isinstance(own, RuntimeFailure) else str(own)
        return RuntimeFailure(f"{what}: {why.split(': ', 1)[-1]}", "Check HF_ENDPOINT: it does not behave like the Hugging Face Hub")
    name = type(e).__name__
    bad_id = next((c for c in chain if type(c).__name__ in ("HFValidationError", "HfUriError")), None)
    if bad_id is not None:  # huggingface_hub's own check of a repo id or hf:// path
        return BadInputError(f"{what}: not a valid repository id or Hub path ({clean(str(bad_id).splitlines()[0])[:160]})",
                             "Use owner/repo with letters, digits, '-', '_' or '.'")
    if isinstance(e, getattr(errs, "RevisionNotFoundError", ())):
        return BadInputError(f"{what}: no such revision (branch, tag or commit)", "Check the @revision part, or drop it for main")
    if isinstance(e, getattr(errs, "GatedRepoError", ())):
        return BadInputError(f"{what}: the repository is gated (you must accept its terms on the Hub first)",
                             "Accept the terms on the model's Hub page, then set HF_TOKEN to a token of that account")
    if isinstance(e, getattr(errs, "RepositoryNotFoundError", ())):
        return BadInputError(f"{what}: repository not found, or it is private",
                             "Check the owner/repo spelling; for a private repo set HF_TOKEN to a token with access")
    if isinstance(e, (getattr(errs, "EntryNotFoundError", ()), getattr(errs, "RemoteEntryNotFoundError", ()),
                      FileNotFoundError)):
        return BadInputError(f"{what}: no such file in the repository",
                             "List the repo's GGUF files with 'slmplan hub list owner/repo'")
    if isinstance(e, (getattr(errs, "OfflineModeIsEnabled", ()), getattr(errs, "LocalEntryNotFoundError", ()))):
        return BadInputError(f"{what}: not available offline (HF_HUB_OFFLINE is set and it is not cached)",
                             "Unset HF_HUB_OFFLINE and run once with network access")
    if isinstance(e, getattr(errs, "HfHubHTTPError", ())):
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            return BadInputError(f"{what}: access denied by the Hub (HTTP {status})",
                                 "Set HF_TOKEN to a token that can read this repository")
        return RuntimeFailure(f"{what}: the Hub answered HTTP {status}", "Try again later, or check HF_ENDPOINT")
    if is_timeout(e):
        return RuntimeFailure(f"{what}: the Hub did not answer within {hub_timeout():g} s"
                              + (f" ({_endpoint()})" if _endpoint() else ""),
                              "Check the network connection or HF_ENDPOINT; SLMPLAN_HUB_TIMEOUT sets how long to wait")
    text = str(e)
    if "token" in text.lower():
        text = name  # never echo anything that might carry a token
    return RuntimeFailure(f"{what}: could not reach the Hugging Face Hub ({name}: {text.splitlines()[0][:160] if text else ''})",
                          "Check the network connection (or HF_ENDPOINT); already inspected files work offline")


# ----------------------------------------------------------------------------------- header cache
MAX_HEADER_BYTES = 1 << 28  # _MAX_STR-sized strings, a 262k vocabulary: far below this


def _cache_root() -> Path:
    return cache_dir() / "hub-headers"


def _cache_file(p: HfPath, key: str) -> Path:
    root = _cache_root()
    f = root / safe_name(p.repo_id) / safe_name(key) / (safe_name(p.path) + ".json")
    try:  # a symbolic link in the cache must not lead the write elsewhere
        f.parent.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        raise RuntimeFailure(f"{p.spec}: its header cache path {f} leads outside {root}; refusing to write there",
                             f"Remove {root} (it is only a cache)") from None
    return f


def _latest_cache(p: HfPath) -> Path | None:
    base = _cache_root() / safe_name(p.repo_id)
    name = safe_name(p.path) + ".json"
    cands = []
    try:
        for d in base.iterdir() if base.is_dir() else ():
            f = d / name
            if f.is_file() and not f.is_symlink() and not d.is_symlink():
                cands.append((f.stat().st_mtime, f))
    except OSError:
        return None
    return max(cands)[1] if cands else None


def _from_cache(f: Path, spec: str) -> GGUFHeader | None:
    """The cached header, or None (the entry named on stderr and set aside) when it does not parse."""
    meta_raw, raw = read_state(f), read_state(f.with_suffix(".bin"), MAX_HEADER_BYTES)
    if meta_raw is None or raw is None:
        return None
    try:
        meta = json.loads(meta_raw)
        size = meta["size"]
        if type(size) is not int or size < len(raw):
            raise ValueError("bad size")
        return read_header(io.BytesIO(raw), spec, size)
    except (ValueError, KeyError, TypeError, GGUFError) as e:
        problem = e.message if isinstance(e, GGUFError) else f"{type(e).__name__}"
        set_aside(f, f"not a complete cached header: {clean(problem)[:120]}")
        set_aside(f.with_suffix(".bin"), "its index entry was corrupt")
        return None


class _Recorder(io.RawIOBase):
    """A file-like over a remote file that keeps every byte it hands out (the header prefix)."""

    def __init__(self, fh) -> None:
        self.fh = fh
        self.data = bytearray()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        b = self.fh.read(n)
        self.data += b
        return b


def remote_header(spec: str) -> GGUFHeader:
    """The GGUF header of hf://owner/repo/file.gguf, reading only its first few MiB over HTTP ranges."""
    p = parse_hf_path(spec)
    cached = _latest_cache(p)
    if offline():
        h = _from_cache(cached, spec) if cached else None
        if h is not None:
            return h
        raise BadInputError(f"{spec}: not available offline (HF_HUB_OFFLINE is set and its header is not cached)",
                            "Unset HF_HUB_OFFLINE and inspect it once with network access")
    hf = _hf()
    fs = hf.HfFileSystem(endpoint=_endpoint())
    rev = p.revision
    path = f"{p.repo_id}@{rev}/{p.path}" if rev else f"{p.repo_id}/{p.path}"
    try:
        info = fs.info(path)
        size = int(info["size"])
        # the cache key is the file's content hash (LFS sha256, else its git blob id): a new upload is re-read
        lfs = info.get("lfs")
        sha = lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
        key = content_key(sha, info.get("blob_id"), spec) or "rev-" + (rev or "main")
        f = _cache_file(p, key)
        h = _from_cache(f, spec) if f.is_file() else None
        if h is not None and h.file_size == size:
            return h
        with fs.open(path, "rb", block_size=BLOCK) as fh:
            rec = _Recorder(fh)
            h = read_header(rec, spec, size)
    except Exception as e:  # noqa: BLE001 - mapped to one-line errors below
        from slmplan.errors import SlmplanError

        if isinstance(e, SlmplanError):
            raise
        h = _from_cache(cached, spec) if cached and _is_network_error(e) else None
        if h is not None:
            return h
        raise hub_error(e, spec) from None
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(f.with_suffix(".bin"), bytes(rec.data[:h.header_bytes_read]))
        write_atomic(f, json.dumps({"size": size, "repo": p.repo_id, "path": p.path, "content_key": key,
                                    "header_bytes": h.header_bytes_read}))
    except (OSError, BadInputError, RuntimeFailure) as e:  # the header was read; only the cache is lost
        import sys

        why = e.message if isinstance(e, BadInputError | RuntimeFailure) else (e.strerror or type(e).__name__)
        sys.stderr.write(f"Warning: could not cache the header of {clean(spec)} in {f.parent} ({clean(why)}).\n")
    return h


def _is_network_error(e: Exception) -> bool:
    names = {type(x).__name__ for x in (e, e.__cause__, e.__context__) if x is not None}
    return bool(names & {"ConnectError", "ConnectTimeout", "ReadTimeout", "ConnectionError", "OSError",
                         "NetworkError", "RemoteProtocolError", "TimeoutException"})


def remote_facts(spec: str):
    from slmplan.model import facts_from_gguf

    return facts_from_gguf(remote_header(spec), model_id=spec)


# ------------------------------------------------------------------------------------- repo listing
@dataclass(frozen=True)
class RepoFile:
    name: str
    size: int
    quant: str | None
    split: tuple[int, int] | None  # (part, of) for split GGUF files


def list_gguf_files(repo_id: str, revision: str | None = None) -> tuple[list[RepoFile], dict | None]:
    """The repo's GGUF files with sizes, and the Hub's GGUF summary (architecture, parameters)."""
    if "/" not in repo_id or repo_id.count("/") != 1 or repo_id.startswith("hf://"):
        raise BadInputError(f"'{repo_id}' is not a repository id", "Use owner/repo, e.g. bartowski/SmolLM2-135M-Instruct-GGUF")
    if offline():
        raise BadInputError(f"{repo_id}: listing a repository needs the network (HF_HUB_OFFLINE is set)",
                            "Unset HF_HUB_OFFLINE")
    hf = _hf()
    api = hf.HfApi(endpoint=_endpoint())
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True, timeout=hub_timeout())
        try:
            summary = api.model_info(repo_id, revision=revision, expand=["gguf"], timeout=hub_timeout()).gguf
        except Exception:  # noqa: BLE001 - the summary is optional
            summary = None
    except Exception as e:  # noqa: BLE001
        raise hub_error(e, repo_id) from None
    files = []
    for s in info.siblings or []:
        if not s.rfilename.lower().endswith(".gguf"):
            continue
        m = SPLIT.search(s.rfilename)
        files.append(RepoFile(s.rfilename, int(s.size or 0), quant_fromsafe_name(SPLIT.sub(".gguf", s.rfilename)),
                              (int(m.group(1)), int(m.group(2))) if m else None))
    return sorted(files, key=lambda f: (f.size, f.name)), summary


# ---------------------------------------------------------------------------------------- download
def pick_file(files: list[RepoFile], quant: str) -> list[RepoFile]:
    """The file(s) of ``quant`` (all parts of a split model), preferring non-split single files."""
    q = canonical_quant(quant)
    match = [f for f in files if f.quant == q]
    if not match:
        have = sorted({f.quant for f in files if f.quant})
        raise BadInputError(f"no {quant} GGUF file in this repository",
                            f"Available quants: {', '.join(have) or 'none recognised'}")
    singles = [f for f in match if f.split is None]
    if singles:
        return [min(singles, key=lambda f: f.size)]
    first = sorted(match, key=lambda f: f.name)
    return first


def cached_gguf(repo: str, quant: str) -> Path | None:
    """A file of ``repo`` already in the standard Hugging Face cache whose name carries ``quant``."""
    try:
        from huggingface_hub import scan_cache_dir
    except ImportError:
        return None
    try:
        info = scan_cache_dir()
    except Exception:  # no cache dir yet, unreadable cache: nothing cached
        return None
    for r in info.repos:
        if r.repo_id.lower() != repo.lower():
            continue
        for rev in r.revisions:
            for f in rev.files:
                if f.file_name.lower().endswith(".gguf") and quant.lower() in f.file_name.lower():
                    return Path(f.file_path)
    return None


def pull(model_id: str, quant: str = "Q4_K_M", revision: str | None = None) -> Path:
    """Download a catalog model's GGUF (resumable, with progress) into the standard HF cache."""
    from slmplan.catalog import get_model, load_catalog

    m = get_model(load_catalog(), model_id)
    if not m.hf_repo:
        raise BadInputError(f"the catalog has no Hugging Face repo for '{model_id}'", "Download its GGUF by hand and pass the path")
    hf = _hf()
    if offline():
        files = None
    else:
        files, _ = list_gguf_files(m.hf_repo, revision)
    if files is None:  # offline: only what the cache already has
        hit = cached_gguf(m.hf_repo, quant)
        if hit:
            return hit
        raise BadInputError(f"{model_id} {quant} is not in the Hugging Face cache and HF_HUB_OFFLINE is set",
                            "Unset HF_HUB_OFFLINE to download it")
    chosen = pick_file(files, quant)
    for f in chosen:  # the listing comes from the endpoint: a name must stay inside the repo's folder
        # (and no control characters: huggingface_hub's progress bar prints the name raw)
        if f.name.startswith("/") or ".." in f.name.split("/") or "\\" in f.name or has_controls(f.name):
            raise RuntimeFailure(f"{m.hf_repo}: the Hub listed an unsafe file name {clean(f.name)[:80]!r}",
                                 "Check HF_ENDPOINT: it does not behave like the Hugging Face Hub")
    paths = []
    try:
        for f in chosen:
            paths.append(Path(hf.hf_hub_download(m.hf_repo, f.name, revision=revision, endpoint=_endpoint(),
                                                 etag_timeout=hf.constants.HF_HUB_ETAG_TIMEOUT)))
    except Exception as e:  # noqa: BLE001
        raise hub_error(e, f"{m.hf_repo}/{chosen[0].name}") from None
    return paths[0]
