"""Everything checked before a benchmark loads a model: the MODEL argument, the numbers, the file, RAM.

A bad value, a missing/corrupt/truncated file or a model that would not fit in the RAM available
now is refused here with a one-line error, before any child process starts.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import psutil

from slmplan.errors import BadInputError
from slmplan.estimate.memory import MIB, estimate_memory
from slmplan.localdevice import cgroup_memory_limit
from slmplan.model import ModelFacts

RUNTIMES = ("llama.cpp", "onnx")
FLASH_ATTN = ("auto", "on", "off")
KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1")
RAM_SAFETY = 0.9  # refuse when the predicted footprint exceeds 90% of the memory available now


# The checks name what they check: a CLI flag ("--reps") or, from the library, a parameter ("reps"),
# which the CLI turns into its flag (params=...; see slmplan.errors).
def _bad(message: str, option: str, example: str) -> BadInputError:
    if option.startswith("-"):
        return BadInputError(message, f"Use e.g. {option} {example}")
    return BadInputError(message, f"Use e.g. {option}={example}", params=(option,))


def parse_int_list(value: str | int | list[int] | tuple[int, ...], option: str, minimum: int = 0,
                   maximum: int = 1 << 20) -> list[int]:
    """'512' or '128,512' (llama-bench style), or a list of ints -> [ints]; a clear error for anything else."""
    parts = [str(x) for x in value] if isinstance(value, (list, tuple)) else str(value).split(",")
    out = []
    for part in parts:
        part = part.strip()
        try:
            n = int(part)
        except ValueError:
            e = _bad(f"{option} takes whole numbers separated by commas, got '{value}'", option, "512")
            more = f" or {option} 128,512" if option.startswith("-") else f" or {option}=128,512"
            raise BadInputError(e.message, f"{e.hint}{more}", params=e.params) from None
        if not minimum <= n <= maximum:
            raise _bad(f"{option} {n} is out of range ({minimum}..{maximum})", option, "512")
        out.append(n)
    return list(dict.fromkeys(out))


def check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    v = value.lower()
    if v not in choices:
        e = _bad(f"{option} '{value}' is not one of {', '.join(choices)}", option, choices[0])
        raise BadInputError(e.message, (e.hint or "").replace("Use e.g. ", "Use "), params=e.params)
    return v


def check_range(value: int, option: str, lo: int, hi: int, example: str) -> int:
    if not lo <= value <= hi:
        raise _bad(f"{option} {value} is out of range ({lo}..{hi})", option, example)
    return value


def check_runtime(runtime: str) -> str:
    r = runtime.lower().replace("llamacpp", "llama.cpp").replace("llama-cpp", "llama.cpp")
    if r not in RUNTIMES:
        raise BadInputError(f"unknown runtime '{runtime}'", "Use --runtime llama.cpp (or --runtime onnx)")
    return r


def resolve_onnx_dir(arg: str) -> Path:
    """An ONNX Runtime GenAI model folder (genai_config.json + model), as 'slmplan convert' writes."""
    p = Path(arg).expanduser()
    if arg.lower().endswith(".gguf") and p.is_file():
        raise BadInputError(f"{arg} is a GGUF file; --runtime onnx needs an ONNX Runtime GenAI model folder",
                            f"Convert it first: slmplan convert {arg} --to onnx -o model-onnx")
    if not p.exists():
        raise BadInputError(f"{arg}: no such folder", "Pass the folder written by 'slmplan convert MODEL.gguf --to onnx -o DIR'")
    if not p.is_dir() or not (p / "genai_config.json").is_file():
        raise BadInputError(f"{arg} is not an ONNX Runtime GenAI model folder (no genai_config.json)",
                            "Pass the folder written by 'slmplan convert MODEL.gguf --to onnx -o DIR'")
    try:
        cfg = json.loads((p / "genai_config.json").read_text())
        cfg["model"]["decoder"]["num_hidden_layers"]
    except (ValueError, KeyError, TypeError):
        raise BadInputError(f"{p / 'genai_config.json'} is not a valid GenAI config",
                            "Re-create the folder with 'slmplan convert'") from None
    if importlib.util.find_spec("onnxruntime_genai") is None:
        from slmplan.errors import MissingExtraError

        raise MissingExtraError("onnxruntime-genai", "onnx", "Benchmarking with ONNX Runtime")
    return p.resolve()


def onnx_footprint(p: Path, max_ctx: int) -> int:
    """Model files + a KV cache allocated for the whole max_length (ONNX Runtime GenAI does so up front)."""
    cfg = json.loads((p / "genai_config.json").read_text())["model"]["decoder"]
    kv = 2 * cfg["num_hidden_layers"] * cfg["num_key_value_heads"] * cfg["head_size"] * 4 * max_ctx  # fp32 on CPU
    return sum(f.stat().st_size for f in p.glob("*.onnx*")) + kv + (64 << 20)


def check_onnx_fits_ram(p: Path, max_ctx: int, force: bool) -> None:
    need, avail = onnx_footprint(p, max_ctx), available_memory()
    if need > RAM_SAFETY * avail and not force:
        raise BadInputError(f"{p.name} needs about {need / MIB:,.0f} MiB but only {avail / MIB:,.0f} MiB of RAM is available now",
                            "Close other programs or use smaller tests, or pass --force to try anyway")


@dataclass(frozen=True)
class BenchTarget:
    arg: str
    path: Path
    facts: ModelFacts | None  # None for an ONNX folder: no GGUF to read the model's facts from


def resolve_model(arg: str, quant: str | None = None) -> BenchTarget:
    """A .gguf path, a bundled test model id, or a catalog id whose GGUF is in the Hugging Face cache."""
    from slmplan.gguf import read_gguf
    from slmplan.model import facts_from_gguf

    p = Path(arg).expanduser()
    try:
        is_path = arg.lower().endswith(".gguf") or p.exists()
    except OSError:  # a name too long for a path: no file, so a catalog id (which then says it is unknown)
        is_path = False
    if is_path:
        if p.is_dir():
            raise BadInputError(f"{arg} is a directory", "Pass a .gguf file (folders are for --runtime onnx)")
        h = read_gguf(p, check_data=True)  # missing / not GGUF / truncated -> GGUFError (exit 2)
        return BenchTarget(arg, p.resolve(), facts_from_gguf(h))
    path = _local_gguf_for_id(arg, quant)
    h = read_gguf(path, check_data=True)
    return BenchTarget(arg, path, facts_from_gguf(h, model_id=arg))


def _local_gguf_for_id(model_id: str, quant: str | None) -> Path:
    from slmplan.catalog import get_model, load_catalog
    from slmplan.testmodels import BUNDLED, bundled_model_path

    m = get_model(load_catalog(), model_id)  # unknown id -> clear error listing close matches
    if model_id in BUNDLED and (quant is None or quant.upper() in bundled_quants(model_id)):
        return bundled_model_path(model_id)
    from slmplan.hub import cached_gguf

    found = cached_gguf(m.hf_repo, quant or "Q4_K_M") if m.hf_repo else None
    if found:
        return found
    raise BadInputError(
        f"no local GGUF file for '{model_id}'" + (f" ({quant})" if quant else "") +
        (f"; it is published in {m.hf_repo}" if m.hf_repo else ""),
        (f"Download it with 'slmplan pull {model_id} --quant {quant or 'Q4_K_M'}', or pass a .gguf path "
         f"(bundled test models: {', '.join(BUNDLED)})"))


def bundled_quants(model_id: str) -> set[str]:
    return {"smollm2-135m": {"Q4_1"}, "gemma-3-270m": {"Q4_K_M"}}.get(model_id, set())


def available_memory() -> int:
    avail = psutil.virtual_memory().available
    limit, used = cgroup_memory_limit()
    if limit is not None and used is not None:
        avail = min(avail, max(limit - used, 0))
    return avail


def check_fits_ram(target: BenchTarget, max_ctx: int, n_batch: int, n_ubatch: int, flash_attn: str,
                   force: bool) -> dict:
    """Predicted peak footprint of the benchmark process vs the RAM available now."""
    from slmplan.bench.predict import context_settings

    s = context_settings(max_ctx, n_batch, n_ubatch, flash_attn != "off", "f16", "f16")
    from slmplan.localdevice import detect_local

    if target.facts is None:
        raise ValueError("check_fits_ram needs a GGUF target (ONNX folders go through check_onnx_fits_ram)")
    est = estimate_memory(target.facts, target.facts.file_quant or "F16", max_ctx, 1 << 50, s,
                          detect_local().cpu_features)
    need = est.total_bytes  # includes the repacked copies llama.cpp makes on this CPU
    avail = available_memory()
    info = {"predicted_bytes": need, "available_bytes": avail}
    if need > RAM_SAFETY * avail and not force:
        raise BadInputError(
            f"{target.path.name} needs about {need / MIB:,.0f} MiB (weights, KV cache at {max_ctx} tokens, buffers) "
            f"but only {avail / MIB:,.0f} MiB of RAM is available now; loading it would make the machine swap",
            "Close other programs, use a smaller --pp/--depth or a smaller quant, or pass --force to try anyway")
    return info
