"""Hand-made GGUF files for hostile-input tests: every byte chosen by the test, including the ones a
well-behaved writer (gguf.GGUFWriter) would refuse to write (NaN counts, arrays nested 3000 deep)."""

from __future__ import annotations

import struct
from pathlib import Path

UINT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, FLOAT64 = 4, 6, 7, 8, 9, 10, 12


def s(x: str) -> bytes:
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def u32(k: str, v: int) -> bytes:
    return s(k) + struct.pack("<II", UINT32, v)


def f32(k: str, v: float) -> bytes:
    return s(k) + struct.pack("<If", FLOAT32, v)


def f64(k: str, v: float) -> bytes:
    return s(k) + struct.pack("<Id", FLOAT64, v)


def string(k: str, v: str) -> bytes:
    return s(k) + struct.pack("<I", STRING) + s(v)


def u32_array(k: str, vals: list[int]) -> bytes:
    return s(k) + struct.pack("<IIQ", ARRAY, UINT32, len(vals)) + b"".join(struct.pack("<I", v) for v in vals)


def array_of_arrays(k: str, outer: int = 2, inner: list[int] = (1, 2)) -> bytes:
    one = struct.pack("<IQ", UINT32, len(inner)) + b"".join(struct.pack("<I", v) for v in inner)
    return s(k) + struct.pack("<IIQ", ARRAY, ARRAY, outer) + one * outer


def nested(k: str, depth: int) -> bytes:
    """An array of arrays of ... (``depth`` levels) around one uint32."""
    body = struct.pack("<IQ", UINT32, 1) + struct.pack("<I", 7)
    for _ in range(depth - 1):
        body = struct.pack("<IQ", ARRAY, 1) + body
    return s(k) + struct.pack("<I", ARRAY) + body


BASE = {
    "general.architecture": lambda k: string(k, "llama"),
    "general.name": lambda k: string(k, "tiny"),
    "general.file_type": lambda k: u32(k, 0),
    "llama.block_count": lambda k: u32(k, 2),
    "llama.embedding_length": lambda k: u32(k, 16),
    "llama.feed_forward_length": lambda k: u32(k, 32),
    "llama.attention.head_count": lambda k: u32(k, 2),
    "llama.context_length": lambda k: u32(k, 128),
}


def gguf(path: Path, override: dict[str, bytes | None] | None = None) -> Path:
    """A tiny but complete llama GGUF (one F32 token embedding), with metadata entries replaced
    (key -> raw key/value bytes) or dropped (key -> None)."""
    override = override or {}
    kvs = [override.get(k, f(k)) if k in override else f(k) for k, f in BASE.items()]
    kvs += [v for k, v in override.items() if k not in BASE]
    kvs = [kv for kv in kvs if kv is not None]
    n_embd, n_vocab = 16, 8
    tensor = s("token_embd.weight") + struct.pack("<IQQIQ", 2, n_embd, n_vocab, 0, 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kvs)) + b"".join(kvs) + tensor
    pad = (-len(head)) % 32
    path.write_bytes(head + b"\0" * pad + b"\0" * (4 * n_embd * n_vocab))
    return path
