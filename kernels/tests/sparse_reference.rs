//! The sparse kernel against the dense reference on random inputs.
//!
//! Tolerances: when sparse attends to everything, max |sparse − dense| ≤
//! 1e-5 · max |dense| (f32 accumulation in different orders, as for flash);
//! with a planted needle whose logit exceeds every other by ≥ 20, the dropped
//! probability mass is below 4000 · e^-20 ≈ 1e-5, so ≤ 1e-4 · max |dense|.

use folio_kernels::attention::{
    dense, sparse, sparse_recall, AttentionShape, KeySummaries, SparseConfig,
};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn random(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect()
}

fn shape(nh: usize, nkv: usize, d: usize, q_len: usize, q_start: usize) -> AttentionShape {
    AttentionShape {
        n_heads: nh,
        n_kv_heads: nkv,
        head_dim: d,
        q_len,
        kv_len: q_start + q_len,
        q_start,
    }
}

fn summaries(k: &[f32], s: &AttentionShape, block: usize) -> KeySummaries {
    let mut sums = KeySummaries::new(block, s.n_kv_heads, s.head_dim);
    sums.update(k, s.kv_len);
    sums
}

/// max |a − b| / max |b|.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let norm = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / norm
}

#[test]
fn sparse_covering_everything_is_dense() {
    let mut rng = StdRng::seed_from_u64(21);
    for s in [
        shape(14, 2, 64, 300, 0),
        shape(9, 3, 64, 65, 1000),
        shape(12, 2, 128, 1, 2100),
        shape(4, 4, 64, 127, 0),
    ] {
        let q = random(&mut rng, s.q_len * s.n_heads * s.head_dim);
        let k = random(&mut rng, s.kv_len * s.n_kv_heads * s.head_dim);
        let v = random(&mut rng, s.kv_len * s.n_kv_heads * s.head_dim);
        let scale = 1.0 / (s.head_dim as f32).sqrt();
        for cfg in [
            SparseConfig {
                top_k: s.kv_len,
                ..SparseConfig::default()
            },
            // Sinks and window alone cover everything, odd block size.
            SparseConfig {
                top_k: 0,
                block: 48,
                sinks: s.kv_len / 2,
                window: s.kv_len / 2 + 1,
            },
        ] {
            let sums = summaries(&k, &s, cfg.block);
            let mut want = vec![0f32; q.len()];
            let mut got = vec![f32::NAN; q.len()];
            let ds = dense(&q, &k, &v, &mut want, s, scale);
            let ss = sparse(&q, &k, &v, &mut got, s, scale, &cfg, &sums);
            assert_eq!(ds, ss, "{s:?} {cfg:?}");
            assert!(rel_err(&got, &want) <= 1e-5, "{s:?} {cfg:?}");
            let recall = sparse_recall(&q, &k, s, scale, &cfg, &sums);
            assert!((recall - 1.0).abs() < 1e-12, "recall {recall}");
        }
    }
}

/// Keys a row at causal length `n` attends to, from the selection rule alone:
/// sink blocks, window blocks, `ceil(top_k / block)` blocks in between; all
/// blocks full except the row's last (always in the window).
fn expected_keys(n: usize, cfg: &SparseConfig) -> u64 {
    let b = cfg.block;
    let blocks = n.div_ceil(b);
    let sinks = cfg.sinks.div_ceil(b).min(blocks);
    let window_start = ((n - cfg.window.min(n)) / b).max(sinks);
    let middle = (window_start - sinks).min(cfg.top_k.div_ceil(b));
    let chosen = sinks + middle + (blocks - window_start);
    ((chosen - 1) * b + (n - (blocks - 1) * b)) as u64
}

#[test]
fn small_top_k_attends_the_counted_fraction() {
    let mut rng = StdRng::seed_from_u64(22);
    let cfg = SparseConfig {
        top_k: 100,
        block: 32,
        sinks: 40,
        window: 70,
    };
    for s in [shape(14, 2, 64, 1000, 0), shape(9, 3, 64, 7, 3000)] {
        let q = random(&mut rng, s.q_len * s.n_heads * s.head_dim);
        let k = random(&mut rng, s.kv_len * s.n_kv_heads * s.head_dim);
        let v = random(&mut rng, s.kv_len * s.n_kv_heads * s.head_dim);
        let sums = summaries(&k, &s, cfg.block);
        let scale = 1.0 / (s.head_dim as f32).sqrt();
        let mut out = vec![f32::NAN; q.len()];
        let stats = sparse(&q, &k, &v, &mut out, s, scale, &cfg, &sums);
        let want: u64 = (0..s.q_len)
            .map(|i| expected_keys(s.q_start + i + 1, &cfg))
            .sum::<u64>()
            * s.n_heads as u64;
        assert_eq!(stats.attended_pairs, want, "{s:?}");
        assert!(stats.attended_fraction() < 1.0);
        assert!(out.iter().all(|x| x.is_finite()));
        let recall = sparse_recall(&q, &k, s, scale, &cfg, &sums);
        assert!(recall > 0.0 && recall <= 1.0, "recall {recall}");
    }
}

#[test]
fn a_planted_needle_is_found() {
    let mut rng = StdRng::seed_from_u64(23);
    let (needle, block) = (1500, 64);
    // Decode after a long cache, and a short chunk.
    for s in [shape(14, 2, 64, 1, 3999), shape(9, 3, 64, 4, 3996)] {
        let d = s.head_dim;
        let group = s.group();
        let mut q = random(&mut rng, s.q_len * s.n_heads * d);
        let mut k = random(&mut rng, s.kv_len * s.n_kv_heads * d);
        let v = random(&mut rng, s.kv_len * s.n_kv_heads * d);
        let scale = 1.0 / (d as f32).sqrt();
        // KV head 0's query heads share a random direction `sum` (plus
        // noise), as heads of one group tend to; the needle key points
        // along it, long enough that every head's needle logit is ≥ 25.
        let sum = random(&mut rng, d);
        for i in 0..s.q_len {
            for g in 0..group {
                for c in 0..d {
                    q[(i * s.n_heads + g) * d + c] = sum[c] + 0.5 * rng.random_range(-2.0f32..2.0);
                }
            }
        }
        let min_dot = (0..s.q_len * group)
            .map(|r| {
                let (i, g) = (r / group, r % group);
                let qh = &q[(i * s.n_heads + g) * d..][..d];
                qh.iter().zip(&sum).map(|(a, b)| a * b).sum::<f32>() * scale
            })
            .fold(f32::INFINITY, f32::min);
        assert!(min_dot > 0.0, "seed gives a usable needle direction");
        let alpha = 25.0 / min_dot;
        for c in 0..d {
            k[needle * s.n_kv_heads * d + c] = alpha * sum[c];
        }
        // One indexed block besides one sink block and a 256-key window.
        let cfg = SparseConfig {
            top_k: block,
            block,
            sinks: 64,
            window: 256,
        };
        let sums = summaries(&k, &s, block);
        let mut want = vec![0f32; q.len()];
        let mut got = vec![f32::NAN; q.len()];
        dense(&q, &k, &v, &mut want, s, scale);
        let stats = sparse(&q, &k, &v, &mut got, s, scale, &cfg, &sums);
        assert!(stats.attended_fraction() < 0.15, "{stats:?}");
        // KV head 0's heads: dominated by the needle, found by the indexer.
        for i in 0..s.q_len {
            let at = i * s.n_heads * d;
            let (g, w) = (&got[at..at + group * d], &want[at..at + group * d]);
            assert!(rel_err(g, w) <= 1e-4, "{s:?} row {i}: {}", rel_err(g, w));
        }
        let recall = sparse_recall(&q, &k, s, scale, &cfg, &sums);
        assert!(recall > 0.0 && recall < 1.0, "recall {recall}");
    }
}

#[test]
fn incremental_summaries_equal_one_pass() {
    let mut rng = StdRng::seed_from_u64(24);
    let (nkv, d, len) = (2, 64, 1000);
    let k = random(&mut rng, len * nkv * d);
    for block in [1, 16, 64, 100] {
        let mut whole = KeySummaries::new(block, nkv, d);
        whole.update(&k, len);
        let mut steps = KeySummaries::new(block, nkv, d);
        let mut at = 0;
        while at < len {
            at = (at + rng.random_range(1..40)).min(len);
            steps.update(&k, at);
        }
        assert_eq!(steps, whole, "block {block}");
        assert_eq!(whole.bytes(), 2 * len.div_ceil(block) * nkv * d * 4);
        // Truncating and regrowing also agrees.
        steps.update(&k, 333);
        steps.update(&k, len);
        assert_eq!(steps, whole, "block {block} after truncation");
    }
}
