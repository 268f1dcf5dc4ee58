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
    pub u: Vec<u8>,
    pub scales: Vec<f32>,
    pub biases: Vec<f32>,
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
        self.u.resize(n * cols, 0);
        self.scales.resize(n * cols / 4, 0.0);
        self.biases.resize(n * cols / 16, 0.0);
        for r in 0..n {
            let mut row = CanonRow {
                u: &mut self.u[r * cols..(r + 1) * cols],
                scales: &mut self.scales[r * cols / 4..(r + 1) * cols / 4],
                biases: &mut self.biases[r * cols / 16..(r + 1) * cols / 16],
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

/// Dot products of canonical row `r` of `canon` with activation rows
/// `x_rows` of `x`, into `out` (one value per activation row).
pub fn dot_rows(
    canon: &CanonBuffer,
    r: usize,
    signed: bool,
    x: &QuantizedRows,
    x_rows: std::ops::Range<usize>,
    out: &mut [f32],
    isa: Isa,
) {
    let cols = canon.cols;
    let u = &canon.u[r * cols..(r + 1) * cols];
    let scales = &canon.scales[r * cols / 4..(r + 1) * cols / 4];
    let biases = &canon.biases[r * cols / 16..(r + 1) * cols / 16];
    let mut start = x_rows.start;
    let mut o = 0;
    while start < x_rows.end {
        let n = (x_rows.end - start).min(ROW_BLOCK);
        let rows = start..start + n;
        match isa {
            // SAFETY: AVX2, FMA and F16C were detected; every row is `cols` long.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => unsafe {
                let w = (u, scales, biases);
                match (n, signed) {
                    (4, false) => avx2::dot::<4, false>(w, x, rows.clone(), &mut out[o..]),
                    (4, true) => avx2::dot::<4, true>(w, x, rows.clone(), &mut out[o..]),
                    (_, false) => {
                        for (i, row) in rows.clone().enumerate() {
                            avx2::dot::<1, false>(w, x, row..row + 1, &mut out[o + i..]);
                        }
                    }
                    (_, true) => {
                        for (i, row) in rows.clone().enumerate() {
                            avx2::dot::<1, true>(w, x, row..row + 1, &mut out[o + i..]);
                        }
                    }
                }
            },
            _ => {
                for (i, row) in rows.clone().enumerate() {
                    out[o + i] = dot_scalar(u, scales, signed, x, row)
                        + crate::dot::dot::<false>(biases, x.half_sums(row));
                }
            }
        }
        start += n;
        o += n;
    }
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

    use super::super::{QuantizedRows, BLOCK};

    #[inline(always)]
    unsafe fn hsum(acc: __m256) -> f32 {
        let quad = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
        _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps::<1>(pair, pair)))
    }

    /// One canonical row (`u`, `scales`, `biases`) against `R` activation
    /// rows, into `out[..R]`. `SIGNED`: `u` holds i8 (Q8_0), so `maddubs`
    /// gets `|w|` and the activations take `w`'s sign.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot<const R: usize, const SIGNED: bool>(
        (u, scales, biases): (&[u8], &[f32], &[f32]),
        x: &QuantizedRows,
        rows: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        debug_assert_eq!(rows.len(), R);
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
        // The bias terms, `Σ b·(d·Σq)` per 16 weights, eight halves a step
        // (two per 32 weights: a row of 32·k weights leaves `2k mod 8`).
        let halves = biases.len();
        let mut tail = [0f32; R];
        for r in 0..R {
            let sums = x.half_sums(rows.start + r);
            let mut h = 0;
            while h + 8 <= halves {
                let b = _mm256_loadu_ps(biases.as_ptr().add(h));
                let s = _mm256_loadu_ps(sums.as_ptr().add(h));
                acc[r] = _mm256_fmadd_ps(b, s, acc[r]);
                h += 8;
            }
            for k in h..halves {
                tail[r] += biases[k] * sums[k];
            }
        }
        for r in 0..R {
            out[r] = hsum(acc[r]) + tail[r];
        }
    }
}
