//! Weights of a llama/qwen2 GGUF, dequantized to f32 at load.
//!
//! candle has only scalar CPU code for several GGUF block types (Q4_1, Q5_0,
//! Q5_1), and dense f32 matrix products are 5-10x faster for prompt
//! processing, so every weight is expanded to f32 once. Q, K and V are stacked
//! into one matrix, and so are the gate and up projections, so each layer runs
//! four matrix products instead of seven.

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};

use super::config::{Arch, ModelConfig};

/// A projection `y = x·Wᵀ + b` with `W` stored `[out, in]`.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Vec<f32>>,
}

impl Linear {
    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }

    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// `x` is `[rows, in]` row-major; returns `[rows, out]`.
    pub fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        let input = Tensor::from_slice(x, (rows, self.in_features()), &Device::Cpu)?;
        let mut y = input
            .matmul(&self.weight.t()?)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if let Some(b) = &self.bias {
            for row in y.chunks_exact_mut(b.len()) {
                row.iter_mut().zip(b).for_each(|(y, b)| *y += b);
            }
        }
        Ok(y)
    }
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
    /// `[vocab, hidden]`; the embedding matrix when the model ties them.
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

    fn tensor(&mut self, name: &str) -> Result<Tensor> {
        let q = self
            .content
            .tensor(&mut self.file, name, &Device::Cpu)
            .with_context(|| format!("reading tensor {name}"))?;
        Ok(q.dequantize(&Device::Cpu)?)
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

    /// Stacks `[out_i, in]` matrices (and their biases, if any) into one.
    fn stacked(&mut self, names: &[String], biases: bool) -> Result<Linear> {
        let mut mats = Vec::new();
        let mut bias = Vec::new();
        for name in names {
            mats.push(self.tensor(&format!("{name}.weight"))?);
            if biases {
                bias.extend(self.vec(&format!("{name}.bias"))?);
            }
        }
        let weight = Tensor::cat(&mats, 0)?.contiguous()?;
        Ok(Linear {
            weight,
            bias: biases.then_some(bias),
        })
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
        let mut layers = Vec::with_capacity(config.n_layers);
        for i in 0..config.n_layers {
            let p = |s: &str| format!("blk.{i}.{s}");
            layers.push(Layer {
                attn_norm: r.vec(&p("attn_norm.weight"))?,
                qkv: r.stacked(&[p("attn_q"), p("attn_k"), p("attn_v")], biases)?,
                attn_out: Linear {
                    weight: r.tensor(&p("attn_output.weight"))?,
                    bias: r.optional_vec(&p("attn_output.bias"))?,
                },
                ffn_norm: r.vec(&p("ffn_norm.weight"))?,
                gate_up: r.stacked(&[p("ffn_gate"), p("ffn_up")], false)?,
                down: Linear {
                    weight: r.tensor(&p("ffn_down.weight"))?,
                    bias: None,
                },
            });
        }
        let output_norm = r.vec("output_norm.weight")?;
        let tied_output = !r.has("output.weight");
        let output = if tied_output {
            embed.clone()
        } else {
            r.tensor("output.weight")?
        };
        let embeddings = embed.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self {
            embeddings,
            layers,
            output_norm,
            output: Linear {
                weight: output,
                bias: None,
            },
            tied_output,
        })
    }

    /// Bytes of all weights as held in memory.
    pub fn bytes(&self) -> usize {
        let mat = |l: &Linear| l.weight.elem_count() + l.bias.as_ref().map_or(0, Vec::len);
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                l.attn_norm.len()
                    + l.ffn_norm.len()
                    + mat(&l.qkv)
                    + mat(&l.attn_out)
                    + mat(&l.gate_up)
                    + mat(&l.down)
            })
            .sum();
        // A tied output still holds its own copy of the embedding matrix.
        (layers + self.embeddings.len() + self.output_norm.len() + mat(&self.output)) * 4
    }
}
