//! What each GGUF block type holds, read two ways: [`dequantize`] is the
//! plain formula from ggml (the reference every fast path is tested
//! against), and [`unpack`] rewrites a row into folio's one *canonical* form
//! that the integer kernels multiply, whatever the file's type:
//!
//! - `u`: one unsigned byte per weight (`< 64`, so `maddubs` never saturates),
//!   or one signed byte for Q8_0 (the kernels then take the sign trick);
//! - `scales`: per 32 weights, eight f32 lanes `[s₀ ×4, s₁ ×4]`, where `s₀`
//!   scales weights 0..16 and `s₁` weights 16..32 (lane `j` of an AVX2
//!   `madd` result sums weights `4j..4j+4`, so lanes 0-3 are the first half);
//! - `biases`: per 16 weights, the constant `b` added to each.
//!
//! so that weight `i` is `s·u[i] + b`. Multiplying by 8-bit activations `q·d`
//! then needs one integer dot per 32 weights plus `Σ b·(d·Σq)` per 16, which
//! is what llama.cpp does for each type separately. K-quants' sub-block
//! scales (6-bit, or i8 for Q6_K) are folded into `s` and `b` here.
//!
//! Layouts (ggml, little endian; `QK_K = 256` weights per super-block):
//! - Q4_0, 18 B: `d, qs[16]`; `w = d·(q − 8)`, low nibbles are weights 0..16.
//! - Q4_1, 20 B: `d, m, qs[16]`; `w = d·q + m`.
//! - Q5_0, 22 B: `d, qh: u32, qs[16]`; `q = nibble | bit << 4`, `w = d·(q − 16)`.
//! - Q5_1, 24 B: `d, m, qh: u32, qs[16]`; `w = d·q + m`.
//! - Q8_0, 34 B: `d, qs: [i8; 32]`; `w = d·q`.
//! - Q4_K, 144 B: `d, dmin, scales[12], qs[128]`: eight 32-weight sub-blocks
//!   with 6-bit scale `sc` and min `m`; `w = d·sc·q − dmin·m`; sub-block
//!   `2j` is the low nibbles of `qs[32j..32j+32]`, `2j+1` the high ones.
//! - Q5_K, 176 B: `d, dmin, scales[12], qh[32], qs[128]`; as Q4_K with the
//!   fifth bit of sub-block `k` in bit `k` of `qh[l]`.
//! - Q6_K, 210 B: `ql[128], qh[64], scales: [i8; 16], d`; sixteen 16-weight
//!   sub-blocks, `w = d·sc·(q − 32)`.
//! - F32, F16, BF16: plain numbers (no canonical form: see `quant::matmul`).

use half::{bf16, f16};

use super::BlockFormat;

/// Weights per K-quant super-block.
pub const QK_K: usize = 256;

pub(crate) fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// Scale and min of K-quant sub-block `j` (ggml's `get_scale_min_k4`).
#[inline(always)]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The offset term of one K-quant super-block, in integers: each weight
/// is `d·sc·u + coef·m` with `m` constant per 16 weights, so a row's offset
/// contribution is `coef · Σ m·Σx` over the super-block. `coef` is Q4_K's
/// and Q5_K's `-dmin` (with `m` the sub-block's 6-bit min) or Q6_K's `-32·d`
/// (with `m` its signed sub-scale, as the weights are stored `q + 32`).
pub fn k_offsets(format: BlockFormat, block: &[u8]) -> (f32, [i16; 16]) {
    let mut m = [0i16; 16];
    match format {
        BlockFormat::Q4_K | BlockFormat::Q5_K => {
            for (h, v) in m.iter_mut().enumerate() {
                *v = scale_min_k4(h / 2, &block[4..16]).1 as i16;
            }
            (-f16_at(block, 2), m)
        }
        BlockFormat::Q6_K => {
            for (h, v) in m.iter_mut().enumerate() {
                *v = block[192 + h] as i8 as i16;
            }
            (-32.0 * f16_at(block, 208), m)
        }
        _ => panic!("{format:?} is not a K-quant"),
    }
}

/// One block of `format` as f32, straight from ggml's formulas.
#[inline(always)]
pub fn dequantize_block(format: BlockFormat, block: &[u8], out: &mut [f32]) {
    match format {
        BlockFormat::F32 => {
            out[0] = f32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        }
        BlockFormat::F16 => out[0] = f16_at(block, 0),
        BlockFormat::Bf16 => out[0] = bf16::from_le_bytes([block[0], block[1]]).to_f32(),
        BlockFormat::Q4_0 | BlockFormat::Q4_1 => {
            let d = f16_at(block, 0);
            let (m, qs) = match format {
                BlockFormat::Q4_0 => (-8.0 * d, &block[2..18]),
                _ => (f16_at(block, 2), &block[4..20]),
            };
            for j in 0..16 {
                out[j] = d * (qs[j] & 15) as f32 + m;
                out[j + 16] = d * (qs[j] >> 4) as f32 + m;
            }
        }
        BlockFormat::Q5_0 | BlockFormat::Q5_1 => {
            let d = f16_at(block, 0);
            let (m, at) = match format {
                BlockFormat::Q5_0 => (-16.0 * d, 2),
                _ => (f16_at(block, 2), 4),
            };
            let qh = u32::from_le_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]]);
            let qs = &block[at + 4..at + 20];
            for j in 0..16 {
                let lo = (qs[j] & 15) as u32 | (((qh >> j) & 1) << 4);
                let hi = (qs[j] >> 4) as u32 | (((qh >> (j + 16)) & 1) << 4);
                out[j] = d * lo as f32 + m;
                out[j + 16] = d * hi as f32 + m;
            }
        }
        BlockFormat::Q8_0 => {
            let d = f16_at(block, 0);
            for j in 0..32 {
                out[j] = d * block[2 + j] as i8 as f32;
            }
        }
        BlockFormat::Q4_K | BlockFormat::Q5_K => {
            let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
            let scales = &block[4..16];
            let (qh, qs) = match format {
                BlockFormat::Q4_K => (None, &block[16..144]),
                _ => (Some(&block[16..48]), &block[48..176]),
            };
            for sub in 0..8 {
                let (sc, m) = scale_min_k4(sub, scales);
                let (scale, min) = (d * sc as f32, dmin * m as f32);
                let bytes = &qs[32 * (sub / 2)..32 * (sub / 2) + 32];
                for l in 0..32 {
                    let mut q = if sub % 2 == 0 {
                        bytes[l] & 15
                    } else {
                        bytes[l] >> 4
                    };
                    if let Some(qh) = qh {
                        q |= ((qh[l] >> sub) & 1) << 4;
                    }
                    out[32 * sub + l] = scale * q as f32 - min;
                }
            }
        }
        BlockFormat::Q6_K => {
            let d = f16_at(block, 208);
            for half in 0..2 {
                let ql = &block[64 * half..64 * half + 64];
                let qh = &block[128 + 32 * half..128 + 32 * half + 32];
                let sc = &block[192 + 8 * half..192 + 8 * half + 8];
                let y = &mut out[128 * half..128 * half + 128];
                for l in 0..32 {
                    let is = l / 16;
                    let q1 = ((ql[l] & 15) | ((qh[l] & 3) << 4)) as i32 - 32;
                    let q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                    let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                    let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                    y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
                    y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
                    y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
                    y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
                }
            }
        }
    }
}

/// A row (whole blocks) as f32.
#[inline(always)]
pub fn dequantize(format: BlockFormat, row: &[u8], out: &mut [f32]) {
    let (n, size) = (format.block_weights(), format.block_bytes());
    for (block, y) in row.chunks_exact(size).zip(out.chunks_exact_mut(n)) {
        dequantize_block(format, block, y);
    }
}

/// Where one row's canonical form goes (see the module doc): `u` has one
/// byte per weight, `scales` eight lanes per 32 weights, `biases` one per 16.
pub struct CanonRow<'a> {
    /// One byte per weight (`< 64`; signed for Q8_0).
    pub u: &'a mut [u8],
    /// Eight f32 lanes per 32 weights, `[s₀ ×4, s₁ ×4]` (empty for K-quants).
    pub scales: &'a mut [f32],
    /// The constant `b` added to each weight, one per 16 weights.
    pub biases: &'a mut [f32],
    /// K-quants only (empty otherwise): sixteen i16 lanes per 32 weights.
    pub k_scales: &'a mut [i16],
    /// K-quants only (empty otherwise): the scale of each super-block.
    pub k_d: &'a mut [f32],
}

impl CanonRow<'_> {
    /// Records the scales and biases of 32-weight group `g`: halves 0 and 1.
    #[inline(always)]
    pub(crate) fn group(&mut self, g: usize, s: [f32; 2], b: [f32; 2]) {
        let lanes: &mut [f32; 8] = (&mut self.scales[8 * g..8 * g + 8])
            .try_into()
            .expect("8 lanes");
        *lanes = [s[0], s[0], s[0], s[0], s[1], s[1], s[1], s[1]];
        self.biases[2 * g] = b[0];
        self.biases[2 * g + 1] = b[1];
    }

    /// Records the integer sub-scales and the biases of 32-weight group `g`
    /// of a K-quant (its float scales are `k_d · sc`, not stored).
    #[inline(always)]
    pub(crate) fn k_group(&mut self, g: usize, sc: [i16; 2], b: [f32; 2]) {
        let lanes: &mut [i16; 16] = (&mut self.k_scales[16 * g..16 * g + 16])
            .try_into()
            .expect("16 lanes");
        lanes[..8].fill(sc[0]);
        lanes[8..].fill(sc[1]);
        self.biases[2 * g] = b[0];
        self.biases[2 * g + 1] = b[1];
    }
}

/// Rewrites one row of an integer format (whole blocks) into canonical form.
/// Plain loops: the portable path and the reference of `unpack_avx2`.
#[inline(always)]
pub fn unpack(format: BlockFormat, row: &[u8], out: &mut CanonRow) {
    let (n, size) = (format.block_weights(), format.block_bytes());
    for (b, block) in row.chunks_exact(size).enumerate() {
        let at = b * n;
        let u: &mut [u8] = &mut out.u[at..at + n];
        match format {
            BlockFormat::Q4_0 | BlockFormat::Q4_1 => {
                let d = f16_at(block, 0);
                let (m, qs) = match format {
                    BlockFormat::Q4_0 => (-8.0 * d, &block[2..18]),
                    _ => (f16_at(block, 2), &block[4..20]),
                };
                nibbles(qs, u);
                out.group(b, [d, d], [m, m]);
            }
            BlockFormat::Q5_0 | BlockFormat::Q5_1 => {
                let d = f16_at(block, 0);
                let (m, at) = match format {
                    BlockFormat::Q5_0 => (-16.0 * d, 2),
                    _ => (f16_at(block, 2), 4),
                };
                let qh =
                    u32::from_le_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]]);
                nibbles(&block[at + 4..at + 20], u);
                let u: &mut [u8; 32] = u.try_into().expect("32 bytes");
                for (j, v) in u.iter_mut().enumerate() {
                    *v |= (((qh >> j) & 1) << 4) as u8;
                }
                out.group(b, [d, d], [m, m]);
            }
            BlockFormat::Q8_0 => {
                let d = f16_at(block, 0);
                u.copy_from_slice(&block[2..34]);
                out.group(b, [d, d], [0.0, 0.0]);
            }
            BlockFormat::Q4_K | BlockFormat::Q5_K => {
                let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
                let scales = &block[4..16];
                let qs = match format {
                    BlockFormat::Q4_K => &block[16..144],
                    _ => &block[48..176],
                };
                for (pair, (bytes, u64s)) in
                    qs.chunks_exact(32).zip(u.chunks_exact_mut(64)).enumerate()
                {
                    let bytes: &[u8; 32] = bytes.try_into().expect("32 bytes");
                    let (lo, hi) = u64s.split_at_mut(32);
                    let (lo, hi): (&mut [u8; 32], &mut [u8; 32]) =
                        (lo.try_into().expect("32"), hi.try_into().expect("32"));
                    for l in 0..32 {
                        lo[l] = bytes[l] & 15;
                        hi[l] = bytes[l] >> 4;
                    }
                    if format == BlockFormat::Q5_K {
                        let qh: &[u8; 32] = block[16..48].try_into().expect("32 bytes");
                        for l in 0..32 {
                            lo[l] |= ((qh[l] >> (2 * pair)) & 1) << 4;
                            hi[l] |= ((qh[l] >> (2 * pair + 1)) & 1) << 4;
                        }
                    }
                }
                for sub in 0..8 {
                    let (sc, m) = scale_min_k4(sub, scales);
                    let bias = -dmin * m as f32;
                    out.k_group(8 * b + sub, [sc as i16, sc as i16], [bias, bias]);
                }
                out.k_d[b] = d;
            }
            BlockFormat::Q6_K => {
                let d = f16_at(block, 208);
                for half in 0..2 {
                    let ql: &[u8; 64] = block[64 * half..64 * half + 64].try_into().expect("64");
                    let qh: &[u8; 32] = block[128 + 32 * half..160 + 32 * half]
                        .try_into()
                        .expect("32");
                    let y: &mut [u8; 128] = (&mut u[128 * half..128 * half + 128])
                        .try_into()
                        .expect("128");
                    for l in 0..32 {
                        y[l] = (ql[l] & 15) | ((qh[l] & 3) << 4);
                        y[l + 32] = (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4);
                        y[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                        y[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                    }
                }
                // Group g (32 weights) of the super-block has sub-scales 2g, 2g+1.
                for g in 0..8 {
                    let sc = [block[192 + 2 * g] as i8, block[193 + 2 * g] as i8];
                    let bias = [-32.0 * d * sc[0] as f32, -32.0 * d * sc[1] as f32];
                    out.k_group(8 * b + g, [sc[0] as i16, sc[1] as i16], bias);
                }
                out.k_d[b] = d;
            }
            BlockFormat::F32 | BlockFormat::F16 | BlockFormat::Bf16 => {
                unreachable!("float formats have no canonical form")
            }
        }
    }
}

/// 16 bytes of nibble pairs → 32 values, low nibbles first.
#[inline(always)]
fn nibbles(qs: &[u8], u: &mut [u8]) {
    let qs: &[u8; 16] = qs.try_into().expect("16 bytes");
    let u: &mut [u8; 32] = u.try_into().expect("32 bytes");
    for j in 0..16 {
        u[j] = qs[j] & 15;
        u[j + 16] = qs[j] >> 4;
    }
}
