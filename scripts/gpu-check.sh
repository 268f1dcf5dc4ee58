#!/usr/bin/env bash
# GPU checks of folio, run on a machine with an NVIDIA GPU:
#   kernels: folio_kernels::cuda against CPU references, and kernel timings
#            (kernels/examples/gpu_check.rs);
#   model:   the GPU forward pass (folio_engine::gpu) against the CPU session
#            on a GGUF, and prefill/decode speed (engine/examples/gpu_model_check.rs).
# Usage: scripts/gpu-check.sh [all|kernels|model] (default all).
# Runs prebuilt binaries (built where Rust is, with
#   cargo build --release -p folio-kernels --example gpu_check
#   cargo build --release -p folio-engine --example gpu_model_check
# copied to .gpu/), or builds them when cargo is present. The model check
# reads $FOLIO_GPU_MODEL (default .gpu/smollm2-8l.gguf, made by
#   gpu_model_check truncate $FOLIO_HOME/models/SmolLM2-135M-Instruct.Q4_1.gguf .gpu/smollm2-8l.gguf 8 q4_1).
# Writes the log, gpu_check.json and gpu_model_check.json to $OUT
# (default: ./gpu-check-out).
set -uo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
OUT="${OUT:-$PWD/gpu-check-out}"
export OUT
mkdir -p "$OUT"
exec > >(tee "$OUT/log") 2>&1

echo "== environment"
uname -m
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | head -3

# NVRTC and cuBLAS: the dynamic loader must find libnvrtc.so.13 and
# libcublas.so.13 by name (cudarc dlopens libnvrtc.so, libnvrtc.so.13, ...).
# Look in the loader cache, the CUDA toolkit and Python's nvidia-* wheels.
find_lib() {
    local lib="$1" d
    ldconfig -p | grep -q "$lib\.so" && return 0
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
        $(python3 -c 'import nvidia, os; [print(os.path.join(p, "cu13", "lib")) for p in nvidia.__path__]' 2>/dev/null) \
        $(ls -d /usr/local/cuda-*/lib64 /opt/*/.venv/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null); do
        if ls "$d/$lib".so* >/dev/null 2>&1; then
            case ":${LD_LIBRARY_PATH:-}:" in
                *":$d:"*) ;;
                *) export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
            esac
            return 0
        fi
    done
    return 1
}
for lib in libnvrtc libcublas; do
    if find_lib "$lib"; then
        echo "$lib: $( (ldconfig -p | grep -m1 "$lib\.so" | sed 's/.*=> //') || true) ${LD_LIBRARY_PATH:-}"
    else
        echo "$lib: not found"
    fi
done

prebuilt() { # prebuilt BIN PACKAGE EXAMPLE -> path of the binary to run
    if [ -x ".gpu/$1" ]; then
        echo ".gpu/$1"
    elif cargo build --release -p "$2" --example "$3" >&2; then
        echo "target/release/examples/$3"
    fi
}

rc=0
if [ "$what" = all ] || [ "$what" = kernels ]; then
    bin=$(prebuilt gpu_check folio-kernels gpu_check)
    echo "== gpu_check ($bin)"
    timeout 330 "$bin"
    r=$?
    echo "gpu_check exit status: $r"
    [ $r -ne 0 ] && rc=$r
fi
if [ "$what" = all ] || [ "$what" = model ]; then
    bin=$(prebuilt gpu_model_check folio-engine gpu_model_check)
    model="${FOLIO_GPU_MODEL:-.gpu/smollm2-8l.gguf}"
    echo "== gpu_model_check ($bin, $model)"
    timeout 300 "$bin" "$model"
    r=$?
    echo "gpu_model_check exit status: $r"
    [ $r -ne 0 ] && rc=$r
fi
exit $rc
