//! Matrix products straight on GGUF block-quantized weights, with no f32
//! copy of them.
//!
//! A model's matrices stay in their file's blocks (memory-mapped, see
//! [`WeightBytes`]); activations are quantized to 8 bits per 32 values and
//! each block's dot product runs on integers (AVX2 `maddubs`), scaled once
//! per 32 weights, as llama.cpp does. Two paths:
//! - [`matvec`], generation (one to a few rows): fused kernels that expand
//!   Q4_1, Q5_0 and Q8_0 blocks in registers and read each weight once;
//! - [`matmul`], every type and any number of rows: weight rows are unpacked
//!   into a canonical form ([`blocks`]) once per task and multiplied with
//!   four activation rows at a time ([`canon`]); K-quants on AVX2 are then
//!   interleaved four rows at a time ([`quad`]), which needs fewer integer
//!   multiplies and is the prompt path of K-quant models
//!   ([`fast_int8_matmul`]).
//!
//! Float matrices (F32, F16, BF16) are expanded a few rows at a time and
//! multiplied with the f32 activations.

pub mod blocks;
pub mod canon;
#[cfg(target_arch = "x86_64")]
mod fused;
#[cfg(target_arch = "x86_64")]
mod fused_k;
pub mod quad;
#[cfg(target_arch = "x86_64")]
mod unpack_avx2;

use std::sync::Arc;

use half::f16;
use rayon::prelude::*;

use crate::dot::Isa;
pub use blocks::dequantize;
use blocks::f16_at;
use fused as avx2;

/// Weights per block of the 32-weight formats (and the activation block).
pub const BLOCK: usize = 32;

/// A block type folio multiplies (ggml's names).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockFormat {
    /// Plain `f32`, 4 bytes a weight.
    F32,
    /// IEEE half precision, 2 bytes a weight.
    F16,
    /// bfloat16, 2 bytes a weight.
    Bf16,
    /// 4-bit, 32 weights per 18-byte block: `w = d·(q − 8)`.
    Q4_0,
    /// 4-bit with a min, 32 weights per 20-byte block: `w = d·q + m`.
    Q4_1,
    /// 5-bit, 32 weights per 22-byte block: `w = d·(q − 16)`.
    Q5_0,
    /// 5-bit with a min, 32 weights per 24-byte block: `w = d·q + m`.
    Q5_1,
    /// 8-bit, 32 weights per 34-byte block: `w = d·q`.
    Q8_0,
    /// 4-bit K-quant, 256 weights per 144-byte super-block.
    Q4_K,
    /// 5-bit K-quant, 256 weights per 176-byte super-block.
    Q5_K,
    /// 6-bit K-quant, 256 weights per 210-byte super-block.
    Q6_K,
}

impl BlockFormat {
    /// Every supported format, for error messages and tests.
    pub const ALL: [BlockFormat; 11] = [
        BlockFormat::F32,
        BlockFormat::F16,
        BlockFormat::Bf16,
        BlockFormat::Q4_0,
        BlockFormat::Q4_1,
        BlockFormat::Q5_0,
        BlockFormat::Q5_1,
        BlockFormat::Q8_0,
        BlockFormat::Q4_K,
        BlockFormat::Q5_K,
        BlockFormat::Q6_K,
    ];

    /// Bytes of one block.
    pub fn block_bytes(self) -> usize {
        match self {
            BlockFormat::F32 => 4,
            BlockFormat::F16 | BlockFormat::Bf16 => 2,
            BlockFormat::Q4_0 => 18,
            BlockFormat::Q4_1 => 20,
            BlockFormat::Q5_0 => 22,
            BlockFormat::Q5_1 => 24,
            BlockFormat::Q8_0 => 34,
            BlockFormat::Q4_K => 144,
            BlockFormat::Q5_K => 176,
            BlockFormat::Q6_K => 210,
        }
    }

    /// Weights in one block.
    pub fn block_weights(self) -> usize {
        match self {
            BlockFormat::F32 | BlockFormat::F16 | BlockFormat::Bf16 => 1,
            BlockFormat::Q4_K | BlockFormat::Q5_K | BlockFormat::Q6_K => blocks::QK_K,
            _ => BLOCK,
        }
    }

    /// A K-quant: 256-weight super-blocks with integer sub-block scales.
    pub fn is_k_quant(self) -> bool {
        self.block_weights() == blocks::QK_K
    }

    /// Plain numbers rather than integer blocks.
    pub fn is_float(self) -> bool {
        self.block_weights() == 1
    }

    /// Bytes of a row of `cols` weights (`None` when `cols` is not a whole
    /// number of blocks, or a multiple of 32 for the integer kernels).
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        let n = self.block_weights();
        (cols.is_multiple_of(n) && (self.is_float() || cols.is_multiple_of(BLOCK)))
            .then(|| cols / n * self.block_bytes())
    }
}

/// Bytes a matrix lives in: a range of a memory-mapped file (or of any
/// buffer), shared without copying by every matrix that points into it.
#[derive(Clone)]
pub struct WeightBytes {
    owner: Arc<dyn AsRef<[u8]> + Send + Sync>,
    start: usize,
    len: usize,
}

impl WeightBytes {
    /// `len` bytes of `owner` from `start`; `None` if they run past its end.
    pub fn new(
        owner: Arc<dyn AsRef<[u8]> + Send + Sync>,
        start: usize,
        len: usize,
    ) -> Option<Self> {
        let end = start.checked_add(len)?;
        ((*owner).as_ref().len() >= end).then_some(Self { owner, start, len })
    }

    /// Bytes the process owns (tests, requantized copies).
    pub fn owned(data: Vec<u8>) -> Self {
        let len = data.len();
        Self {
            owner: Arc::new(data),
            start: 0,
            len,
        }
    }

    /// The bytes themselves, borrowed from the owner.
    pub fn as_slice(&self) -> &[u8] {
        &(*self.owner).as_ref()[self.start..self.start + self.len]
    }
}

impl std::fmt::Debug for WeightBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WeightBytes({} bytes at {})", self.len, self.start)
    }
}

/// A `[rows, cols]` matrix stored as GGUF blocks, row after row.
#[derive(Debug, Clone)]
pub struct BlockMatrix {
    /// How the matrix's blocks are encoded.
    pub format: BlockFormat,
    /// Output features: one row of blocks each.
    pub rows: usize,
    /// Input features (weights per row), a whole number of blocks.
    pub cols: usize,
    data: WeightBytes,
}

impl BlockMatrix {
    /// Checks that `data` holds exactly `rows × cols` weights of `format`.
    pub fn new(
        format: BlockFormat,
        rows: usize,
        cols: usize,
        data: Vec<u8>,
    ) -> Result<Self, String> {
        Self::from_bytes(format, rows, cols, WeightBytes::owned(data))
    }

    /// As [`new`](Self::new), over bytes shared with others (a mapped file).
    pub fn from_bytes(
        format: BlockFormat,
        rows: usize,
        cols: usize,
        data: WeightBytes,
    ) -> Result<Self, String> {
        let row_bytes = format.row_bytes(cols).ok_or_else(|| {
            format!(
                "{format:?} rows of {cols} weights are not whole blocks of {}",
                format.block_weights().max(BLOCK)
            )
        })?;
        let want = rows.checked_mul(row_bytes).ok_or("matrix size overflows")?;
        if data.len != want {
            return Err(format!(
                "{format:?} {rows}x{cols} needs {want} bytes, got {}",
                data.len
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
        Self::new(BlockFormat::Q8_0, rows, cols, data)
    }

    /// The raw blocks, row after row.
    pub fn data(&self) -> &[u8] {
        self.data.as_slice()
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.cols / self.format.block_weights() * self.format.block_bytes()
    }

    fn row(&self, r: usize) -> &[u8] {
        let bytes = self.row_bytes();
        &self.data()[r * bytes..(r + 1) * bytes]
    }

    /// Row `r` as f32 (embedding look-ups, and the tests' reference).
    pub fn dequantize_row(&self, r: usize) -> Vec<f32> {
        let mut out = vec![0f32; self.cols];
        dequantize(self.format, self.row(r), &mut out);
        out
    }

    /// The whole matrix as f32, `[rows, cols]` (the GPU upload).
    pub fn dequantize_all(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        self.dequantize_rows(0, &mut out);
        out
    }

    /// Rows `first ..` as f32 into `out` (as many rows as it holds), in
    /// parallel and vectorised: the tiles of the f32 prompt-processing path.
    pub fn dequantize_rows(&self, first: usize, out: &mut [f32]) {
        let bytes = self.row_bytes();
        let n = out.len() / self.cols;
        assert!(first + n <= self.rows, "rows past the matrix");
        let src = &self.data()[first * bytes..(first + n) * bytes];
        let isa = Isa::detect();
        out.par_chunks_mut(self.cols)
            .zip(src.par_chunks(bytes))
            .for_each(|(y, row)| match isa {
                // SAFETY: `Isa::detect` saw AVX2 and FMA.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2Fma => unsafe { dequantize_avx2(self.format, row, y) },
                _ => dequantize(self.format, row, y),
            });
    }
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

/// Whether [`matvec`] has a fused kernel for `format` (it reads the
/// blocks in place, the fastest for generation).
pub fn has_fused_matvec(format: BlockFormat) -> bool {
    matches!(
        format,
        BlockFormat::Q4_0
            | BlockFormat::Q4_1
            | BlockFormat::Q5_0
            | BlockFormat::Q5_1
            | BlockFormat::Q8_0
            | BlockFormat::Q4_K
            | BlockFormat::Q5_K
            | BlockFormat::Q6_K
    )
}

/// Whether [`matmul`] on `format` is faster than dequantizing f32 tiles for
/// gemm on this CPU: the K-quants' interleaved AVX2 kernel ([`quad`]) is
/// (BENCHMARKS.md, "Interleaved K-quant prompt kernel"); the other block
/// types' canonical kernels are not.
pub fn fast_int8_matmul(format: BlockFormat) -> bool {
    format.is_k_quant() && Isa::detect() == Isa::Avx2Fma
}

/// [`matvec`] for the K-quants: each activation row quantized per 256
/// values, each weight row expanded in registers (`fused_k`).
#[cfg(target_arch = "x86_64")]
fn matvec_k(w: &BlockMatrix, x: &[f32], y: &mut [f32]) {
    let q = QuantizedRows::grouped(x, w.cols, blocks::QK_K);
    let row_bytes = w.row_bytes();
    for (t, y) in y.chunks_exact_mut(w.rows).enumerate() {
        let (xq, xd, sums) = (q.values(t), q.scales(t), q.half_sums(t));
        y.par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(chunk, ys)| {
                let first = chunk * ROWS_PER_TASK;
                for (r, out) in ys.iter_mut().enumerate() {
                    let at = (first + r) * row_bytes;
                    let row = &w.data()[at..at + row_bytes];
                    // SAFETY: `matvec` checked AVX2, FMA and F16C; the row and
                    // the activations cover the same whole super-blocks.
                    *out = unsafe { fused_k::row_dot(w.format, row, xq, xd, sums) };
                }
            });
    }
}

/// Activation rows quantized to 8 bits, one scale per `group` values (32
/// for the 32-weight block types; 256 for K-quants, whose sub-block scales
/// are integers: a whole super-block then sums in integers, as llama.cpp's
/// Q8_K does), with `d·Σq` per 16 values for the bias terms.
pub struct QuantizedRows {
    cols: usize,
    group: usize,
    values: Vec<i8>,
    scales: Vec<f32>,
    half_sums: Vec<f32>,
    /// `Σq` per 16 values, in integers (at most 16·127 in magnitude).
    int_sums: Vec<i16>,
}

impl QuantizedRows {
    /// Quantizes `[rows, cols]` `x` row by row, per 32 values (`cols` a
    /// multiple of 32).
    pub fn new(x: &[f32], cols: usize) -> Self {
        Self::grouped(x, cols, BLOCK)
    }

    /// As [`new`](Self::new) with one scale per `group` values (32 or 256;
    /// `cols` a multiple of it).
    pub fn grouped(x: &[f32], cols: usize, group: usize) -> Self {
        let mut values = vec![0i8; x.len()];
        let mut scales = vec![0f32; x.len() / group];
        let mut half_sums = vec![0f32; x.len() / 16];
        let mut int_sums = vec![0i16; x.len() / 16];
        // Values per parallel task: a whole number of groups of 32 or 256.
        let per_task = 2048;
        values
            .par_chunks_mut(per_task)
            .zip(scales.par_chunks_mut(per_task / group))
            .zip(half_sums.par_chunks_mut(per_task / 16))
            .zip(int_sums.par_chunks_mut(per_task / 16))
            .zip(x.par_chunks(per_task))
            .for_each(|((((q, d), sums), int_sums), x)| {
                for (b, block) in x.chunks_exact(group).enumerate() {
                    let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let scale = amax / 127.0;
                    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                    for (h, half) in block.chunks_exact(16).enumerate() {
                        let mut sum = 0i32;
                        for (j, v) in half.iter().enumerate() {
                            let v = (v * inv).round() as i8;
                            q[b * group + 16 * h + j] = v;
                            sum += v as i32;
                        }
                        sums[b * group / 16 + h] = scale * sum as f32;
                        int_sums[b * group / 16 + h] = sum as i16;
                    }
                    d[b] = scale;
                }
            });
        Self {
            cols,
            group,
            values,
            scales,
            half_sums,
            int_sums,
        }
    }

    /// Values per scale (32 or 256).
    pub fn group(&self) -> usize {
        self.group
    }

    /// Row `r`'s 8-bit values.
    pub fn values(&self, r: usize) -> &[i8] {
        &self.values[r * self.cols..(r + 1) * self.cols]
    }

    /// Row `r`'s scale per group of values.
    pub fn scales(&self, r: usize) -> &[f32] {
        let n = self.cols / self.group;
        &self.scales[r * n..(r + 1) * n]
    }

    /// Row `r`'s `d·Σq` per 16 values.
    pub fn half_sums(&self, r: usize) -> &[f32] {
        &self.half_sums[r * self.cols / 16..(r + 1) * self.cols / 16]
    }

    /// Row `r`'s `Σq` per 16 values (the integer K-quant offset terms).
    pub fn int_sums(&self, r: usize) -> &[i16] {
        &self.int_sums[r * self.cols / 16..(r + 1) * self.cols / 16]
    }
}

/// The input of [`matmul`]: `[rows, cols]` f32 activations, quantized on
/// first use and then shared by every matrix they multiply (Q, K and V).
pub struct Activations<'a> {
    /// The activations, row-major `[rows, cols]`.
    pub x: &'a [f32],
    /// Activation rows (tokens in this chunk).
    pub rows: usize,
    /// Values per row: the `cols` of every matrix multiplied.
    pub cols: usize,
    quantized: std::sync::OnceLock<QuantizedRows>,
    quantized_k: std::sync::OnceLock<QuantizedRows>,
}

impl<'a> Activations<'a> {
    /// `[rows, cols]` activations, not yet quantized.
    pub fn new(x: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(x.len(), rows * cols, "activation shape");
        Self {
            x,
            rows,
            cols,
            quantized: std::sync::OnceLock::new(),
            quantized_k: std::sync::OnceLock::new(),
        }
    }

    /// The 8-bit rows for `format` (made on the first call): one scale per
    /// 256 values for K-quants, per 32 for the other types.
    pub fn quantized(&self, format: BlockFormat) -> &QuantizedRows {
        if format.is_k_quant() {
            self.quantized_k
                .get_or_init(|| QuantizedRows::grouped(self.x, self.cols, blocks::QK_K))
        } else {
            self.quantized
                .get_or_init(|| QuantizedRows::new(self.x, self.cols))
        }
    }
}

/// A raw pointer to the output that tasks writing disjoint columns share.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: every task writes only its own output columns (see `matmul`).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The element `i` of the output (a method, so closures capture the
    /// whole `Sync` wrapper rather than its raw pointer field).
    ///
    /// # Safety
    /// `i` must be inside the output.
    unsafe fn at(&self, i: usize) -> *mut f32 {
        self.0.add(i)
    }
}

/// Bytes of canonical rows one task unpacks at a time (fits L2 beside the
/// activation rows it sweeps).
const TASK_CANON_BYTES: usize = 96 * 1024;

/// `y[t, offset + n] = Σ_k W[n, k] · x[t, k]` for every activation row `t`
/// and weight row `n`: `y` is `[x.rows, y_cols]`, and this matrix fills
/// columns `offset .. offset + w.rows` (so stacked projections write into
/// one output). Parallel over weight rows.
pub fn matmul(w: &BlockMatrix, x: &Activations, y: &mut [f32], y_cols: usize, offset: usize) {
    assert_eq!(x.cols, w.cols, "x columns");
    assert!(offset + w.rows <= y_cols, "output columns");
    assert_eq!(y.len(), x.rows * y_cols, "y shape");
    let isa = Isa::detect();
    let row_bytes = w.row_bytes();
    let float = w.format.is_float();
    let per_row = if float { 4 * w.cols } else { 9 * w.cols / 4 };
    let chunk = (TASK_CANON_BYTES / per_row).clamp(1, 64);
    let out = SharedOut(y.as_mut_ptr());
    let quantized = (!float).then(|| x.quantized(w.format));
    (0..w.rows.div_ceil(chunk)).into_par_iter().for_each(|c| {
        let first = c * chunk;
        let n = chunk.min(w.rows - first);
        let src = &w.data()[first * row_bytes..(first + n) * row_bytes];
        // SAFETY: `t < x.rows` and `offset + first + r < y_cols`, so the index
        // is inside `y`; this task alone owns columns `first .. first + n`.
        let write = |t: usize, r: usize, v: f32| unsafe {
            *out.at(t * y_cols + offset + first + r) = v;
        };
        match quantized {
            Some(q) => canon::BUFFER.with_borrow_mut(|buf| {
                buf.fill(w.format, src, row_bytes, w.cols, n, isa);
                // K-quants on AVX2: whole groups of four rows interleaved.
                let groups = if w.format.is_k_quant() && isa == Isa::Avx2Fma {
                    n / quad::QUAD
                } else {
                    0
                };
                if groups > 0 {
                    quad::BUFFER.with_borrow_mut(|quads| {
                        quads.fill(w.format, buf, src, row_bytes, groups);
                        let mut tile = [[0f32; quad::QUAD]; quad::ROWS];
                        for t0 in (0..x.rows).step_by(quad::ROWS) {
                            let tn = quad::ROWS.min(x.rows - t0);
                            for g in 0..groups {
                                quads.dot(g, w.format, q, t0..t0 + tn, &mut tile);
                                for (i, values) in tile[..tn].iter().enumerate() {
                                    for (r, v) in values.iter().enumerate() {
                                        write(t0 + i, quad::QUAD * g + r, *v);
                                    }
                                }
                            }
                        }
                    });
                }
                let mut tile = [0f32; canon::ROW_BLOCK];
                // Activation rows outside, weight rows inside: the task's
                // canonical rows stay in cache while four activation rows
                // at a time stream past them once.
                for t0 in (0..x.rows).step_by(canon::ROW_BLOCK) {
                    let tn = canon::ROW_BLOCK.min(x.rows - t0);
                    for r in quad::QUAD * groups..n {
                        canon::dot_rows(buf, r, w.format, q, t0..t0 + tn, &mut tile, isa);
                        for (i, v) in tile[..tn].iter().enumerate() {
                            write(t0 + i, r, *v);
                        }
                    }
                }
            }),
            None => {
                let mut rows = vec![0f32; n * w.cols];
                for (r, row) in rows.chunks_exact_mut(w.cols).enumerate() {
                    dequantize(w.format, &src[r * row_bytes..(r + 1) * row_bytes], row);
                }
                for t in 0..x.rows {
                    let xt = &x.x[t * w.cols..(t + 1) * w.cols];
                    for (r, row) in rows.chunks_exact(w.cols).enumerate() {
                        write(t, r, float_dot(row, xt, isa));
                    }
                }
            }
        }
    });
}

/// ggml's formulas compiled with AVX2, which LLVM vectorises.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dequantize_avx2(format: BlockFormat, row: &[u8], out: &mut [f32]) {
    dequantize(format, row, out)
}

fn float_dot(a: &[f32], b: &[f32], isa: Isa) -> f32 {
    match isa {
        // SAFETY: AVX2 and FMA were detected.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => unsafe { float_dot_avx2(a, b) },
        _ => crate::dot::dot::<false>(a, b),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn float_dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    crate::dot::dot::<true>(a, b)
}

/// Output rows per parallel task.
const ROWS_PER_TASK: usize = 64;

/// `y = W · x` for each of `x_rows` input rows (`x` is `[x_rows, cols]`,
/// `y` is `[x_rows, rows]`), parallel over output rows.
/// Formats without a fused kernel go through [`matmul`].
pub fn matvec(w: &BlockMatrix, x: &[f32], x_rows: usize, y: &mut [f32]) {
    assert_eq!(x.len(), x_rows * w.cols, "x shape");
    assert_eq!(y.len(), x_rows * w.rows, "y shape");
    let isa = Isa::detect();
    if !has_fused_matvec(w.format) || isa != Isa::Avx2Fma {
        let x = Activations::new(x, x_rows, w.cols);
        matmul(w, &x, y, w.rows, 0);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if w.format.is_k_quant() {
        matvec_k(w, x, y);
        return;
    }
    for (x, y) in x.chunks_exact(w.cols).zip(y.chunks_exact_mut(w.rows)) {
        let input = QuantizedInput::new(x);
        let row_bytes = w.cols / BLOCK * w.format.block_bytes();
        y.par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(chunk, ys)| {
                let first = chunk * ROWS_PER_TASK;
                let rows = &w.data()[first * row_bytes..(first + ys.len()) * row_bytes];
                match isa {
                    // SAFETY: `Isa::detect` saw AVX2, FMA and F16C on this CPU;
                    // `rows` holds `ys.len()` rows of `row_bytes`.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => unsafe {
                        match w.format {
                            BlockFormat::Q4_0 => {
                                avx2::rows::<{ avx2::Q4_0 }>(rows, row_bytes, &input, ys)
                            }
                            BlockFormat::Q5_1 => {
                                avx2::rows::<{ avx2::Q5_1 }>(rows, row_bytes, &input, ys)
                            }
                            BlockFormat::Q4_1 => {
                                avx2::rows::<{ avx2::Q4_1 }>(rows, row_bytes, &input, ys)
                            }
                            BlockFormat::Q5_0 => {
                                avx2::rows::<{ avx2::Q5_0 }>(rows, row_bytes, &input, ys)
                            }
                            _ => avx2::rows::<{ avx2::Q8_0 }>(rows, row_bytes, &input, ys),
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

/// Integer dot products block by block, in plain Rust (the fused kernels'
/// reference); other formats take the dequantized row.
pub fn row_dot_scalar(format: BlockFormat, row: &[u8], x: &QuantizedInput) -> f32 {
    if !has_fused_matvec(format) {
        let mut w = vec![0f32; x.values.len()];
        dequantize(format, row, &mut w);
        return w
            .iter()
            .enumerate()
            .map(|(i, w)| w * x.values[i] as f32 * x.scales[i / BLOCK])
            .sum();
    }
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
            BlockFormat::Q4_0 => {
                let mut sum = 0i32;
                for j in 0..16 {
                    sum += ((block[2 + j] & 15) as i32 - 8) * xq[j] as i32
                        + ((block[2 + j] >> 4) as i32 - 8) * xq[j + 16] as i32;
                }
                total += d * x.scales[b] * sum as f32;
            }
            BlockFormat::Q5_1 => {
                let m = f16_at(block, 2);
                let qh = u32::from_le_bytes([block[4], block[5], block[6], block[7]]);
                let mut sum = 0i32;
                for j in 0..16 {
                    let lo = (block[8 + j] & 15) as i32 | ((((qh >> j) & 1) << 4) as i32);
                    let hi = (block[8 + j] >> 4) as i32 | ((((qh >> (j + 16)) & 1) << 4) as i32);
                    sum += lo * xq[j] as i32 + hi * xq[j + 16] as i32;
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
            _ => {
                let sum: i32 = (0..BLOCK)
                    .map(|j| block[2 + j] as i8 as i32 * xq[j] as i32)
                    .sum();
                total += d * x.scales[b] * sum as f32;
            }
        }
    }
    total
}
