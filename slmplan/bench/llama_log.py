"""Reading llama.cpp's own log lines: its buffer report and how it resolved flash attention.

Pure functions (no runtime import), so they are testable without llama-cpp-python.
"""

from __future__ import annotations

import re

LOG_BUFFER = re.compile(r"^\s*(?:\w+:\s+)?(\S+)\s+(model|KV|compute|output|RS) buffer size =\s+([\d.]+) MiB")
# a line the child writes for each llama.cpp log line, so a crash leaves the last one behind
LOG_PREFIX = "llama.cpp| "


def parse_buffers(lines: list[str]) -> dict[str, float]:
    """llama.cpp's own buffer report: {'CPU_Mapped model': bytes, 'CPU KV': bytes, 'AMX model': bytes, ...}."""
    out: dict[str, float] = {}
    for line in lines:
        m = LOG_BUFFER.search(line)
        if m:
            key = f"{m.group(1)} {m.group(2)}"
            out[key] = out.get(key, 0.0) + float(m.group(3)) * 2**20
    return out


def extra_model_buffers(buffers: dict[str, float]) -> dict[str, int]:
    """The CPU extra-buffer-type copies of the weights ('AMX', 'CPU_REPACK', ...) from a buffer report."""
    out: dict[str, int] = {}
    for k, v in buffers.items():
        name, _, kind = k.rpartition(" ")
        if kind == "model" and not name.endswith("_Mapped") and name not in ("CPU", "CPU_Host"):
            out[name] = out.get(name, 0) + int(v)
    return out


def parse_flash_attn(lines: list[str], requested: str) -> str:
    """'on'/'off' as llama.cpp resolved it ('auto' is decided when the graph is reserved)."""
    if requested != "auto":
        return requested
    for line in lines:
        if "Flash Attention enabled" in line:
            return "on"
        if "Flash Attention disabled" in line:
            return "off"
    return "auto (resolution not reported)"


def last_llama_line(stderr_text: str) -> str | None:
    """The last meaningful llama.cpp log line a (crashed) child left on its stderr."""
    for line in reversed(stderr_text.splitlines()):
        if line.startswith(LOG_PREFIX):
            text = line[len(LOG_PREFIX):].strip()
            if text.strip(". ") and not text.startswith("~"):
                return text
    return None
