//! Fused AVX2 matrix-vector kernels for the K-quants (Q4_K, Q5_K, Q6_K):
//! generation reads each weight once, so the blocks are expanded in
//! registers and multiplied at once with one activation row quantized per
//! 256 values, never written out (the canonical path of `quant::canon`
//! would store and reload every weight). Per 32 weights: the nibbles (and
//! high bits), one `maddubs`, one `madd` with the integer sub-scales, summed
//! in i32 over the super-block; the bias terms (mins) from the activations'
//! per-16 sums. Tests hold them to the canonical kernels.

use std::arch::x86_64::*;

use super::{fused, BlockFormat};

/// Q6_K's two high bits of each weight, from bits `shift, shift+1` of `qh`,
/// moved to bits 4-5.
#[inline(always)]
unsafe fn high_bits(qh: __m256i, shift: i32) -> __m256i {
    let bits = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(shift));
    _mm256_slli_epi16::<4>(_mm256_and_si256(bits, _mm256_set1_epi8(3)))
}

/// `Σ q·x` of 32 unsigned weights, scaled per 16 by the i16 lanes of `sc`.
#[inline(always)]
unsafe fn scaled(q: __m256i, x: *const i8, sc: __m256i) -> __m256i {
    let xq = _mm256_loadu_si256(x as *const __m256i);
    _mm256_madd_epi16(_mm256_maddubs_epi16(q, xq), sc)
}

/// One row of `format` (whole super-blocks) against one activation row:
/// `xq` its 8-bit values, `xd` one scale per 256, `half_sums` `d·Σq` per 16.
///
/// # Safety
/// AVX2, FMA and F16C must be present; the slices must match the row.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn row_dot(
    format: BlockFormat,
    row: &[u8],
    xq: &[i8],
    xd: &[f32],
    half_sums: &[f32],
) -> f32 {
    let size = format.block_bytes();
    let supers = row.len() / size;
    assert!(xq.len() >= supers * 256 && xd.len() >= supers && half_sums.len() >= supers * 16);
    let mask = _mm256_set1_epi8(15);
    let mut acc = _mm256_setzero_ps();
    let mut bias_acc = _mm256_setzero_ps();
    for j in 0..supers {
        let p = row.as_ptr().add(j * size);
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(1024) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(1024 + 64) as *const i8);
        let x = xq.as_ptr().add(256 * j);
        let hs = &half_sums[16 * j..16 * j + 16];
        let mut isum = _mm256_setzero_si256();
        let d = match format {
            BlockFormat::Q4_K | BlockFormat::Q5_K => {
                let (d, dmin) = (fused::f16_at(p), fused::f16_at(p.add(2)));
                let (scales, mins) = scales_and_mins_k4(p.add(4));
                // Σ_j min_j · (sums of the activations of sub-block j), in
                // f32 lanes: the half sums pairwise, put back in order.
                let h0 = _mm256_loadu_ps(hs.as_ptr());
                let h1 = _mm256_loadu_ps(hs.as_ptr().add(8));
                let pairs = _mm256_permutevar8x32_ps(
                    _mm256_hadd_ps(h0, h1),
                    _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7),
                );
                bias_acc = _mm256_fmadd_ps(
                    _mm256_mul_ps(_mm256_set1_ps(-dmin), _mm256_cvtepi32_ps(mins)),
                    pairs,
                    bias_acc,
                );
                let q5 = format == BlockFormat::Q5_K;
                let qs = p.add(if q5 { 48 } else { 16 });
                let qh = _mm256_loadu_si256(p.add(16) as *const __m256i);
                for pair in 0..4 {
                    let v = _mm256_loadu_si256(qs.add(32 * pair) as *const __m256i);
                    let mut lo = _mm256_and_si256(v, mask);
                    let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), mask);
                    if q5 {
                        let bits = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * pair as i32));
                        let one = _mm256_set1_epi8(1);
                        lo = _mm256_or_si256(
                            lo,
                            _mm256_slli_epi16::<4>(_mm256_and_si256(bits, one)),
                        );
                        hi = _mm256_or_si256(
                            hi,
                            _mm256_slli_epi16::<3>(_mm256_and_si256(bits, _mm256_set1_epi8(2))),
                        );
                    }
                    let x0 = x.add(64 * pair);
                    let (sc_lo, sc_hi) = scale_pair(scales, pair);
                    isum = _mm256_add_epi32(isum, scaled(lo, x0, sc_lo));
                    isum = _mm256_add_epi32(isum, scaled(hi, x0.add(32), sc_hi));
                }
                d
            }
            _ => {
                let d = fused::f16_at(p.add(208));
                // The 16 signed scales, as i16 (one copy per 8 in both
                // lanes, for the shuffles) and as f32 (for the bias).
                let sc8 = _mm_loadu_si128(p.add(192) as *const __m128i);
                let sc16 = _mm256_cvtepi8_epi16(sc8);
                let sc_first = _mm256_permute2x128_si256::<0x00>(sc16, sc16);
                let sc_second = _mm256_permute2x128_si256::<0x11>(sc16, sc16);
                let sc_lo_f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc8));
                let sc_hi_f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(sc8)));
                let neg = _mm256_set1_ps(-32.0 * d);
                let h0 = _mm256_loadu_ps(hs.as_ptr());
                let h1 = _mm256_loadu_ps(hs.as_ptr().add(8));
                let sums = _mm256_fmadd_ps(sc_lo_f, h0, _mm256_mul_ps(sc_hi_f, h1));
                bias_acc = _mm256_fmadd_ps(neg, sums, bias_acc);
                for half in 0..2 {
                    let ql0 = _mm256_loadu_si256(p.add(64 * half) as *const __m256i);
                    let ql1 = _mm256_loadu_si256(p.add(64 * half + 32) as *const __m256i);
                    let qh = _mm256_loadu_si256(p.add(128 + 32 * half) as *const __m256i);
                    let quads = [
                        _mm256_or_si256(_mm256_and_si256(ql0, mask), high_bits(qh, 0)),
                        _mm256_or_si256(_mm256_and_si256(ql1, mask), high_bits(qh, 2)),
                        _mm256_or_si256(
                            _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), mask),
                            high_bits(qh, 4),
                        ),
                        _mm256_or_si256(
                            _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), mask),
                            high_bits(qh, 6),
                        ),
                    ];
                    // Groups 0-3 read scales 0-7, groups 4-7 scales 8-15.
                    let sc_half = if half == 0 { sc_first } else { sc_second };
                    for (k, q) in quads.into_iter().enumerate() {
                        let g = 4 * half + k;
                        let mask = _mm256_loadu_si256(SCALE_PAIR_I16[k].as_ptr() as *const __m256i);
                        let lanes = _mm256_shuffle_epi8(sc_half, mask);
                        isum = _mm256_add_epi32(isum, scaled(q, x.add(32 * g), lanes));
                    }
                }
                d
            }
        };
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * xd[j]), acc);
    }
    fused::hsum(acc) + fused::hsum(bias_acc)
}

/// A Q4_K/Q5_K super-block's eight 6-bit sub-block scales, as i16 in both
/// 128-bit lanes, and its eight 6-bit mins as i32, unpacked from the 12
/// bytes at `p` with word operations (ggml's `utmp` arrangement) instead of
/// one sub-block at a time.
#[inline(always)]
unsafe fn scales_and_mins_k4(p: *const u8) -> (__m256i, __m256i) {
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let w = |i: usize| u32::from_le_bytes(std::ptr::read_unaligned(p.add(4 * i) as *const [u8; 4]));
    let (w0, w1, w2) = (w(0), w(1), w(2));
    // Scales 0-3 are the low 6 bits of bytes 0-3, 4-7 the low nibbles of
    // bytes 8-11 with the top 2 bits of bytes 0-3; mins likewise from
    // bytes 4-7 and the high nibbles of bytes 8-11 with bytes 4-7's top bits.
    let scales_lo = w0 & LOW6;
    let scales_hi = (w2 & LOW4) | (((w0 >> 6) & LOW2) << 4);
    let mins_lo = w1 & LOW6;
    let mins_hi = ((w2 >> 4) & LOW4) | (((w1 >> 6) & LOW2) << 4);
    let scales = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, scales_hi as i32, scales_lo as i32));
    let mins = _mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, mins_hi as i32, mins_lo as i32));
    (_mm256_set_m128i(scales, scales), mins)
}

/// Byte shuffles that broadcast i16 lane `i` of a register over all of it.
static BROADCAST_I16: [[u8; 32]; 8] = {
    let mut masks = [[0u8; 32]; 8];
    let mut i = 0;
    while i < 8 {
        let mut b = 0;
        while b < 32 {
            masks[i][b] = (2 * i + b % 2) as u8;
            b += 1;
        }
        i += 1;
    }
    masks
};

/// Byte shuffles that put i16 lane `2k` of a register over its low half
/// and lane `2k + 1` over its high half (Q6_K: the scales of the two 16s
/// of 32 weights).
static SCALE_PAIR_I16: [[u8; 32]; 4] = {
    let mut masks = [[0u8; 32]; 4];
    let mut k = 0;
    while k < 4 {
        let mut b = 0;
        while b < 32 {
            let lane = 2 * k + b / 16;
            masks[k][b] = (2 * lane + b % 2) as u8;
            b += 1;
        }
        k += 1;
    }
    masks
};

/// The i16 lanes of sub-blocks `2·pair` and `2·pair + 1`'s scales, each
/// broadcast over a whole register, from [`scales_and_mins_k4`]'s scales.
#[inline(always)]
unsafe fn scale_pair(scales: __m256i, pair: usize) -> (__m256i, __m256i) {
    let at = |i: usize| {
        let mask = _mm256_loadu_si256(BROADCAST_I16[i].as_ptr() as *const __m256i);
        _mm256_shuffle_epi8(scales, mask)
    };
    (at(2 * pair), at(2 * pair + 1))
}
