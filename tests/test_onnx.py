"""GGUF -> ONNX Runtime GenAI conversion and the ONNX runtime benchmark, on the real SmolLM2-135M."""

import importlib.util
import json

import numpy as np
import pytest

MISSING = [m for m in ("torch", "transformers", "accelerate", "onnx", "onnx_ir", "onnxruntime_genai")
           if importlib.util.find_spec(m) is None]
needs_convert = pytest.mark.skipif(bool(MISSING), reason=f"needs the 'convert' extra (missing: {', '.join(MISSING)})")
MIB = 1 << 20


@pytest.fixture(scope="module")
def onnx_dir(smollm2, tmp_path_factory):
    if MISSING:
        pytest.skip(f"needs the 'convert' extra (missing: {', '.join(MISSING)})")
    from slmplan.convert import convert

    steps = []
    out = convert(str(smollm2), str(tmp_path_factory.mktemp("conv") / "smollm2-onnx"), "int4", on_step=steps.append)
    assert [s[:3] for s in steps] == ["1/2", "2/2"]
    return out


@needs_convert
def test_conversion_writes_a_genai_folder(onnx_dir, smollm2):
    names = {p.name for p in onnx_dir.iterdir()}
    assert {"genai_config.json", "model.onnx", "model.onnx.data", "tokenizer.json", "slmplan_convert.json"} <= names
    cfg = json.loads((onnx_dir / "genai_config.json").read_text())["model"]
    assert cfg["type"] == "llama" and cfg["vocab_size"] == 49152 and cfg["decoder"]["num_hidden_layers"] == 30
    meta = json.loads((onnx_dir / "slmplan_convert.json").read_text())
    assert meta["precision"] == "int4" and meta["source"] == str(smollm2.resolve())
    # INT4 MatMulNBits (block 32): 4.5 bits per weight of the 134.5M parameters, plus f32 norms and rotary caches
    size = (onnx_dir / "model.onnx.data").stat().st_size
    assert 0.80 * 134.5e6 * 4.5 / 8 < size < 1.2 * 134.5e6 * 4.5 / 8 + 4 * MIB
    assert not [p for p in onnx_dir.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


@needs_convert
def test_converted_model_generates_like_the_gguf(onnx_dir):
    import onnxruntime_genai as og

    m = og.Model(str(onnx_dir))
    tok = og.Tokenizer(m)
    s = tok.apply_chat_template(json.dumps([{"role": "user", "content": "What is the capital of France?"}]),
                                add_generation_prompt=True)
    ids = tok.encode(s)
    p = og.GeneratorParams(m)
    p.set_search_options(max_length=len(ids) + 12, do_sample=False)
    g = og.Generator(m, p)
    g.append_tokens(ids)
    out = []
    while not g.is_done():
        g.generate_next_token()
        out.append(int(g.get_next_tokens()[0]))
    assert "Paris" in tok.decode(np.array(out, dtype=np.int32))


@needs_convert
def test_bench_onnx_runtime(cli, onnx_dir):
    code, out, err = cli("bench", str(onnx_dir), "--runtime", "onnx", "--threads", "1", "--pp", "32", "--tg", "4",
                         "--reps", "2", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["runtime"] == "onnx" and d["threads"] == 1 and [r["test"] for r in d["results"]] == ["pp32", "tg4"]
    for r in d["results"]:
        n = r["n_prompt"] + r["n_gen"]
        assert len(r["samples"]) == 2 and r["samples"] == pytest.approx([n / (x / 1e9) for x in r["samples_ns"]], rel=1e-3)
        assert r["predicted_tokens_per_s"] is None
    assert d["ttft"]["prompt_tokens"] > 50 and d["memory"]["peak_rss_bytes"] > d["model_size_bytes"] > 80 * MIB
    assert any("describes llama.cpp" in w for w in d["warnings"])


@pytest.mark.parametrize("args, needle", [
    (("bench", "/nonexistent-dir", "--runtime", "onnx"), "no such folder"),
    (("bench", "tests", "--runtime", "onnx"), "not an ONNX Runtime GenAI model folder"),
    (("convert", "/nonexistent.gguf", "--to", "onnx", "-o", "/tmp/x"), "no such file"),
    (("convert", "README.md", "--to", "onnx", "-o", "/tmp/x"), "not a GGUF file"),
    (("convert", "x.gguf", "--to", "tflite", "-o", "/tmp/x"), "--to tflite is not supported"),
])
def test_bad_input(cli, args, needle):
    code, out, err = cli(*args)
    assert code == 2 and err.startswith("Error: ") and needle in err and err.count("\n") == 1, err


def test_gguf_given_to_the_onnx_runtime_and_unsupported_arch(cli, smollm2, tmp_path):
    code, _, err = cli("bench", str(smollm2), "--runtime", "onnx")
    assert code == 2 and "slmplan convert" in err
    import gguf

    w = gguf.GGUFWriter(str(tmp_path / "bert.gguf"), "bert")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    code, _, err = cli("convert", str(tmp_path / "bert.gguf"), "--to", "onnx", "-o", str(tmp_path / "o"))
    assert code == 2 and "architecture 'bert' is not supported" in err


def test_gemma_conversion_is_refused_with_the_reason(cli, gemma3, tmp_path):
    code, _, err = cli("convert", str(gemma3), "--to", "onnx", "-o", str(tmp_path / "g"))
    assert code == 2 and "converting 'gemma3' to ONNX is not supported" in err and "--runtime llama.cpp" in err
    assert not (tmp_path / "g").exists()


@needs_convert
def test_existing_output_folder_is_not_overwritten(cli, smollm2, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = cli("convert", str(smollm2), "--to", "onnx", "-o", str(out))
    assert code == 2 and "already exists" in err and (out / "keep.txt").read_text() == "mine"
