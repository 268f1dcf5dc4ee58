//! Model hyper-parameters read from GGUF metadata.

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use serde::Serialize;

use super::rope::{RopeLayout, RopeScaling};

/// Architectures the forward pass implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Llama 2/3.x, Mistral, SmolLM: no attention biases; GGUF stores Q/K
    /// rows permuted for interleaved (GPT-J style) rotary pairs; Llama 3.1
    /// and later carry per-pair frequency factors (`rope_freqs.weight`).
    Llama,
    /// Qwen2 and 2.5: biases on q/k/v; rotary pairs are the two halves of
    /// each head ("NeoX" style).
    Qwen2,
    /// Qwen3 (dense): no biases; each head's query and key RMS-normalized
    /// (`attn_q_norm`, `attn_k_norm`) before RoPE.
    Qwen3,
    /// Phi-3 and 3.5: Q, K and V in one tensor (`attn_qkv`), gate and up in
    /// one (`ffn_up`, gate first); long-context files carry short and long
    /// RoPE factors (LongRoPE).
    Phi3,
    /// Gemma 2: embeddings scaled by sqrt(hidden), RMS norms after attention
    /// and after the FFN too, GeGLU, attention logits soft-capped, every
    /// other layer (the even ones) attending within a sliding window, and
    /// the output logits soft-capped.
    Gemma2,
}

impl Arch {
    /// The names folio runs, for errors that say what it can run.
    pub const SUPPORTED: &'static str =
        "llama (Llama 2/3.x, Mistral, SmolLM), qwen2, qwen3, phi3 and gemma2";

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "phi3" => Arch::Phi3,
            "gemma2" => Arch::Gemma2,
            _ => return None,
        })
    }

    /// How rotary pairs are laid out in this architecture's GGUF weights.
    pub fn rope_layout(self) -> RopeLayout {
        match self {
            Arch::Llama => RopeLayout::Interleaved,
            Arch::Qwen2 | Arch::Qwen3 | Arch::Phi3 | Arch::Gemma2 => RopeLayout::Halves,
        }
    }
}

/// Numerics only some architectures have (Gemma 2's caps and window,
/// LongRoPE's attention factor); the defaults are a plain decoder's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArchNumerics {
    /// Attention logits become `cap · tanh(logit / cap)` (Gemma 2: 50).
    pub attn_softcap: Option<f32>,
    /// Output logits become `cap · tanh(logit / cap)` (Gemma 2: 30).
    pub final_softcap: Option<f32>,
    /// Keys a query sees in the sliding-window layers, itself included
    /// (Gemma 2: 4096, on even layers).
    pub sliding_window: Option<usize>,
    /// Multiplier on queries before attention in place of `1/sqrt(head_dim)`
    /// (Gemma 2 27B uses `1/sqrt(hidden/heads)`).
    pub query_scale: Option<f32>,
    /// Multiplier on the attention logits from the GGUF's
    /// `rope.scaling.attn_factor` (LongRoPE files; applied squared, to
    /// queries and keys both, as llama.cpp does).
    pub rope_attn_factor: Option<f32>,
}

/// Shape and numerics of a model, everything the forward pass and the router
/// need to know without touching weights.
#[derive(Debug, Clone, Serialize)]
pub struct ModelConfig {
    /// Which forward pass runs the model (`general.architecture`).
    pub arch: Arch,
    /// The model's `general.name` (the architecture's name when the file has none).
    pub name: String,
    /// Transformer blocks (`{arch}.block_count`).
    pub n_layers: usize,
    /// Width of the residual stream (`{arch}.embedding_length`).
    pub hidden: usize,
    /// Width of the feed-forward layer's gate and up projections.
    pub ffn_hidden: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention); divides `n_heads`.
    pub n_kv_heads: usize,
    /// Values per head (`{arch}.attention.key_length`, else `hidden / n_heads`).
    pub head_dim: usize,
    /// Tokens in the vocabulary (`tokenizer.ggml.tokens`).
    pub vocab_size: usize,
    /// Epsilon of the RMS norms.
    pub rms_eps: f32,
    /// RoPE's frequency base (`{arch}.rope.freq_base`, else 10000).
    pub rope_theta: f32,
    /// Dimensions of each head that are rotated (usually all of them).
    pub rope_dim: usize,
    /// Context length the model was trained for (`{arch}.context_length`).
    pub trained_context: usize,
    /// RoPE scaling the GGUF declares (`{arch}.rope.scaling.*`), if any.
    pub rope_scaling_type: Option<String>,
    /// The declared scaling's factor (`{arch}.rope.scaling.factor`), if any.
    pub rope_scaling_factor: Option<f32>,
    /// Context the scaling was declared against
    /// (`{arch}.rope.scaling.original_context_length`).
    pub rope_scaling_original_context: Option<usize>,
    /// What only some architectures have.
    pub numerics: ArchNumerics,
}

impl ModelConfig {
    /// Reads the hyper-parameters of a GGUF of one of the [`Arch`]s.
    pub fn from_gguf(content: &Content) -> Result<Self> {
        let md = &content.metadata;
        let arch_name = get_str(content, "general.architecture")?;
        let Some(arch) = Arch::from_name(&arch_name) else {
            bail!(
                "unsupported architecture '{arch_name}': folio runs {}",
                Arch::SUPPORTED
            )
        };
        let key = |k: &str| format!("{arch_name}.{k}");
        let n_heads = get_usize(content, &key("attention.head_count"))?;
        let hidden = get_usize(content, &key("embedding_length"))?;
        if n_heads == 0 || hidden == 0 {
            bail!("the GGUF declares {n_heads} attention heads and a hidden size of {hidden}: not a usable model");
        }
        let head_dim = get_usize(content, &key("attention.key_length")).unwrap_or(hidden / n_heads);
        let vocab_size = match md.get("tokenizer.ggml.tokens") {
            Some(Value::Array(tokens)) => tokens.len(),
            _ => bail!("GGUF has no tokenizer.ggml.tokens"),
        };
        let mut config = Self {
            arch,
            name: get_str(content, "general.name").unwrap_or_else(|_| arch_name.clone()),
            n_layers: get_usize(content, &key("block_count"))?,
            hidden,
            ffn_hidden: get_usize(content, &key("feed_forward_length"))?,
            n_heads,
            n_kv_heads: get_usize(content, &key("attention.head_count_kv")).unwrap_or(n_heads),
            head_dim,
            vocab_size,
            rms_eps: get_f32(content, &key("attention.layer_norm_rms_epsilon"))?,
            rope_theta: get_f32(content, &key("rope.freq_base")).unwrap_or(10_000.0),
            rope_dim: get_usize(content, &key("rope.dimension_count")).unwrap_or(head_dim),
            trained_context: get_usize(content, &key("context_length"))?,
            rope_scaling_type: get_str(content, &key("rope.scaling.type")).ok(),
            rope_scaling_factor: get_f32(content, &key("rope.scaling.factor")).ok(),
            rope_scaling_original_context: get_usize(
                content,
                &key("rope.scaling.original_context_length"),
            )
            .ok(),
            numerics: ArchNumerics::default(),
        };
        config.numerics = read_numerics(content, arch, &key, &config);
        config.check()?;
        Ok(config)
    }

    /// Refuses hyper-parameters the forward pass cannot run (a crafted or
    /// damaged header), so that none of them divides by zero or indexes out
    /// of a buffer later.
    fn check(&self) -> Result<()> {
        let fail = |what: String| -> Result<()> {
            bail!("the GGUF's hyper-parameters are not usable: {what}")
        };
        let sizes = [
            ("block_count", self.n_layers),
            ("feed_forward_length", self.ffn_hidden),
            ("attention.head_count_kv", self.n_kv_heads),
            ("head dimension", self.head_dim),
            ("context_length", self.trained_context),
            ("vocabulary", self.vocab_size),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return fail(format!("{name} is 0"));
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return fail(format!(
                "{} query heads do not share {} KV heads evenly",
                self.n_heads, self.n_kv_heads
            ));
        }
        if self.rope_dim > self.head_dim || !self.rope_dim.is_multiple_of(2) {
            return fail(format!(
                "rope.dimension_count {} does not fit head dimension {}",
                self.rope_dim, self.head_dim
            ));
        }
        let eps_ok = self.rms_eps.is_finite() && self.rms_eps >= 0.0;
        let theta_ok = self.rope_theta.is_finite() && self.rope_theta > 0.0;
        if !(eps_ok && theta_ok) {
            return fail(format!(
                "rms epsilon {} or RoPE base {} is not a positive number",
                self.rms_eps, self.rope_theta
            ));
        }
        // Sizes far past any model's: products of them must not overflow.
        let huge = [
            self.n_layers,
            self.hidden,
            self.ffn_hidden,
            self.n_heads,
            self.head_dim,
        ];
        if huge.iter().any(|v| *v > 1 << 20) || self.vocab_size > 1 << 24 {
            return fail("a dimension is implausibly large".into());
        }
        Ok(())
    }

    /// The RoPE scaling a request gets unless it asks for another: what the
    /// GGUF declares (`linear` or `yarn` with a factor above 1), else none.
    pub fn default_rope_scaling(&self) -> RopeScaling {
        let factor = match self.rope_scaling_factor {
            Some(f) if f > 1.0 => f,
            _ => return RopeScaling::None,
        };
        let original = self
            .rope_scaling_original_context
            .unwrap_or(self.trained_context);
        match self.rope_scaling_type.as_deref() {
            Some("linear") => RopeScaling::Linear { factor },
            Some("yarn") => RopeScaling::yarn(factor, original),
            _ => RopeScaling::None,
        }
    }

    /// Positions the model was trained on: the declared original context
    /// when the GGUF carries a scaling, else `context_length`.
    pub fn trained_positions(&self) -> usize {
        match self.default_rope_scaling() {
            RopeScaling::None => self.trained_context,
            _ => self
                .rope_scaling_original_context
                .unwrap_or(self.trained_context),
        }
    }

    /// Bytes of f32 KV cache one token occupies across all layers.
    pub fn kv_bytes_per_token_f32(&self) -> usize {
        2 * self.n_layers * self.n_kv_heads * self.head_dim * 4
    }
}

/// The numerics of [`ArchNumerics`] this architecture declares.
fn read_numerics(
    content: &Content,
    arch: Arch,
    key: &dyn Fn(&str) -> String,
    config: &ModelConfig,
) -> ArchNumerics {
    let f32_key = |k: &str| get_f32(content, &key(k)).ok().filter(|v| v.is_finite());
    let rope_attn_factor = f32_key("rope.scaling.attn_factor").filter(|f| *f > 0.0);
    if arch != Arch::Gemma2 {
        return ArchNumerics {
            rope_attn_factor,
            ..ArchNumerics::default()
        };
    }
    // As llama.cpp: Gemma 2 27B (46 layers) scales queries by the model's
    // width per head, the others by the head dimension.
    let per_head = if config.n_layers == 46 {
        config.hidden / config.n_heads
    } else {
        config.head_dim
    };
    ArchNumerics {
        attn_softcap: f32_key("attn_logit_softcapping").filter(|c| *c > 0.0),
        final_softcap: f32_key("final_logit_softcapping").filter(|c| *c > 0.0),
        sliding_window: Some(get_usize(content, &key("attention.sliding_window")).unwrap_or(4096))
            .filter(|w| *w > 0),
        query_scale: Some(1.0 / (per_head as f32).sqrt()),
        rope_attn_factor,
    }
}

pub(crate) fn get_str(content: &Content, key: &str) -> Result<String> {
    match content.metadata.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => bail!("GGUF key {key} is not a string: {other:?}"),
        None => bail!("GGUF key {key} is missing"),
    }
}

pub(crate) fn get_usize(content: &Content, key: &str) -> Result<usize> {
    let v = content
        .metadata
        .get(key)
        .with_context(|| format!("GGUF key {key} is missing"))?;
    Ok(v.to_u64()
        .or_else(|_| v.to_u32().map(u64::from))
        .or_else(|_| v.to_i32().map(|x| x as u64))? as usize)
}

pub(crate) fn get_f32(content: &Content, key: &str) -> Result<f32> {
    let v = content
        .metadata
        .get(key)
        .with_context(|| format!("GGUF key {key} is missing"))?;
    Ok(v.to_f32().or_else(|_| v.to_f64().map(|x| x as f32))?)
}
