//! Exact attention with Gemma 2's two changes to the softmax's inputs:
//! logits soft-capped (`cap · tanh(s / cap)`) and, in sliding-window
//! layers, each query seeing only its last `window` keys (itself included).
//!
//! One query row and head at a time, its scores in a buffer of the keys it
//! sees: memory linear in length, like [`flash`](super::flash), and simple
//! enough to be its own reference (the tests hold it to an f64 one).

use rayon::prelude::*;

use super::{AttentionShape, AttentionStats};

/// What a layer changes about its softmax's inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capping {
    /// Logits become `cap · tanh(logit / cap)`.
    pub softcap: Option<f32>,
    /// Keys each query sees, itself included (`None`: all before it).
    pub window: Option<usize>,
}

impl Capping {
    /// The first key position query position `pos` sees.
    pub fn first_key(&self, pos: usize) -> usize {
        self.window.map_or(0, |w| (pos + 1).saturating_sub(w))
    }
}

/// Causal grouped-query attention (layouts of the [module](super)) with
/// `capping` applied to the scaled logits.
pub fn capped(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    shape: AttentionShape,
    scale: f32,
    capping: Capping,
) -> AttentionStats {
    shape.validate(q, k, v, out);
    let (d, row) = (shape.head_dim, shape.n_heads * shape.head_dim);
    let kv_row = shape.n_kv_heads * d;
    let attended = std::sync::atomic::AtomicU64::new(0);
    out.par_chunks_mut(row)
        .zip(q.par_chunks(row))
        .enumerate()
        .for_each(|(i, (out_row, q_row))| {
            let pos = shape.q_start + i;
            let first = capping.first_key(pos);
            let mut scores = vec![0f32; pos + 1 - first];
            for head in 0..shape.n_heads {
                let qh = &q_row[head * d..(head + 1) * d];
                let off = (head / shape.group()) * d;
                let mut max = f32::NEG_INFINITY;
                for (s, key) in scores.iter_mut().zip(first..=pos) {
                    let kh = &k[key * kv_row + off..key * kv_row + off + d];
                    let mut logit = qh.iter().zip(kh).map(|(a, b)| a * b).sum::<f32>() * scale;
                    if let Some(cap) = capping.softcap {
                        logit = cap * (logit / cap).tanh();
                    }
                    *s = logit;
                    max = max.max(logit);
                }
                let mut total = 0f32;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    total += *s;
                }
                let oh = &mut out_row[head * d..(head + 1) * d];
                oh.fill(0.0);
                for (s, key) in scores.iter().zip(first..=pos) {
                    let vh = &v[key * kv_row + off..key * kv_row + off + d];
                    let w = s / total;
                    oh.iter_mut().zip(vh).for_each(|(o, x)| *o += w * x);
                }
            }
            attended.fetch_add(
                (scores.len() * shape.n_heads) as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        });
    AttentionStats {
        causal_pairs: super::causal_pairs(&shape),
        attended_pairs: attended.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    /// The definition in f64, one (query, head) at a time.
    fn reference(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        shape: AttentionShape,
        scale: f32,
        capping: Capping,
    ) -> Vec<f64> {
        let d = shape.head_dim;
        let mut out = vec![0f64; q.len()];
        for i in 0..shape.q_len {
            let pos = shape.q_start + i;
            for h in 0..shape.n_heads {
                let kvh = h / shape.group();
                let qh = &q[(i * shape.n_heads + h) * d..][..d];
                let keys: Vec<usize> = (capping.first_key(pos)..=pos).collect();
                let logits: Vec<f64> = keys
                    .iter()
                    .map(|&j| {
                        let kh = &k[(j * shape.n_kv_heads + kvh) * d..][..d];
                        let s = qh
                            .iter()
                            .zip(kh)
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum::<f64>()
                            * scale as f64;
                        match capping.softcap {
                            Some(c) => c as f64 * (s / c as f64).tanh(),
                            None => s,
                        }
                    })
                    .collect();
                let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = logits.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                for (w, &j) in weights.iter().zip(&keys) {
                    let vh = &v[(j * shape.n_kv_heads + kvh) * d..][..d];
                    for (o, x) in out[(i * shape.n_heads + h) * d..][..d].iter_mut().zip(vh) {
                        *o += w / total * *x as f64;
                    }
                }
            }
        }
        out
    }

    /// Random inputs, a chunk starting mid-cache, windows narrower and
    /// wider than the cache, caps that bind (logits reach ~±20) and none:
    /// within 1e-5 of the f64 definition.
    #[test]
    fn capped_attention_matches_its_f64_definition() {
        let shape = AttentionShape {
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 16,
            q_len: 9,
            kv_len: 40,
            q_start: 31,
        };
        let q = noise(shape.q_len * 4 * 16, 1);
        let k = noise(shape.kv_len * 2 * 16, 2);
        let v = noise(shape.kv_len * 2 * 16, 3);
        for capping in [
            Capping::default(),
            Capping {
                softcap: Some(5.0),
                window: None,
            },
            Capping {
                softcap: None,
                window: Some(7),
            },
            Capping {
                softcap: Some(3.0),
                window: Some(1),
            },
            Capping {
                softcap: Some(50.0),
                window: Some(100),
            },
        ] {
            let mut out = vec![0f32; q.len()];
            let stats = capped(&q, &k, &v, &mut out, shape, 0.5, capping);
            let want = reference(&q, &k, &v, shape, 0.5, capping);
            let worst = out
                .iter()
                .zip(&want)
                .map(|(a, b)| (*a as f64 - b).abs())
                .fold(0f64, f64::max);
            assert!(worst < 1e-5, "{capping:?}: off by {worst}");
            let expected: u64 = (0..shape.q_len)
                .map(|i| (shape.q_start + i + 1 - capping.first_key(shape.q_start + i)) as u64 * 4)
                .sum();
            assert_eq!(stats.attended_pairs, expected, "{capping:?}");
        }
    }

    /// Without caps it is exact attention: the dense kernel's output.
    #[test]
    fn uncapped_equals_the_dense_kernel() {
        let shape = AttentionShape {
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 32,
            q_len: 12,
            kv_len: 12,
            q_start: 0,
        };
        let q = noise(12 * 64, 4);
        let k = noise(12 * 32, 5);
        let v = noise(12 * 32, 6);
        let (mut a, mut b) = (vec![0f32; q.len()], vec![0f32; q.len()]);
        capped(&q, &k, &v, &mut a, shape, 0.3, Capping::default());
        super::super::dense(&q, &k, &v, &mut b, shape, 0.3);
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "off by {worst}");
    }
}
