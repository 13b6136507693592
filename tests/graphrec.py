"""llama.cpp's own ubatch graph and where its allocator put each tensor, recorded while it runs.

A child process loads a GGUF, decodes one full ubatch (n_ubatch tokens, every one an output: the graph
llama.cpp reserves its compute buffer for when n_ctx == n_ubatch) and, through the scheduler's eval
callback, reads every node of the graph in execution order: op, type, shape, strides, view source,
and the offset of its data in the compute buffer. tests/test_compute_graph.py compares that, node by
node, with the graph slmplan.estimate.llama_graph rebuilds and with ggml_sim's allocation of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = r"""
import ctypes, json, os, sys
import llama_cpp as L
from slmplan.bench.backends.llama_cpp import LogCapture
from slmplan.bench.llama_log import parse_buffers

class T(ctypes.Structure):
    pass
T._fields_ = [("type", ctypes.c_int), ("buffer", ctypes.c_void_p), ("ne", ctypes.c_int64 * 4),
              ("nb", ctypes.c_size_t * 4), ("op", ctypes.c_int), ("op_params", ctypes.c_int32 * 16),
              ("flags", ctypes.c_int32), ("src", ctypes.POINTER(T) * 10), ("view_src", ctypes.POINTER(T)),
              ("view_offs", ctypes.c_size_t), ("data", ctypes.c_void_p), ("name", ctypes.c_char * 64),
              ("extra", ctypes.c_void_p), ("padding", ctypes.c_char * 8)]
gb = ctypes.CDLL(os.path.join(os.path.dirname(L.__file__), "lib", "libggml-base.so"))
gb.ggml_op_name.restype = ctypes.c_char_p
gb.ggml_op_name.argtypes = [ctypes.c_int]
gb.ggml_type_name.restype = ctypes.c_char_p
gb.ggml_type_name.argtypes = [ctypes.c_int]
gb.ggml_backend_buffer_get_base.restype = ctypes.c_void_p
gb.ggml_backend_buffer_get_base.argtypes = [ctypes.c_void_p]
gb.ggml_backend_buffer_get_usage.restype = ctypes.c_int
gb.ggml_backend_buffer_get_usage.argtypes = [ctypes.c_void_p]
COMPUTE = 2  # GGML_BACKEND_BUFFER_USAGE_COMPUTE

nodes = []
@L.ggml_backend_sched_eval_callback
def cb(t, ask, ud):
    if ask:
        x = ctypes.cast(t, ctypes.POINTER(T)).contents
        own = bool(x.buffer) and not x.view_src and gb.ggml_backend_buffer_get_usage(x.buffer) == COMPUTE
        nodes.append(dict(op=gb.ggml_op_name(x.op).decode(), type=gb.ggml_type_name(x.type).decode(),
                          ne=list(x.ne), view=bool(x.view_src), name=x.name.decode(),
                          offset=(x.data - gb.ggml_backend_buffer_get_base(x.buffer)) if own else None))
    return False

cap = LogCapture()
L.llama_backend_init()
mp = L.llama_model_default_params()
mp.use_extra_bufts = False
model = L.llama_model_load_from_file(sys.argv[1].encode(), mp)
cp = L.llama_context_default_params()
n = int(sys.argv[2])
cp.n_ctx = cp.n_batch = cp.n_ubatch = n
cp.n_seq_max = 1
cp.flash_attn_type = int(sys.argv[3])
cp.n_threads = cp.n_threads_batch = 1
cp.cb_eval = cb
ctx = L.llama_init_from_model(model, cp)
batch = L.llama_batch_init(n, 0, 1)
for k in range(n):
    batch.token[k] = 3 + k % 200
    batch.pos[k] = k
    batch.n_seq_id[k] = 1
    batch.seq_id[k][0] = 0
    batch.logits[k] = True
batch.n_tokens = n
rc = L.llama_decode(ctx, batch)
print(json.dumps({"rc": rc, "nodes": nodes, "buffers": parse_buffers(cap.lines)}))
"""


def record_graph(path: Path, n: int = 512, flash_attn: bool = False) -> dict:
    """{'nodes': [{op, type, ne, view, name, offset}, ...] in execution order, 'buffers': llama.cpp's report}."""
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", PROBE, str(path), str(n), "1" if flash_attn else "0"],
                       capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["rc"] == 0, out
    return out
