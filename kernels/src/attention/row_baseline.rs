//! TEMPORARY: the previous row-at-a-time kernel, kept only to time flash
//! against it; deleted before commit.

use rayon::prelude::*;

use super::{causal_pairs, AttentionShape, AttentionStats};
use crate::dot::{axpy, dot, exp_neg, Isa};

#[doc(hidden)]
/// Exact attention that materialises each query row's scores over all its
/// causal keys: the reference every other kernel is compared against, and the
/// default until tiled and sparse kernels land. Rows are processed in
/// parallel; each worker reuses one score buffer.
pub fn row_baseline(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    shape: AttentionShape,
    scale: f32,
) -> AttentionStats {
    shape.validate(q, k, v, out);
    let row = shape.n_heads * shape.head_dim;
    let isa = Isa::detect();
    out.par_chunks_mut(row)
        .zip(q.par_chunks(row))
        .enumerate()
        .for_each_init(
            || Vec::with_capacity(shape.group() * shape.kv_len),
            |scores: &mut Vec<f32>, (i, (out_row, q_row))| {
                let args = RowArgs {
                    q_row,
                    k,
                    v,
                    out_row,
                    scores,
                    n_keys: shape.q_start + i + 1,
                    shape,
                    scale,
                };
                match isa {
                    // SAFETY: `Isa::detect` saw AVX2 and FMA on this CPU.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => unsafe { dense_row_avx2(args) },
                    _ => dense_row::<false>(args),
                }
            },
        );
    let pairs = causal_pairs(&shape);
    AttentionStats {
        causal_pairs: pairs,
        attended_pairs: pairs,
    }
}

/// One query row (all heads) of [`dense`].
struct RowArgs<'a> {
    q_row: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    out_row: &'a mut [f32],
    scores: &'a mut Vec<f32>,
    n_keys: usize,
    shape: AttentionShape,
    scale: f32,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dense_row_avx2(args: RowArgs) {
    dense_row::<true>(args)
}

// No closures in the hot loop: a closure is a function of its own and would
// not be compiled with the caller's AVX2/FMA features.
//
// The query heads that share a KV head are processed together, so each key
// and value row is loaded once per group instead of once per head.
#[inline(always)]
fn dense_row<const FMA: bool>(a: RowArgs) {
    let AttentionShape {
        n_kv_heads,
        head_dim: d,
        ..
    } = a.shape;
    let group = a.shape.group();
    let n = a.n_keys;
    let kv_row = n_kv_heads * d;
    a.scores.resize(group * n, 0.0);
    for kvh in 0..n_kv_heads {
        let q_group = &a.q_row[kvh * group * d..(kvh + 1) * group * d];
        for j in 0..n {
            let key = &a.k[j * kv_row + kvh * d..j * kv_row + (kvh + 1) * d];
            for g in 0..group {
                a.scores[g * n + j] = dot::<FMA>(&q_group[g * d..(g + 1) * d], key) * a.scale;
            }
        }
        // Softmax of each head's row, normalised in place.
        for g in 0..group {
            let row = &mut a.scores[g * n..(g + 1) * n];
            let mut max = f32::NEG_INFINITY;
            for s in row.iter() {
                max = max.max(*s);
            }
            let mut sum = 0f32;
            for s in row.iter_mut() {
                *s = exp_neg::<FMA>(*s - max);
                sum += *s;
            }
            let inv = 1.0 / sum;
            for s in row.iter_mut() {
                *s *= inv;
            }
        }
        let out_group = &mut a.out_row[kvh * group * d..(kvh + 1) * group * d];
        out_group.fill(0.0);
        for j in 0..n {
            let value = &a.v[j * kv_row + kvh * d..j * kv_row + (kvh + 1) * d];
            for g in 0..group {
                axpy::<FMA>(
                    a.scores[g * n + j],
                    value,
                    &mut out_group[g * d..(g + 1) * d],
                );
            }
        }
    }
}
