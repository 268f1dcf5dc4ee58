//! Plain float64 references of the kernels, shared by the tests and the
//! GPU check (`examples/gpu_check.rs`), so each fast path is held to one
//! textbook definition.

use crate::attention::AttentionShape;

/// Causal GQA attention in f64 with the CPU kernels' layouts (`q`/output
/// `[q_len, n_heads, head_dim]`, `k`/`v` `[kv_len, n_kv_heads, head_dim]`;
/// query row `i` attends keys `0 ..= q_start + i`), restricted by
/// `allow(row, kv_head, key)` (sparse selections; `|_, _, _| true` for
/// dense): `softmax(scale · q·kᵀ)·v` per head.
pub fn attention(
    s: &AttentionShape,
    scale: f64,
    q: &[f64],
    k: &[f64],
    v: &[f64],
    allow: &dyn Fn(usize, usize, usize) -> bool,
) -> Vec<f64> {
    let d = s.head_dim;
    let group = s.n_heads / s.n_kv_heads;
    let mut out = vec![0f64; s.q_len * s.n_heads * d];
    let mut w = vec![0f64; s.kv_len];
    for i in 0..s.q_len {
        let last = (s.q_start + i).min(s.kv_len - 1);
        for h in 0..s.n_heads {
            let g = h / group;
            let qv = &q[(i * s.n_heads + h) * d..][..d];
            let mut max = f64::NEG_INFINITY;
            for key in 0..=last {
                w[key] = if allow(i, g, key) {
                    let kv = &k[(key * s.n_kv_heads + g) * d..][..d];
                    scale * qv.iter().zip(kv).map(|(a, b)| a * b).sum::<f64>()
                } else {
                    f64::NEG_INFINITY
                };
                max = max.max(w[key]);
            }
            let mut total = 0f64;
            let o = &mut out[(i * s.n_heads + h) * d..][..d];
            for key in 0..=last {
                if w[key] == f64::NEG_INFINITY {
                    continue;
                }
                let p = (w[key] - max).exp();
                total += p;
                let vv = &v[(key * s.n_kv_heads + g) * d..][..d];
                for (o, x) in o.iter_mut().zip(vv) {
                    *o += p * x;
                }
            }
            for o in o.iter_mut() {
                *o /= total;
            }
        }
    }
    out
}

/// `‖out − reference‖ / ‖reference‖` (NaN when `out` holds a non-finite
/// value): the relative error every kernel check states its tolerance in.
pub fn rel_err(out: &[f64], reference: &[f64]) -> f64 {
    assert_eq!(out.len(), reference.len(), "compared lengths");
    let (mut num, mut den) = (0f64, 0f64);
    for (o, r) in out.iter().zip(reference) {
        if !o.is_finite() {
            return f64::NAN;
        }
        num += (o - r) * (o - r);
        den += r * r;
    }
    (num / den.max(1e-300)).sqrt()
}

/// `x` widened to f64.
pub fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|v| *v as f64).collect()
}
