//! Matrix products on canonical rows (see [`super::blocks`]) against many
//! 8-bit activation rows: the prompt-processing path, for every integer
//! block type, with no f32 copy of the weights.
//!
//! A task unpacks a few weight rows into its own small buffer (L1/L2-sized),
//! then sweeps the activation rows four at a time: each 32-weight group is
//! loaded once and multiplied with four activation rows in registers, so the
//! cost of unpacking is shared by every prompt row. Partial sums are f32 per
//! 32 weights (one `maddubs`, one `madd`, one FMA), as in ggml's kernels.

use std::cell::RefCell;

use super::blocks::{self, CanonRow};
use super::{BlockFormat, QuantizedRows, BLOCK};
use crate::dot::Isa;

/// Activation rows multiplied per register block.
pub const ROW_BLOCK: usize = 4;

/// Canonical rows of one task, reused across tasks of the same thread.
#[derive(Default)]
pub struct CanonBuffer {
    /// `u` of each row, `cols` bytes per row (see [`CanonRow`]).
    pub u: Vec<u8>,
    /// `scales` of each row, `cols / 4` lanes per row (empty for K-quants).
    pub scales: Vec<f32>,
    /// `biases` of each row, `cols / 16` per row.
    pub biases: Vec<f32>,
    /// K-quants' integer sub-scales and super-block scales (else empty).
    pub k_scales: Vec<i16>,
    /// K-quants' super-block scales, `cols / 256` per row (else empty).
    pub k_d: Vec<f32>,
    /// Weights per row of the last [`CanonBuffer::fill`]: the stride of every field.
    pub cols: usize,
}

impl CanonBuffer {
    /// Unpacks `n` rows of `format` (each `row_bytes` long) from `src`.
    pub fn fill(
        &mut self,
        format: BlockFormat,
        src: &[u8],
        row_bytes: usize,
        cols: usize,
        n: usize,
        isa: Isa,
    ) {
        self.cols = cols;
        // K-quants keep integer sub-scales instead of float scale lanes.
        let (fs, ks, kd) = if format.is_k_quant() {
            (0, cols / 2, cols / blocks::QK_K)
        } else {
            (cols / 4, 0, 0)
        };
        self.u.resize(n * cols, 0);
        self.scales.resize(n * fs, 0.0);
        self.biases.resize(n * cols / 16, 0.0);
        self.k_scales.resize(n * ks, 0);
        self.k_d.resize(n * kd, 0.0);
        for r in 0..n {
            let mut row = CanonRow {
                u: &mut self.u[r * cols..(r + 1) * cols],
                scales: &mut self.scales[r * fs..(r + 1) * fs],
                biases: &mut self.biases[r * cols / 16..(r + 1) * cols / 16],
                k_scales: &mut self.k_scales[r * ks..(r + 1) * ks],
                k_d: &mut self.k_d[r * kd..(r + 1) * kd],
            };
            let bytes = &src[r * row_bytes..(r + 1) * row_bytes];
            match isa {
                // SAFETY: `Isa::detect` saw AVX2, FMA and F16C on this CPU.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2Fma => unsafe { super::unpack_avx2::unpack(format, bytes, &mut row) },
                _ => blocks::unpack(format, bytes, &mut row),
            }
        }
    }
}

thread_local! {
    /// Each compute thread's canonical rows.
    pub static BUFFER: RefCell<CanonBuffer> = RefCell::new(CanonBuffer::default());
}

/// Dot products of canonical row `r` of `canon` (unpacked from `format`)
/// with activation rows `x_rows` of `x`, into `out` (one value per
/// activation row). `x` is quantized for `format`
/// ([`super::Activations::quantized`]): K-quants take the integer
/// super-block kernels over one scale per 256 values.
pub fn dot_rows(
    canon: &CanonBuffer,
    r: usize,
    format: BlockFormat,
    x: &QuantizedRows,
    x_rows: std::ops::Range<usize>,
    out: &mut [f32],
    isa: Isa,
) {
    let cols = canon.cols;
    let k = format.is_k_quant();
    assert!(
        x.group() == if k { blocks::QK_K } else { BLOCK },
        "activations quantized for another block type"
    );
    let signed = format == BlockFormat::Q8_0;
    let fs = if k { 0 } else { cols / 4 };
    let row = CanonRef {
        u: &canon.u[r * cols..(r + 1) * cols],
        scales: &canon.scales[r * fs..(r + 1) * fs],
        biases: &canon.biases[r * cols / 16..(r + 1) * cols / 16],
        k_scales: if k {
            &canon.k_scales[r * cols / 2..(r + 1) * cols / 2]
        } else {
            &[]
        },
        k_d: if k {
            &canon.k_d[r * cols / 256..(r + 1) * cols / 256]
        } else {
            &[]
        },
    };
    let mut start = x_rows.start;
    let mut o = 0;
    while start < x_rows.end {
        let n = (x_rows.end - start).min(ROW_BLOCK);
        let rows = start..start + n;
        match isa {
            // SAFETY: AVX2, FMA and F16C were detected; every row is `cols` long.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => unsafe {
                let out = &mut out[o..];
                match (n, k, signed) {
                    (4, true, _) => avx2::dot_k::<4>(&row, x, rows.clone(), out),
                    (4, false, false) => avx2::dot::<4, false>(&row, x, rows.clone(), out),
                    (4, false, true) => avx2::dot::<4, true>(&row, x, rows.clone(), out),
                    _ => {
                        for (i, t) in rows.clone().enumerate() {
                            let one = &mut out[i..];
                            match (k, signed) {
                                (true, _) => avx2::dot_k::<1>(&row, x, t..t + 1, one),
                                (false, false) => avx2::dot::<1, false>(&row, x, t..t + 1, one),
                                (false, true) => avx2::dot::<1, true>(&row, x, t..t + 1, one),
                            }
                        }
                    }
                }
            },
            _ => {
                for (i, t) in rows.clone().enumerate() {
                    let products = if k {
                        dot_k_scalar(&row, x, t)
                    } else {
                        dot_scalar(row.u, row.scales, signed, x, t)
                    };
                    out[o + i] = products + crate::dot::dot::<false>(row.biases, x.half_sums(t));
                }
            }
        }
        start += n;
        o += n;
    }
}

/// One canonical row's parts, borrowed.
pub struct CanonRef<'a> {
    /// One byte per weight (signed for Q8_0).
    pub u: &'a [u8],
    /// Eight f32 lanes per 32 weights (empty for K-quants).
    pub scales: &'a [f32],
    /// The bias of each 16 weights.
    pub biases: &'a [f32],
    /// K-quants only (empty otherwise): sixteen i16 lanes per 32 weights.
    pub k_scales: &'a [i16],
    /// K-quants only (empty otherwise): the scale of each super-block.
    pub k_d: &'a [f32],
}

/// A K-quant canonical row against one activation row quantized per 256
/// values, summing each super-block in integers (bias term excluded): the
/// reference of the AVX2 `dot_k`.
pub fn dot_k_scalar(row: &CanonRef, x: &QuantizedRows, t: usize) -> f32 {
    let (xq, d) = (x.values(t), x.scales(t));
    let mut total = 0f32;
    for (j, kd) in row.k_d.iter().enumerate() {
        let mut isum = 0i64;
        for g in 8 * j..8 * j + 8 {
            for half in 0..2 {
                let sc = row.k_scales[16 * g + 8 * half] as i64;
                let at = 32 * g + 16 * half;
                let s: i64 = (at..at + 16).map(|l| row.u[l] as i64 * xq[l] as i64).sum();
                isum += sc * s;
            }
        }
        total += kd * d[j] * isum as f32;
    }
    total
}

/// One canonical row against one activation row, in plain Rust: the
/// reference the AVX2 kernel is tested against (bias term excluded).
pub fn dot_scalar(u: &[u8], scales: &[f32], signed: bool, x: &QuantizedRows, row: usize) -> f32 {
    let xq = x.values(row);
    let d = x.scales(row);
    let mut total = 0f32;
    for g in 0..u.len() / BLOCK {
        for half in 0..2 {
            let mut isum = 0i32;
            for l in 32 * g + 16 * half..32 * g + 16 * half + 16 {
                let w = if signed {
                    u[l] as i8 as i32
                } else {
                    u[l] as i32
                };
                isum += w * xq[l] as i32;
            }
            total += scales[8 * g + 4 * half] * d[g] * isum as f32;
        }
    }
    total
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::super::fused::hsum;
    use super::super::{QuantizedRows, BLOCK};
    use super::CanonRef;

    /// One canonical row (`u`, `scales`, `biases`) against `R` activation
    /// rows, into `out[..R]`. `SIGNED`: `u` holds i8 (Q8_0), so `maddubs`
    /// gets `|w|` and the activations take `w`'s sign.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot<const R: usize, const SIGNED: bool>(
        row: &CanonRef,
        x: &QuantizedRows,
        rows: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        debug_assert_eq!(rows.len(), R);
        let (u, scales) = (row.u, row.scales);
        let groups = u.len() / BLOCK;
        let xs: [*const i8; R] = std::array::from_fn(|i| x.values(rows.start + i).as_ptr());
        let ds: [*const f32; R] = std::array::from_fn(|i| x.scales(rows.start + i).as_ptr());
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); R];
        for g in 0..groups {
            let w = _mm256_loadu_si256(u.as_ptr().add(g * BLOCK) as *const __m256i);
            let s = _mm256_loadu_ps(scales.as_ptr().add(8 * g));
            let wu = if SIGNED { _mm256_sign_epi8(w, w) } else { w };
            for r in 0..R {
                let mut xq = _mm256_loadu_si256(xs[r].add(g * BLOCK) as *const __m256i);
                if SIGNED {
                    xq = _mm256_sign_epi8(xq, w);
                }
                let sums = _mm256_madd_epi16(_mm256_maddubs_epi16(wu, xq), ones);
                let sd = _mm256_mul_ps(s, _mm256_broadcast_ss(&*ds[r].add(g)));
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), sd, acc[r]);
            }
        }
        finish(row.biases, x, rows, acc, out);
    }

    /// Adds the bias terms, `Σ b·(d·Σq)` per 16 weights, eight halves a
    /// step (two per 32 weights: a row of 32·k weights leaves `2k mod 8`),
    /// and writes each row's total.
    #[inline(always)]
    unsafe fn finish<const R: usize>(
        biases: &[f32],
        x: &QuantizedRows,
        rows: std::ops::Range<usize>,
        mut acc: [__m256; R],
        out: &mut [f32],
    ) {
        let halves = biases.len();
        let sums: [*const f32; R] = std::array::from_fn(|r| x.half_sums(rows.start + r).as_ptr());
        // One bias load serves every row; the rows' chains run side by side.
        let mut bias_acc = [_mm256_setzero_ps(); R];
        let mut h = 0;
        while h + 8 <= halves {
            let b = _mm256_loadu_ps(biases.as_ptr().add(h));
            for r in 0..R {
                bias_acc[r] = _mm256_fmadd_ps(b, _mm256_loadu_ps(sums[r].add(h)), bias_acc[r]);
            }
            h += 8;
        }
        let mut tail = [0f32; R];
        for r in 0..R {
            acc[r] = _mm256_add_ps(acc[r], bias_acc[r]);
            for (k, b) in biases.iter().enumerate().skip(h) {
                tail[r] += b * *sums[r].add(k);
            }
        }
        for r in 0..R {
            out[r] = hsum(acc[r]) + tail[r];
        }
    }

    /// A K-quant canonical row against `R` activation rows quantized per
    /// 256 values: per 32 weights one `maddubs` and one `madd` with the
    /// integer sub-scales, summed in i32 over the super-block, then one FMA
    /// per super-block. Bias terms as in [`dot`].
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_k<const R: usize>(
        row: &CanonRef,
        x: &QuantizedRows,
        rows: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        debug_assert_eq!(rows.len(), R);
        let xs: [*const i8; R] = std::array::from_fn(|i| x.values(rows.start + i).as_ptr());
        let ds: [*const f32; R] = std::array::from_fn(|i| x.scales(rows.start + i).as_ptr());
        let (u, sc) = (row.u.as_ptr(), row.k_scales.as_ptr());
        let mut acc = [_mm256_setzero_ps(); R];
        // Groups per super-block (8), as a run-time count: a constant would
        // let LLVM unroll the loop fully and spill the accumulators.
        let per_super = row.k_scales.len() / 16 / row.k_d.len().max(1);
        for (j, kd) in row.k_d.iter().enumerate() {
            let mut isum = [_mm256_setzero_si256(); R];
            for g in per_super * j..per_super * (j + 1) {
                let w = _mm256_loadu_si256(u.add(g * BLOCK) as *const __m256i);
                let s = _mm256_loadu_si256(sc.add(16 * g) as *const __m256i);
                for r in 0..R {
                    let xq = _mm256_loadu_si256(xs[r].add(g * BLOCK) as *const __m256i);
                    let p = _mm256_madd_epi16(_mm256_maddubs_epi16(w, xq), s);
                    isum[r] = _mm256_add_epi32(isum[r], p);
                }
            }
            for r in 0..R {
                let scale = _mm256_set1_ps(kd * *ds[r].add(j));
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), scale, acc[r]);
            }
        }
        finish(row.biases, x, rows, acc, out);
    }
}
