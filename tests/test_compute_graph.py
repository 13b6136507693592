"""The compute-buffer model: the ggml-alloc port on hand-made graphs, and the rebuilt llama.cpp graphs
against the graphs llama.cpp itself runs (every node's op, type, shape and offset in the buffer)."""

from __future__ import annotations

import pytest
from graphrec import record_graph
from synthgguf import write
from test_architectures import CASES, SHAPES

from slmplan.estimate import ggml_sim as g
from slmplan.estimate import llama_graph as lg
from slmplan.estimate.memory import RuntimeSettings, compute_bytes, compute_bytes_formula
from slmplan.gguf import read_gguf
from slmplan.model import facts_from_gguf

KIB = 1024


def _graph(*outputs):
    gr = g.Graph()
    for t in outputs:
        gr.expand(t)
    return gr


def test_dyn_allocator_best_fit_and_merging():
    """ggml_dyn_tallocr: best fit among the free blocks before the last, else the end; neighbours merge."""
    a = g._DynAllocator()
    offs = [a.alloc(n) for n in (100, 300, 200, 50)]
    assert offs == [0, 128, 448, 672] and a.max_size == 736  # 32-byte aligned
    a.free_bytes(128, 300)  # a 320-byte hole
    a.free_bytes(672, 50)  # merges into the endless last block
    assert a.alloc(64) == 128  # the hole fits: reused, not the end
    a.free_bytes(0, 100)  # holes of 128 bytes at 0 and 256 at 192
    assert a.alloc(96) == 0  # the smaller hole that fits
    assert a.alloc(400) == 672  # fits no hole: placed at the end, the buffer grows
    assert a.max_size == 672 + 416


def _x_w():
    return g.set_input(g.new_tensor("f32", 256, 64)), g.weight(256, 256)  # 64 KiB activations


def test_inplace_reuse():
    """An element-wise op overwrites its input when it is the input's last consumer."""
    x, w = _x_w()
    y = g.mul_mat(w, x)
    out = g.add(g.unary(y), x)  # unary over y, add over that: x and y only
    assert g.allocate(_graph(out)) == 2 * 64 * KIB


def test_no_inplace_over_a_tensor_still_needed_or_an_output():
    x, w = _x_w()
    y = g.mul_mat(w, x)
    out = g.add(g.add(g.unary(y), y), x)  # y is read again after the unary: x, y and the unary's result
    assert g.allocate(_graph(out)) == 3 * 64 * KIB
    x, w = _x_w()
    y = g.set_output(g.mul_mat(w, x))  # outputs are never overwritten nor freed
    out = g.add(g.unary(y), x)
    assert g.allocate(_graph(out)) == 3 * 64 * KIB


def test_views_keep_their_source_alive():
    """A tensor read through views is freed only after the last view's consumer ran."""
    w = g.weight(256, 512)
    x = g.set_input(g.new_tensor("f32", 256, 64))  # 64 KiB, freed once y is computed
    y = g.mul_mat(w, x)  # [512, 64]: 128 KiB
    first = g.cont(g.view_2d(y, 256, 64, y.nb[1], 0))  # into x's place
    second = g.cont(g.view_2d(y, 256, 64, y.nb[1], 256 * 4))  # y still alive: after it
    out = g.add(first, second)
    assert g.allocate(_graph(out)) == (64 + 128 + 64) * KIB
    assert (first.a_offset, y.a_offset, second.a_offset) == (0, 64 * KIB, 192 * KIB)


def test_graph_order_is_ggml_visit_order():
    """Sources left to right, depth first; an expanded node is not visited twice."""
    w = g.weight(8, 8)
    x = g.set_input(g.new_tensor("f32", 8, 4))
    a, b = g.mul_mat(w, x), g.unary(x)
    c = g.add(a, b)
    gr = _graph(b, c)
    assert gr.nodes == [b, a, c] and gr.leafs == [x, w]


def test_formula_fallback_for_architectures_without_a_graph():
    from slmplan.catalog import facts, get_model, load_catalog

    cat = load_catalog()
    qwen2 = facts(get_model(cat, "qwen2.5-1.5b"))
    assert not lg.supported(qwen2, 1, "f16", "f16")
    assert compute_bytes(qwen2, 4096) == compute_bytes_formula(qwen2, 4096)
    qwen3 = facts(get_model(cat, "qwen3-4b"))
    assert lg.supported(qwen3, 1, "f16", "f16")
    # several sequences (one stream each) are not rebuilt, nor a quantized V cache without flash attention
    # (which llama.cpp refuses): the formula answers
    assert compute_bytes(qwen3, 4096, RuntimeSettings(n_seq=4)) == compute_bytes_formula(qwen3, 4096, RuntimeSettings(n_seq=4))
    q8 = RuntimeSettings(type_k="q8_0", type_v="q8_0")
    assert compute_bytes(qwen3, 4096, q8) == compute_bytes_formula(qwen3, 4096, q8)
    assert lg.supported(qwen3, 1, "q8_0", "q8_0", flash_attn=True)


@pytest.mark.parametrize("model_id", ["gemma-3n-e2b", "gemma-3-1b", "qwen3.5-0.8b", "granite-4.0-h-1b", "lfm2-350m"])
def test_logits_dominate_real_vocabularies(model_id):
    """For a catalog entry's real vocabulary the prompt graph's f32 logits (n_ubatch x n_vocab) set the buffer
    (at 1024 cells: at long contexts without flash attention the f32 attention scores can be larger)."""
    from slmplan.catalog import facts, get_model, load_catalog

    f = facts(get_model(load_catalog(), model_id))
    logits = 4 * 512 * f.n_vocab
    assert logits <= compute_bytes(f, 1024) < 1.05 * logits


def _rebuilt(f, flash_attn):
    gr = lg.build_graph(f, lg.tensor_names(f), lg.Batch(512, 512, 512, 512, flash_attn))
    size = g.allocate(gr)
    return gr, size


def _compare(path, facts, flash_attn):
    rec = record_graph(path, 512, flash_attn)
    gr, size = _rebuilt(facts, flash_attn)
    ours = [(t.op, t.type, list(t.ne), t.view_src is not None) for t in gr.nodes]
    theirs = [(n["op"], n["type"], n["ne"], n["view"]) for n in rec["nodes"]]
    first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    assert ours == theirs, f"first difference at node {first}: {theirs[first:first + 3]} vs {ours[first:first + 3]}"
    offsets = [(t.a_offset if not (t.external or t.view_src is not None) else None) for t in gr.nodes]
    assert offsets == [n["offset"] for n in rec["nodes"]]
    assert size == pytest.approx(rec["buffers"]["CPU compute"], abs=0.005 * 2**20 + 1)


@pytest.mark.runtime
@pytest.mark.parametrize("case", [*CASES, *(f"shape:{k}" for k in ("llama", "qwen3", "smollm3", "granitehybrid-moe"))])
def test_rebuilt_graph_is_llamacpp_graph(tmp_path, case):
    """The graph llama.cpp runs for a full ubatch, recorded node by node, equals the rebuilt one: same ops in
    the same order with the same types and shapes, and every tensor at the offset ggml-alloc gave it."""
    pytest.importorskip("llama_cpp")
    f, kv = SHAPES[case.removeprefix("shape:")] if case.startswith("shape:") else CASES[case]
    path = write(tmp_path / "m.gguf", f, kv)
    facts = facts_from_gguf(read_gguf(path))
    for flash_attn in (False, True):
        _compare(path, facts, flash_attn)


@pytest.mark.runtime
@pytest.mark.parametrize("fixture", ["smollm2", "gemma3"])
def test_rebuilt_graph_of_real_models(request, fixture):
    """The same for the two real test models (SmolLM2-135M Q4_1: llama; Gemma 3 270M Q4_K_M: gemma3 with
    its sliding-window layers): quantized weights change no activation."""
    pytest.importorskip("llama_cpp")
    path = request.getfixturevalue(fixture)
    _compare(path, facts_from_gguf(read_gguf(path)), flash_attn=False)
