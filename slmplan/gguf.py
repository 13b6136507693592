"""Read a GGUF file's header (metadata and tensor table) without touching the weights.

Works on any binary file-like object with ``read`` (a local file, or a remote file opened with
range reads), so remote inspection reads only the first few MB. Format constants are those of the
``gguf`` package (llama.cpp's own; copied in ``ggufconst``). Large arrays (a 262k-token vocabulary) are
skipped in bulk, not decoded. Every length is checked before it is used, so a truncated or
corrupted file is rejected with a clear message instead of a hang or a huge allocation.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from slmplan.errors import GGUFError
from slmplan.fileio import open_regular
from slmplan.ggufconst import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, Keys, LlamaFileType


class Readable(Protocol):
    """What the reader needs of a file: ``read`` (a local file, or a remote one read by range)."""

    def read(self, n: int = -1, /) -> bytes: ...


GGUF_MAGIC = b"GGUF"
_MAX_KV = 1 << 20
_MAX_TENSORS = 1 << 20
_MAX_STR = 1 << 26  # 64 MiB: a chat template or HF tokenizer.json can be a few MB, never this
_MAX_ARRAY = 1 << 28
_MAX_DIMS = 4  # GGML_MAX_DIMS
_KEEP_ARRAY = 16  # array elements kept for display
_KEEP_NUMERIC = 4096  # numeric arrays this short are kept whole: per-layer values (head counts, SWA flags)
_MAX_NESTING = 8  # arrays of arrays: deeper is a crafted file (and a RecursionError)

_SCALAR = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h", GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?", GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d",
}
_SCALAR_SIZE = {k: struct.calcsize(v) for k, v in _SCALAR.items()}


@dataclass(frozen=True)
class ArrayValue:
    """A metadata array: its element type, length and (for long arrays) only the first elements."""

    type: str
    length: int
    head: tuple

    def __len__(self) -> int:
        return self.length

    def full(self) -> bool:
        return len(self.head) == self.length


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # ggml order: ne[0] is the row length
    ggml_type: int
    offset: int  # relative to the start of the data section

    @property
    def type_name(self) -> str:
        return GGMLQuantizationType(self.ggml_type).name

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def n_bytes(self) -> int:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(self.ggml_type)]
        return self.n_elements // block * size


@dataclass
class GGUFHeader:
    source: str
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    alignment: int
    data_offset: int
    file_size: int | None
    header_bytes_read: int = 0
    _by_name: dict[str, TensorInfo] = field(default_factory=dict, repr=False)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get(Keys.General.ARCHITECTURE, "unknown"))

    def arch_key(self, template: str, default: Any = None) -> Any:
        return self.metadata.get(template.format(arch=self.architecture), default)

    def tensor(self, name: str) -> TensorInfo | None:
        if not self._by_name:
            self._by_name = {t.name: t for t in self.tensors}
        return self._by_name.get(name)

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)

    @property
    def n_params(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def file_type_name(self) -> str | None:
        ft = self.metadata.get(Keys.General.FILE_TYPE)
        if ft is None:
            return None
        try:
            name = LlamaFileType(int(ft)).name
        except ValueError:
            return f"unknown({ft})"
        return name.replace("MOSTLY_", "").replace("ALL_", "")

    def type_histogram(self) -> dict[str, tuple[int, int]]:
        """GGML type -> (tensor count, bytes)."""
        out: dict[str, tuple[int, int]] = {}
        for t in self.tensors:
            c, b = out.get(t.type_name, (0, 0))
            out[t.type_name] = (c + 1, b + t.n_bytes)
        return out

    def data_end(self) -> int:
        """Byte offset where the last tensor's data ends."""
        if not self.tensors:
            return self.data_offset
        return self.data_offset + max(t.offset + t.n_bytes for t in self.tensors)


class _Reader:
    """Buffered sequential reader that knows its position and refuses to read past the end."""

    def __init__(self, fh: Readable, source: str, chunk: int = 1 << 20) -> None:
        self.fh = fh
        self.source = source
        self.chunk = chunk
        self.buf = b""
        self.pos = 0  # position inside buf
        self.base = 0  # file offset of buf[0]

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _fill(self, n: int, what: str) -> None:
        have = len(self.buf) - self.pos
        if have >= n:
            return
        parts = [self.buf[self.pos:]]
        need = n - have
        while need > 0:
            data = self.fh.read(max(self.chunk, need))
            if not data:
                raise GGUFError(
                    f"{self.source}: file ends at byte {self.offset + n - need} while reading {what} "
                    "(truncated or not a complete GGUF file)",
                    "Download the file again and check its size/sha256")
            parts.append(data)
            need -= len(data)
        self.base += self.pos
        self.buf = b"".join(parts)
        self.pos = 0

    def read(self, n: int, what: str) -> bytes:
        self._fill(n, what)
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def skip(self, n: int, what: str) -> None:
        have = len(self.buf) - self.pos
        if n <= have:
            self.pos += n
            return
        # drop the buffer and read through the rest in chunks (works on non-seekable streams too)
        n -= have
        self.base += len(self.buf)
        self.buf, self.pos = b"", 0
        while n > 0:
            data = self.fh.read(min(n, 1 << 24))
            if not data:
                raise GGUFError(f"{self.source}: file ends inside {what} (truncated)",
                                "Download the file again and check its size/sha256")
            n -= len(data)
            self.base += len(data)

    def unpack(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        self._fill(size, what)
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return v[0] if len(v) == 1 else v

    def string(self, what: str, limit: int = _MAX_STR) -> str:
        n = self.unpack("<Q", what)
        if n > limit:
            raise GGUFError(f"{self.source}: {what} claims a {n}-byte string (corrupted header)",
                            "The file is damaged; download it again")
        return self.read(n, what).decode("utf-8", errors="replace")

    def skip_strings(self, count: int, what: str) -> list[str]:
        """Skip ``count`` strings fast, keeping the first few."""
        kept: list[str] = []
        unpack_from = struct.unpack_from
        for i in range(count):
            self._fill(8, what)
            (n,) = unpack_from("<Q", self.buf, self.pos)
            if n > _MAX_STR:
                raise GGUFError(f"{self.source}: {what}[{i}] claims a {n}-byte string (corrupted header)",
                                "The file is damaged; download it again")
            self.pos += 8
            if i < _KEEP_ARRAY:
                kept.append(self.read(n, what).decode("utf-8", errors="replace"))
            elif self.pos + n <= len(self.buf):
                self.pos += n
            else:
                self.skip(n, what)
        return kept


def _value_type(r: _Reader, code: int, what: str) -> GGUFValueType:
    try:
        return GGUFValueType(code)
    except ValueError:
        raise GGUFError(f"{r.source}: {what} {code} (corrupted header)",
                        "The file is damaged or from an unsupported GGUF version") from None


def _value(r: _Reader, vtype: int, key: str, depth: int = 0) -> Any:
    vt = _value_type(r, vtype, f"metadata key '{key}' has unknown value type")
    if vt in _SCALAR:
        return r.unpack(_SCALAR[vt], key)
    if vt == GGUFValueType.STRING:
        return r.string(key)
    # array
    etype = r.unpack("<I", key)
    count = r.unpack("<Q", key)
    if count > _MAX_ARRAY:
        raise GGUFError(f"{r.source}: metadata array '{key}' claims {count} elements (corrupted header)",
                        "The file is damaged; download it again")
    et = _value_type(r, etype, f"array '{key}' has unknown element type")
    if et in _SCALAR:
        size = _SCALAR_SIZE[et]
        keep = count if count <= _KEEP_NUMERIC else _KEEP_ARRAY
        head = tuple(struct.unpack(f"<{keep}{_SCALAR[et][1]}", r.read(keep * size, key))) if keep else ()
        r.skip((count - keep) * size, key)
        return ArrayValue(et.name, count, head)
    if et == GGUFValueType.STRING:
        return ArrayValue("STRING", count, tuple(r.skip_strings(count, key)))
    # nested arrays: rare (llama.cpp writes none deeper than 2); read element by element
    if depth >= _MAX_NESTING:
        raise GGUFError(f"{r.source}: metadata array '{key}' is nested more than {_MAX_NESTING} deep (corrupted header)",
                        "The file is damaged; download it again")
    items = [_value(r, etype, key, depth + 1) for _ in range(count)]
    return ArrayValue("ARRAY", count, tuple(items[:_KEEP_ARRAY]))


def read_header(fh: Readable, source: str, file_size: int | None = None) -> GGUFHeader:
    """Parse the header from ``fh`` positioned at the start of the file."""
    r = _Reader(fh, source)
    try:
        magic = r.read(4, "magic")
    except GGUFError:
        magic = b""
    if magic != GGUF_MAGIC:
        raise GGUFError(f"{source} is not a GGUF file (magic {magic!r}, expected b'GGUF')",
                        "Pass a .gguf model file or a catalog id (see 'slmplan catalog')")
    version = r.unpack("<I", "version")
    if version not in (2, 3):
        if version & 0xFFFF0000 and not version & 0xFFFF:
            hint = "The file is big-endian, which slmplan does not read"
        else:
            hint = "slmplan reads GGUF versions 2 and 3"
        raise GGUFError(f"{source}: unsupported GGUF version {version}", hint)
    n_tensors = r.unpack("<Q", "tensor count")
    n_kv = r.unpack("<Q", "metadata count")
    if n_tensors > _MAX_TENSORS or n_kv > _MAX_KV:
        raise GGUFError(f"{source}: header claims {n_tensors} tensors and {n_kv} metadata keys (corrupted header)",
                        "The file is damaged; download it again")
    meta: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string("metadata key", limit=1 << 16)
        vtype = r.unpack("<I", key)
        meta[key] = _value(r, vtype, key)
    tensors: list[TensorInfo] = []
    for _ in range(n_tensors):
        name = r.string("tensor name", limit=1 << 16)
        n_dims = r.unpack("<I", name)
        if not 1 <= n_dims <= _MAX_DIMS:
            raise GGUFError(f"{source}: tensor '{name}' has {n_dims} dimensions (corrupted header)",
                            "The file is damaged; download it again")
        shape = tuple(r.unpack(f"<{n_dims}Q", name)) if n_dims > 1 else (r.unpack("<Q", name),)
        ggml_type = r.unpack("<I", name)
        offset = r.unpack("<Q", name)
        _check_tensor(source, name, shape, ggml_type)
        tensors.append(TensorInfo(name, shape, ggml_type, offset))
    _check_general(source, meta)
    alignment = meta.get(Keys.General.ALIGNMENT, 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GGUFError(f"{source}: general.alignment is {alignment!r}, not a power of two (corrupted header)",
                        "The file is damaged; download it again")
    header_end = r.offset
    data_offset = (header_end + alignment - 1) // alignment * alignment
    h = GGUFHeader(source, version, meta, tensors, alignment, data_offset, file_size, header_end)
    for t in tensors:
        if t.offset % alignment:
            raise GGUFError(f"{source}: tensor '{t.name}' data offset {t.offset} is not aligned to {alignment} (corrupted header)",
                            "The file is damaged; download it again")
    return h


def _check_general(source: str, meta: dict[str, Any]) -> None:
    """The general.* keys every reader uses must have their type (a crafted file could put inf there)."""
    for key in (Keys.General.ARCHITECTURE, Keys.General.NAME, Keys.General.LICENSE):
        v = meta.get(key)
        if v is not None and not isinstance(v, str):
            raise GGUFError(f"{source}: metadata '{key}' is {_shown(v)}, not a string (corrupted header)",
                            "The file is damaged; download it again")
    tokens = meta.get(Keys.Tokenizer.LIST)
    if tokens is not None and not isinstance(tokens, ArrayValue):
        raise GGUFError(f"{source}: metadata '{Keys.Tokenizer.LIST}' is {_shown(tokens)}, not an array (corrupted header)",
                        "The file is damaged; download it again")
    ft = meta.get(Keys.General.FILE_TYPE)
    if ft is not None and (type(ft) is not int or not 0 <= ft < 1 << 16):
        raise GGUFError(f"{source}: metadata '{Keys.General.FILE_TYPE}' is {_shown(ft)}, not a file type number "
                        "(corrupted header)", "The file is damaged; download it again")


def _shown(v: Any) -> str:
    return f"an array of {v.type}" if isinstance(v, ArrayValue) else repr(v)[:40]


def _check_tensor(source: str, name: str, shape: tuple[int, ...], ggml_type: int) -> None:
    try:
        qt = GGMLQuantizationType(ggml_type)
        block, _ = GGML_QUANT_SIZES[qt]
    except (ValueError, KeyError):
        raise GGUFError(f"{source}: tensor '{name}' has unknown GGML type {ggml_type}",
                        "The file is damaged or needs a newer slmplan/gguf package") from None
    n = 1
    for d in shape:
        if d <= 0 or d > 1 << 40:
            raise GGUFError(f"{source}: tensor '{name}' has dimension {d} (corrupted header)",
                            "The file is damaged; download it again")
        n *= d
    if n > 1 << 44:
        raise GGUFError(f"{source}: tensor '{name}' claims {n} elements (corrupted header)",
                        "The file is damaged; download it again")
    if shape[0] % block:
        raise GGUFError(f"{source}: tensor '{name}' row length {shape[0]} is not a multiple of its {qt.name} block size {block}",
                        "The file is damaged; download it again")


def check_complete(h: GGUFHeader) -> None:
    """Raise if tensor data would run past the end of the file (a cut-off download)."""
    if h.file_size is None:
        return
    end = h.data_end()
    if end > h.file_size:
        missing = end - h.file_size
        raise GGUFError(
            f"{h.source} is truncated: tensor data needs {end} bytes but the file has {h.file_size} "
            f"({missing} bytes missing)",
            "Download the file again and check its size/sha256")


def read_gguf(path: str | os.PathLike, check_data: bool = True) -> GGUFHeader:
    """Read a local GGUF file's header; with ``check_data``, also check tensor data lies in the file."""
    p = Path(path)
    # only a regular file: a FIFO or a device would block or never end
    with open_regular(p, "a .gguf file", GGUFError, "Pass the path of a .gguf file") as fh:
        size = os.fstat(fh.fileno()).st_size
        h = read_header(fh, str(p), size)
    if check_data:
        check_complete(h)
    return h
