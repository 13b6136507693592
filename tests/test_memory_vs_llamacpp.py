"""The memory estimate against llama.cpp's own reported buffer sizes (real runtime, small models).

Each case loads the model in a child process (a native crash cannot take pytest down) with
llama.cpp's CPU extra buffer types on and off (llama-bench --repack 1/0) and parses the buffer
lines llama.cpp logs: mapped weights, the repacked copies (CPU_REPACK, AMX: which ones exist
depends on the CPU and the build, read from llama.cpp itself), KV cache, output and compute.
The estimate uses the same CPU features, so the test means the same on every CPU.
"""

import json
import subprocess
import sys

import pytest

from slmplan.estimate.memory import RuntimeSettings, estimate_memory
from slmplan.gguf import read_gguf
from slmplan.localdevice import cpu_info, local_cpu_features
from slmplan.model import facts_from_gguf

pytest.importorskip("llama_cpp", reason="needs the 'llama' extra (llama-cpp-python)")

PROBE = """
import json, sys
import llama_cpp as L
from slmplan.bench.backends.llama_cpp import LogCapture, _set
from slmplan.bench.llama_log import parse_buffers
log = LogCapture()
L.llama_backend_init()
mp = L.llama_model_default_params()
_set(mp, use_extra_bufts=sys.argv[3] == "1")
model = L.llama_model_load_from_file(sys.argv[1].encode(), mp)
cp = L.llama_context_default_params()
# llama-cpp-python's Llama() defaults, which RuntimeSettings() describes
_set(cp, n_ctx=int(sys.argv[2]), n_batch=512, n_ubatch=512, n_threads=1, n_threads_batch=1, flash_attn_type=0,
     swa_full=True)
ctx = L.llama_init_from_model(model, cp)
assert ctx, log.lines[-3:]
print(json.dumps(parse_buffers(log.lines)))
"""


def llama_cpp_buffers(path, ctx, repack):
    r = subprocess.run([sys.executable, "-c", PROBE, str(path), str(ctx), "1" if repack else "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.runtime
@pytest.mark.parametrize("repack", [True, False], ids=["repack1", "repack0"])
@pytest.mark.parametrize("fixture", ["smollm2", "gemma3"])
@pytest.mark.parametrize("ctx", [512, 2048, 8192])
def test_estimate_matches_llamacpp(request, fixture, ctx, repack):
    path = request.getfixturevalue(fixture)
    f = facts_from_gguf(read_gguf(path))
    features, _ = local_cpu_features(cpu_info())
    est = estimate_memory(f, f.file_quant, ctx, budget_bytes=1 << 34, s=RuntimeSettings(repack=repack),
                          cpu_features=features)
    got = llama_cpp_buffers(path, ctx, repack)
    mapped = got.pop("CPU_Mapped model")
    extra = {k.removesuffix(" model"): v for k, v in got.items() if k.endswith(" model")}
    kv, out, comp = got["CPU KV"], got["CPU output"], got["CPU compute"]
    assert est.weights_bytes == pytest.approx(mapped, abs=0.01 * 2**20)
    # the repacked copies, per buffer type, as llama.cpp made them on this CPU with this setting
    assert {k: round(v / 2**20, 1) for k, v in est.extra_buffers.items()} == {k: round(v / 2**20, 1) for k, v in extra.items()}
    if not repack:
        assert est.repack_bytes == 0 and not extra
    assert est.kv_cache_bytes == pytest.approx(kv, rel=0.005)
    # the ubatch graph rebuilt (llama, gemma3): compute and output exact to the 0.01 MiB llama.cpp prints
    assert est.compute_bytes == pytest.approx(comp + out, abs=2 * (0.005 * 2**20 + 1))
    # llama.cpp's total as it reports it: mapped + extra + KV + compute + output (the process baseline apart)
    reported = mapped + sum(extra.values()) + kv + comp + out
    assert est.total_bytes - est.overhead_bytes == pytest.approx(reported, rel=0.05)


@pytest.mark.runtime
@pytest.mark.parametrize("fixture", ["smollm2", "gemma3"])
@pytest.mark.parametrize("ctx", [512, 2048, 8192])
def test_fit_local_matches_llamacpp_total(request, cli, fixture, ctx):
    """What a user runs: 'slmplan fit FILE --device local --ctx N' against llama.cpp's own total."""
    path = request.getfixturevalue(fixture)
    code, out, err = cli("fit", str(path), "--device", "local", "--ctx", str(ctx), "--format", "json")
    assert code == 0, err
    m = json.loads(out)[0]["memory"]
    got = llama_cpp_buffers(path, ctx, repack=True)
    reported = sum(got.values())  # mapped + extra + KV + compute + output
    assert m["total_bytes"] - m["overhead_bytes"] == pytest.approx(reported, rel=0.05)
