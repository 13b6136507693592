"""Reading llama-bench output. The local-* fixtures were written by llama-bench itself (built from the
llama-cpp-python sdist, see tests/data/llama-bench/SOURCES.md); the public-* ones were pasted by people
into GitHub threads. Tests never run llama-bench."""

import csv
import io
import json
from pathlib import Path

import pytest

from slmplan.errors import BadInputError
from slmplan.importers.identify import identify, identify_rows, match_name, quant_from_name, quant_from_type
from slmplan.importers.llama_bench import parse_bench_text, read_bench_file

DATA = Path(__file__).parent / "data" / "llama-bench"
FIELDS = ("n_prompt", "n_gen", "n_depth", "threads", "n_batch", "n_ubatch", "n_gpu_layers", "backends", "flash_attn",
          "type_k", "type_v", "build_commit", "build_number", "model_filename", "model_type", "model_size", "model_n_params")


def _key(r):
    return {f: getattr(r, f) for f in FIELDS}


@pytest.mark.parametrize("model", ["smollm2", "gemma3"])
@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_real_llama_bench_files(model, fmt):
    f = read_bench_file(DATA / f"local-{model}.{fmt}")
    assert f.format == fmt and not f.skipped
    assert [(r.kind, r.test) for r in f.rows] == [("pp", "pp64"), ("tg", "tg16")]
    for r in f.rows:
        assert (r.threads, r.backends, r.build, r.type_k, r.flash_attn, r.n_batch) == (2, "CPU", "0c1e570 (1)", "f16", "auto", 2048)
        assert r.tokens_per_s > 0 and r.tokens_per_s_std is not None and r.cpu_info == "AMD EPYC"
    if fmt != "csv":  # llama-bench's CSV has no per-repetition samples
        assert all(len(r.samples_ts) == 2 and len(r.samples_ns) == 2 for r in f.rows)
    identify_rows(f.rows)
    want = {"smollm2": ("smollm2-135m", "Q4_1"), "gemma3": ("gemma-3-270m", "Q4_K_M")}[model]
    assert {(r.model_id, r.quant) for r in f.rows} == {want}


@pytest.mark.parametrize("model", ["smollm2", "gemma3"])
def test_real_md_table_identified_from_params(model):
    f = read_bench_file(DATA / f"local-{model}.md")
    assert f.format == "md" and len(f.rows) == 2 and not f.skipped
    assert all(r.model_filename is None and r.build == "0c1e570 (1)" and r.threads == 2 for r in f.rows)
    identify_rows(f.rows)  # no file name in a table: architecture + parameter count single out the model
    assert {r.model_id for r in f.rows} == {"smollm2-135m" if model == "smollm2" else "gemma-3-270m"}


def _as_csv(objs):
    header = list(objs[0])[:-2]  # llama-bench's CSV: every field but the sample lists, all quoted
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(header)
    for o in objs:
        w.writerow([str(o[h]).lower() if isinstance(o[h], bool) else o[h] for h in header])
    return "\n".join([",".join(header)] + buf.getvalue().splitlines()[1:]) + "\n"


def _as_md(objs, build=True):
    def size(b):
        return f"{b / 2**20:.2f} MiB" if b < 2**30 else f"{b / 2**30:.2f} GiB"

    lines = ["| model | size | params | backend | threads | test | t/s |", "| --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    for o in objs:
        test = f"pp{o['n_prompt']}" if o["n_gen"] == 0 else f"tg{o['n_gen']}"
        lines.append(f"| {o['model_type']} | {size(o['model_size'])} | {o['model_n_params'] / 1e6:.2f} M | {o['backends']} | "
                     f"{o['n_threads']} | {test} | {o['avg_ts']:.2f} ± {o['stddev_ts']:.2f} |")
    if build:
        lines += ["", f"build: {objs[0]['build_commit']} ({objs[0]['build_number']})"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("model", ["smollm2", "gemma3"])
def test_every_format_round_trips(model):
    """The same measurements written as json, jsonl, csv and md (with and without the build line) read back
    the same, to the precision each format keeps."""
    text = (DATA / f"local-{model}.json").read_text()
    objs = json.loads(text)
    ref = parse_bench_text(text, "x.json").rows
    jsonl = parse_bench_text("\n".join(json.dumps(o) for o in objs), "x.jsonl")
    csv_ = parse_bench_text(_as_csv(objs), "x.csv")
    assert (jsonl.format, csv_.format) == ("jsonl", "csv")
    for got in (jsonl.rows, csv_.rows):
        assert [_key(r) for r in got] == [_key(r) for r in ref]
        assert [r.tokens_per_s for r in got] == pytest.approx([r.tokens_per_s for r in ref], rel=1e-6)
    for build in (True, False):
        md = parse_bench_text(_as_md(objs, build), "x.md")
        assert md.format == "md"
        assert [(r.n_prompt, r.n_gen, r.threads, r.backends) for r in md.rows] == [(r.n_prompt, r.n_gen, r.threads, r.backends) for r in ref]
        assert [r.tokens_per_s for r in md.rows] == pytest.approx([r.tokens_per_s for r in ref], abs=0.006)
        assert all(r.build == ("0c1e570 (1)" if build else None) for r in md.rows)
        identify_rows(md.rows)
        identify_rows(ref)
        assert [(r.model_id, r.quant) for r in md.rows] == [(r.model_id, r.quant) for r in ref]


def test_public_pasted_tables():
    dragon = read_bench_file(DATA / "public-radxa-dragon-q8b-tinyllama.md")
    assert [r.test for r in dragon.rows] == ["pp512", "pp4096", "tg128", "pp4096+tg128"]
    assert dragon.rows[2].tokens_per_s == 38.81 and dragon.rows[2].tokens_per_s_std == 0.40
    assert all(r.build is None and r.threads == 8 for r in dragon.rows)  # pasted without the build line
    assert dragon.rows[3].kind == "pg"
    cix = read_bench_file(DATA / "public-cix-cp8180-tinyllama.md")
    assert {r.build for r in cix.rows} == {"9c699074c (8664)"}  # build line above the table
    vk = read_bench_file(DATA / "public-rx580-vulkan-llama3b.md")
    assert {(r.backends, r.n_gpu_layers, r.build) for r in vk.rows} == {("Vulkan", 99, "e598697d (4696)")}
    old = read_bench_file(DATA / "public-m2-ultra-metal-llama7b-2023.md")  # 2023: "LLaMA 7B mostly Q4_0", "pp 512"
    assert [(r.test, r.quant or quant_from_type(r.model_type)) for r in old.rows][:2] == [("pp512", "Q8_0"), ("pp512", "Q4_0")]
    identify_rows(old.rows)
    assert {r.model_id for r in old.rows} == {"llama-2-7b"}
    for f in (dragon, cix):
        identify_rows(f.rows)
        assert {(r.model_id, r.quant) for r in f.rows} == {("tinyllama-1.1b", "Q4_K_M")}
    sweep = read_bench_file(DATA / "public-apple-m-cpu-llama1b-threads.md")
    assert [r.threads for r in sweep.rows] == [1, 2, 4, 6, 8, 10] and {r.test for r in sweep.rows} == {"tg64"}
    identify_rows(sweep.rows)
    assert {(r.model_id, r.quant) for r in sweep.rows} == {("llama-3.2-1b", "Q4_0")}


@pytest.mark.parametrize("name, want", [
    ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", ("llama-3.2-1b", "Q4_K_M")),
    ("qwen2.5-7b-instruct-q4_k_m.gguf", ("qwen2.5-7b", "Q4_K_M")),
    ("gemma-3-4b-it-Q4_K_M.gguf", ("gemma-3-4b", "Q4_K_M")),
    ("/models/Meta-Llama-3.1-8B-Instruct-Q8_0.gguf", ("llama-3.1-8b", "Q8_0")),
    ("Qwen_Qwen3-0.6B-Q4_K_M.gguf", ("qwen3-0.6b", "Q4_K_M")),
    ("microsoft_Phi-4-mini-instruct-Q4_K_M.gguf", ("phi-4-mini", "Q4_K_M")),
    ("tinyllama-1.1b-1t-openorca.Q4_K_M.gguf", ("tinyllama-1.1b", "Q4_K_M")),
])
def test_identify_from_file_names(name, want):
    assert (match_name(name)[0], quant_from_name(name)) == want


@pytest.mark.parametrize("name", ["Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf", "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf",
                                  "Qwen3.5-4B-Q4_K_M.gguf", "gemma-3-12b-it-Q4_K_M.gguf"])
def test_no_false_matches(name):
    assert match_name(name) == []


def test_quant_from_llama_cpp_descriptions():
    assert [quant_from_type(t) for t in ("llama 1B Q4_K - Medium", "llama 8B Q5_K - Small", "gemma3 4B Q2_K - Medium",
                                         "LLaMA 7B mostly Q8_0", "llama 8B IQ4_XS - 4.25 bpw", "qwen2 1.5B F16")] == \
        ["Q4_K_M", "Q5_K_S", "Q2_K", "Q8_0", "IQ4_XS", "F16"]
    assert quant_from_type("qwen3moe 30B.A3B all F32 (guessed)") is None  # llama.cpp guessed: not used


def _row(text):
    return parse_bench_text(text, "t.md").rows[0]


HEAD = "| model | size | params | backend | threads | test | t/s |\n| --- | --- | --- | --- | --- | --- | --- |\n"


def test_ambiguous_and_unknown_models_ask_for_model_id():
    phi = _row(HEAD + "| phi3 3B Q4_K - Medium | 2.23 GiB | 3.82 B | CPU | 4 | tg128 | 9.50 ± 0.10 |\n")
    with pytest.raises(BadInputError) as e:
        identify(phi)
    assert "several catalog models (phi-3-mini, phi-3.5-mini" in e.value.one_line() and "--model" in e.value.one_line()
    assert identify(phi, model="phi-3.5-mini") == ("phi-3.5-mini", "Q4_K_M")
    unknown = _row(HEAD + "| falcon 7B Q4_0 | 3.92 GiB | 7.22 B | CPU | 4 | tg128 | 5.00 ± 0.01 |\n")
    with pytest.raises(BadInputError) as e:
        identify(unknown)
    msg = e.value.one_line()
    assert msg.startswith("t.md:3: no catalog model matches") and "--model ID (closest:" in msg
    # Qwen3-30B-A3B is in the catalog, but llama.cpp only guessed this file's type: the quant is asked for
    moe = read_bench_file(DATA / "public-pi5-qwen3moe-30b.md").rows[0]
    with pytest.raises(BadInputError) as e:
        identify(moe)
    assert "cannot tell the quant of 'qwen3moe 30B.A3B all F32 (guessed)'" in e.value.one_line()
    assert identify(moe, quant="Q3_K_S") == ("qwen3-30b-a3b", "Q3_K_S")


def test_file_name_contradicted_by_parameter_count():
    text = json.dumps([{**json.loads((DATA / "local-smollm2.json").read_text())[1],
                        "model_filename": "Llama-3.2-1B-Instruct-Q4_1.gguf"}])
    with pytest.raises(BadInputError, match="says llama-3.2-1b but llama.cpp counted 134,515,008"):
        identify(parse_bench_text(text, "t.json").rows[0])


def test_unreadable_rows_are_named_not_guessed():
    text = (HEAD + "| llama 1B Q4_K - Medium | 636.18 MiB | 1.10 B | CPU | 8 | tg128 | 38.81 ± 0.40 |\n"
            "| llama 1B Q4_K - Medium | 636.18 MiB | 1.10 B | CPU | 8 | tg128 | fast |\n"
            "| llama 1B Q4_K - Medium | 636.18 MiB | 1.10 B | CPU | 8 | warmup | 1.0 |\n"
            "| llama 1B Q4_K - Medium | 636.18 MiB | 1.10 B | CPU | tg128 | 1.0 |\n")
    f = parse_bench_text(text, "t.md")
    assert len(f.rows) == 1
    assert f.skipped == ["t.md:4: t/s 'fast' is not like '38.81 ± 0.40'",
                         "t.md:5: test 'warmup' is not like pp512, tg128, pp512+tg128 or tg128 @ d4096",
                         "t.md:6: 6 cells for 7 columns"]


def test_depth_tests():
    f = parse_bench_text(HEAD + "| llama 1B Q4_0 | 727.75 MiB | 1.24 B | CPU | 4 | tg128 @ d4096 | 20.10 ± 0.10 |\n"
                                "| llama 1B Q4_0 | 727.75 MiB | 1.24 B | CPU | 4 | pp512 @ d4096 | 90.00 ± 1.00 |\n", "t.md")
    assert [(r.kind, r.n_prompt, r.n_gen, r.n_depth, r.test) for r in f.rows] == [
        ("tg", 0, 128, 4096, "tg128 @ d4096"), ("pp", 512, 0, 4096, "pp512 @ d4096")]


def test_slmplan_bench_json():
    f = read_bench_file(Path(__file__).parent / "data" / "bench-smollm2-135m.json")
    assert f.format == "slmplan" and {r.kind for r in f.rows} >= {"tg"}
    identify_rows(f.rows)
    assert {(r.model_id, r.quant) for r in f.rows} == {("smollm2-135m", "Q4_1")}


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("   \n\n", "is empty"),
    ('{"name": "x", "version": 3}', "is JSON but not llama-bench output (no n_prompt, n_gen, avg_ts)"),
    ('[{"model": "m", "tokens_per_second": 5}]', "is JSON but not llama-bench output"),
    ("[1, 2]", "is JSON but not llama-bench's -o json"),
    ("model_filename,n_prompt,avg_ts\nx.gguf,0,5\n", "is CSV but lacks llama-bench's column(s) n_gen"),
    ("just some words\n", "is not llama-bench output"),
    ("| model | test | t/s |\n| --- | --- | --- |\n", "has no readable llama-bench row"),
])
def test_bad_files(tmp_path, cli, content, message):
    p = tmp_path / "bad.txt"
    p.write_text(content)
    code, out, err = cli("calibrate", "--device", "pixel-8", str(p), "-o", str(tmp_path / "new.yaml"))
    assert code == 2 and out == ""
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "new.yaml").exists()


def test_table_with_unknown_model_exits_2(tmp_path, cli):
    table = tmp_path / "falcon.md"
    table.write_text(HEAD + "| falcon 7B Q4_0 | 3.92 GiB | 7.22 B | CPU | 4 | tg128 | 5.00 ± 0.01 |\n")
    code, _, err = cli("calibrate", "--device", "raspberry-pi-5-8gb", str(table), "-o", str(tmp_path / "pi.yaml"))
    assert code == 2 and err.startswith("Error: ") and "no catalog model matches" in err and err.count("\n") == 1
    assert not (tmp_path / "pi.yaml").exists()
