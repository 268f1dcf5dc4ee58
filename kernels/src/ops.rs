//! Element-wise steps of a transformer block (normalisation, activation,
//! residual), parallel over rows and vectorised, with AVX2+FMA instances
//! chosen at run time like the attention kernels.

use rayon::prelude::*;

use crate::dot::{madd, silu, Isa};

/// Rows per parallel task: small enough to balance, large enough that a task
/// outweighs its scheduling cost.
const ROWS_PER_TASK: usize = 16;

/// `out = x / sqrt(mean(x²) + eps) * weight`, row by row (RMSNorm).
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let h = weight.len();
    assert_eq!(x.len(), out.len());
    assert_eq!(x.len() % h, 0, "x is not a whole number of rows");
    let isa = Isa::detect();
    out.par_chunks_mut(h * ROWS_PER_TASK)
        .zip(x.par_chunks(h * ROWS_PER_TASK))
        .for_each(|(o, x)| match isa {
            // SAFETY: `Isa::detect` saw AVX2 and FMA on this CPU.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => unsafe { rms_norm_avx2(x, weight, eps, o) },
            _ => rms_norm_rows::<false>(x, weight, eps, o),
        });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rms_norm_avx2(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    rms_norm_rows::<true>(x, weight, eps, out)
}

#[inline(always)]
fn rms_norm_rows<const FMA: bool>(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let h = weight.len();
    for (row, o) in x.chunks_exact(h).zip(out.chunks_exact_mut(h)) {
        let mut acc = [0f32; 8];
        for c in row.chunks_exact(8) {
            for i in 0..8 {
                acc[i] = madd::<FMA>(c[i], c[i], acc[i]);
            }
        }
        let tail: f32 = row.chunks_exact(8).remainder().iter().map(|v| v * v).sum();
        let mean_sq = (acc.iter().sum::<f32>() + tail) / h as f32;
        let inv = 1.0 / (mean_sq + eps).sqrt();
        for ((o, v), w) in o.iter_mut().zip(row).zip(weight) {
            *o = v * inv * w;
        }
    }
}

/// `silu(gate) * up` for rows laid out `[gate (ffn) | up (ffn)]`; `out` is
/// `[rows, ffn]` (SwiGLU).
pub fn swiglu(gate_up: &[f32], ffn: usize, out: &mut [f32]) {
    assert_eq!(gate_up.len(), 2 * out.len());
    let isa = Isa::detect();
    out.par_chunks_mut(ffn * ROWS_PER_TASK)
        .zip(gate_up.par_chunks(2 * ffn * ROWS_PER_TASK))
        .for_each(|(o, gu)| match isa {
            // SAFETY: `Isa::detect` saw AVX2 and FMA on this CPU.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => unsafe { swiglu_avx2(gu, ffn, o) },
            _ => swiglu_rows::<false>(gu, ffn, o),
        });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn swiglu_avx2(gate_up: &[f32], ffn: usize, out: &mut [f32]) {
    swiglu_rows::<true>(gate_up, ffn, out)
}

#[inline(always)]
fn swiglu_rows<const FMA: bool>(gate_up: &[f32], ffn: usize, out: &mut [f32]) {
    for (row, o) in gate_up.chunks_exact(2 * ffn).zip(out.chunks_exact_mut(ffn)) {
        let (g, u) = row.split_at(ffn);
        for ((o, g), u) in o.iter_mut().zip(g).zip(u) {
            *o = silu::<FMA>(*g) * u;
        }
    }
}

/// `gelu(gate) * up` for rows laid out `[gate (ffn) | up (ffn)]`, with
/// GELU's tanh approximation (GeGLU, as Gemma and llama.cpp's `ggml_gelu`).
pub fn geglu(gate_up: &[f32], ffn: usize, out: &mut [f32]) {
    assert_eq!(gate_up.len(), 2 * out.len());
    out.par_chunks_mut(ffn * ROWS_PER_TASK)
        .zip(gate_up.par_chunks(2 * ffn * ROWS_PER_TASK))
        .for_each(|(o, gu)| {
            for (row, o) in gu.chunks_exact(2 * ffn).zip(o.chunks_exact_mut(ffn)) {
                let (g, u) = row.split_at(ffn);
                for ((o, g), u) in o.iter_mut().zip(g).zip(u) {
                    *o = gelu_tanh(*g) * u;
                }
            }
        });
}

/// GELU, tanh approximation: `x/2 · (1 + tanh(√(2/π)(x + 0.044715 x³)))`.
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh())
}

/// `x += y`, parallel over large buffers (the residual connection).
pub fn add_in_place(x: &mut [f32], y: &[f32]) {
    assert_eq!(x.len(), y.len());
    x.par_chunks_mut(1 << 14)
        .zip(y.par_chunks(1 << 14))
        .for_each(|(x, y)| {
            x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) as f32 / u32::MAX as f32)
                    * 6.0
                    - 3.0
            })
            .collect()
    }

    #[test]
    fn rms_norm_and_swiglu_match_their_definitions() {
        let (rows, h) = (37, 72);
        let x = noise(rows * h, 1);
        let w = noise(h, 2);
        let mut out = vec![0f32; rows * h];
        rms_norm(&x, &w, 1e-5, &mut out);
        for r in 0..rows {
            let row = &x[r * h..(r + 1) * h];
            let rms =
                (row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / h as f64 + 1e-5).sqrt();
            for c in 0..h {
                let want = row[c] as f64 / rms * w[c] as f64;
                assert!((out[r * h + c] as f64 - want).abs() < 1e-5 * want.abs().max(1.0));
            }
        }
        let ffn = 40;
        let gu = noise(rows * 2 * ffn, 3);
        let mut act = vec![0f32; rows * ffn];
        swiglu(&gu, ffn, &mut act);
        for r in 0..rows {
            for c in 0..ffn {
                let (g, u) = (gu[r * 2 * ffn + c] as f64, gu[r * 2 * ffn + ffn + c] as f64);
                let want = g / (1.0 + (-g).exp()) * u;
                assert!((act[r * ffn + c] as f64 - want).abs() < 1e-5 * want.abs().max(1.0));
            }
        }
    }

    /// GeGLU against its f64 definition on random rows (gate in ±3, where
    /// the tanh approximation's curve bends), within 1e-5 relative.
    #[test]
    fn geglu_matches_its_definition() {
        let (rows, ffn) = (5, 37);
        let gu = noise(rows * 2 * ffn, 7);
        let mut act = vec![0f32; rows * ffn];
        geglu(&gu, ffn, &mut act);
        for r in 0..rows {
            for c in 0..ffn {
                let (g, u) = (gu[r * 2 * ffn + c] as f64, gu[r * 2 * ffn + ffn + c] as f64);
                let inner = (2.0 / std::f64::consts::PI).sqrt() * (g + 0.044715 * g.powi(3));
                let want = 0.5 * g * (1.0 + inner.tanh()) * u;
                assert!((act[r * ffn + c] as f64 - want).abs() < 1e-5 * want.abs().max(1.0));
            }
        }
    }
}
