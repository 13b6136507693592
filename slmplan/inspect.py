"""What a GGUF file holds, as a plain dict (the CLI prints it as a table or JSON)."""

from __future__ import annotations

from slmplan.gguf import ArrayValue, GGUFHeader, read_gguf
from slmplan.model import facts_from_gguf


def header_for(spec: str) -> GGUFHeader:
    if spec.startswith("hf://"):
        from slmplan.hub import remote_header  # needs the 'hub' extra; says so if missing

        return remote_header(spec)
    return read_gguf(spec)


def inspect_model(spec: str) -> dict:
    """What a GGUF file holds (a local path or ``hf://owner/repo/file.gguf``), read from its header only:
    architecture, shapes, parameter count, tensor types (``types``: name -> [count, bytes]) and metadata
    (long arrays and strings abbreviated). The ``slmplan inspect --format json`` shape."""
    h = header_for(spec)
    f = facts_from_gguf(h)
    meta = {}
    for k, v in h.metadata.items():
        if isinstance(v, ArrayValue):
            meta[k] = f"[{v.type} x {v.length}]"
        elif isinstance(v, str) and len(v) > 200:
            meta[k] = v[:200] + f"... ({len(v)} chars)"
        else:
            meta[k] = v
    return {
        "source": h.source, "name": f.name, "architecture": f.architecture, "file_type": h.file_type_name,
        "params": f.params, "layers": f.n_layers, "embedding": f.n_embd, "ffn": f.n_ff, "heads": f.n_head,
        "kv_heads": f.n_head_kv, "head_dim": f.head_dim_k, "vocab": f.n_vocab, "context_length": f.n_ctx_train,
        "sliding_window": f.n_swa, "sliding_window_pattern": f.swa_pattern, "tied_embeddings": f.tied_embeddings,
        "tensor_count": len(h.tensors), "tensor_bytes": h.tensor_bytes, "file_size": h.file_size,
        "data_offset": h.data_offset, "gguf_version": h.version, "license": f.license,
        "types": h.type_histogram(), "metadata": meta,
    }
