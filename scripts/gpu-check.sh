#!/usr/bin/env bash
# GPU check of folio's CUDA kernels: correctness against CPU references and
# timings (see kernels/examples/gpu_check.rs). Runs a prebuilt binary (built
# where Rust is, with `cargo build --release -p folio-kernels --example
# gpu_check`, copied to .gpu/gpu_check) or builds it when cargo is present.
# Writes the log and gpu_check.json to $OUT (default: ./gpu-check-out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
exec > >(tee "$OUT/log") 2>&1

echo "== environment"
uname -m
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | head -3

# NVRTC: the dynamic loader must find libnvrtc.so.13 by name (cudarc dlopens
# libnvrtc.so, libnvrtc.so.13, ...). Look in the loader cache, the CUDA
# toolkit and Python's nvidia-cuda-nvrtc wheel.
nvrtc_dir=""
if ! ldconfig -p | grep -q 'libnvrtc\.so'; then
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
        $(python3 -c 'import nvidia, os; [print(os.path.join(p, "cu13", "lib")) for p in nvidia.__path__]' 2>/dev/null) \
        $(ls -d /usr/local/cuda-*/lib64 /opt/*/.venv/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null); do
        if ls "$d"/libnvrtc.so* >/dev/null 2>&1; then nvrtc_dir="$d"; break; fi
    done
    [ -n "$nvrtc_dir" ] && export LD_LIBRARY_PATH="$nvrtc_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
echo "libnvrtc: $( (ldconfig -p | grep -m1 'libnvrtc\.so') || ls "$nvrtc_dir"/libnvrtc.so* 2>/dev/null | head -1 || echo 'not found')"

bin=.gpu/gpu_check
if [ ! -x "$bin" ]; then
    cargo build --release -p folio-kernels --example gpu_check && bin=target/release/examples/gpu_check
fi
echo "== gpu_check ($bin)"
timeout 330 "$bin"
rc=$?
echo "gpu_check exit status: $rc"
exit $rc
