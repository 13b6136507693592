"""slmplan: does small language model X at quant Q fit device D, how fast, how much energy?

The public API. Heavy runtimes (llama_cpp, onnxruntime, huggingface_hub, matplotlib) are never
imported here; they load inside the functions that need them.
"""

from slmplan.catalog import load_catalog
from slmplan.devices import builtin_devices, get_device
from slmplan.errors import BadInputError, GGUFError, SlmplanError
from slmplan.estimate.memory import RuntimeSettings, estimate_memory
from slmplan.estimate.speed import estimate_speed
from slmplan.gguf import read_gguf
from slmplan.planner import Query, fit, plan, recommend

__version__ = "0.1.0"

__all__ = [
    "BadInputError", "GGUFError", "Query", "RuntimeSettings", "SlmplanError", "builtin_devices",
    "estimate_memory", "estimate_speed", "fit", "get_device", "load_catalog", "plan", "read_gguf",
    "recommend",
]
