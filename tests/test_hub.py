"""Hub support end to end: the real huggingface_hub client against a stand-in Hub on loopback
(tests/hubserver.py) that serves the real test GGUF files with HTTP Range support.

Each command runs in a fresh subprocess so huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE,
HF_HUB_OFFLINE and HF_TOKEN from the environment exactly as it does for a user.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub", reason="needs the 'hub' extra")

sys.path.insert(0, str(Path(__file__).parent))
from hubserver import HubServer, HubState, Repo  # noqa: E402

SMOL = "SmolLM2-135M-Instruct-Q4_1.gguf"
GEMMA = "gemma-3-270m-it-Q4_K_M.gguf"


def make_state(smollm2, gemma3) -> HubState:
    st = HubState()
    st.repos["bartowski/SmolLM2-135M-Instruct-GGUF"] = Repo({SMOL: smollm2}, gguf={"total": 134515008, "architecture": "llama", "context_length": 8192})
    readme = Path(__file__).parent / "data" / "README.md"
    st.repos["unsloth/gemma-3-270m-it-GGUF"] = Repo({GEMMA: gemma3, "README.md": readme},
                                                    gguf={"total": 268098176, "architecture": "gemma3", "context_length": 32768})
    st.repos["google/gated-GGUF"] = Repo({SMOL: smollm2}, gated=True)
    st.repos["someone/private-GGUF"] = Repo({SMOL: smollm2}, private=True)
    return st


@pytest.fixture
def hub(smollm2, gemma3, tmp_path):
    st = make_state(smollm2, gemma3)
    with HubServer(st) as srv:
        yield srv


def slm(srv_url, tmp_path, *args, offline=False, token=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=srv_url, HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1",
               SLMPLAN_CACHE_DIR=str(tmp_path / "slm"), HF_HUB_ETAG_TIMEOUT="2", HF_HUB_DOWNLOAD_TIMEOUT="5")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    if token:
        env["HF_TOKEN"] = token
    r = subprocess.run([sys.executable, "-m", "slmplan.cli.main", *args], capture_output=True, text=True, env=env, timeout=180)
    return r.returncode, r.stdout, r.stderr


def test_inspect_reads_only_the_header_then_works_from_cache(hub, tmp_path, gemma3):
    spec = f"hf://unsloth/gemma-3-270m-it-GGUF/{GEMMA}"
    code, out, err = slm(hub.url, tmp_path, "inspect", spec, "--format", "json")
    assert code == 0, err
    info = json.loads(out)
    assert info["file_type"] == "Q4_K_M" and info["vocab"] == 262144 and info["file_size"] == gemma3.stat().st_size
    served = hub.state.bytes_served[GEMMA]
    # the header of a 262k-vocabulary model is ~6.5 MB; the file is ~250 MB: only the header went over the wire
    assert info["data_offset"] <= served < info["data_offset"] + 4 * (1 << 20) and served < 0.05 * info["file_size"]
    # the same answer with the Hub gone (cached header), and with HF_HUB_OFFLINE set
    hub.stop()
    code2, out2, err2 = slm(hub.url, tmp_path, "inspect", spec, "--format", "json")
    assert code2 == 0, err2
    assert json.loads(out2)["types"] == info["types"]
    code3, out3, _ = slm(hub.url, tmp_path, "inspect", spec, "--format", "json", offline=True)
    assert code3 == 0 and json.loads(out3)["tensor_count"] == info["tensor_count"]
    assert hub.state.bytes_served[GEMMA] == served


def test_fit_remote_equals_fit_local(hub, tmp_path, smollm2):
    code, out, err = slm(hub.url, tmp_path, "fit", f"hf://bartowski/SmolLM2-135M-Instruct-GGUF/{SMOL}",
                         "--device", "pixel-8", "--format", "json")
    assert code == 0, err
    (remote,) = json.loads(out)
    code, out, err = slm(hub.url, tmp_path, "fit", str(smollm2), "--device", "pixel-8", "--format", "json")
    (local,) = json.loads(out)
    assert remote["memory"] == local["memory"] and remote["verdict"] == local["verdict"] == "fits"
    assert hub.state.bytes_served[SMOL] < 0.05 * smollm2.stat().st_size


def test_hub_list_with_verdicts(hub, tmp_path, gemma3):
    code, out, err = slm(hub.url, tmp_path, "hub", "list", "unsloth/gemma-3-270m-it-GGUF", "--device",
                         "raspberry-pi-5-8gb", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["gguf"]["architecture"] == "gemma3"
    (row,) = d["files"]  # README.md is not a GGUF file
    assert row["file"] == GEMMA and row["quant"] == "Q4_K_M" and row["size_bytes"] == gemma3.stat().st_size
    assert row["verdict"] == "fits" and row["weights"].startswith("exact")
    code, out, _ = slm(hub.url, tmp_path, "hub", "list", "unsloth/gemma-3-270m-it-GGUF")
    assert code == 0 and GEMMA in out and "Q4_K_M" in out


def test_pull_downloads_into_the_hf_cache_and_resumes(hub, tmp_path, smollm2):
    code, out, err = slm(hub.url, tmp_path, "pull", "smollm2-135m", "--quant", "Q4_1")
    assert code == 0, err
    path = Path(out.strip())
    assert path.read_bytes() == smollm2.read_bytes() and str(tmp_path / "hf") in str(path)
    first = hub.state.bytes_served[SMOL]
    code, out2, err = slm(hub.url, tmp_path, "pull", "smollm2-135m", "--quant", "Q4_1")
    assert code == 0 and out2 == out and hub.state.bytes_served[SMOL] == first  # cached: nothing downloaded again
    code, out3, _ = slm(hub.url, tmp_path, "pull", "smollm2-135m", "--quant", "Q4_1", offline=True)
    assert code == 0 and out3 == out
    # what 'bench ID --quant Q' looks up for a catalog model that is not bundled: the standard HF cache
    r = subprocess.run([sys.executable, "-c", "from slmplan.hub import cached_gguf as f; "
                        "print(f('bartowski/SmolLM2-135M-Instruct-GGUF', 'Q4_1'))"],
                       capture_output=True, text=True, env={**os.environ, "HF_HOME": str(tmp_path / "hf")})
    assert Path(r.stdout.strip()).resolve() == path.resolve()
    code, _, err = slm(hub.url, tmp_path, "pull", "smollm2-135m", "--quant", "Q2_K")
    assert code == 2 and "no Q2_K GGUF file" in err and "Q4_1" in err


@pytest.mark.parametrize("args, code_, needle", [
    (("inspect", f"hf://google/gated-GGUF/{SMOL}"), 2, "gated"),
    (("inspect", f"hf://someone/private-GGUF/{SMOL}"), 2, "not found, or it is private"),
    (("inspect", f"hf://nobody/nothing-GGUF/{SMOL}"), 2, "not found"),
    (("inspect", "hf://bartowski/SmolLM2-135M-Instruct-GGUF/missing.gguf"), 2, "no such file"),
    (("inspect", "hf://bartowski/onlytwo"), 2, "is not a Hub file path"),
    (("hub", "list", "not-a-repo-id"), 2, "is not a repository id"),
])
def test_errors_are_one_line_and_never_show_the_token(hub, tmp_path, args, code_, needle):
    code, out, err = slm(hub.url, tmp_path, *args, token="hf_secret_do_not_print")
    assert code == code_ and err.startswith("Error: ") and needle in err and err.count("\n") == 1, err
    assert "hf_secret_do_not_print" not in err + out and "Traceback" not in err


def test_private_repo_with_the_right_token(hub, tmp_path):
    code, out, err = slm(hub.url, tmp_path, "inspect", f"hf://someone/private-GGUF/{SMOL}", "--format", "json",
                         token="hf_test_token")
    assert code == 0, err
    assert json.loads(out)["file_type"] == "Q4_1"


def test_network_down_and_offline_without_cache(hub, tmp_path):
    hub.stop()
    code, _, err = slm(hub.url, tmp_path, "inspect", f"hf://bartowski/SmolLM2-135M-Instruct-GGUF/{SMOL}")
    assert code == 1 and "could not reach the Hugging Face Hub" in err and "Traceback" not in err
    code, _, err = slm(hub.url, tmp_path, "inspect", f"hf://bartowski/SmolLM2-135M-Instruct-GGUF/{SMOL}", offline=True)
    assert code == 2 and "not available offline" in err
