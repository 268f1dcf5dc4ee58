//! Weights of a GGUF decoder, used in place in the file's own blocks.
//!
//! The file is memory-mapped and every matrix is a view of its bytes
//! ([`BlockMatrix`] over [`WeightBytes`]): nothing is dequantized or copied
//! at load, so the process holds about the file's size (pages the OS shares
//! with its cache) and loading takes the time of reading the header. Both
//! prompt processing and generation multiply the blocks with 8-bit
//! activations (`folio_kernels::quant`). Q, K and V (and gate and up) stay
//! separate matrices, each written into its columns of one stacked output,
//! since their blocks may be of different types (Q4_K_M mixes Q4_K and Q6_K).
//!
//! Only the norms and biases (a few KB per layer) are read as f32.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::GgmlDType;
use folio_kernels::quant::{self, Activations, BlockFormat, BlockMatrix, WeightBytes};

use super::config::{Arch, ModelConfig};

/// Calls with at most this many rows use the fused matrix-vector kernels
/// where the block type has one (generation).
pub const DECODE_ROWS: usize = 4;

/// How a projection multiplies its blocks with the activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Products {
    /// 8-bit activations against the blocks, in integers (llama.cpp's way;
    /// folio's generation path).
    Int8,
    /// f32 activations against tiles of the blocks dequantized on the fly
    /// (a few MB at a time, never the whole matrix) and gemm's f32 matrix
    /// product: on the AVX2 machines measured, faster for prompts than
    /// folio's int8 kernels on the 32-weight block types (BENCHMARKS.md),
    /// and exact up to f32 rounding.
    F32Tiles,
    /// A prompt's products, each matrix the faster way for its block type
    /// on this CPU: [`Int8`](Self::Int8) where folio's int8 matrix product
    /// beats the f32 tiles ([`quant::fast_int8_matmul`]), else
    /// [`F32Tiles`](Self::F32Tiles).
    Prompt,
}

/// Bytes of one f32 tile of weights (a transient buffer, reused).
const TILE_BYTES: usize = 16 << 20;

thread_local! {
    /// The calling thread's f32 tile, kept between calls: a fresh 16 MB
    /// allocation per projection would fault in its pages every time.
    static TILE: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `y[:, offset ..] = x · Wᵀ` for one matrix, through f32 tiles and gemm.
fn f32_tiles(
    part: &BlockMatrix,
    x: &[f32],
    rows: usize,
    y: &mut [f32],
    y_cols: usize,
    offset: usize,
) {
    let k = part.cols;
    let tile_rows = (TILE_BYTES / (4 * k)).clamp(16, part.rows.max(16));
    let threads = rayon::current_num_threads();
    // Taken out of the thread-local, not borrowed: gemm and the dequantizer
    // run on rayon, whose work stealing can start another projection on this
    // thread meanwhile (it then allocates a tile of its own).
    let mut tile = TILE.take();
    tile.resize(tile_rows.min(part.rows) * k, 0.0);
    for n0 in (0..part.rows).step_by(tile_rows) {
        let n = tile_rows.min(part.rows - n0);
        let tile = &mut tile[..n * k];
        part.dequantize_rows(n0, tile);
        // SAFETY: dst is `rows × n` at `y[offset + n0]` with row stride
        // `y_cols` (offset + n0 + n <= y_cols, y holds rows × y_cols);
        // lhs is `x` `[rows, k]`; rhs[kk, j] = tile[j·k + kk], `[k, n]`.
        unsafe {
            gemm::gemm(
                rows,
                n,
                k,
                y.as_mut_ptr().add(offset + n0),
                1,
                y_cols as isize,
                false,
                x.as_ptr(),
                1,
                k as isize,
                tile.as_ptr(),
                k as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(threads),
            );
        }
    }
    TILE.set(tile);
}

/// A projection `y = x·Wᵀ + b`: one or more matrices `[out_i, in]` whose
/// outputs are concatenated (Q, K and V of a layer).
pub struct Linear {
    /// The matrices, in output order; each reads all `in_features` inputs.
    pub parts: Vec<BlockMatrix>,
    /// Bias added to the concatenated output (Qwen2's Q, K, V), if any.
    pub bias: Option<Vec<f32>>,
    in_features: usize,
    out_features: usize,
}

impl Linear {
    fn new(parts: Vec<BlockMatrix>, bias: Option<Vec<f32>>) -> Result<Self> {
        let in_features = parts.first().map_or(0, |p| p.cols);
        if parts.iter().any(|p| p.cols != in_features) {
            bail!("stacked projections differ in input width");
        }
        let out_features = parts.iter().map(|p| p.rows).sum();
        if bias.as_ref().is_some_and(|b| b.len() != out_features) {
            bail!("a bias does not match its projection's {out_features} outputs");
        }
        Ok(Self {
            parts,
            bias,
            in_features,
            out_features,
        })
    }

    /// Inputs of every part (the matrices' columns).
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Outputs of all parts together (their rows summed).
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// `x` is `[rows, in]` row-major; returns `[rows, out]`, multiplied the
    /// way `products` says.
    pub fn forward(&self, x: &[f32], rows: usize, products: Products) -> Vec<f32> {
        assert_eq!(x.len(), rows * self.in_features, "input shape");
        let out = self.out_features;
        let mut y = vec![0f32; rows * out];
        let acts = Activations::new(x, rows, self.in_features);
        let mut offset = 0;
        for part in &self.parts {
            match products {
                Products::Int8 if rows <= DECODE_ROWS && quant::has_fused_matvec(part.format) => {
                    let mut part_y = vec![0f32; rows * part.rows];
                    quant::matvec(part, x, rows, &mut part_y);
                    for (dst, src) in y.chunks_exact_mut(out).zip(part_y.chunks_exact(part.rows)) {
                        dst[offset..offset + part.rows].copy_from_slice(src);
                    }
                }
                Products::Int8 => quant::matmul(part, &acts, &mut y, out, offset),
                Products::Prompt if quant::fast_int8_matmul(part.format) => {
                    quant::matmul(part, &acts, &mut y, out, offset)
                }
                Products::F32Tiles | Products::Prompt => {
                    f32_tiles(part, x, rows, &mut y, out, offset)
                }
            }
            offset += part.rows;
        }
        if let Some(b) = &self.bias {
            for row in y.chunks_exact_mut(b.len()) {
                row.iter_mut().zip(b).for_each(|(y, b)| *y += b);
            }
        }
        y
    }

    /// The whole projection as f32 `[out, in]` (the GPU upload).
    pub fn dequantize_all(&self) -> Vec<f32> {
        self.parts.iter().flat_map(|p| p.dequantize_all()).collect()
    }

    /// Bytes the matrices occupy in the file, and the bias.
    pub fn bytes(&self) -> usize {
        self.parts.iter().map(|p| p.data().len()).sum::<usize>()
            + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }
}

/// One transformer block.
pub struct Layer {
    /// RMS norm weights before attention, `hidden` of them.
    pub attn_norm: Vec<f32>,
    /// Q, K and V, output concatenated (one fused tensor or three).
    pub qkv: Linear,
    /// Per-head RMS norms of queries and keys before RoPE (Qwen3),
    /// `head_dim` weights each.
    pub qk_norms: Option<(Vec<f32>, Vec<f32>)>,
    /// Projection of the attention output back to `hidden`.
    pub attn_out: Linear,
    /// RMS norm of the attention output before the residual (Gemma 2).
    pub attn_post_norm: Option<Vec<f32>>,
    /// RMS norm weights before the feed-forward layer.
    pub ffn_norm: Vec<f32>,
    /// Gate and up projections, output concatenated (one fused tensor or two).
    pub gate_up: Linear,
    /// Projection of the activated FFN back to `hidden`.
    pub down: Linear,
    /// RMS norm of the FFN output before the residual (Gemma 2).
    pub ffn_post_norm: Option<Vec<f32>>,
}

impl Layer {
    /// Block `i`'s tensors, in the layout its architecture stores them.
    fn load(r: &Reader, c: &ModelConfig, i: usize) -> Result<Self> {
        let h = c.hidden;
        let (q_dim, kv_dim) = (c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim);
        let p = |s: &str| format!("blk.{i}.{s}");
        let qkv_bias = if c.arch == Arch::Qwen2 || r.has(&p("attn_q.bias")) {
            let mut b = r.vec(&p("attn_q.bias"), q_dim)?;
            b.extend(r.vec(&p("attn_k.bias"), kv_dim)?);
            b.extend(r.vec(&p("attn_v.bias"), kv_dim)?);
            Some(b)
        } else {
            None
        };
        // Phi-3 stores Q, K and V as one matrix; the others as three.
        let qkv_parts = if r.has(&p("attn_qkv.weight")) {
            vec![r.shaped(&p("attn_qkv.weight"), q_dim + 2 * kv_dim, h)?]
        } else {
            vec![
                r.shaped(&p("attn_q.weight"), q_dim, h)?,
                r.shaped(&p("attn_k.weight"), kv_dim, h)?,
                r.shaped(&p("attn_v.weight"), kv_dim, h)?,
            ]
        };
        // Phi-3 stores gate and up as one matrix, gate rows first.
        let gate_up_parts = if r.has(&p("ffn_gate.weight")) {
            vec![
                r.shaped(&p("ffn_gate.weight"), c.ffn_hidden, h)?,
                r.shaped(&p("ffn_up.weight"), c.ffn_hidden, h)?,
            ]
        } else {
            vec![r.shaped(&p("ffn_up.weight"), 2 * c.ffn_hidden, h)?]
        };
        let qk_norms = if c.arch == Arch::Qwen3 {
            Some((
                r.vec(&p("attn_q_norm.weight"), c.head_dim)?,
                r.vec(&p("attn_k_norm.weight"), c.head_dim)?,
            ))
        } else {
            None
        };
        let gemma = c.arch == Arch::Gemma2;
        let post_norm = |name: &str| gemma.then(|| r.vec(&p(name), h)).transpose();
        Ok(Layer {
            attn_norm: r.vec(&p("attn_norm.weight"), h)?,
            qkv: Linear::new(qkv_parts, qkv_bias)?,
            qk_norms,
            attn_out: Linear::new(vec![r.shaped(&p("attn_output.weight"), h, q_dim)?], None)?,
            attn_post_norm: post_norm("post_attention_norm.weight")?,
            ffn_norm: r.vec(&p("ffn_norm.weight"), h)?,
            gate_up: Linear::new(gate_up_parts, None)?,
            down: Linear::new(
                vec![r.shaped(&p("ffn_down.weight"), h, c.ffn_hidden)?],
                None,
            )?,
            ffn_post_norm: post_norm("post_ffw_norm.weight")?,
        })
    }
}

/// Per-pair RoPE frequency factors some files carry: one fixed set (Llama
/// 3.1's `rope_freqs`) or a short and a long set (Phi-3's LongRoPE,
/// chosen by the request's length as llama.cpp chooses by its context).
#[derive(Debug, Clone, Default)]
pub struct RopeFactors {
    /// One set for every length (Llama 3.1's `rope_freqs`).
    pub fixed: Option<Vec<f32>>,
    /// LongRoPE's factors for requests within the original context.
    pub short: Option<Vec<f32>>,
    /// LongRoPE's factors for longer requests.
    pub long: Option<Vec<f32>>,
}

impl RopeFactors {
    fn load(r: &Reader, c: &ModelConfig) -> Result<Self> {
        let pairs = c.rope_dim / 2;
        let read = |name: &str| -> Result<Option<Vec<f32>>> {
            if !r.has(name) {
                return Ok(None);
            }
            let factors = r.vec(name, pairs)?;
            if factors.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
                bail!("tensor {name} holds a RoPE factor that is not a positive number");
            }
            Ok(Some(factors))
        };
        Ok(Self {
            fixed: read("rope_freqs.weight")?,
            short: read("rope_factors_short.weight")?,
            long: read("rope_factors_long.weight")?,
        })
    }

    /// The factors a request of `tokens` tokens runs with, where the model
    /// was trained on `original` positions before its LongRoPE extension.
    pub fn for_length(&self, tokens: usize, original: usize) -> Option<&[f32]> {
        if let Some(fixed) = &self.fixed {
            return Some(fixed);
        }
        let long = tokens > original;
        match (&self.short, &self.long) {
            (_, Some(l)) if long => Some(l),
            (Some(s), _) => Some(s),
            (None, l) => l.as_deref(),
        }
    }
}

/// Every weight of a model.
pub struct Weights {
    /// `[vocab, hidden]` token embeddings, in their file blocks.
    pub embeddings: BlockMatrix,
    /// The transformer blocks, first to last.
    pub layers: Vec<Layer>,
    /// RMS norm weights before the output projection.
    pub output_norm: Vec<f32>,
    /// `[vocab, hidden]`; the embedding matrix itself when the model ties them.
    pub output: Linear,
    /// `output` is the embedding matrix (no `output.weight`, or Gemma 2): counted once.
    pub tied_output: bool,
    /// Per-pair RoPE frequency factors, if the file has any.
    pub rope_factors: RopeFactors,
}

/// The block format of a GGUF tensor type, or an error naming the ones
/// folio multiplies.
pub fn block_format(dtype: GgmlDType) -> Result<BlockFormat> {
    Ok(match dtype {
        GgmlDType::F32 => BlockFormat::F32,
        GgmlDType::F16 => BlockFormat::F16,
        GgmlDType::BF16 => BlockFormat::Bf16,
        GgmlDType::Q4_0 => BlockFormat::Q4_0,
        GgmlDType::Q4_1 => BlockFormat::Q4_1,
        GgmlDType::Q5_0 => BlockFormat::Q5_0,
        GgmlDType::Q5_1 => BlockFormat::Q5_1,
        GgmlDType::Q8_0 => BlockFormat::Q8_0,
        GgmlDType::Q4K => BlockFormat::Q4_K,
        GgmlDType::Q5K => BlockFormat::Q5_K,
        GgmlDType::Q6K => BlockFormat::Q6_K,
        other => bail!(
            "tensor type {other:?} is not supported: folio runs {} (what Q4_K_M, Q5_K_M, \
             Q6_K, Q8_0, F16 and BF16 files hold)",
            supported_formats()
        ),
    })
}

fn supported_formats() -> String {
    BlockFormat::ALL
        .iter()
        .map(|f| format!("{f:?}").to_uppercase())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Tensors looked up by name in the mapped file.
struct Reader<'a> {
    content: &'a Content,
    map: Arc<memmap2::Mmap>,
}

impl Reader<'_> {
    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// The tensor as a `[rows, cols]` matrix of its own blocks (a 1-D
    /// tensor is one row), checked against the file's length.
    fn matrix(&self, name: &str) -> Result<BlockMatrix> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| anyhow!("the GGUF has no tensor {name}"))?;
        let format = block_format(info.ggml_dtype).with_context(|| format!("tensor {name}"))?;
        let (rows, cols) = match info.shape.dims() {
            [n] => (1, *n),
            [r, c] => (*r, *c),
            dims => bail!("tensor {name} has shape {dims:?}; folio expects a matrix or vector"),
        };
        let row_bytes = format.row_bytes(cols).ok_or_else(|| {
            anyhow!("tensor {name}: rows of {cols} weights are not whole {format:?} blocks")
        })?;
        let len = rows
            .checked_mul(row_bytes)
            .ok_or_else(|| anyhow!("tensor {name}: size overflows"))?;
        let start = self
            .content
            .tensor_data_offset
            .checked_add(info.offset)
            .and_then(|s| usize::try_from(s).ok())
            .ok_or_else(|| anyhow!("tensor {name}: offset overflows"))?;
        let owner: Arc<dyn AsRef<[u8]> + Send + Sync> = self.map.clone();
        let bytes = WeightBytes::new(owner, start, len).ok_or_else(|| {
            anyhow!(
                "tensor {name} ({len} bytes at {start}) runs past the end of the file ({} \
                 bytes): the GGUF is truncated or damaged; `folio models verify` checks it",
                self.map.len()
            )
        })?;
        BlockMatrix::from_bytes(format, rows, cols, bytes)
            .map_err(|e| anyhow!("tensor {name}: {e}"))
    }

    /// A vector tensor (norms, biases) of `len` values, as f32.
    fn vec(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let m = self.matrix(name)?;
        if m.rows * m.cols != len {
            bail!(
                "tensor {name} has {} values, expected {len}",
                m.rows * m.cols
            );
        }
        Ok(m.dequantize_all())
    }

    /// `[rows, cols]` matrix with its shape checked.
    fn shaped(&self, name: &str, rows: usize, cols: usize) -> Result<BlockMatrix> {
        let m = self.matrix(name)?;
        if (m.rows, m.cols) != (rows, cols) {
            bail!(
                "tensor {name} has shape [{}, {}], expected [{rows}, {cols}]",
                m.rows,
                m.cols
            );
        }
        Ok(m)
    }
}

impl Weights {
    /// Maps the file and checks every tensor the forward pass needs.
    pub fn load(path: &Path, content: &Content, config: &ModelConfig) -> Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: the mapping is read-only. A model file changed while folio
        // runs would change the weights under it (as for llama.cpp's mmap);
        // `folio models verify` and the load-time checks cover damaged files.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("mapping {}", path.display()))?;
        let r = Reader {
            content,
            map: Arc::new(map),
        };
        let (h, c) = (config.hidden, config);
        let embeddings = r.shaped("token_embd.weight", c.vocab_size, h)?;
        let layers = (0..c.n_layers)
            .map(|i| Layer::load(&r, c, i))
            .collect::<Result<Vec<_>>>()?;
        let rope_factors = RopeFactors::load(&r, c)?;
        let output_norm = r.vec("output_norm.weight", h)?;
        // Gemma 2 always ties them (llama.cpp ignores an `output.weight`).
        let tied_output = !r.has("output.weight") || c.arch == Arch::Gemma2;
        let output = if tied_output {
            Linear::new(vec![embeddings.clone()], None)?
        } else {
            Linear::new(vec![r.shaped("output.weight", c.vocab_size, h)?], None)?
        };
        Ok(Self {
            embeddings,
            layers,
            output_norm,
            output,
            tied_output,
            rope_factors,
        })
    }

    /// Token `tok`'s embedding row, appended to `out`.
    pub fn embed(&self, tok: usize, out: &mut Vec<f32>) {
        out.extend(self.embeddings.dequantize_row(tok));
    }

    /// Every matrix of the transformer blocks' projections (not the output head).
    fn block_matrices(&self) -> impl Iterator<Item = &BlockMatrix> {
        self.layers
            .iter()
            .flat_map(|l| [&l.qkv, &l.attn_out, &l.gate_up, &l.down])
            .flat_map(|l| l.parts.iter())
    }

    /// The share of the transformer blocks' weights whose prompt products
    /// run with 8-bit activations on this CPU (`Products::Prompt`: K-quants
    /// on AVX2), the rest through f32 tiles: the router prices the two rates.
    pub fn prompt_int8_share(&self) -> f64 {
        let (mut int8, mut all) = (0f64, 0f64);
        for m in self.block_matrices() {
            let weights = (m.rows * m.cols) as f64;
            all += weights;
            if quant::fast_int8_matmul(m.format) {
                int8 += weights;
            }
        }
        if all > 0.0 {
            int8 / all
        } else {
            0.0
        }
    }

    /// Bytes one decoding step reads from the weight matrices, and their
    /// formats (generation speed is about bandwidth / these bytes).
    pub fn decode_bytes(&self) -> (usize, Vec<(String, usize)>) {
        let mut by_format: Vec<(String, usize)> = Vec::new();
        for m in self.block_matrices().chain(&self.output.parts) {
            let name = format!("{:?}", m.format);
            match by_format.iter_mut().find(|(n, _)| *n == name) {
                Some((_, bytes)) => *bytes += m.data().len(),
                None => by_format.push((name, m.data().len())),
            }
        }
        (by_format.iter().map(|(_, b)| b).sum(), by_format)
    }

    /// Bytes of all weights as held (the mapped matrices, counted once when
    /// the output is tied, and the f32 norms and biases).
    pub fn bytes(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                (l.attn_norm.len() + l.ffn_norm.len()) * 4
                    + [&l.attn_post_norm, &l.ffn_post_norm]
                        .iter()
                        .filter_map(|n| n.as_ref())
                        .map(|n| n.len() * 4)
                        .sum::<usize>()
                    + l.qkv.bytes()
                    + l.attn_out.bytes()
                    + l.gate_up.bytes()
                    + l.down.bytes()
            })
            .sum();
        let output = if self.tied_output {
            0
        } else {
            self.output.bytes()
        };
        layers + self.embeddings.data().len() + self.output_norm.len() * 4 + output
    }
}
