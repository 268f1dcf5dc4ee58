//! The fused AVX2 matrix-vector kernels for the 32-weight block types
//! (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): each block is expanded in
//! registers and multiplied with one activation row, never written out
//! (see `quant::canon` for every type and many rows). Its small AVX2
//! helpers (nibbles, high bits, f16, horizontal sum) serve the other AVX2
//! kernels of `quant` too.

use std::arch::x86_64::*;

use super::{QuantizedInput, BLOCK};

/// 32 nibbles → 32 bytes: low nibbles first (weights 0..16), then high.
#[inline(always)]
pub(super) unsafe fn nibbles(qs: *const u8) -> __m256i {
    let tmp = _mm_loadu_si128(qs as *const __m128i);
    let both = _mm256_insertf128_si256::<1>(_mm256_castsi128_si256(tmp), _mm_srli_epi16::<4>(tmp));
    _mm256_and_si256(both, _mm256_set1_epi8(15))
}

/// 32 bits → 32 bytes, 0xFF where the bit is set.
#[inline(always)]
pub(super) unsafe fn bits(qh: u32) -> __m256i {
    let shuffle = _mm256_set_epi64x(
        0x0303030303030303,
        0x0202020202020202,
        0x0101010101010101,
        0,
    );
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(qh as i32), shuffle);
    let bit_mask = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    _mm256_cmpeq_epi8(_mm256_or_si256(bytes, bit_mask), _mm256_set1_epi64x(-1))
}

/// An f16 at `p` (unaligned) as f32, through F16C.
#[inline(always)]
pub(super) unsafe fn f16_at(p: *const u8) -> f32 {
    let bits = (p as *const u16).read_unaligned();
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

/// Σ u8·i8 over 32 pairs, as 8 f32 partial sums.
#[inline(always)]
unsafe fn dot_u8_i8(u: __m256i, s: __m256i) -> __m256 {
    let pairs = _mm256_maddubs_epi16(u, s);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// Format codes for const generics (`BlockFormat` as a number).
pub const Q4_1: u8 = 0;
pub const Q5_0: u8 = 1;
pub const Q8_0: u8 = 2;
pub const Q4_0: u8 = 3;
pub const Q5_1: u8 = 4;

/// Bytes per block of a format code.
const fn block_bytes(f: u8) -> usize {
    match f {
        Q4_0 => 18,
        Q4_1 => 20,
        Q5_0 => 22,
        Q5_1 => 24,
        _ => 34,
    }
}

/// One block's integer dot product with the activations (8 partial sums).
#[inline(always)]
unsafe fn block_dot<const F: u8>(block: *const u8, xq: __m256i) -> __m256 {
    match F {
        // Q4_0's unsigned nibbles; the −8 is a per-block offset in `rows_dot`.
        Q4_0 => dot_u8_i8(nibbles(block.add(2)), xq),
        Q4_1 => dot_u8_i8(nibbles(block.add(4)), xq),
        Q5_1 => {
            let qh = (block.add(4) as *const u32).read_unaligned();
            let high = _mm256_and_si256(bits(qh), _mm256_set1_epi8(0x10));
            dot_u8_i8(_mm256_or_si256(nibbles(block.add(8)), high), xq)
        }
        Q5_0 => {
            let qh = (block.add(2) as *const u32).read_unaligned();
            // q - 16 as i8: the nibble, with 0xF0 set where the fifth bit is 0.
            let high = _mm256_andnot_si256(bits(qh), _mm256_set1_epi8(0xF0u8 as i8));
            let w = _mm256_or_si256(nibbles(block.add(6)), high);
            // maddubs needs an unsigned operand: |w| and x with w's sign.
            dot_u8_i8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xq, w))
        }
        _ => {
            let w = _mm256_loadu_si256(block.add(2) as *const __m256i);
            dot_u8_i8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xq, w))
        }
    }
}

#[inline(always)]
pub(super) unsafe fn hsum(acc: __m256) -> f32 {
    let quad = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
    let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
    _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps::<1>(pair, pair)))
}

/// Dot products of `R` consecutive rows (each `row_bytes` long, starting
/// at `rows`) with the activations: one activation load serves `R` rows
/// and the `R` accumulation chains run side by side. `F` is the format
/// code, so each format gets its own loop with nothing to decide inside.
///
/// Each block also prefetches the same block of the row `R` further on,
/// which the next call reads: memory latency outlasts the few cycles a
/// block takes, and the hardware prefetcher alone left large Q5_0
/// matrices at a third of the bandwidth (6 vs 19 GB/s, 2 threads).
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows_dot<const R: usize, const F: u8>(
    rows: &[u8],
    row_bytes: usize,
    x: &QuantizedInput,
    out: &mut [f32],
) {
    debug_assert!(rows.len() >= R * row_bytes && out.len() >= R);
    let size = block_bytes(F);
    let mut acc = [_mm256_setzero_ps(); R];
    let mut offsets = [0f32; R];
    for b in 0..row_bytes / size {
        let xq = _mm256_loadu_si256(x.values.as_ptr().add(b * BLOCK) as *const __m256i);
        let x_scale = *x.scales.get_unchecked(b);
        for r in 0..R {
            let block = rows.as_ptr().add(r * row_bytes + b * size);
            // `wrapping_add`: past the last rows this points outside the slice, which a
            // prefetch tolerates but `add` would make undefined behaviour.
            _mm_prefetch::<_MM_HINT_T0>(block.wrapping_add(R * row_bytes) as *const i8);
            let d = _mm256_set1_ps(f16_at(block) * x_scale);
            acc[r] = _mm256_fmadd_ps(d, block_dot::<F>(block, xq), acc[r]);
            // Σ (q·d + m)·x = d·Σq·x + m·Σx; Q4_0's m is −8·d.
            if F == Q4_1 || F == Q5_1 {
                offsets[r] += f16_at(block.add(2)) * *x.scaled_sums.get_unchecked(b);
            } else if F == Q4_0 {
                offsets[r] -= 8.0 * f16_at(block) * *x.scaled_sums.get_unchecked(b);
            }
        }
    }
    for r in 0..R {
        out[r] = hsum(acc[r]) + offsets[r];
    }
}

/// `rows_dot` over a run of rows, four at a time.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows<const F: u8>(
    rows: &[u8],
    row_bytes: usize,
    x: &QuantizedInput,
    out: &mut [f32],
) {
    let quads = out.len() / 4 * 4;
    for (r, o) in out[..quads].chunks_exact_mut(4).enumerate() {
        rows_dot::<4, F>(&rows[r * 4 * row_bytes..], row_bytes, x, o);
    }
    for r in quads..out.len() {
        rows_dot::<1, F>(&rows[r * row_bytes..], row_bytes, x, &mut out[r..]);
    }
}
