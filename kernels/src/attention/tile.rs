//! The inner loop shared by [`flash`](super::flash) and
//! [`sparse`](super::sparse): a tile of query rows (pre-scaled, packed) meets
//! one block of at most [`BC`] keys and values, FlashAttention style:
//! scores `S = Q·Kᵀ`, an online-softmax update of each row's running max `m`
//! and sum `l` (rescaling the accumulator when the max grows), then
//! `acc += P·V`. Nothing here grows with the sequence length.
//!
//! The micro-kernels keep a `ROWS × 16` block of accumulators in registers
//! (fixed-size arrays that LLVM maps onto AVX2 registers) so that each loaded
//! key or value vector feeds several rows. Head dimensions must be multiples
//! of 16.

use crate::dot::madd;

/// Keys per block: a 64×64 block of keys or values is 16 KiB, so at
/// `head_dim` 64 the packed keys, the value rows and a few query rows fit in
/// L1 and a whole tile in L2.
pub(super) const BC: usize = 64;
/// Lanes of one accumulator row of the micro-kernels (two AVX2 registers).
const W: usize = 16;
/// Tiles with at least this many rows transpose each key block so that `Q·Kᵀ`
/// is a register-blocked product; smaller tiles (decode, sparse rows) use dot
/// products, as the transpose would cost more than it saves.
pub(super) const PACK_ROWS: usize = 16;

/// Per-worker state of one tile: queries, running softmax statistics and the
/// unnormalised output of `rows` query rows, plus scratch for one key block.
pub(super) struct Tile {
    pub d: usize,
    pub rows: usize,
    /// `rows × d` queries, already multiplied by the softmax scale.
    pub q: Vec<f32>,
    /// Row `r` may attend to keys `0..limit[r]` (the causal mask).
    pub limit: Vec<usize>,
    /// Running max of each row's scores.
    pub m: Vec<f32>,
    /// Running sum of `exp(score - m)` of each row.
    pub l: Vec<f32>,
    /// `rows × d` running `Σ exp(score - m)·v`.
    pub acc: Vec<f32>,
    /// `rows × BC` scores, then probabilities, of the current block.
    s: Vec<f32>,
    /// `d × BC` transposed keys of the current block (packed path only).
    kt: Vec<f32>,
}

impl Tile {
    /// Scratch for tiles of up to `max_rows` rows of dimension `d`.
    pub fn new(max_rows: usize, d: usize) -> Tile {
        assert!(
            d.is_multiple_of(W),
            "head_dim {d} must be a multiple of {W}"
        );
        Tile {
            d,
            rows: 0,
            q: vec![0.0; max_rows * d],
            limit: vec![0; max_rows],
            m: vec![f32::NEG_INFINITY; max_rows],
            l: vec![0.0; max_rows],
            acc: vec![0.0; max_rows * d],
            s: vec![0.0; max_rows * BC],
            kt: vec![0.0; d * BC],
        }
    }

    /// Starts a tile of `rows` rows; the caller then fills `q` and `limit`.
    pub fn reset(&mut self, rows: usize) {
        self.rows = rows;
        self.m[..rows].fill(f32::NEG_INFINITY);
        self.l[..rows].fill(0.0);
        self.acc[..rows * self.d].fill(0.0);
    }

    /// Row `r`'s output `acc / l` into `dst` (zeros if it saw no key).
    pub fn write_row(&self, r: usize, dst: &mut [f32]) {
        let inv = if self.l[r] > 0.0 {
            1.0 / self.l[r]
        } else {
            0.0
        };
        for (o, a) in dst.iter_mut().zip(&self.acc[r * self.d..(r + 1) * self.d]) {
            *o = a * inv;
        }
    }
}

/// One block of keys and values of one KV head in the cache.
pub(super) struct KvBlock<'a> {
    pub k: &'a [f32],
    pub v: &'a [f32],
    /// Floats between consecutive positions (`n_kv_heads · head_dim`).
    pub kv_row: usize,
    /// Offset of the KV head inside a position.
    pub off: usize,
    /// First key position of the block.
    pub j0: usize,
    /// Keys in the block, at most [`BC`].
    pub n: usize,
}

/// Folds one key block into the tile. `packed` picks the transposed-key
/// product (large tiles) over dot products (small ones).
#[inline(always)]
pub(super) fn attend_block<const FMA: bool>(t: &mut Tile, b: &KvBlock, packed: bool) {
    debug_assert!(b.n > 0 && b.n <= BC);
    let rows = t.rows;
    if packed {
        pack_keys(&mut t.kt, b, t.d);
        let chunks = b.n.div_ceil(W);
        let mut r0 = 0;
        while r0 + 4 <= rows {
            qk_micro::<FMA, 4>(t, r0, chunks);
            r0 += 4;
        }
        match rows - r0 {
            3 => qk_micro::<FMA, 3>(t, r0, chunks),
            2 => qk_micro::<FMA, 2>(t, r0, chunks),
            1 => qk_micro::<FMA, 1>(t, r0, chunks),
            _ => {}
        }
    } else {
        qk_dots::<FMA>(t, b);
    }
    for r in 0..rows {
        softmax_update::<FMA>(t, r, b);
    }
    let mut r0 = 0;
    while r0 + 4 <= rows {
        pv_micro::<FMA, 4>(t, b, r0);
        r0 += 4;
    }
    match rows - r0 {
        3 => pv_micro::<FMA, 3>(t, b, r0),
        2 => pv_micro::<FMA, 2>(t, b, r0),
        1 => pv_micro::<FMA, 1>(t, b, r0),
        _ => {}
    }
}

/// `kt[c][j] = key_j[c]`, zero-padded to a whole number of lanes.
#[inline(always)]
fn pack_keys(kt: &mut [f32], b: &KvBlock, d: usize) {
    for j in 0..b.n {
        let key = &b.k[(b.j0 + j) * b.kv_row + b.off..][..d];
        for (c, x) in key.iter().enumerate() {
            kt[c * BC + j] = *x;
        }
    }
    let padded = b.n.div_ceil(W) * W;
    if padded > b.n {
        for c in 0..d {
            kt[c * BC + b.n..c * BC + padded].fill(0.0);
        }
    }
}

/// Scores of rows `r0..r0 + ROWS` against `chunks × 16` packed keys.
#[inline(always)]
fn qk_micro<const FMA: bool, const ROWS: usize>(t: &mut Tile, r0: usize, chunks: usize) {
    let d = t.d;
    let q = &t.q[r0 * d..(r0 + ROWS) * d];
    for w in 0..chunks {
        let mut acc = [[0f32; W]; ROWS];
        for c in 0..d {
            let kv: &[f32; W] = t.kt[c * BC + w * W..][..W].try_into().unwrap();
            for r in 0..ROWS {
                let qv = q[r * d + c];
                for x in 0..W {
                    acc[r][x] = madd::<FMA>(qv, kv[x], acc[r][x]);
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            t.s[(r0 + r) * BC + w * W..][..W].copy_from_slice(a);
        }
    }
}

/// Scores of all rows by dot products, four keys at a time (independent
/// accumulator chains).
#[inline(always)]
fn qk_dots<const FMA: bool>(t: &mut Tile, b: &KvBlock) {
    let d = t.d;
    let mut j = 0;
    while j < b.n {
        let take = (b.n - j).min(4);
        let base = (b.j0 + j) * b.kv_row + b.off;
        // Short groups reuse the last key; the extra scores are not stored.
        let k0 = &b.k[base..][..d];
        let k1 = &b.k[base + b.kv_row * (take > 1) as usize..][..d];
        let k2 = &b.k[base + b.kv_row * 2 * (take > 2) as usize..][..d];
        let k3 = &b.k[base + b.kv_row * 3 * (take > 3) as usize..][..d];
        for r in 0..t.rows {
            let qr = &t.q[r * d..(r + 1) * d];
            let mut acc = [[0f32; 8]; 4];
            for c in (0..d).step_by(8) {
                let qc: &[f32; 8] = qr[c..c + 8].try_into().unwrap();
                let a: &[f32; 8] = k0[c..c + 8].try_into().unwrap();
                let bb: &[f32; 8] = k1[c..c + 8].try_into().unwrap();
                let cc: &[f32; 8] = k2[c..c + 8].try_into().unwrap();
                let dd: &[f32; 8] = k3[c..c + 8].try_into().unwrap();
                for x in 0..8 {
                    acc[0][x] = madd::<FMA>(qc[x], a[x], acc[0][x]);
                    acc[1][x] = madd::<FMA>(qc[x], bb[x], acc[1][x]);
                    acc[2][x] = madd::<FMA>(qc[x], cc[x], acc[2][x]);
                    acc[3][x] = madd::<FMA>(qc[x], dd[x], acc[3][x]);
                }
            }
            let s = &mut t.s[r * BC + j..r * BC + j + take];
            for (o, a) in s.iter_mut().zip(&acc) {
                *o = hsum8(a);
            }
        }
        j += take;
    }
}

#[inline(always)]
fn hsum8(a: &[f32; 8]) -> f32 {
    let b = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (b[0] + b[2]) + (b[1] + b[3])
}

/// Online softmax for row `r`: new max, probabilities in place of the
/// scores (0 for masked keys), rescaled running sum and accumulator.
#[inline(always)]
fn softmax_update<const FMA: bool>(t: &mut Tile, r: usize, b: &KvBlock) {
    let nv = t.limit[r].saturating_sub(b.j0).min(b.n);
    let s = &mut t.s[r * BC..r * BC + b.n];
    if nv == 0 {
        s.fill(0.0);
        return;
    }
    let (live, masked) = s.split_at_mut(nv);
    masked.fill(0.0);
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = live.chunks_exact(8);
    for ch in &mut chunks {
        for x in 0..8 {
            // Not `f32::max`: its NaN rules cost blends; scores are finite.
            lanes[x] = if ch[x] > lanes[x] { ch[x] } else { lanes[x] };
        }
    }
    let mut mx = f32::NEG_INFINITY;
    for x in chunks.remainder().iter().chain(&lanes) {
        mx = mx.max(*x);
    }
    let m_old = t.m[r];
    let m_new = m_old.max(mx);
    // A plain loop, which the loop vectoriser handles (float-to-int casts
    // inside `exp_neg` defeat the SLP vectoriser on 8-lane arrays).
    for p in live.iter_mut() {
        *p = exp_neg::<FMA>(*p - m_new);
    }
    let mut sums = [0f32; 8];
    let mut chunks = live.chunks_exact(8);
    for ch in &mut chunks {
        for x in 0..8 {
            sums[x] += ch[x];
        }
    }
    let mut sum = hsum8(&sums);
    for p in chunks.remainder() {
        sum += *p;
    }
    if m_new > m_old {
        // m_old = -inf on the first block: alpha underflows to ~0 on zeros.
        let alpha = exp_neg::<FMA>(m_old - m_new);
        t.l[r] *= alpha;
        for a in &mut t.acc[r * t.d..(r + 1) * t.d] {
            *a *= alpha;
        }
    }
    t.l[r] += sum;
    t.m[r] = m_new;
}

/// `acc[r0..r0 + ROWS] += P · V` over the block's keys, 16 columns at a time.
#[inline(always)]
fn pv_micro<const FMA: bool, const ROWS: usize>(t: &mut Tile, b: &KvBlock, r0: usize) {
    let d = t.d;
    let s = &t.s[r0 * BC..(r0 + ROWS) * BC];
    let n = b.n.min(BC);
    for cc in (0..d).step_by(W) {
        let mut a = [[0f32; W]; ROWS];
        for (r, ar) in a.iter_mut().enumerate() {
            ar.copy_from_slice(&t.acc[(r0 + r) * d + cc..][..W]);
        }
        for j in 0..n {
            let vr: &[f32; W] = b.v[(b.j0 + j) * b.kv_row + b.off + cc..][..W]
                .try_into()
                .unwrap();
            for r in 0..ROWS {
                let p = s[r * BC + j];
                for x in 0..W {
                    a[r][x] = madd::<FMA>(p, vr[x], a[r][x]);
                }
            }
        }
        for (r, ar) in a.iter().enumerate() {
            t.acc[(r0 + r) * d + cc..][..W].copy_from_slice(ar);
        }
    }
}

/// [`crate::dot::exp_neg`] with `2^n` built by integer adds and shifts
/// instead of a saturating `as i32` cast, which LLVM scalarises (it cost a
/// third of flash's time); same range reduction and polynomial, same error.
/// Also used by the split-K merge so both agree bit for bit.
#[inline(always)]
pub(super) fn exp_neg<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    let x = x.max(-87.0);
    let n = (x * LOG2E + MAGIC) - MAGIC;
    let r = madd::<FMA>(n, -LN2_LO, madd::<FMA>(n, -LN2_HI, x));
    let mut p = 1.0 / 720.0;
    p = madd::<FMA>(p, r, 1.0 / 120.0);
    p = madd::<FMA>(p, r, 1.0 / 24.0);
    p = madd::<FMA>(p, r, 1.0 / 6.0);
    p = madd::<FMA>(p, r, 0.5);
    p = madd::<FMA>(p, r, 1.0);
    p = madd::<FMA>(p, r, 1.0);
    // n + 127 in 0..=127 lands in the low mantissa bits of `biased`; shifting
    // by 23 moves it into the exponent field and drops the rest.
    let biased = n + (MAGIC + 127.0);
    p * f32::from_bits(biased.to_bits() << 23)
}

/// A raw view of the output so that parallel tasks can each write their own
/// disjoint (row, head) slices of `[q_len, n_heads, d]`, which are strided
/// and so cannot be split off with safe slice methods.
#[derive(Clone, Copy)]
pub(super) struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: only `slice` touches the pointer, and its callers guarantee that
// concurrent slices are disjoint.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// Wraps `out`, which must outlive every use of the view.
    pub fn new(out: &mut [f32]) -> SharedOut {
        SharedOut {
            ptr: out.as_mut_ptr(),
            len: out.len(),
        }
    }

    /// `out[start..start + len]`.
    ///
    /// # Safety
    /// No other live slice from this view may overlap it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start + len <= self.len, "slice beyond the output");
        // SAFETY: in bounds (checked), disjoint (the caller's promise).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}
