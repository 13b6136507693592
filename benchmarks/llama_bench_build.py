"""Build llama.cpp's own `llama-bench` from the llama-cpp-python sdist of the installed version.

Nothing built is committed: the sdist is fetched with pip (from PyPI, or pip's cache) and the build
lives in slmplan's cache directory. The binary is run with LD_LIBRARY_PATH pointing at the installed
llama-cpp-python's own shared libraries, so llama-bench and `slmplan bench` execute the *same*
compiled kernels (same source version, same flags, same .so files); `ldd` proves it in the output.

    python benchmarks/llama_bench_build.py        # prints the path of llama-bench
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from slmplan.localdevice import cache_dir  # noqa: E402


def installed_lib_dir() -> Path:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        raise SystemExit("llama-cpp-python is not installed: pip install -e '.[llama]'")
    return Path(spec.origin).parent / "lib"


def ensure_llama_bench(log=print) -> Path:
    version = importlib.metadata.version("llama_cpp_python")
    root = cache_dir() / "llama-bench" / version
    exe = root / "build" / "bin" / "llama-bench"
    if exe.exists():
        return exe
    root.mkdir(parents=True, exist_ok=True)
    sdist = root / f"llama_cpp_python-{version}.tar.gz"
    if not sdist.exists():
        log(f"downloading the llama-cpp-python {version} sdist (pip)...")
        subprocess.run([sys.executable, "-m", "pip", "download", f"llama-cpp-python=={version}",
                        "--no-deps", "--no-binary", ":all:", "-d", str(root)], check=True)
    src = root / f"llama_cpp_python-{version}"
    if not src.exists():
        with tarfile.open(sdist) as tf:
            tf.extractall(root, filter="data")
    llama_src = src / "vendor" / "llama.cpp"
    build = root / "build"
    # The flags llama-cpp-python's CMakeLists uses on Linux x86-64: shared libs, native CPU, OpenMP.
    log("configuring llama.cpp (cmake)...")
    subprocess.run(["cmake", "-S", str(llama_src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                    "-DBUILD_SHARED_LIBS=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
                    "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF", "-DGGML_NATIVE=ON"],
                   check=True, stdout=subprocess.DEVNULL)
    log("building llama-bench (several minutes on 2 cores)...")
    subprocess.run(["cmake", "--build", str(build), "--target", "llama-bench", "-j", str(os.cpu_count() or 2)],
                   check=True, stdout=subprocess.DEVNULL)
    if not exe.exists():
        raise SystemExit(f"build finished but {exe} is missing")
    return exe


def bench_env() -> dict:
    """Environment that makes llama-bench load llama-cpp-python's shared libraries."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = str(installed_lib_dir()) + os.pathsep + env.get("LD_LIBRARY_PATH", "")
    return env


def linked_libs(exe: Path) -> list[str]:
    out = subprocess.run(["ldd", str(exe)], env=bench_env(), capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if "libllama" in line or "libggml" in line]


if __name__ == "__main__":
    exe = ensure_llama_bench()
    print(exe)
    for line in linked_libs(exe):
        print("  ", line)
