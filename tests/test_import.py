import subprocess
import sys


def test_import_slmplan_stays_light():
    code = ("import sys, slmplan, slmplan.cli.main, slmplan.planner, slmplan.inspect\n"
            "heavy = [m for m in ('llama_cpp', 'onnxruntime', 'onnxruntime_genai', 'huggingface_hub', "
            "'matplotlib', 'torch') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import slmplan pulled in heavy modules: {out.stdout}"
