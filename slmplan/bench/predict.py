"""What the planner predicts for exactly what a benchmark measured (same model, settings, device).

Every bench result carries these next to the measurement, with the ratio measured / predicted. The
prediction uses the local device profile (``slmplan devices --local``) and the constants the
planner would use for it: the profile's calibration when ``bench --calibrate`` has written one for this
thread count (``--device local`` is the detected profile with it), else the shipped speed model. Compute
throughput is scaled to the threads the benchmark used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from slmplan.estimate.memory import (
    RuntimeSettings,
    compute_bytes,
    extra_buffers,
    kv_cache_bytes,
    output_bytes,
)
from slmplan.estimate.speed import (
    Hardware,
    decode_time_s,
    load_constants,
    prefill_tokens_per_s,
)
from slmplan.estimate.speed_constants import ClassConstants, SpeedConstants
from slmplan.model import ModelFacts
from slmplan.schema.device import DeviceProfile


@dataclass(frozen=True)
class Predictor:
    facts: ModelFacts
    quant: str
    hw: Hardware
    constants: SpeedConstants
    label: str  # 'shipped' | 'local calibration' | 'device calibration'
    calibrated: DeviceProfile | None = None  # predictions go through this profile's calibration block

    @property
    def k(self) -> ClassConstants:
        return self.constants.for_backend(self.hw.backend)[1]

    def tokens_per_s(self, n_prompt: int, n_gen: int, n_depth: int) -> float | None:
        """llama-bench semantics: a test times n_prompt prompt tokens then n_gen generated ones."""
        if self.calibrated is not None:
            from slmplan.device_calibration import predict_test

            return predict_test(self.facts, self.quant, self.calibrated, n_prompt, n_gen, n_depth)
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
        if self.calibrated is not None:
            pp, tg = self.tokens_per_s(n_prompt, 0, 0), self.tokens_per_s(0, 1, n_prompt)
            return n_prompt / pp + 1 / tg if pp and tg else None
        pp = prefill_tokens_per_s(self.facts, self.quant, self.hw, n_prompt, self.k)
        if not pp:
            return None
        t_tok, _ = decode_time_s(self.facts, self.quant, self.hw, n_prompt, self.k)
        return n_prompt / pp + t_tok


def make_predictor(facts: ModelFacts, quant: str, device: DeviceProfile, threads: int,
                   constants: SpeedConstants | None = None, label: str | None = None,
                   repack: bool = True) -> Predictor:
    """The planner's prediction for a benchmark with ``threads`` on ``device``: through the device's calibration
    when it has one that measured this thread count (and no ``constants`` are forced), else the speed model.
    ``repack`` False: the run had llama.cpp's repacked CPU weights off (``--repack 0``, or slmplan's fallback
    after a crash in them), so the speed model leaves out the repacked prompt kernels. A device calibration
    corrects what its rows measured, with their repack setting (``DeviceCalibration.repack``), so ``repack``
    does not change a calibrated prediction."""
    from slmplan.planner import hardware

    hw = replace(hardware(device), threads=threads, repack=repack)
    cores = device.threads or device.cpu_cores
    if hw.cpu_gflops and cores and threads < cores:
        hw = replace(hw, cpu_gflops=hw.cpu_gflops * threads / cores)
    cal = device.calibration
    if constants is None and cal is not None and cal.threads in (None, threads):
        return Predictor(facts, quant, hw, load_constants(), label or (
            "local calibration" if device.id == "local" else "device calibration"), calibrated=device)
    return Predictor(facts, quant, hw, constants or load_constants(), label or "shipped")


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
