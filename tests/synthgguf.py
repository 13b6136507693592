"""Small synthetic GGUF files of real architectures, and llama.cpp's buffer report when loading them.

The files carry the architecture's real metadata keys and the tensor layout of slmplan/arch.py (zeros,
few layers, small dimensions). llama.cpp refuses a file whose tensors it does not expect, so loading one
checks the layout; its "... buffer size = X MiB" lines are then compared with slmplan's estimate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFWriter

from slmplan.arch import layout, mtp_layout

PROBE = r"""
import ctypes, json, sys
import llama_cpp as L
from slmplan.bench.backends.llama_cpp import LogCapture
from slmplan.bench.llama_log import parse_buffers
cap = LogCapture()
L.llama_backend_init()
mp = L.llama_model_default_params()
mp.use_extra_bufts = False  # no CPU repack buffer: the test must not depend on this CPU
model = L.llama_model_load_from_file(sys.argv[1].encode(), mp)
if not model:
    print(json.dumps({"error": "\n".join(cap.lines[-15:])})); sys.exit(0)
cp = L.llama_context_default_params()
cp.n_ctx = int(sys.argv[2]); cp.n_batch = cp.n_ubatch = int(sys.argv[6]); cp.n_seq_max = int(sys.argv[3])
cp.flash_attn_type = int(sys.argv[5]); cp.n_threads = 1; cp.n_threads_batch = 1; cp.swa_full = sys.argv[4] == '1'
cp.type_k, cp.type_v = int(sys.argv[7]), int(sys.argv[8])
ctx = L.llama_init_from_model(model, cp)
if not ctx:
    print(json.dumps({"error": "\n".join(cap.lines[-15:])})); sys.exit(0)
print(json.dumps({"buffers": parse_buffers(cap.lines)}))
"""


def _vocab(w: GGUFWriter, n_vocab: int) -> None:
    # a SentencePiece vocabulary llama.cpp accepts: special tokens and the 256 byte tokens it looks up
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"t{i}" for i in range(n_vocab - len(tokens))]
    types = [2, 3, 3] + [6] * 256 + [1] * (n_vocab - 259)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * n_vocab)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)


def write(path: Path, f, kv: dict, tensors: list | None = None) -> Path:
    """Write facts ``f`` (an architecture with small numbers) as a GGUF; ``kv`` adds arch keys; ``tensors``
    replaces slmplan/arch.py's layout (for architectures it does not write)."""
    arch = f.architecture
    w = GGUFWriter(str(path), arch)
    a = arch
    # MTP blocks (Qwen3.5) follow the trunk as more layers, as llama.cpp's converter writes them
    w.add_uint32(f"{a}.block_count", f.n_layers + f.n_layer_nextn)
    if f.n_layer_nextn:
        w.add_uint32(f"{a}.nextn_predict_layers", f.n_layer_nextn)
    w.add_uint32(f"{a}.context_length", f.n_ctx_train)
    w.add_uint32(f"{a}.embedding_length", f.n_embd)
    if f.layer_ff is None:
        w.add_uint32(f"{a}.feed_forward_length", f.n_ff)
    w.add_uint32(f"{a}.attention.head_count", f.n_head)
    if f.layer_kv_heads is not None:
        w.add_array(f"{a}.attention.head_count_kv", list(f.layer_kv_heads))
    else:
        w.add_uint32(f"{a}.attention.head_count_kv", f.n_head_kv)
    w.add_uint32(f"{a}.attention.key_length", f.head_dim_k)
    w.add_uint32(f"{a}.attention.value_length", f.head_dim_v)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", 1e-6)
    w.add_uint32(f"{a}.vocab_size", f.n_vocab)
    if f.n_expert:
        w.add_uint32(f"{a}.expert_count", f.n_expert)
        w.add_uint32(f"{a}.expert_used_count", f.n_expert_used)
        w.add_uint32(f"{a}.expert_feed_forward_length", f.n_ff_exp)
    if f.n_ff_shexp:
        w.add_uint32(f"{a}.expert_shared_feed_forward_length", f.n_ff_shexp)
    if f.n_swa:
        w.add_uint32(f"{a}.attention.sliding_window", f.n_swa)
    if f.ssm_d_conv:
        w.add_uint32(f"{a}.ssm.conv_kernel", f.ssm_d_conv)
        w.add_uint32(f"{a}.ssm.inner_size", f.ssm_d_inner)
        w.add_uint32(f"{a}.ssm.state_size", f.ssm_d_state)
        w.add_uint32(f"{a}.ssm.time_step_rank", f.ssm_dt_rank)
        w.add_uint32(f"{a}.ssm.group_count", f.ssm_n_group)
    if f.shortconv_l_cache:
        w.add_uint32(f"{a}.shortconv.l_cache", f.shortconv_l_cache)
    auto: dict = {}
    if f.n_embd_per_layer and arch == "gemma4":
        auto["{arch}.embedding_length_per_layer_input"] = f.n_embd_per_layer
    if f.head_dim_swa:
        auto["{arch}.attention.key_length_swa"] = auto["{arch}.attention.value_length_swa"] = f.head_dim_swa
    if f.swa_layers is not None:
        auto["{arch}.attention.sliding_window_pattern"] = [bool(x) for x in f.swa_layers]
    if arch == "gemma4" and f.n_layer_kv_from_start is not None:
        auto["{arch}.attention.shared_kv_layers"] = f.n_layers - f.n_layer_kv_from_start
    if f.layer_ff is not None:
        auto["{arch}.feed_forward_length"] = list(f.layer_ff)
    if arch == "lfm2moe":
        auto["{arch}.expert_gating_func"] = 2
    if f.n_layer_dense_lead:
        auto["{arch}.leading_dense_block_count"] = f.n_layer_dense_lead
    for k, v in {**auto, **kv}.items():
        key = k.format(arch=a)
        if isinstance(v, bool):
            w.add_bool(key, v)
        elif isinstance(v, int):
            w.add_uint32(key, v)
        elif isinstance(v, float):
            w.add_float32(key, v)
        else:
            w.add_array(key, list(v))
    _vocab(w, f.n_vocab)
    for t in tensors if tensors is not None else layout(f) + mtp_layout(f):  # by layer, MTP last (llama-quantize's order)
        w.add_tensor(t.name, np.zeros(tuple(reversed(t.ne)), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


GGML_TYPE_IDS = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 8}


def llama_cpp_buffers(path: Path, ctx: int, n_seq: int = 1, swa_full: bool = True, flash_attn: bool = False,
                      n_ubatch: int = 512, type_k: str = "f16", type_v: str = "f16") -> dict[str, float]:
    """llama.cpp's reported buffers in bytes, e.g. {'CPU_Mapped model': ..., 'CPU KV': ..., 'CPU RS': ...}
    (n_batch = n_ubatch; flash attention on or off, not auto)."""
    root = Path(__file__).resolve().parent.parent
    args = [str(path), str(ctx), str(n_seq), "1" if swa_full else "0", "1" if flash_attn else "0", str(n_ubatch),
            str(GGML_TYPE_IDS[type_k]), str(GGML_TYPE_IDS[type_v])]
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                       text=True, timeout=180, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert "error" not in out, out["error"]
    return out["buffers"]
