//! The textbook kernel: one query head at a time, the full `q_len × kv_len`
//! score matrix `softmax(Q·Kᵀ·scale + mask)` in memory, then `P·V`.

use rayon::prelude::*;

use super::{AttentionShape, AttentionStats};
use crate::dot::{axpy, dot, exp_neg, Isa};

/// Exact attention that really materialises the whole score matrix of a head
/// (`q_len · kv_len` floats, reused across heads): the simple reference every
/// other kernel is compared against, and the baseline whose quadratic memory
/// the benchmarks show. Rows of a head run in parallel; masked (future) keys
/// get probability 0.
pub fn dense(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    shape: AttentionShape,
    scale: f32,
) -> AttentionStats {
    shape.validate(q, k, v, out);
    let AttentionShape {
        n_heads,
        head_dim: d,
        kv_len,
        ..
    } = shape;
    if shape.q_len == 0 {
        return AttentionStats::default();
    }
    let row = n_heads * d;
    let isa = Isa::detect();
    let mut scores = vec![0f32; shape.q_len * kv_len];
    for head in 0..n_heads {
        scores
            .par_chunks_mut(kv_len)
            .zip(out.par_chunks_mut(row))
            .zip(q.par_chunks(row))
            .enumerate()
            .for_each(|(i, ((scores, out_row), q_row))| {
                let args = RowArgs {
                    q: &q_row[head * d..(head + 1) * d],
                    k,
                    v,
                    out: &mut out_row[head * d..(head + 1) * d],
                    scores,
                    n_keys: shape.q_start + i + 1,
                    kv_off: (head / shape.group()) * d,
                    kv_row: shape.n_kv_heads * d,
                    scale,
                };
                match isa {
                    // SAFETY: `Isa::detect` saw AVX2 and FMA on this CPU.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => unsafe { row_avx2(args) },
                    _ => dense_row::<false>(args),
                }
            });
    }
    AttentionStats::exact(&shape)
}

/// One query row of one head.
struct RowArgs<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    out: &'a mut [f32],
    /// This row of the score matrix (`kv_len` long).
    scores: &'a mut [f32],
    n_keys: usize,
    kv_off: usize,
    kv_row: usize,
    scale: f32,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_avx2(args: RowArgs) {
    dense_row::<true>(args)
}

// No closures here: they would not inherit the AVX2 instance's features.
#[inline(always)]
fn dense_row<const FMA: bool>(a: RowArgs) {
    let d = a.q.len();
    let n = a.n_keys;
    for (j, s) in a.scores[..n].iter_mut().enumerate() {
        let key = &a.k[j * a.kv_row + a.kv_off..][..d];
        *s = dot::<FMA>(a.q, key) * a.scale;
    }
    // The causal mask: future keys get probability 0.
    a.scores[n..].fill(0.0);
    let mut max = f32::NEG_INFINITY;
    for s in &a.scores[..n] {
        max = max.max(*s);
    }
    let mut sum = 0f32;
    for s in &mut a.scores[..n] {
        *s = exp_neg::<FMA>(*s - max);
        sum += *s;
    }
    let inv = 1.0 / sum;
    for s in &mut a.scores[..n] {
        *s *= inv;
    }
    a.out.fill(0.0);
    for (j, p) in a.scores[..n].iter().enumerate() {
        let value = &a.v[j * a.kv_row + a.kv_off..][..d];
        axpy::<FMA>(*p, value, a.out);
    }
}
