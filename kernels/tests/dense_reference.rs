//! The dense kernel against a float64 textbook implementation on random inputs.

use folio_kernels::attention::{dense, AttentionShape};
use folio_kernels::reference::{self, widen};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn random(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect()
}

#[test]
fn dense_matches_textbook_attention_with_gqa_and_offsets() {
    let mut rng = StdRng::seed_from_u64(7);
    // (n_heads, n_kv_heads, head_dim, q_len, q_start): prefill, chunked prefill, decode.
    for (nh, nkv, d, q_len, q_start) in [
        (9, 3, 64, 37, 0),
        (14, 2, 64, 16, 21),
        (4, 4, 32, 1, 99),
        (6, 1, 128, 5, 3),
    ] {
        let kv_len = q_start + q_len;
        let shape = AttentionShape {
            n_heads: nh,
            n_kv_heads: nkv,
            head_dim: d,
            q_len,
            kv_len,
            q_start,
        };
        let q = random(&mut rng, q_len * nh * d);
        let k = random(&mut rng, kv_len * nkv * d);
        let v = random(&mut rng, kv_len * nkv * d);
        let scale = 1.0 / (d as f32).sqrt();
        let mut out = vec![0f32; q.len()];
        let stats = dense(&q, &k, &v, &mut out, shape, scale);
        let (qf, kf, vf) = (widen(&q), widen(&k), widen(&v));
        let want = reference::attention(&shape, scale as f64, &qf, &kf, &vf, &|_, _, _| true);
        // f32 accumulation over ≤ 100 keys: 1e-5 relative to the output's scale.
        let norm = want.iter().map(|x| x.abs()).fold(0.0, f64::max).max(1e-6);
        let err = out
            .iter()
            .zip(&want)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(
            err / norm < 1e-5,
            "shape {shape:?}: max error {err} vs scale {norm}"
        );
        assert_eq!(stats.attended_fraction(), 1.0);
        assert!(stats.causal_pairs > 0);
    }
}
