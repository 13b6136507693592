"""slmplan.ggufconst copies the constants slmplan needs from the gguf package (importing gguf pulls in
numpy); these tests keep the copy equal to the installed package."""

import gguf

from slmplan import ggufconst as c


def _members(enum):
    return {m.name: m.value for m in enum}


def test_enums_equal_the_gguf_package():
    assert _members(c.GGMLQuantizationType) == _members(gguf.GGMLQuantizationType)
    assert _members(c.GGUFValueType) == _members(gguf.GGUFValueType)
    assert _members(c.LlamaFileType) == _members(gguf.LlamaFileType)


def test_quant_sizes_equal_the_gguf_package():
    ours = {t.name: v for t, v in c.GGML_QUANT_SIZES.items()}
    theirs = {t.name: tuple(v) for t, v in gguf.GGML_QUANT_SIZES.items()}
    assert ours == theirs


def test_keys_equal_the_gguf_package():
    checked = 0
    for group in ("General", "Tokenizer", "LLM", "Attention", "Rope", "SSM"):
        ours, theirs = getattr(c.Keys, group), getattr(gguf.Keys, group)
        for name in (k for k in vars(ours) if k.isupper()):
            assert getattr(ours, name) == getattr(theirs, name), f"Keys.{group}.{name}"
            checked += 1
    assert checked > 100
