//! K-quant prompt products on four weight rows interleaved eight weights at
//! a time: fewer integer multiplies per weight than [`super::canon`].
//!
//! In the canonical layout one 32-byte vector holds 32 weights of one row,
//! so each `maddubs` (pairs of products in i16) needs its own `madd` with
//! the sub-block scales to reach i32: two multiplies per 32 products. Here
//! a vector holds eight consecutive weights of each of four rows, and one
//! activation row's eight values are broadcast against it; the `maddubs` of
//! a whole sub-block (two vectors for Q6_K's 16 weights, four for Q4_K's
//! and Q5_K's 32) are summed in i16 before one `madd` applies the four
//! rows' scales: 1.25 to 1.5 multiplies per 32 products. This is the
//! arrangement of llama.cpp's repacked `q4_K_8x8` AVX2 kernel.
//!
//! The i16 sums cannot overflow: a `maddubs` lane is at most `2·w·127` for
//! unsigned weights `w` ≤ 15 (Q4_K), 31 (Q5_K) or 63 (Q6_K), so four Q4_K
//! or Q5_K lanes reach 15 240 or 31 496 and two Q6_K lanes 32 004, all
//! under 32 767 (activations are 8-bit in [-127, 127]).

use super::blocks::{self, QK_K};
use super::canon::CanonBuffer;
use super::{BlockFormat, QuantizedRows};

/// Weight rows per interleaved group.
pub const QUAD: usize = 4;

/// Activation rows multiplied with one group per call.
pub const ROWS: usize = 4;

/// The groups of four canonical rows of one task, interleaved.
#[derive(Default)]
pub struct QuadBuffer {
    /// Per group: for each run of 8 weights, 8 bytes of each row in turn.
    u: Vec<u8>,
    /// Per group and 16 weights: each row's sub-scale in four i16 lanes.
    scales: Vec<i16>,
    /// Per group and super-block: each row's scale in two f32 lanes.
    d: Vec<f32>,
    /// Per group and super-block: each row's 16 integer offsets `m`, row
    /// after row (see [`blocks::k_offsets`]).
    offsets: Vec<i16>,
    /// Per group and super-block: each row's offset coefficient in two lanes.
    coefs: Vec<f32>,
    cols: usize,
    /// 16-weight halves per super-block (16), kept as data for the kernel.
    halves_per_super: usize,
}

thread_local! {
    /// Each compute thread's interleaved rows.
    pub static BUFFER: std::cell::RefCell<QuadBuffer> =
        std::cell::RefCell::new(QuadBuffer::default());
}

impl QuadBuffer {
    /// Interleaves the first `4·groups` rows of `canon`, unpacked from the
    /// `format` rows of `src` (each `row_bytes` long), whose super-blocks'
    /// offsets are read here.
    pub fn fill(
        &mut self,
        format: BlockFormat,
        canon: &CanonBuffer,
        src: &[u8],
        row_bytes: usize,
        groups: usize,
    ) {
        let cols = canon.cols;
        assert!(format.is_k_quant(), "{format:?} is not a K-quant");
        assert!(
            cols.is_multiple_of(QK_K),
            "K-quant rows are whole super-blocks"
        );
        assert!(canon.u.len() >= QUAD * groups * cols, "rows to interleave");
        assert!(src.len() >= QUAD * groups * row_bytes, "source rows");
        let supers = cols / QK_K;
        self.cols = cols;
        self.halves_per_super = QK_K / 16;
        self.u.resize(groups * QUAD * cols, 0);
        self.scales.resize(groups * cols, 0);
        self.d.resize(groups * supers * 8, 0.0);
        self.coefs.resize(groups * supers * 8, 0.0);
        self.offsets.resize(groups * supers * QUAD * 16, 0);
        let halves = cols / 16;
        for g in 0..groups {
            let u = &mut self.u[g * QUAD * cols..(g + 1) * QUAD * cols];
            let scales = &mut self.scales[g * cols..(g + 1) * cols];
            let d = &mut self.d[g * supers * 8..(g + 1) * supers * 8];
            let coefs = &mut self.coefs[g * supers * 8..(g + 1) * supers * 8];
            let offsets = &mut self.offsets[g * supers * 64..(g + 1) * supers * 64];
            for r in 0..QUAD {
                let row = QUAD * g + r;
                let canon_u = &canon.u[row * cols..(row + 1) * cols];
                for (c, eight) in canon_u.chunks_exact(8).enumerate() {
                    u[32 * c + 8 * r..32 * c + 8 * r + 8].copy_from_slice(eight);
                }
                // The canonical sub-scales are 16 i16 lanes per 32 weights,
                // the first 8 for one half of 16 weights, the next 8 for the other.
                let k_scales = &canon.k_scales[row * cols / 2..(row + 1) * cols / 2];
                for h in 0..halves {
                    scales[16 * h + 4 * r..16 * h + 4 * r + 4].fill(k_scales[8 * h]);
                }
                let k_d = &canon.k_d[row * supers..(row + 1) * supers];
                let raw = &src[row * row_bytes..(row + 1) * row_bytes];
                for (j, block) in raw.chunks_exact(format.block_bytes()).enumerate() {
                    let (coef, m) = blocks::k_offsets(format, block);
                    d[8 * j + 2 * r..8 * j + 2 * r + 2].fill(k_d[j]);
                    coefs[8 * j + 2 * r..8 * j + 2 * r + 2].fill(coef);
                    offsets[64 * j + 16 * r..64 * j + 16 * r + 16].copy_from_slice(&m);
                }
            }
        }
    }

    /// Group `g`'s four rows against activation rows `rows.start ..` (at
    /// most [`ROWS`]), `out[i][r]` for activation row `i` and weight row
    /// `r`. `x` is quantized per 256 values. Needs AVX2, FMA and F16C.
    pub fn dot(
        &self,
        g: usize,
        format: BlockFormat,
        x: &QuantizedRows,
        rows: std::ops::Range<usize>,
        out: &mut [[f32; QUAD]; ROWS],
    ) {
        assert!(format.is_k_quant(), "interleaved rows are K-quants");
        assert_eq!(x.group(), QK_K, "activations quantized per 256 values");
        assert!(
            crate::dot::Isa::detect() == crate::dot::Isa::Avx2Fma,
            "the interleaved kernel needs AVX2"
        );
        assert!(
            (g + 1) * QUAD * self.cols <= self.u.len(),
            "group outside the buffer"
        );
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2, FMA and F16C were checked; the group and the
        // activation rows cover `cols` weights.
        unsafe {
            // Q6_K's sub-blocks are 16 weights; Q4_K's and Q5_K's 32.
            let six = format == BlockFormat::Q6_K;
            let t0 = rows.start;
            macro_rules! call {
                ($f:ident) => {
                    match (rows.len(), six) {
                        (4, false) => avx2::$f::<4, 2>(self, g, x, t0, out),
                        (4, true) => avx2::$f::<4, 1>(self, g, x, t0, out),
                        (3, false) => avx2::$f::<3, 2>(self, g, x, t0, out),
                        (3, true) => avx2::$f::<3, 1>(self, g, x, t0, out),
                        (2, false) => avx2::$f::<2, 2>(self, g, x, t0, out),
                        (2, true) => avx2::$f::<2, 1>(self, g, x, t0, out),
                        (1, false) => avx2::$f::<1, 2>(self, g, x, t0, out),
                        (1, true) => avx2::$f::<1, 1>(self, g, x, t0, out),
                        (n, _) => panic!("{n} activation rows per call (1 to {ROWS})"),
                    }
                };
            }
            if vnni() {
                call!(dot_vnni)
            } else {
                call!(dot)
            }
        }
    }
}

/// Whether the CPU has AVX-VNNI (`vpdpbusd` on 256-bit vectors), checked
/// once. `FOLIO_NO_VNNI=1` keeps the AVX2 path (to compare the two).
pub fn vnni() -> bool {
    static VNNI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VNNI.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::env::var_os("FOLIO_NO_VNNI").is_none()
                && std::arch::is_x86_feature_detected!("avxvnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::super::blocks::QK_K;
    use super::super::QuantizedRows;
    use super::{QuadBuffer, QUAD, ROWS};

    /// One group against `R` activation rows from `t0`. `P`: halves of 16
    /// weights sharing one scale (2 for Q4_K and Q5_K, 1 for Q6_K), so
    /// `2·P` `maddubs` are summed in i16 before each `madd`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot<const R: usize, const P: usize>(
        quads: &QuadBuffer,
        g: usize,
        x: &QuantizedRows,
        t0: usize,
        out: &mut [[f32; QUAD]; ROWS],
    ) {
        body::<R, P, false>(quads, g, x, t0, out)
    }

    /// [`dot`] with AVX-VNNI: each sub-block's products summed straight
    /// into i32 by `vpdpbusd` (no i16 stage), then scaled per row by one
    /// `vpmulld`.
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    pub unsafe fn dot_vnni<const R: usize, const P: usize>(
        quads: &QuadBuffer,
        g: usize,
        x: &QuantizedRows,
        t0: usize,
        out: &mut [[f32; QUAD]; ROWS],
    ) {
        body::<R, P, true>(quads, g, x, t0, out)
    }

    #[inline(always)]
    unsafe fn body<const R: usize, const P: usize, const VNNI: bool>(
        quads: &QuadBuffer,
        g: usize,
        x: &QuantizedRows,
        t0: usize,
        out: &mut [[f32; QUAD]; ROWS],
    ) {
        let cols = quads.cols;
        let supers = cols / QK_K;
        let u = quads.u.as_ptr().add(g * QUAD * cols);
        let sc = quads.scales.as_ptr().add(g * cols);
        let qd = quads.d.as_ptr().add(g * supers * 8);
        let coefs = quads.coefs.as_ptr().add(g * supers * 8);
        let offsets = quads.offsets.as_ptr().add(g * supers * 64);
        let xs: [*const i8; R] = std::array::from_fn(|i| x.values(t0 + i).as_ptr());
        let ds: [*const f32; R] = std::array::from_fn(|i| x.scales(t0 + i).as_ptr());
        let sums: [*const i16; R] = std::array::from_fn(|i| x.int_sums(t0 + i).as_ptr());
        // Lanes r0 r0 r1 r1 | r2 r2 r3 r3 after the offsets' horizontal adds.
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let mut acc = [_mm256_setzero_ps(); R];
        // Halves per super-block (16), read from memory: a constant would let
        // LLVM unroll the loop fully and spill the accumulators.
        let per_super = quads.halves_per_super;
        let mut h = 0;
        for j in 0..supers {
            let mut isum = [_mm256_setzero_si256(); R];
            let end = h + per_super;
            while h < end {
                let s = _mm256_loadu_si256(sc.add(16 * h) as *const __m256i);
                let mut p = [_mm256_setzero_si256(); R];
                for v in 0..2 * P {
                    let c = 2 * h + v;
                    let w = _mm256_loadu_si256(u.add(32 * c) as *const __m256i);
                    for t in 0..R {
                        let eight = (xs[t].add(8 * c) as *const i64).read_unaligned();
                        let a = _mm256_set1_epi64x(eight);
                        p[t] = if VNNI {
                            _mm256_dpbusd_avx_epi32(p[t], w, a)
                        } else {
                            _mm256_add_epi16(p[t], _mm256_maddubs_epi16(w, a))
                        };
                    }
                }
                if VNNI {
                    // i32 lanes r0 r0 r1 r1 r2 r2 r3 r3, as `madd` gives
                    // them: every other i16 scale lane.
                    let s32 = _mm256_madd_epi16(s, _mm256_set1_epi32(1));
                    for t in 0..R {
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(p[t], s32));
                    }
                } else {
                    for t in 0..R {
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p[t], s));
                    }
                }
                h += P;
            }
            let dv = _mm256_loadu_ps(qd.add(8 * j));
            let cv = _mm256_loadu_ps(coefs.add(8 * j));
            let m = offsets.add(64 * j);
            for t in 0..R {
                // Σ m·Σx per row: four `madd`s, folded to the rows' lanes.
                let xsum = _mm256_loadu_si256(sums[t].add(16 * j) as *const __m256i);
                let row = |r: usize| {
                    let mr = _mm256_loadu_si256(m.add(16 * r) as *const __m256i);
                    _mm256_madd_epi16(mr, xsum)
                };
                let pairs = _mm256_hadd_epi32(
                    _mm256_hadd_epi32(row(0), row(1)),
                    _mm256_hadd_epi32(row(2), row(3)),
                );
                let offset = _mm256_permutevar8x32_epi32(pairs, order);
                let dx = _mm256_set1_ps(*ds[t].add(j));
                let total = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(isum[t]),
                    dv,
                    _mm256_mul_ps(_mm256_cvtepi32_ps(offset), cv),
                );
                acc[t] = _mm256_fmadd_ps(total, dx, acc[t]);
            }
        }
        for t in 0..R {
            // Adjacent lanes give the rows.
            let lo = _mm256_castps256_ps128(acc[t]);
            let hi = _mm256_extractf128_ps(acc[t], 1);
            _mm_storeu_ps(out[t].as_mut_ptr(), _mm_hadd_ps(lo, hi));
        }
    }
}
