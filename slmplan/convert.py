"""`slmplan convert MODEL.gguf --to onnx`: a GGUF file -> an ONNX Runtime GenAI model folder, offline.

onnxruntime-genai's model builder reads Hugging Face checkpoints (or F16/F32 GGUF only), so a
quantized GGUF is first dequantized with transformers (``gguf_file=``; on transformers 5 the GGUF
quantizer must be cleared before ``save_pretrained``), with its tokenizer rebuilt from the GGUF
metadata; then ``python -m onnxruntime_genai.models.builder`` writes the ONNX model (INT4 =
MatMulNBits, block 32), genai_config.json and tokenizer files. A quantized GGUF converted to INT4 is
therefore quantized twice; ``benchmarks/onnx_vs_llamacpp.py`` measures what that costs.

Each step runs in its own process with its output in ``convert.log``; the folder appears only when
everything succeeded (built in a temporary folder next to it, then renamed).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slmplan.errors import BadInputError, MissingExtraError, RuntimeFailure
from slmplan.fileio import package_versions

PRECISIONS = ("int4", "fp16", "fp32")
# GGUF architectures that both transformers (GGUF loading) and the GenAI builder handle. Only llama
# (SmolLM2) is verified end to end by the tests; the others follow the same path, untested here.
SUPPORTED_ARCHS = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
                   "qwen3": "Qwen3ForCausalLM", "phi3": "Phi3ForCausalLM"}
# Refused with the reason found when it was tried (transformers 5.23, onnxruntime-genai 0.18, 2026-11-22)
KNOWN_BROKEN = {
    "gemma3": "with a rope_type shim and rope_local_base_freq patched in, the builder finishes, but the model "
              "answers garbage ('However\nHowever...') where the GGUF answers correctly",
    "gemma2": "the same Gemma conversion path as gemma3, not verified",
}

DEQUANT = r"""
import json, sys
args = json.loads(sys.argv[1])
import torch
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer
p = Path(args["gguf"])
dtype = torch.float16 if args["precision"] == "fp16" else torch.float32
tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, dtype=dtype)
# transformers 5 refuses to save a GGUF-loaded model until its quantizer is cleared
model.hf_quantizer = None
if getattr(model.config, "quantization_config", None) is not None:
    del model.config.quantization_config
model.save_pretrained(args["out"])
tok.save_pretrained(args["out"])
print("architectures", model.config.architectures)
"""


def require_convert_extra() -> None:
    missing = [m for m in ("torch", "transformers", "accelerate", "onnx", "onnx_ir", "onnxruntime_genai")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(missing[0], "convert", "Converting a GGUF to ONNX")


def check_input(path: str) -> tuple[Path, str]:
    from slmplan.gguf import read_gguf

    p = Path(path)
    h = read_gguf(p, check_data=True)  # missing / not GGUF / truncated -> one-line error
    arch = h.architecture
    if arch in KNOWN_BROKEN:
        raise BadInputError(f"{p.name}: converting '{arch}' to ONNX is not supported: {KNOWN_BROKEN[arch]}",
                            "Benchmark it with --runtime llama.cpp, or use an ONNX model published for it")
    if arch not in SUPPORTED_ARCHS:
        raise BadInputError(f"{p.name}: architecture '{arch}' is not supported by the ONNX conversion",
                            f"Supported: {', '.join(sorted(SUPPORTED_ARCHS))}")
    return p.resolve(), arch


def _run(cmd: list[str], log: Path, what: str, env: dict | None = None, kept_log: Path | None = None) -> None:
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    if r.returncode != 0:
        tail = [x for x in log.read_text(errors="replace").splitlines() if x.strip()][-3:]
        raise RuntimeFailure(f"{what} failed (exit {r.returncode}): {' | '.join(t[:200] for t in tail)}",
                             f"The full log is in {kept_log or log}")


def convert(gguf: str, out: str, precision: str = "int4", force: bool = False, on_step=None) -> Path:
    precision = precision.lower()
    if precision not in PRECISIONS:
        raise BadInputError(f"precision={precision} is not one of {', '.join(PRECISIONS)}", "Use precision=int4",
                            params=("precision",))
    src, arch = check_input(gguf)
    require_convert_extra()
    dest = Path(out).expanduser()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        if not force:
            raise BadInputError(f"{dest} already exists and is not empty",
                                "Choose another folder for out, or pass force=True to replace it", params=("out", "force"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    log = work / "convert.log"
    kept_log = dest.parent / f"{dest.name}.convert-failed.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
               TOKENIZERS_PARALLELISM="false")
    t0 = time.time()
    ok = False
    try:
        hf_dir, onnx_dir = work / "hf", work / "onnx"
        if on_step:
            on_step(f"1/2 dequantizing {src.name} with transformers ({'fp16' if precision == 'fp16' else 'fp32'})")
        _run([sys.executable, "-c", DEQUANT, json.dumps({"gguf": str(src), "out": str(hf_dir), "precision": precision})],
             log, "dequantizing the GGUF with transformers", env, kept_log)
        if on_step:
            on_step(f"2/2 building the ONNX Runtime GenAI model ({precision}, CPU)")
        _run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf_dir), "-o", str(onnx_dir),
              "-p", precision, "-e", "cpu", "-c", str(work / "cache")], log, "the onnxruntime-genai model builder", env,
             kept_log)
        if not (onnx_dir / "genai_config.json").exists():
            raise RuntimeFailure("the model builder finished without writing genai_config.json", f"See {log}")
        shutil.copy(log, onnx_dir / "convert.log")
        (onnx_dir / "slmplan_convert.json").write_text(json.dumps({
            "source": str(src), "source_size_bytes": src.stat().st_size, "architecture": arch, "precision": precision,
            "execution_provider": "cpu", "seconds": round(time.time() - t0, 1), "versions": package_versions(("onnxruntime-genai", "onnxruntime", "transformers", "torch")),
            "note": "dequantized from the GGUF (transformers), then quantized again by the builder when int4"},
            indent=2))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(onnx_dir, dest)
        ok = True
    finally:
        if not ok and log.exists():  # keep the log of a failed conversion where the error message says
            shutil.copy(log, dest.parent / f"{dest.name}.convert-failed.log")
        shutil.rmtree(work, ignore_errors=True)
    return dest

