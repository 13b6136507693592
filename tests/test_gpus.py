"""The GPU table (slmplan/data/gpus.yaml): names as llama-bench and llmfit write them, variants refused."""

import pytest

from slmplan.gpus import find_gpu, gpu_table


@pytest.mark.parametrize("text, name", [
    ("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4090"),
    ("nvidia-geforce-rtx-2080", "NVIDIA GeForce RTX 2080"),
    ("NVIDIA GeForce GTX 1050 Ti", "NVIDIA GeForce GTX 1050 Ti"),
    ("AMD Radeon RX 7900 XT (RADV NAVI31)", "AMD Radeon RX 7900 XT"),
    ("AMD Radeon RX 7900 XTX", "AMD Radeon RX 7900 XTX"),
    ("NVIDIA GB10", "NVIDIA GB10 (DGX Spark)"),
    ("NVIDIA GeForce RTX 4060 Ti", "NVIDIA GeForce RTX 4060 Ti"),
    ("NVIDIA GeForce RTX 4060", "NVIDIA GeForce RTX 4060"),
])
def test_known_gpus_are_found(text, name):
    assert find_gpu(text).name == name


@pytest.mark.parametrize("text", [
    "NVIDIA GeForce RTX 4090 Laptop GPU",  # another clock and power limit
    "NVIDIA GeForce RTX 4070 Ti",  # more cores than the 4070
    "NVIDIA GeForce RTX 2080 Ti", "NVIDIA GeForce RTX 2080 SUPER", "NVIDIA GeForce RTX 4090 D",
    "NVIDIA GeForce RTX 5070 Ti", "Intel(R) Arc(TM) 140V GPU", "", None,
])
def test_variants_and_unknown_gpus_stay_unknown(text):
    assert find_gpu(text) is None


def test_every_entry_is_complete_and_matches_its_own_name():
    for g in gpu_table():
        assert g.fp32_tflops > 0 and g.memory_bandwidth_gbs > 0 and "spec" in g.source, g.name
        assert find_gpu(g.name) == g, g.name  # no earlier entry shadows it
