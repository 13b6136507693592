"""`slmplan convert`: a GGUF model to an ONNX Runtime GenAI folder."""

import time
from typing import Annotated, Optional

import typer

from slmplan.cli._options import output_option
from slmplan.cli.output import err_status, out
from slmplan.errors import BadInputError


def convert_cmd(
    model: Annotated[str, typer.Argument(help="A .gguf file (architectures: llama; mistral, qwen2, qwen3, phi3 untested).")],
    to: Annotated[str, typer.Option("--to", help="Target format: onnx (ONNX Runtime GenAI).")] = "onnx",
    precision: Annotated[str, typer.Option("--precision", "-p", help="int4 (MatMulNBits, block 32), fp16 or fp32.")] = "int4",
    output: Annotated[Optional[str], output_option("Output folder (created; must not exist or be empty).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output folder.")] = False,
) -> None:
    """Convert a GGUF model to an ONNX Runtime GenAI model folder, offline (needs the 'convert' extra:
    torch CPU, transformers, onnx).

    The GGUF is dequantized with transformers, then onnxruntime-genai's model builder writes the ONNX
    model, genai_config.json and tokenizer. A quantized GGUF converted to int4 is quantized twice.

    Example: slmplan convert SmolLM2-135M-Instruct.Q4_1.gguf --to onnx --precision int4 -o smollm2-onnx
    """
    from slmplan.convert import convert

    if to.lower() != "onnx":
        raise BadInputError(f"--to {to} is not supported", "Use --to onnx")
    if not output:
        raise BadInputError("-o/--output is required", "Use e.g. -o model-onnx")
    t0 = time.time()
    with err_status("converting") as status:
        dest = convert(model, output, precision, force=force, on_step=lambda m: status(m))
    size = sum(f.stat().st_size for f in dest.iterdir() if f.is_file())
    out.print(f"Wrote {dest} ({size / 2**20:,.1f} MiB, {time.time() - t0:.0f} s). Benchmark it with: "
              f"slmplan bench {dest} --runtime onnx", markup=False, highlight=False)
