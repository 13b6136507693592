import json

import pytest


def test_catalog_json(cli):
    code, out, err = cli("catalog", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert len(data) >= 24 and all(v["weights_bytes_estimate"] > 0 for m in data for v in m["variants"])


def test_devices_table_and_local_json(cli):
    code, out, _ = cli("devices")
    assert code == 0 and "raspberry-pi-5-8gb" in out and "iphone-15-pro" in out
    code, out, _ = cli("devices", "--local", "--format", "json")
    assert code == 0 and json.loads(out)["id"] == "local"


def test_fit_json_contract_shape(cli):
    code, out, err = cli("fit", "llama-3.2-1b", "--device", "pixel-8", "--quant", "Q4_K_M", "--ctx", "2048", "--format", "json")
    assert code == 0, err
    (r,) = json.loads(out)
    assert (r["model"], r["quant"], r["device"], r["ctx"]) == ("llama-3.2-1b", "Q4_K_M", "pixel-8", 2048)
    assert r["verdict"] in ("fits", "tight", "does-not-fit")
    for k in ("weights_bytes", "kv_cache_bytes", "compute_bytes", "overhead_bytes", "total_bytes", "budget_bytes"):
        assert isinstance(r["memory"][k], int)
    for k in ("prefill_tokens_per_s", "decode_tokens_per_s", "decode_tokens_per_s_low", "decode_tokens_per_s_high", "ttft_s"):
        assert isinstance(r["speed"][k], float)
    assert set(r["energy"]) >= {"joules_per_token", "wh_per_query", "method"}


def test_fit_gguf_path_table(cli, smollm2):
    code, out, _ = cli("fit", str(smollm2), "--device", "raspberry-pi-5-8gb")
    assert code == 0 and "Q4_1" in out and "fits" in out


def test_plan_table_and_json(cli):
    code, out, _ = cli("plan", "--device", "iphone-15-pro", "--top", "5")
    assert code == 0 and "Recommendation:" in out and "0.34 Wh" in out
    code, out, _ = cli("plan", "--device", "iphone-15-pro", "--format", "json")
    data = json.loads(out)
    assert len(data) > 80 and {d["verdict"] for d in data} >= {"fits", "does-not-fit"}


def test_inspect(cli, gemma3):
    code, out, _ = cli("inspect", str(gemma3), "--format", "json")
    info = json.loads(out)
    assert code == 0 and info["architecture"] == "gemma3" and info["sliding_window"] == 512
    assert info["metadata"]["tokenizer.ggml.tokens"] == "[STRING x 262144]"


@pytest.mark.parametrize("args, message", [
    (["fit", "nosuchmodel", "--device", "pixel-8"], "Error: unknown model 'nosuchmodel'. Run 'slmplan catalog' to list the ids, or pass a .gguf path.\n"),
    (["fit", "llama-9", "--device", "pixel-8"], "Error: unknown model 'llama-9'. Did you mean: llama-3.2-1b, llama-3.2-3b"),
    (["fit", "llama-3.2-1b", "--device", "pixel-99"], "Error: unknown device 'pixel-99'."),
    (["fit", "llama-3.2-1b", "--device", "pixel-8", "--quant", "Q9_K"], "Error: model 'llama-3.2-1b' has no quant 'Q9_K'."),
    (["fit", "llama-3.2-1b", "--device", "pixel-8", "--ctx", "0"], "Error: --ctx must be a positive number of tokens, got 0. Use e.g. --ctx 4096.\n"),
    (["plan", "--device", "pixel-8", "--ctx", "-5"], "Error: --ctx must be a positive number of tokens, got -5."),
    (["fit", "llama-3.2-1b", "--device", "pixel-8", "--ctx", "abc"], "Error: Invalid value for '--ctx'"),
    (["fit", "llama-3.2-1b", "--device", "pixel-8", "--bogus"], "Error: No such option: --bogus. Run 'slmplan fit --help' for usage.\n"),
    (["inspect", "/no/such/model.gguf"], "Error: /no/such/model.gguf: no such file."),
    (["plan", "--device", "pixel-8", "--catalog", "/no/such/catalog.yaml"], "Error: catalog file /no/such/catalog.yaml does not exist."),
])
def test_bad_input_one_line_exit_2(cli, args, message):
    code, out, err = cli(*args)
    assert code == 2
    assert out == ""
    assert err.startswith(message)
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_files_via_cli(cli, tmp_path, smollm2):
    trunc = tmp_path / "cut.gguf"
    trunc.write_bytes(smollm2.read_bytes()[:1_000_000])
    code, _, err = cli("inspect", str(trunc))
    assert code == 2 and "truncated" in err and err.count("\n") == 1
    notgguf = tmp_path / "notes.gguf"
    notgguf.write_text("not a model")
    code, _, err = cli("fit", str(notgguf), "--device", "pixel-8")
    assert code == 2 and "is not a GGUF file" in err
    badyaml = tmp_path / "dev.yaml"
    badyaml.write_text("id: x\nname: x\nkind: phone\nram_gb: 4\nmemory_budget_gb: 6\nmemory_bandwidth_gbs: 10\ncpu_cores: 4\n")
    code, _, err = cli("plan", "--device", str(badyaml))
    assert code == 2 and "above ram_gb" in err
