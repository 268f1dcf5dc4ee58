//! [`super::blocks::unpack`] in AVX2 intrinsics: the same canonical rows,
//! 32 weights per instruction instead of one (LLVM does not vectorise the
//! nibble and high-bit shuffles of the plain loops). Tests hold the two to
//! identical output.

use std::arch::x86_64::*;

use super::blocks::{f16_at, scale_min_k4, CanonRow};
use super::{fused, BlockFormat};

/// `v & 15` and `(v >> 4) & 15` of 32 bytes.
#[inline(always)]
unsafe fn split_nibbles(v: __m256i) -> (__m256i, __m256i) {
    let mask = _mm256_set1_epi8(15);
    (
        _mm256_and_si256(v, mask),
        _mm256_and_si256(_mm256_srli_epi16::<4>(v), mask),
    )
}

/// [`CanonRow::k_group`] with one vector store for the sixteen lanes.
#[inline(always)]
unsafe fn k_group(out: &mut CanonRow, g: usize, sc: [i16; 2], b0: f32, b1: f32) {
    assert!(16 * g + 16 <= out.k_scales.len() && 2 * g + 2 <= out.biases.len());
    let lanes = _mm256_set_m128i(_mm_set1_epi16(sc[1]), _mm_set1_epi16(sc[0]));
    _mm256_storeu_si256(out.k_scales.as_mut_ptr().add(16 * g) as *mut __m256i, lanes);
    *out.biases.get_unchecked_mut(2 * g) = b0;
    *out.biases.get_unchecked_mut(2 * g + 1) = b1;
}

#[inline(always)]
unsafe fn store(u: &mut [u8], at: usize, v: __m256i) {
    debug_assert!(at + 32 <= u.len());
    _mm256_storeu_si256(u.as_mut_ptr().add(at) as *mut __m256i, v);
}

#[inline(always)]
unsafe fn load(p: &[u8], at: usize) -> __m256i {
    debug_assert!(at + 32 <= p.len());
    _mm256_loadu_si256(p.as_ptr().add(at) as *const __m256i)
}

/// One row of an integer format into canonical form (see `blocks`).
///
/// # Safety
/// The CPU must have AVX2 and F16C; `row` holds whole blocks and `out` has
/// room for their weights.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn unpack(format: BlockFormat, row: &[u8], out: &mut CanonRow) {
    let (n, size) = (format.block_weights(), format.block_bytes());
    assert!(
        out.u.len() >= row.len() / size * n,
        "canonical row too short"
    );
    for (b, block) in row.chunks_exact(size).enumerate() {
        let at = b * n;
        let p = block.as_ptr();
        // Generation reads each weight once, straight from memory: ask for
        // the bytes ~1 KB ahead (the hardware prefetcher alone left decoding
        // at a third of the bandwidth). `wrapping_add`: past the row's end the
        // address is only a hint.
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(1024) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(1024 + 64) as *const i8);
        match format {
            BlockFormat::Q4_0 | BlockFormat::Q4_1 => {
                let d = f16_at(block, 0);
                let (m, qs) = match format {
                    BlockFormat::Q4_0 => (-8.0 * d, 2),
                    _ => (f16_at(block, 2), 4),
                };
                store(out.u, at, fused::nibbles(p.add(qs)));
                out.group(b, [d, d], [m, m]);
            }
            BlockFormat::Q5_0 | BlockFormat::Q5_1 => {
                let d = f16_at(block, 0);
                let (m, h) = match format {
                    BlockFormat::Q5_0 => (-16.0 * d, 2),
                    _ => (f16_at(block, 2), 4),
                };
                let qh = u32::from_le_bytes([block[h], block[h + 1], block[h + 2], block[h + 3]]);
                let v = _mm256_or_si256(
                    fused::nibbles(p.add(h + 4)),
                    _mm256_and_si256(fused::bits(qh), _mm256_set1_epi8(16)),
                );
                store(out.u, at, v);
                out.group(b, [d, d], [m, m]);
            }
            BlockFormat::Q8_0 => {
                store(out.u, at, load(block, 2));
                let d = f16_at(block, 0);
                out.group(b, [d, d], [0.0, 0.0]);
            }
            BlockFormat::Q4_K | BlockFormat::Q5_K => {
                let (d, dmin) = (fused::f16_at(p), fused::f16_at(p.add(2)));
                let qs = if format == BlockFormat::Q4_K { 16 } else { 48 };
                let qh = load(block, 16);
                let one = _mm256_set1_epi8(1);
                for pair in 0..4 {
                    let (mut lo, mut hi) = split_nibbles(load(block, qs + 32 * pair));
                    if format == BlockFormat::Q5_K {
                        // Bits 2·pair and 2·pair+1 of each qh byte, moved to bit 4.
                        let shift = _mm_cvtsi32_si128(2 * pair as i32);
                        let bits = _mm256_srl_epi16(qh, shift);
                        let lo_bit = _mm256_slli_epi16::<4>(_mm256_and_si256(bits, one));
                        let hi_bit =
                            _mm256_slli_epi16::<3>(_mm256_and_si256(bits, _mm256_set1_epi8(2)));
                        lo = _mm256_or_si256(lo, lo_bit);
                        hi = _mm256_or_si256(hi, hi_bit);
                    }
                    store(out.u, at + 64 * pair, lo);
                    store(out.u, at + 64 * pair + 32, hi);
                }
                let scales = &block[4..16];
                for sub in 0..8 {
                    let (sc, m) = scale_min_k4(sub, scales);
                    k_group(
                        out,
                        8 * b + sub,
                        [sc as i16, sc as i16],
                        -dmin * m as f32,
                        -dmin * m as f32,
                    );
                }
                out.k_d[b] = d;
            }
            BlockFormat::Q6_K => {
                let d = fused::f16_at(p.add(208));
                let three = _mm256_set1_epi8(3);
                for half in 0..2 {
                    let (ql0, ql1) = (load(block, 64 * half), load(block, 64 * half + 32));
                    let qh = load(block, 128 + 32 * half);
                    let (lo0, hi0) = split_nibbles(ql0);
                    let (lo1, hi1) = split_nibbles(ql1);
                    let h0 = _mm256_slli_epi16::<4>(_mm256_and_si256(qh, three));
                    let h1 =
                        _mm256_slli_epi16::<4>(_mm256_and_si256(_mm256_srli_epi16::<2>(qh), three));
                    let h2 =
                        _mm256_slli_epi16::<4>(_mm256_and_si256(_mm256_srli_epi16::<4>(qh), three));
                    let h3 =
                        _mm256_slli_epi16::<4>(_mm256_and_si256(_mm256_srli_epi16::<6>(qh), three));
                    let base = at + 128 * half;
                    store(out.u, base, _mm256_or_si256(lo0, h0));
                    store(out.u, base + 32, _mm256_or_si256(lo1, h1));
                    store(out.u, base + 64, _mm256_or_si256(hi0, h2));
                    store(out.u, base + 96, _mm256_or_si256(hi1, h3));
                }
                for g in 0..8 {
                    let sc = [block[192 + 2 * g] as i8, block[193 + 2 * g] as i8];
                    let bias = [-32.0 * d * sc[0] as f32, -32.0 * d * sc[1] as f32];
                    k_group(
                        out,
                        8 * b + g,
                        [sc[0] as i16, sc[1] as i16],
                        bias[0],
                        bias[1],
                    );
                }
                out.k_d[b] = d;
            }
            BlockFormat::F32 | BlockFormat::F16 | BlockFormat::Bf16 => {
                unreachable!("float formats have no canonical form")
            }
        }
    }
}
