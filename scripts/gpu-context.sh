#!/usr/bin/env bash
# RoPE scaling sweep (perplexity + passkey, `folio bench context`) on a GPU
# machine that cannot reach PyPI and takes at most 64 MiB per call: the
# SmolLM2 GGUF (98 MB) travels in two halves over two calls.
#   stage: carry .gpuctx1/ (folio.xz = the xz'd release binary, model.part1);
#          unpacks them into /tmp/folio-gpu.
#   run:   carry .gpuctx2/ (model.part2, PaulGrahamEssays.json); joins and
#          checks the model, then runs the sweep into $OUT.
# Prepare here with:
#   cargo build --release && mkdir -p .gpuctx1 .gpuctx2
#   xz -T2 -6 -c target/release/folio > .gpuctx1/folio.xz
#   split -b 50000000 $FOLIO_HOME/models/SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smol.
#   mv /tmp/smol.aa .gpuctx1/model.part1; mv /tmp/smol.ab .gpuctx2/model.part2
#   cp $FOLIO_HOME/data/PaulGrahamEssays.json .gpuctx2/
set -uo pipefail
cd "$(dirname "$0")/.."
home=/tmp/folio-gpu
OUT="${OUT:-$PWD/gpu-context-out}"
mkdir -p "$OUT" "$home/models" "$home/data"
case "${1:-}" in
stage)
    cp .gpuctx1/model.part1 "$home/" && xz -dc .gpuctx1/folio.xz > "$home/folio" &&
        chmod +x "$home/folio" && echo "staged: $(ls -la $home)"
    ;;
run)
    [ -e "$home/model.part1" ] || { echo "model.part1 missing: the machine was recycled, stage again"; exit 3; }
    cat "$home/model.part1" .gpuctx2/model.part2 > "$home/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  $home/models/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c - || exit 4
    cp .gpuctx2/PaulGrahamEssays.json "$home/data/"
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
        [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    done
    nvidia-smi --query-gpu=name,driver_version --format=csv | tail -1
    export FOLIO_HOME="$home"
    for depth in 0.5 0.2 0.8; do
        timeout 110 "$home/folio" bench context --device cuda --model smollm2-135m \
            --lengths 8192,16384,32768 --ropes none,pi,ntk,yarn,dynamic --factor 4 \
            --depth "$depth" --out "$OUT/context.jsonl" 2>&1 | tee -a "$OUT/log"
    done
    ;;
*)
    echo "usage: $0 stage|run"; exit 2 ;;
esac
