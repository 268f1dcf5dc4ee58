//! Host-side bookkeeping of the GPU forward pass, kept free of any device
//! call so that it is unit-tested on machines without a GPU: the bf16
//! conversion of weights, the row-major to cuBLAS (column-major) mapping of
//! every matrix product, the sizes of per-chunk buffers, and the growth of
//! the device KV cache.

use anyhow::{bail, Result};
use half::bf16;
use rayon::prelude::*;

use crate::llm::ModelConfig;

/// Threads per block of the glue kernels in `model.cu` (one thread per element).
pub const GLUE_THREADS: u32 = 256;

/// Rounds f32 values to bf16 (round to nearest, ties to even; NaN stays NaN)
/// and returns the raw bits, the form the device kernels and cuBLAS take.
/// Parallel: the larger models hold over a billion weights.
pub fn to_bf16_bits(x: &[f32]) -> Vec<u16> {
    let mut out = vec![0u16; x.len()];
    out.par_chunks_mut(1 << 16)
        .zip(x.par_chunks(1 << 16))
        .for_each(|(o, x)| {
            for (o, &v) in o.iter_mut().zip(x) {
                *o = bf16::from_f32(v).to_bits();
            }
        });
    out
}

/// The inverse of [`to_bf16_bits`], for tests and checks.
pub fn from_bf16_bits(x: &[u16]) -> Vec<f32> {
    x.iter().map(|&b| bf16::from_bits(b).to_f32()).collect()
}

/// Arguments of one `cublasGemmEx` call computing, in row-major terms,
/// `Y[rows, out] = alpha · X[rows, in] · W[out, in]ᵀ + beta · Y` (a
/// [`crate::llm::weights::Linear`] layer). cuBLAS is column-major, where a
/// row-major `[r, c]` matrix reads as its `[c, r]` transpose; so this is
/// `Yᵀ[out, rows] = op(W)·Xᵀ` with `W` transposed (`transa = T`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmDims {
    /// Rows of `op(A)` and of `C`: the output features.
    pub m: i32,
    /// Columns of `B` and of `C`: the rows (tokens) of the call.
    pub n: i32,
    /// The inner dimension: the input features.
    pub k: i32,
    /// Leading dimension of `A` (the weight): its row length, `in`.
    pub lda: i32,
    /// Leading dimension of `B` (the activations): `in`.
    pub ldb: i32,
    /// Leading dimension of `C` (the output): `out`.
    pub ldc: i32,
}

impl GemmDims {
    /// The call for `rows` tokens through a `[out, in]` weight; errors when a
    /// dimension exceeds cuBLAS's 32-bit arguments.
    pub fn linear(rows: usize, inp: usize, out: usize) -> Result<Self> {
        let c = |v: usize, what: &str| -> Result<i32> {
            if v == 0 {
                bail!("empty matrix product ({what} = 0)");
            }
            i32::try_from(v).map_err(|_| anyhow::anyhow!("{what} {v} exceeds cuBLAS's i32"))
        };
        let (m, n, k) = (c(out, "out")?, c(rows, "rows")?, c(inp, "in")?);
        Ok(Self {
            m,
            n,
            k,
            lda: k,
            ldb: k,
            ldc: m,
        })
    }
}

/// The shapes of one model's forward pass: every buffer size and kernel
/// argument the GPU session derives from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Hidden size.
    pub hidden: usize,
    /// Feed-forward size (per half of the stacked gate/up product).
    pub ffn: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// Head dimension.
    pub head_dim: usize,
    /// Rotary pairs per head (`rope_dim / 2`).
    pub rope_pairs: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Transformer blocks.
    pub n_layers: usize,
}

impl Dims {
    /// Reads the shapes from a config and checks what the GPU kernels need:
    /// head_dim 64 or 128 (the flash-attention kernels), whole GQA groups,
    /// an even head dimension and rotated dims inside the head.
    pub fn new(c: &ModelConfig) -> Result<Self> {
        if c.head_dim != 64 && c.head_dim != 128 {
            bail!(
                "the GPU path runs head_dim 64 or 128 (flash-attention kernels); this model has {}",
                c.head_dim
            );
        }
        if c.n_kv_heads == 0 || !c.n_heads.is_multiple_of(c.n_kv_heads) {
            bail!(
                "{} query heads are not a multiple of {} KV heads",
                c.n_heads,
                c.n_kv_heads
            );
        }
        if c.rope_dim > c.head_dim || !c.rope_dim.is_multiple_of(2) {
            bail!(
                "rotary dims {} do not fit head_dim {}",
                c.rope_dim,
                c.head_dim
            );
        }
        Ok(Self {
            hidden: c.hidden,
            ffn: c.ffn_hidden,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim,
            rope_pairs: c.rope_dim / 2,
            vocab: c.vocab_size,
            n_layers: c.n_layers,
        })
    }

    /// Width of the query projection, `n_heads · head_dim`.
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    /// Width of the key (and of the value) projection.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Width of the stacked QKV product.
    pub fn qkv_dim(&self) -> usize {
        self.q_dim() + 2 * self.kv_dim()
    }

    /// Threads of `qkv_split_rope` for `rows` tokens: one per (row, head of
    /// q, k and v, pair of elements).
    pub fn split_threads(&self, rows: usize) -> usize {
        rows * (self.n_heads + 2 * self.n_kv_heads) * (self.head_dim / 2)
    }

    /// Bytes of the bf16 KV cache per token over all layers.
    pub fn kv_bytes_per_token(&self) -> usize {
        2 * self.n_layers * self.kv_dim() * 2
    }

    /// Weights of the stacked matrices of one layer plus the output matrix
    /// (the parameters the matrix products read; embeddings excluded unless tied).
    pub fn matrix_params(&self) -> usize {
        let layer = self.qkv_dim() * self.hidden
            + self.q_dim() * self.hidden
            + 2 * self.ffn * self.hidden
            + self.hidden * self.ffn;
        self.n_layers * layer + self.vocab * self.hidden
    }

    /// Elements of each activation buffer of a chunk of `rows` tokens, in the
    /// order of [`ChunkSizes`]' fields.
    pub fn chunk(&self, rows: usize) -> ChunkSizes {
        ChunkSizes {
            x: rows * self.hidden,
            normed: rows * self.hidden,
            qkv: rows * self.qkv_dim(),
            q: rows * self.q_dim(),
            attn: rows * self.q_dim(),
            gate_up: rows * 2 * self.ffn,
            act: rows * self.ffn,
            cos_sin: rows * self.rope_pairs.max(1) * 2,
        }
    }
}

/// Element counts of the activation buffers of one forward chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSizes {
    /// f32 residual stream `[rows, hidden]`.
    pub x: usize,
    /// bf16 normed input of a projection `[rows, hidden]`.
    pub normed: usize,
    /// f32 QKV product `[rows, qkv_dim]`.
    pub qkv: usize,
    /// bf16 rotated queries `[rows, n_heads, head_dim]`.
    pub q: usize,
    /// bf16 attention output `[rows, q_dim]`.
    pub attn: usize,
    /// f32 gate/up product `[rows, 2 · ffn]`.
    pub gate_up: usize,
    /// bf16 SwiGLU output `[rows, ffn]`.
    pub act: usize,
    /// f32 RoPE table `[rows, pairs, 2]`.
    pub cos_sin: usize,
}

/// New KV-cache capacity (tokens) when `needed` tokens must fit and
/// `capacity` are allocated: unchanged when they fit, else at least double
/// (amortised copies while decoding) and a multiple of 256.
pub fn grow_capacity(capacity: usize, needed: usize) -> usize {
    if needed <= capacity {
        return capacity;
    }
    needed.max(2 * capacity).max(256).div_ceil(256) * 256
}

/// Blocks of [`GLUE_THREADS`] covering `n` threads (at least one).
pub fn blocks_for(n: usize) -> Result<u32> {
    u32::try_from(n.div_ceil(GLUE_THREADS as usize).max(1))
        .map_err(|_| anyhow::anyhow!("{n} threads exceed a 1-D grid"))
}

/// Checks a kernel's 32-bit argument.
pub fn to_i32(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| anyhow::anyhow!("{what} {v} exceeds the kernels' i32"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Arch;

    fn config(head_dim: usize) -> ModelConfig {
        ModelConfig {
            arch: Arch::Qwen2,
            name: "test".into(),
            n_layers: 24,
            hidden: 896,
            ffn_hidden: 4864,
            n_heads: 14,
            n_kv_heads: 2,
            head_dim,
            vocab_size: 151_936,
            rms_eps: 1e-6,
            rope_theta: 1e6,
            rope_dim: head_dim,
            trained_context: 32768,
            rope_scaling_type: None,
            rope_scaling_factor: None,
            rope_scaling_original_context: None,
            numerics: Default::default(),
        }
    }

    #[test]
    fn bf16_rounding_is_nearest_even() {
        let x = [
            1.0f32,
            -2.5,
            1.0 + 1.0 / 256.0,
            1.0 + 3.0 / 256.0,
            f32::NAN,
            0.0,
        ];
        let b = to_bf16_bits(&x);
        assert_eq!(b[0], 0x3f80);
        assert_eq!(b[1], 0xc020);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even (1.0).
        assert_eq!(b[2], 0x3f80);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6.
        assert_eq!(b[3], 0x3f82);
        assert!(from_bf16_bits(&b[4..5])[0].is_nan());
        assert_eq!(b[5], 0);
        // bf16 keeps 8 significant bits: relative rounding error at most 2^-8.
        let v: Vec<f32> = (0..100_000)
            .map(|i| (i as f32 * 0.37).sin() * 3.0 + 1e-3)
            .collect();
        for (a, r) in v.iter().zip(from_bf16_bits(&to_bf16_bits(&v))) {
            assert!((a - r).abs() <= a.abs() / 256.0, "{a} -> {r}");
        }
    }

    /// cuBLAS's definition of `C = alpha·op(A)·op(B) + beta·C`, column-major,
    /// with `op(A) = Aᵀ` and `op(B) = B` as [`GemmDims`] uses them.
    fn cublas_tn(g: &GemmDims, a: &[f32], b: &[f32], c: &mut [f32], alpha: f32, beta: f32) {
        let (m, n, k) = (g.m as usize, g.n as usize, g.k as usize);
        let (lda, ldb, ldc) = (g.lda as usize, g.ldb as usize, g.ldc as usize);
        for j in 0..n {
            for i in 0..m {
                // op(A)[i, l] = A[l, i] = a[l + i·lda]; B[l, j] = b[l + j·ldb].
                let s: f32 = (0..k).map(|l| a[l + i * lda] * b[l + j * ldb]).sum();
                c[i + j * ldc] = alpha * s + beta * c[i + j * ldc];
            }
        }
    }

    #[test]
    fn gemm_mapping_computes_row_major_linear_layers() {
        let (rows, inp, out) = (3, 5, 4);
        let x: Vec<f32> = (0..rows * inp).map(|i| i as f32 * 0.5 - 2.0).collect();
        let w: Vec<f32> = (0..out * inp).map(|i| (i as f32).cos()).collect();
        let y0: Vec<f32> = (0..rows * out).map(|i| i as f32).collect();
        let g = GemmDims::linear(rows, inp, out).unwrap();
        let mut y = y0.clone();
        cublas_tn(&g, &w, &x, &mut y, 1.0, 1.0);
        for r in 0..rows {
            for o in 0..out {
                let dot: f32 = (0..inp).map(|i| x[r * inp + i] * w[o * inp + i]).sum();
                let want = y0[r * out + o] + dot;
                assert!((y[r * out + o] - want).abs() < 1e-5, "row {r} out {o}");
            }
        }
        assert!(GemmDims::linear(0, 5, 4).is_err());
        assert!(GemmDims::linear(1 << 31, 5, 4).is_err());
    }

    #[test]
    fn dims_of_real_models() {
        let d = Dims::new(&config(64)).unwrap();
        assert_eq!((d.q_dim(), d.kv_dim(), d.qkv_dim()), (896, 128, 1152));
        assert_eq!(d.rope_pairs, 32);
        assert_eq!(d.split_threads(10), 10 * 18 * 32);
        // 24 layers · 2 (k, v) · 128 · 2 bytes.
        assert_eq!(d.kv_bytes_per_token(), 12_288);
        let s = d.chunk(7);
        assert_eq!(s.qkv, 7 * 1152);
        assert_eq!(s.gate_up, 7 * 9728);
        assert_eq!(s.act, 7 * 4864);
        assert_eq!(s.cos_sin, 7 * 64);
        // Qwen2.5-0.5B: about 494M parameters, 136M of them the embedding.
        let p = d.matrix_params();
        assert!(
            (350_000_000..370_000_000).contains(&(p - 151_936 * 896)),
            "{p}"
        );
        assert!(Dims::new(&config(80)).is_err());
        let mut c = config(64);
        c.n_kv_heads = 3;
        assert!(Dims::new(&c).is_err());
        let mut c = config(128);
        c.rope_dim = 130;
        assert!(Dims::new(&c).is_err());
    }

    #[test]
    fn capacity_grows_geometrically() {
        assert_eq!(grow_capacity(0, 1), 256);
        assert_eq!(grow_capacity(256, 256), 256);
        assert_eq!(grow_capacity(256, 257), 512);
        assert_eq!(grow_capacity(512, 3000), 3072);
        assert_eq!(grow_capacity(0, 8192), 8192);
    }

    #[test]
    fn launch_helpers() {
        assert_eq!(blocks_for(0).unwrap(), 1);
        assert_eq!(blocks_for(257).unwrap(), 2);
        assert!(to_i32(1 << 31, "x").is_err());
    }
}
