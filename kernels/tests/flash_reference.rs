//! The flash kernel against the dense reference on random inputs: prefill,
//! chunked prefill after a cache, single-row decode (split-K), GQA and MHA.
//!
//! Tolerance: max |flash − dense| ≤ 1e-5 · max |dense| over the whole output
//! (both accumulate in f32, in different orders, over up to 5000 keys; the
//! outputs are convex combinations of values in [-2, 2]).

use folio_kernels::attention::{dense, flash, AttentionShape};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn random(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect()
}

/// Runs both kernels on one shape (with a few spare cache rows past
/// `kv_len`, which must be ignored) and compares them.
fn check(rng: &mut StdRng, (nh, nkv, d): (usize, usize, usize), q_len: usize, q_start: usize) {
    let kv_len = q_start + q_len;
    let shape = AttentionShape {
        n_heads: nh,
        n_kv_heads: nkv,
        head_dim: d,
        q_len,
        kv_len,
        q_start,
    };
    let spare = 5 * nkv * d;
    let q = random(rng, q_len * nh * d);
    let k = random(rng, kv_len * nkv * d + spare);
    let v = random(rng, kv_len * nkv * d + spare);
    let scale = 1.0 / (d as f32).sqrt();
    let mut want = vec![0f32; q.len()];
    let mut got = vec![f32::NAN; q.len()];
    let ds = dense(&q, &k, &v, &mut want, shape, scale);
    let fs = flash(&q, &k, &v, &mut got, shape, scale);
    assert_eq!(ds, fs, "stats {shape:?}");
    let norm = want.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    let err = got
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= 1e-5 * norm,
        "{shape:?}: max error {err} vs scale {norm}"
    );
}

const SMOL: (usize, usize, usize) = (9, 3, 64);
const QWEN_05B: (usize, usize, usize) = (14, 2, 64);
const QWEN_15B: (usize, usize, usize) = (12, 2, 128);
const MHA: (usize, usize, usize) = (4, 4, 64);

#[test]
fn flash_matches_dense_on_prefill_of_many_lengths() {
    let mut rng = StdRng::seed_from_u64(11);
    for len in [1, 3, 63, 64, 65, 127, 300, 1000, 2100] {
        check(&mut rng, QWEN_05B, len, 0);
    }
    for len in [1, 3, 65, 300, 1000] {
        for heads in [SMOL, QWEN_15B, MHA] {
            check(&mut rng, heads, len, 0);
        }
    }
}

#[test]
fn flash_matches_dense_on_chunks_after_a_cache() {
    let mut rng = StdRng::seed_from_u64(12);
    for heads in [SMOL, QWEN_05B, QWEN_15B, MHA] {
        check(&mut rng, heads, 300, 1000);
        check(&mut rng, heads, 64, 2037);
        // A few rows after a long cache: few tiles, so keys are split.
        check(&mut rng, heads, 3, 3000);
    }
}

#[test]
fn flash_matches_dense_on_single_row_decode() {
    let mut rng = StdRng::seed_from_u64(13);
    for heads in [SMOL, QWEN_05B, QWEN_15B, MHA] {
        for q_start in [0, 2, 64, 299, 2099, 5000] {
            check(&mut rng, heads, 1, q_start);
        }
    }
}

#[test]
fn flash_matches_dense_in_wider_and_single_thread_pools() {
    let mut rng = StdRng::seed_from_u64(14);
    for threads in [1, 7] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            check(&mut rng, QWEN_05B, 1, 4100);
            check(&mut rng, SMOL, 40, 700);
        });
    }
}
