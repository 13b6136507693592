import struct
import time

import numpy as np
import pytest
from gguf import GGUFWriter

from slmplan.errors import GGUFError
from slmplan.gguf import read_gguf
from slmplan.model import facts_from_gguf


def test_smollm2_header(smollm2):
    h = read_gguf(smollm2)
    f = facts_from_gguf(h)
    assert (h.architecture, f.n_layers, f.n_embd, f.n_head, f.n_head_kv, f.n_vocab) == ("llama", 30, 576, 9, 3, 49152)
    assert h.file_type_name == "Q4_1"
    assert f.tied_embeddings and f.n_swa is None
    assert h.tensor_bytes == 96576768  # llama.cpp reports CPU_Mapped 92.10 MiB for this file
    assert h.data_end() == h.file_size  # the tensor data fills the file exactly


def test_gemma3_header_fast_on_262k_vocab(gemma3):
    t = time.perf_counter()
    h = read_gguf(gemma3)
    elapsed = time.perf_counter() - t
    f = facts_from_gguf(h)
    assert h.metadata["tokenizer.ggml.tokens"].length == 262144
    assert (f.n_swa, f.swa_pattern, f.n_swa_layers) == (512, 6, 15)
    assert f.head_dim_k == 256 and f.n_head_kv == 1
    # generous bound: the point is that we never decode 262k strings into Python objects one by one
    # through numpy views (gguf.GGUFReader takes seconds here); typical is ~0.25 s
    assert elapsed < 5


def _write(tmp_path, name, arch="llama", **kv):
    p = tmp_path / name
    w = GGUFWriter(str(p), arch)
    w.add_block_count(kv.get("blocks", 2))
    w.add_embedding_length(kv.get("embd", 64))
    w.add_head_count(kv.get("heads", 4))
    w.add_feed_forward_length(128)
    w.add_context_length(256)
    w.add_tensor("token_embd.weight", np.zeros((32, 64), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return p


def test_small_written_file_roundtrip(tmp_path):
    p = _write(tmp_path, "ok.gguf")
    f = facts_from_gguf(read_gguf(p))
    assert (f.n_layers, f.n_embd, f.n_vocab) == (2, 64, 32)


@pytest.mark.parametrize("case, expect", [
    # file cut inside the tensor data: header fine, data missing
    ("truncated-data", "truncated"),
    # file cut inside the metadata
    ("truncated-header", "file ends at byte"),
    # not a GGUF at all
    ("text", "not a GGUF file"),
    # empty file
    ("empty", "not a GGUF file"),
    # tensor count field overwritten with a huge number
    ("huge-count", "corrupted header"),
    # unsupported version / big-endian
    ("version", "unsupported GGUF version"),
    # absurd architecture values
    ("zero-layers", "must be positive"),
])
def test_bad_files_rejected(tmp_path, smollm2, case, expect):
    data = smollm2.read_bytes()
    p = tmp_path / "bad.gguf"
    if case == "truncated-data":
        p.write_bytes(data[: len(data) // 2])
    elif case == "truncated-header":
        p.write_bytes(data[:5000])
    elif case == "text":
        p.write_text("hello, I am not a model\n" * 10)
    elif case == "empty":
        p.write_bytes(b"")
    elif case == "huge-count":
        p.write_bytes(data[:8] + struct.pack("<Q", 1 << 50) + data[16:200000])
    elif case == "version":
        p.write_bytes(b"GGUF" + struct.pack(">I", 3) + data[8:1000])
    elif case == "zero-layers":
        p = _write(tmp_path, "zero.gguf", blocks=0)
    with pytest.raises(GGUFError, match=expect):
        facts_from_gguf(read_gguf(p))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(GGUFError, match="no such file"):
        read_gguf(tmp_path / "nope.gguf")
    with pytest.raises(GGUFError, match="is a directory"):
        read_gguf(tmp_path)
