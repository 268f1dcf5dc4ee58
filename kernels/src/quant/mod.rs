//! Matrix-vector products straight on GGUF block-quantized weights.
//!
//! Generation reads every weight once per token, so its speed is the memory
//! bandwidth divided by the bytes per weight. candle has fast CPU dot products
//! only for some GGUF block types; for Q4_1 (SmolLM2) and Q5_0 (Qwen2.5-0.5B)
//! it runs scalar code, and requantizing them to Q8_0 reads 1.5-1.7x the
//! bytes. These kernels read the original blocks (as llama.cpp does):
//! activations are quantized to 8 bits per 32-value block, and each block's
//! dot product runs on integers (AVX2 `maddubs`), scaled once per block.
//!
//! Block layouts (ggml): every block covers 32 consecutive weights of a row.
//! - Q4_1, 20 bytes: `d: f16, m: f16, qs: [u8; 16]`; weight `j` (< 16) is
//!   `d·(qs[j] & 15) + m`, weight `j + 16` is `d·(qs[j] >> 4) + m`.
//! - Q5_0, 22 bytes: `d: f16, qh: u32, qs: [u8; 16]`; bit `j` of `qh` is the
//!   fifth bit of weight `j`; weight = `d·(q - 16)`.
//! - Q8_0, 34 bytes: `d: f16, qs: [i8; 32]`; weight = `d·q`. Matrices in any
//!   other format are requantized to Q8_0 ([`BlockMatrix::quantize_q8_0`]), so
//!   one thread pool and one kernel family serve every decode product.

use half::f16;
use rayon::prelude::*;

use crate::dot::Isa;

/// Weights per block for every supported format.
pub const BLOCK: usize = 32;

/// A supported block format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockFormat {
    Q4_1,
    Q5_0,
    Q8_0,
}

impl BlockFormat {
    /// Bytes of one block.
    pub fn block_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_1 => 20,
            BlockFormat::Q5_0 => 22,
            BlockFormat::Q8_0 => 34,
        }
    }
}

/// A `[rows, cols]` matrix stored as raw GGUF blocks, row after row.
#[derive(Debug, Clone)]
pub struct BlockMatrix {
    pub format: BlockFormat,
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<u8>,
}

impl BlockMatrix {
    /// Checks that `data` holds exactly `rows × cols` weights of `format`.
    pub fn new(
        format: BlockFormat,
        rows: usize,
        cols: usize,
        data: Vec<u8>,
    ) -> Result<Self, String> {
        if !cols.is_multiple_of(BLOCK) {
            return Err(format!("{cols} columns is not a multiple of {BLOCK}"));
        }
        let want = rows * cols / BLOCK * format.block_bytes();
        if data.len() != want {
            return Err(format!(
                "{format:?} {rows}x{cols} needs {want} bytes, got {}",
                data.len()
            ));
        }
        Ok(Self {
            format,
            rows,
            cols,
            data,
        })
    }

    /// Quantizes a row-major f32 matrix to Q8_0 (`d = max|w| / 127` per block).
    pub fn quantize_q8_0(rows: usize, cols: usize, w: &[f32]) -> Result<Self, String> {
        if w.len() != rows * cols {
            return Err(format!("{} values for a {rows}x{cols} matrix", w.len()));
        }
        if !cols.is_multiple_of(BLOCK) {
            return Err(format!("{cols} columns is not a multiple of {BLOCK}"));
        }
        let mut data = Vec::with_capacity(rows * cols / BLOCK * 34);
        for block in w.chunks_exact(BLOCK) {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = f16::from_f32(amax / 127.0);
            let inv = if d.to_f32() > 0.0 {
                1.0 / d.to_f32()
            } else {
                0.0
            };
            data.extend(d.to_le_bytes());
            data.extend(
                block
                    .iter()
                    .map(|v| (v * inv).round().clamp(-127.0, 127.0) as i8 as u8),
            );
        }
        Ok(Self {
            format: BlockFormat::Q8_0,
            rows,
            cols,
            data,
        })
    }

    /// Stacks matrices of the same format and width along the rows.
    pub fn stack(parts: &[BlockMatrix]) -> Option<BlockMatrix> {
        let first = parts.first()?;
        if parts
            .iter()
            .any(|p| p.format != first.format || p.cols != first.cols)
        {
            return None;
        }
        let data = parts.iter().flat_map(|p| p.data.iter().copied()).collect();
        Some(BlockMatrix {
            format: first.format,
            rows: parts.iter().map(|p| p.rows).sum(),
            cols: first.cols,
            data,
        })
    }

    fn row(&self, r: usize) -> &[u8] {
        let bytes = self.cols / BLOCK * self.format.block_bytes();
        &self.data[r * bytes..(r + 1) * bytes]
    }

    /// Row `r` as f32 (the reference the fast path is tested against).
    pub fn dequantize_row(&self, r: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.cols);
        for block in self.row(r).chunks_exact(self.format.block_bytes()) {
            let d = f16_at(block, 0);
            let mut vals = [0f32; BLOCK];
            match self.format {
                BlockFormat::Q4_1 => {
                    let m = f16_at(block, 2);
                    for j in 0..16 {
                        vals[j] = d * (block[4 + j] & 15) as f32 + m;
                        vals[j + 16] = d * (block[4 + j] >> 4) as f32 + m;
                    }
                }
                BlockFormat::Q5_0 => {
                    let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
                    for j in 0..16 {
                        let lo = (block[6 + j] & 15) as i32 | ((((qh >> j) & 1) << 4) as i32);
                        let hi =
                            (block[6 + j] >> 4) as i32 | ((((qh >> (j + 16)) & 1) << 4) as i32);
                        vals[j] = d * (lo - 16) as f32;
                        vals[j + 16] = d * (hi - 16) as f32;
                    }
                }
                BlockFormat::Q8_0 => {
                    for j in 0..BLOCK {
                        vals[j] = d * block[2 + j] as i8 as f32;
                    }
                }
            }
            out.extend_from_slice(&vals);
        }
        out
    }
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// One input vector quantized to 8 bits per 32-value block.
pub struct QuantizedInput {
    /// Scale of each block.
    scales: Vec<f32>,
    /// `scale · Σ q` of each block (Q4_1's offset term needs it).
    scaled_sums: Vec<f32>,
    values: Vec<i8>,
}

impl QuantizedInput {
    /// Quantizes `x` (length a multiple of 32): `q = round(x / d)`, `d = max|x| / 127`.
    pub fn new(x: &[f32]) -> Self {
        let blocks = x.len() / BLOCK;
        let mut scales = Vec::with_capacity(blocks);
        let mut scaled_sums = Vec::with_capacity(blocks);
        let mut values = Vec::with_capacity(x.len());
        for block in x.chunks_exact(BLOCK) {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
            let mut sum = 0i32;
            for v in block {
                let q = (v * inv).round() as i8;
                sum += q as i32;
                values.push(q);
            }
            scales.push(d);
            scaled_sums.push(d * sum as f32);
        }
        Self {
            scales,
            scaled_sums,
            values,
        }
    }
}

/// Output rows per parallel task.
const ROWS_PER_TASK: usize = 64;

/// `y = W · x` for each of `x_rows` input rows (`x` is `[x_rows, cols]`,
/// `y` is `[x_rows, rows]`), parallel over output rows.
pub fn matvec(w: &BlockMatrix, x: &[f32], x_rows: usize, y: &mut [f32]) {
    assert_eq!(x.len(), x_rows * w.cols, "x shape");
    assert_eq!(y.len(), x_rows * w.rows, "y shape");
    let isa = Isa::detect();
    for (x, y) in x.chunks_exact(w.cols).zip(y.chunks_exact_mut(w.rows)) {
        let input = QuantizedInput::new(x);
        let row_bytes = w.cols / BLOCK * w.format.block_bytes();
        y.par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(chunk, ys)| {
                let first = chunk * ROWS_PER_TASK;
                let rows = &w.data[first * row_bytes..(first + ys.len()) * row_bytes];
                match isa {
                    // SAFETY: `Isa::detect` saw AVX2, FMA and F16C on this CPU;
                    // `rows` holds `ys.len()` rows of `row_bytes`.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => unsafe {
                        match w.format {
                            BlockFormat::Q4_1 => {
                                avx2::rows::<{ avx2::Q4_1 }>(rows, row_bytes, &input, ys)
                            }
                            BlockFormat::Q5_0 => {
                                avx2::rows::<{ avx2::Q5_0 }>(rows, row_bytes, &input, ys)
                            }
                            BlockFormat::Q8_0 => {
                                avx2::rows::<{ avx2::Q8_0 }>(rows, row_bytes, &input, ys)
                            }
                        }
                    },
                    _ => {
                        for (r, out) in ys.iter_mut().enumerate() {
                            *out = row_dot_scalar(
                                w.format,
                                &rows[r * row_bytes..(r + 1) * row_bytes],
                                &input,
                            );
                        }
                    }
                }
            });
    }
}

/// Integer dot products block by block, in plain Rust.
pub fn row_dot_scalar(format: BlockFormat, row: &[u8], x: &QuantizedInput) -> f32 {
    let mut total = 0f32;
    for (b, block) in row.chunks_exact(format.block_bytes()).enumerate() {
        let xq = &x.values[b * BLOCK..(b + 1) * BLOCK];
        let d = f16_at(block, 0);
        match format {
            BlockFormat::Q4_1 => {
                let m = f16_at(block, 2);
                let mut sum = 0i32;
                for j in 0..16 {
                    sum += (block[4 + j] & 15) as i32 * xq[j] as i32
                        + (block[4 + j] >> 4) as i32 * xq[j + 16] as i32;
                }
                total += d * x.scales[b] * sum as f32 + m * x.scaled_sums[b];
            }
            BlockFormat::Q5_0 => {
                let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
                let mut sum = 0i32;
                for j in 0..16 {
                    let lo = ((block[6 + j] & 15) as i32 | ((((qh >> j) & 1) << 4) as i32)) - 16;
                    let hi =
                        ((block[6 + j] >> 4) as i32 | ((((qh >> (j + 16)) & 1) << 4) as i32)) - 16;
                    sum += lo * xq[j] as i32 + hi * xq[j + 16] as i32;
                }
                total += d * x.scales[b] * sum as f32;
            }
            BlockFormat::Q8_0 => {
                let sum: i32 = (0..BLOCK)
                    .map(|j| block[2 + j] as i8 as i32 * xq[j] as i32)
                    .sum();
                total += d * x.scales[b] * sum as f32;
            }
        }
    }
    total
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{QuantizedInput, BLOCK};

    /// 32 nibbles → 32 bytes: low nibbles first (weights 0..16), then high.
    #[inline(always)]
    unsafe fn nibbles(qs: *const u8) -> __m256i {
        let tmp = _mm_loadu_si128(qs as *const __m128i);
        let both =
            _mm256_insertf128_si256::<1>(_mm256_castsi128_si256(tmp), _mm_srli_epi16::<4>(tmp));
        _mm256_and_si256(both, _mm256_set1_epi8(15))
    }

    /// 32 bits → 32 bytes, 0xFF where the bit is set.
    #[inline(always)]
    unsafe fn bits(qh: u32) -> __m256i {
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
    unsafe fn f16_at(p: *const u8) -> f32 {
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

    /// Bytes per block of a format code.
    const fn block_bytes(f: u8) -> usize {
        match f {
            Q4_1 => 20,
            Q5_0 => 22,
            _ => 34,
        }
    }

    /// One block's integer dot product with the activations (8 partial sums).
    #[inline(always)]
    unsafe fn block_dot<const F: u8>(block: *const u8, xq: __m256i) -> __m256 {
        match F {
            Q4_1 => dot_u8_i8(nibbles(block.add(4)), xq),
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
    unsafe fn hsum(acc: __m256) -> f32 {
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
                if F == Q4_1 {
                    offsets[r] += f16_at(block.add(2)) * *x.scaled_sums.get_unchecked(b);
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
}
