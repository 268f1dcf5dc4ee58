//! Weights of a llama/qwen2 GGUF, dequantized to f32 at load.
//!
//! candle has only scalar CPU code for several GGUF block types (Q4_1, Q5_0,
//! Q5_1), and dense f32 matrix products are 5-10x faster for prompt
//! processing, so every weight is expanded to f32 once. Q, K and V are stacked
//! into one matrix, and so are the gate and up projections, so each layer runs
//! four matrix products instead of seven.
//!
//! Generation is memory-bound (one token reads every weight once), so each
//! matrix also keeps a quantized copy for calls of up to [`DECODE_ROWS`] rows,
//! multiplied by folio's kernels (`folio_kernels::quant`): the GGUF's own
//! blocks when they are Q4_1, Q5_0 or Q8_0, anything else (K-quants, f16, or
//! stacks of mixed types) requantized to Q8_0 (8.5 bits per weight).

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use folio_kernels::quant::{self, BlockFormat, BlockMatrix};
use rayon::prelude::*;

use super::config::{Arch, ModelConfig};

/// Calls with at most this many rows may use the quantized weights.
pub const DECODE_ROWS: usize = 4;

/// A projection `y = x·Wᵀ + b` with `W` stored `[out, in]`.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Vec<f32>>,
    /// The same matrix block-quantized, for memory-bound calls.
    pub decode: BlockMatrix,
}

impl Linear {
    /// Picks the decode copy from the GGUF tensors `sources` (stacked along
    /// the rows, as `weight` is): their own blocks when a fast kernel exists,
    /// else `weight` requantized to Q8_0.
    fn new(weight: Tensor, bias: Option<Vec<f32>>, sources: &[QTensor]) -> Result<Self> {
        let decode = match decode_blocks(sources)? {
            Some(blocks) => blocks,
            None => {
                let (rows, cols) = weight.dims2()?;
                BlockMatrix::quantize_q8_0(rows, cols, &weight.flatten_all()?.to_vec1::<f32>()?)
                    .map_err(anyhow::Error::msg)?
            }
        };
        Ok(Self {
            weight,
            bias,
            decode,
        })
    }

    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// `x` is `[rows, in]` row-major; returns `[rows, out]`. Uses the quantized
    /// weights when `quantized_small` and `rows <= DECODE_ROWS`.
    pub fn forward(&self, x: &[f32], rows: usize, quantized_small: bool) -> Result<Vec<f32>> {
        let mut y = if quantized_small && rows <= DECODE_ROWS {
            let mut y = vec![0f32; rows * self.decode.rows];
            quant::matvec(&self.decode, x, rows, &mut y);
            y
        } else {
            let input = Tensor::from_slice(x, (rows, self.in_features()), &Device::Cpu)?;
            input
                .matmul(&self.weight.t()?)?
                .flatten_all()?
                .to_vec1::<f32>()?
        };
        if let Some(b) = &self.bias {
            for row in y.chunks_exact_mut(b.len()) {
                row.iter_mut().zip(b).for_each(|(y, b)| *y += b);
            }
        }
        Ok(y)
    }

    /// Bytes held: the f32 matrix, its quantized copy and the bias.
    pub fn bytes(&self) -> usize {
        let elements = self.weight.elem_count();
        elements * 4 + self.decode.data.len() + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }
}

/// The raw blocks of `sources`, stacked, when they all share a format that
/// folio's kernels multiply.
fn decode_blocks(sources: &[QTensor]) -> Result<Option<BlockMatrix>> {
    let mut parts = Vec::with_capacity(sources.len());
    for q in sources {
        let format = match q.dtype() {
            GgmlDType::Q4_1 => BlockFormat::Q4_1,
            GgmlDType::Q5_0 => BlockFormat::Q5_0,
            GgmlDType::Q8_0 => BlockFormat::Q8_0,
            _ => return Ok(None),
        };
        let (rows, cols) = q.shape().dims2()?;
        parts.push(
            BlockMatrix::new(format, rows, cols, q.data()?.into_owned())
                .map_err(anyhow::Error::msg)?,
        );
    }
    Ok(BlockMatrix::stack(&parts))
}

/// One transformer block.
pub struct Layer {
    pub attn_norm: Vec<f32>,
    /// Q, K and V stacked along the output dimension.
    pub qkv: Linear,
    pub attn_out: Linear,
    pub ffn_norm: Vec<f32>,
    /// Gate and up projections stacked along the output dimension.
    pub gate_up: Linear,
    pub down: Linear,
}

/// Every weight of a model.
pub struct Weights {
    /// `[vocab, hidden]` token embeddings.
    pub embeddings: Vec<f32>,
    pub layers: Vec<Layer>,
    pub output_norm: Vec<f32>,
    /// `[vocab, hidden]`; a copy of the embedding matrix when the model ties them.
    pub output: Linear,
    pub tied_output: bool,
}

struct Reader<'a> {
    content: &'a Content,
    file: File,
}

impl Reader<'_> {
    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    fn qtensor(&mut self, name: &str) -> Result<QTensor> {
        self.content
            .tensor(&mut self.file, name, &Device::Cpu)
            .with_context(|| format!("reading tensor {name}"))
    }

    fn tensor(&mut self, name: &str) -> Result<Tensor> {
        Ok(self.qtensor(name)?.dequantize(&Device::Cpu)?)
    }

    fn vec(&mut self, name: &str) -> Result<Vec<f32>> {
        Ok(self.tensor(name)?.flatten_all()?.to_vec1::<f32>()?)
    }

    fn optional_vec(&mut self, name: &str) -> Result<Option<Vec<f32>>> {
        if self.has(name) {
            self.vec(name).map(Some)
        } else {
            Ok(None)
        }
    }

    fn linear(&mut self, name: &str) -> Result<Linear> {
        let q = self.qtensor(&format!("{name}.weight"))?;
        let weight = q.dequantize(&Device::Cpu)?;
        Linear::new(weight, self.optional_vec(&format!("{name}.bias"))?, &[q])
    }

    /// Stacks `[out_i, in]` matrices (and their biases, if any) into one.
    fn stacked(&mut self, names: &[String], biases: bool) -> Result<Linear> {
        let mut sources = Vec::new();
        let mut mats = Vec::new();
        let mut bias = Vec::new();
        for name in names {
            let q = self.qtensor(&format!("{name}.weight"))?;
            mats.push(q.dequantize(&Device::Cpu)?);
            sources.push(q);
            if biases {
                bias.extend(self.vec(&format!("{name}.bias"))?);
            }
        }
        let weight = Tensor::cat(&mats, 0)?.contiguous()?;
        Linear::new(weight, biases.then_some(bias), &sources)
    }
}

impl Weights {
    /// Reads and dequantizes every tensor the forward pass needs.
    pub fn load(path: &Path, content: &Content, config: &ModelConfig) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut r = Reader { content, file };
        let embed = r.tensor("token_embd.weight")?;
        if embed.dims() != [config.vocab_size, config.hidden] {
            bail!(
                "token_embd.weight has shape {:?}, expected [{}, {}]",
                embed.dims(),
                config.vocab_size,
                config.hidden
            );
        }
        let biases = config.arch == Arch::Qwen2;
        // Layers are independent: each worker reads and converts whole layers
        // through its own file handle.
        let layers = crate::threads::install(|| {
            (0..config.n_layers)
                .into_par_iter()
                .map(|i| {
                    let file =
                        File::open(path).with_context(|| format!("opening {}", path.display()))?;
                    let mut r = Reader { content, file };
                    let p = |s: &str| format!("blk.{i}.{s}");
                    Ok(Layer {
                        attn_norm: r.vec(&p("attn_norm.weight"))?,
                        qkv: r.stacked(&[p("attn_q"), p("attn_k"), p("attn_v")], biases)?,
                        attn_out: r.linear(&p("attn_output"))?,
                        ffn_norm: r.vec(&p("ffn_norm.weight"))?,
                        gate_up: r.stacked(&[p("ffn_gate"), p("ffn_up")], false)?,
                        down: r.linear(&p("ffn_down"))?,
                    })
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let output_norm = r.vec("output_norm.weight")?;
        let tied_output = !r.has("output.weight");
        let output = if tied_output {
            Linear::new(embed.clone(), None, &[])?
        } else {
            r.linear("output")?
        };
        let embeddings = embed.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self {
            embeddings,
            layers,
            output_norm,
            output,
            tied_output,
        })
    }

    /// Bytes one decoding step reads from the block-quantized copies, and
    /// their formats (generation speed is about bandwidth / these bytes).
    pub fn decode_bytes(&self) -> (usize, Vec<(String, usize)>) {
        let mut by_format: Vec<(String, usize)> = Vec::new();
        let all = self
            .layers
            .iter()
            .flat_map(|l| [&l.qkv, &l.attn_out, &l.gate_up, &l.down])
            .chain([&self.output]);
        for linear in all {
            let name = format!("{:?}", linear.decode.format);
            match by_format.iter_mut().find(|(n, _)| *n == name) {
                Some((_, bytes)) => *bytes += linear.decode.data.len(),
                None => by_format.push((name, linear.decode.data.len())),
            }
        }
        (by_format.iter().map(|(_, b)| b).sum(), by_format)
    }

    /// Bytes of all weights as held in memory (f32 and quantized copies).
    pub fn bytes(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                (l.attn_norm.len() + l.ffn_norm.len()) * 4
                    + l.qkv.bytes()
                    + l.attn_out.bytes()
                    + l.gate_up.bytes()
                    + l.down.bytes()
            })
            .sum();
        layers + (self.embeddings.len() + self.output_norm.len()) * 4 + self.output.bytes()
    }
}
