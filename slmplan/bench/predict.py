"""What the planner predicts for exactly what a benchmark measured (same model, settings, device).

Every bench result carries these next to the measurement, with the ratio measured / predicted. The
prediction uses the local device profile (``slmplan devices --local``) and the constants the
planner would use for it: the local calibration when ``bench --calibrate`` has written one, else the
shipped speed model. Compute throughput is scaled to the threads the benchmark used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from slmplan.estimate.memory import RuntimeSettings, compute_bytes, extra_buffers, kv_cache_bytes, output_bytes
from slmplan.estimate.speed import BACKEND_CLASS, Hardware, decode_time_s, load_constants, prefill_tokens_per_s
from slmplan.model import ModelFacts
from slmplan.schema.device import DeviceProfile


@dataclass(frozen=True)
class Predictor:
    facts: ModelFacts
    quant: str
    hw: Hardware
    constants: dict
    label: str  # 'shipped' | 'local calibration'

    @property
    def k(self) -> dict:
        return self.constants["classes"][BACKEND_CLASS.get(self.hw.backend, "cpu")]

    def tokens_per_s(self, n_prompt: int, n_gen: int, n_depth: int) -> float | None:
        """llama-bench semantics: a test times n_prompt prompt tokens then n_gen generated ones."""
        t = 0.0
        if n_prompt > 0:
            pp = prefill_tokens_per_s(self.facts, self.quant, self.hw, n_prompt, self.k, depth=n_depth)
            if not pp:
                return None
            t += n_prompt / pp
        if n_gen > 0:
            t_tok, _ = decode_time_s(self.facts, self.quant, self.hw, n_depth + n_prompt + n_gen // 2, self.k)
            t += n_gen * t_tok
        return (n_prompt + n_gen) / t if t > 0 else None

    def ttft_s(self, n_prompt: int) -> float | None:
        pp = prefill_tokens_per_s(self.facts, self.quant, self.hw, n_prompt, self.k)
        if not pp:
            return None
        t_tok, _ = decode_time_s(self.facts, self.quant, self.hw, n_prompt, self.k)
        return n_prompt / pp + t_tok


def make_predictor(facts: ModelFacts, quant: str, device: DeviceProfile, threads: int,
                   constants: dict | None = None, label: str | None = None) -> Predictor:
    from slmplan.planner import hardware, local_constants

    if constants is None:
        local = local_constants(device)
        constants, label = (local, "local calibration") if local else (load_constants(), "shipped")
    hw = hardware(device)
    cores = device.threads or device.cpu_cores
    if hw.cpu_gflops and cores and threads < cores:
        hw = replace(hw, cpu_gflops=hw.cpu_gflops * threads / cores)
    return Predictor(facts, quant, hw, constants, label or "given")


def context_settings(n_ctx: int, n_batch: int, n_ubatch: int, flash_attn_on: bool, type_k: str, type_v: str) -> RuntimeSettings:
    # llama.cpp caps the logical batch at the requested context (causal models), and the physical one at that
    nb = min(n_batch, n_ctx)
    return RuntimeSettings(n_batch=nb, n_ubatch=min(n_ubatch, nb), type_k=type_k, type_v=type_v,
                           flash_attn=flash_attn_on, swa_full=False)


def context_memory(facts: ModelFacts, n_ctx: int, s: RuntimeSettings) -> tuple[int, int]:
    """(KV cache bytes, compute + output bytes) the planner expects for one context."""
    return kv_cache_bytes(facts, n_ctx, s), compute_bytes(facts, n_ctx, s) + output_bytes(facts, s)


def weights_memory(facts: ModelFacts, quant: str, repack: bool = True, cpu_features: list[str] | None = None):
    """(mapped weights bytes, the extra buffers llama.cpp makes for these CPU features and repack setting)."""
    return facts.weights_bytes(quant), extra_buffers(facts, quant, RuntimeSettings(repack=repack), cpu_features)
