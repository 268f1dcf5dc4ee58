//! Time of one attention layer of Qwen2.5-0.5B's shape (14 query heads, 2 KV
//! heads, head_dim 64) for the dense, flash and sparse kernels: prefill of
//! `L` tokens (`q_len = kv_len = L`) and one decode row after 32K tokens.
//! GFLOP/s counts `4 · head_dim` per causal (query, head, key) triple, also
//! for sparse (so its figure is "dense-equivalent"). Best of several runs.
//!
//! `cargo run --release -p folio-kernels --example attention_speed -- [THREADS]`

use std::time::Instant;

use folio_kernels::attention::{
    dense, flash, sparse, AttentionShape, AttentionStats, KeySummaries, SparseConfig,
};

const HEADS: usize = 14;
const KV_HEADS: usize = 2;
const D: usize = 64;

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let cfg = SparseConfig::default();
    println!("threads {threads}, {HEADS}/{KV_HEADS} heads, d {D}, sparse {cfg:?}");
    let only = std::env::args().nth(2);
    pool.install(|| {
        for len in [2048, 4096, 8192, 16384] {
            run(len, len, &cfg, only.as_deref());
        }
        // One prefill chunk of 512 rows late in a long prompt.
        for len in [8192, 32768] {
            run(512, len, &cfg, only.as_deref());
        }
        run(1, 32768, &cfg, only.as_deref());
    });
}

/// Times every kernel on one shape.
fn run(q_len: usize, kv_len: usize, cfg: &SparseConfig, only: Option<&str>) {
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    let shape = AttentionShape {
        n_heads: HEADS,
        n_kv_heads: KV_HEADS,
        head_dim: D,
        q_len,
        kv_len,
        q_start: kv_len - q_len,
    };
    let q = fill(q_len * HEADS * D, 0.37);
    let k = fill(kv_len * KV_HEADS * D, 0.11);
    let v = fill(kv_len * KV_HEADS * D, 0.23);
    let mut out = vec![0f32; q.len()];
    let scale = 1.0 / (D as f32).sqrt();
    let mut sums = KeySummaries::new(cfg.block, KV_HEADS, D);
    sums.update(&k, kv_len);
    let mode = match q_len {
        1 => "decode",
        _ if q_len < kv_len => "chunk",
        _ => "prefill",
    };
    let reps = if q_len == 1 { 20 } else { 3 };
    // Dense holds q_len · kv_len floats (1 GiB at 16K): prefill up to 8K.
    if wanted("dense") && (q_len < kv_len || kv_len <= 8192) {
        let t = best(reps, || dense(&q, &k, &v, &mut out, shape, scale));
        report("dense", mode, kv_len, t);
    }
    if wanted("flash") {
        let t = best(reps, || flash(&q, &k, &v, &mut out, shape, scale));
        report("flash", mode, kv_len, t);
    }
    if wanted("sparse") {
        let t = best(reps, || {
            sparse(&q, &k, &v, &mut out, shape, scale, cfg, &sums)
        });
        report("sparse", mode, kv_len, t);
    }
}

/// Deterministic, non-constant inputs in [-1, 1].
fn fill(n: usize, step: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * step).sin()).collect()
}

/// Best wall time of `reps` runs, with the stats of the last.
fn best(reps: usize, mut f: impl FnMut() -> AttentionStats) -> (f64, AttentionStats) {
    let mut stats = f();
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let start = Instant::now();
        stats = f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    (best, stats)
}

fn report(kernel: &str, mode: &str, kv_len: usize, (secs, stats): (f64, AttentionStats)) {
    let gflop = stats.causal_pairs as f64 * 4.0 * D as f64 / 1e9;
    println!(
        "{kernel:>6} {mode:>7} L={kv_len:>6}: {:>9.2} ms {:>7.1} GFLOP/s  attended {:.3}",
        secs * 1e3,
        gflop / secs,
        stats.attended_fraction()
    );
}
