import pytest

from slmplan.devices import builtin_devices, get_device, load_device_file
from slmplan.errors import DeviceError, UnknownIdError


def test_builtin_profiles_cover_kinds_with_sources():
    devs = builtin_devices()
    assert len(devs) >= 15
    assert {"phone", "tablet", "laptop", "desktop", "sbc"} <= {d.kind for d in devs}
    for d in devs:
        assert d.memory_budget_gb <= d.ram_gb
        for field in ("memory_budget_gb", "memory_bandwidth_gbs"):
            assert field in d.sources, (d.id, field)
        for field in ("npu_tops", "gpu_tflops", "power_w", "cpu_gflops"):
            if getattr(d, field) is not None:
                assert field in d.sources, (d.id, field)
    assert any(d.memory_budget_gb == 2.0 for d in devs if d.kind == "phone")


def test_local_detection():
    d = get_device("local")
    assert d.id == "local" and d.ram_gb > 0 and 0 < d.memory_budget_gb <= d.ram_gb
    assert d.memory_bandwidth_gbs == 20  # from SLMPLAN_BANDWIDTH_GBS (conftest), not measured
    assert d.cpu_cores >= 1


def test_bandwidth_measurement_is_real():
    from slmplan.localdevice import measure_bandwidth_gbs

    gbs = measure_bandwidth_gbs(32 << 20, repeats=2)
    assert 0.5 < gbs < 2000


GOOD = """id: my-phone
name: My phone
kind: phone
ram_gb: 8
memory_budget_gb: 3.5
memory_bandwidth_gbs: 68.3
cpu_cores: 9
npu_tops: 12
gpu_tflops: 2.0
power_w: 6
"""


@pytest.mark.parametrize("text, message", [
    (GOOD, None),
    (GOOD.replace("memory_budget_gb: 3.5", "memory_budget_gb: 9"), "above ram_gb"),
    (GOOD + "ram_size: 8\n", "ram_size: unknown key"),
    (GOOD.replace("ram_gb: 8", "ram_gb: -8"), "ram_gb: Input should be greater than 0"),
    (GOOD.replace("kind: phone", "kind: toaster"), "kind: Input should be"),
    (GOOD.replace("cpu_cores: 9", "cpu_cores: many"), "cpu_cores"),
    ("id: [unclosed\n", "malformed YAML"),
    ("just a string\n", "expected a mapping"),
])
def test_device_yaml_validation(tmp_path, text, message):
    p = tmp_path / "dev.yaml"
    p.write_text(text)
    if message is None:
        d = get_device(str(p))
        assert d.id == "my-phone" and d.budget_bytes == int(3.5 * 2**30)
    else:
        with pytest.raises(DeviceError, match=message):
            load_device_file(p)


def test_unknown_device():
    with pytest.raises(UnknownIdError, match="unknown device 'pixel-99'"):
        get_device("pixel-99")
    with pytest.raises(DeviceError, match="does not exist"):
        get_device("/no/such/profile.yaml")
