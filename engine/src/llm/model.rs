//! Our forward pass for llama and qwen2 decoders.
//!
//! A [`Model`] is immutable after load and can serve many [`Session`]s; a
//! session owns a KV cache, the attention algorithm and the RoPE frequencies,
//! which is where long-context techniques plug in.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::Content;
use folio_kernels::ops::{add_in_place, rms_norm, swiglu};
use folio_kernels::{AttentionShape, AttentionStats};

use super::attention::{Attention, FlashAttention};
use super::chat::ChatTemplate;
use super::config::{Arch, ModelConfig};
use super::kv_cache::{KvCache, KvDtype, KvScratch};
use super::rope::{Rope, RopeLayout, RopeScaling};
use super::tokenizer::TextTokenizer;
use super::weights::{Products, Weights, DECODE_ROWS};

/// A loaded model: configuration, weights, tokenizer and chat template.
pub struct Model {
    pub config: ModelConfig,
    pub weights: Weights,
    pub tokenizer: TextTokenizer,
    pub chat: ChatTemplate,
    /// Seconds spent reading the header and mapping the weights.
    pub load_seconds: f64,
}

impl Model {
    /// Loads a GGUF file: metadata, tokenizer, then the weights mapped in place.
    pub fn load(path: &Path) -> Result<Self> {
        let start = Instant::now();
        let mut file = std::fs::File::open(path)
            .with_context(|| format!("opening model {}", path.display()))?;
        // candle's header reader panics on some crafted headers (an
        // alignment of 0): contained, that is an error like any other.
        let content = folio_corpora::contain::catch(|| Content::read(&mut file))
            .map_err(|panic| anyhow::anyhow!("{panic}"))
            .and_then(|read| read.map_err(anyhow::Error::from))
            .map_err(|e| {
                anyhow::anyhow!(
                    "{} is not a readable GGUF file ({e}); `folio models verify` checks it",
                    path.display()
                )
            })?;
        let config = ModelConfig::from_gguf(&content)?;
        let tokenizer = TextTokenizer::from_gguf(&content)?;
        if tokenizer.vocab_size() != config.vocab_size {
            bail!(
                "tokenizer has {} tokens but the model {}",
                tokenizer.vocab_size(),
                config.vocab_size
            );
        }
        let chat = ChatTemplate::for_model(config.arch, &tokenizer)?;
        let weights = Weights::load(path, &content, &config)?;
        Ok(Self {
            config,
            weights,
            tokenizer,
            chat,
            load_seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// The rotary layout this architecture's GGUF weights expect.
    pub fn rope_layout(&self) -> RopeLayout {
        match self.config.arch {
            Arch::Llama => RopeLayout::Interleaved,
            Arch::Qwen2 => RopeLayout::Halves,
        }
    }
}

/// How a session runs: the pluggable parts of the forward pass.
#[derive(Clone)]
pub struct SessionOptions {
    pub attention: Arc<dyn Attention>,
    /// RoPE frequencies; `Dynamic` is resolved at the first prefill.
    pub rope_scaling: RopeScaling,
    /// Element type of the KV cache.
    pub kv_dtype: KvDtype,
    /// Prompt tokens per forward chunk; bounds activation memory.
    pub prefill_chunk: usize,
    /// Generate with 8-bit activations against the weights' blocks
    /// (llama.cpp's way, the fast path for calls of a few rows). `false`:
    /// every product in f32 (`Products::F32Tiles`), the reference that
    /// tests hold the 8-bit path to.
    pub quantized_activations: bool,
    /// Prompts (calls of more than `DECODE_ROWS` rows) with 8-bit
    /// activations too, instead of f32 tiles and gemm. Off by default: on
    /// the AVX2 machines measured it is slower (BENCHMARKS.md).
    pub int8_prefill: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            attention: Arc::new(FlashAttention),
            rope_scaling: RopeScaling::None,
            kv_dtype: KvDtype::F32,
            prefill_chunk: 512,
            quantized_activations: true,
            int8_prefill: false,
        }
    }
}

impl SessionOptions {
    /// The defaults for `model`: flash attention, f32 KV, and the RoPE
    /// scaling its GGUF declares (none for folio's bundled models).
    pub fn for_model(model: &Model) -> Self {
        Self {
            rope_scaling: model.config.default_rope_scaling(),
            ..Self::default()
        }
    }
}

/// A conversation's state over one model: its KV cache and settings.
pub struct Session<'m> {
    model: &'m Model,
    pub cache: KvCache,
    scratch: KvScratch,
    rope: Rope,
    options: SessionOptions,
    /// Attention work done so far (for reporting keys attended).
    pub attention_stats: AttentionStats,
    /// Tokens the request declared before its first forward (0: unknown).
    declared_length: usize,
}

/// Which logits a forward call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last position's (generation).
    Last,
    /// Every position's, `[tokens, vocab]` (perplexity).
    All,
}

impl<'m> Session<'m> {
    pub fn new(model: &'m Model, options: SessionOptions) -> Self {
        let c = &model.config;
        let mut cache = KvCache::new(c.n_layers, c.n_kv_heads, c.head_dim, options.kv_dtype);
        if let Some(block) = options.attention.key_summary_block() {
            cache.keep_key_summaries(block);
        }
        Self {
            model,
            cache,
            scratch: KvScratch::default(),
            rope: Rope::new(
                c.rope_theta,
                c.rope_dim,
                model.rope_layout(),
                options.rope_scaling,
            ),
            options,
            attention_stats: AttentionStats::default(),
            declared_length: 0,
        }
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// The RoPE scaling in effect (`Dynamic` shows what it resolved to).
    pub fn rope_scaling(&self) -> RopeScaling {
        self.rope.scaling
    }

    /// Bytes of the f32 scratch a compressed KV cache is expanded into.
    pub fn kv_scratch_bytes(&self) -> usize {
        self.scratch.bytes()
    }

    /// Tokens in the cache.
    pub fn position(&self) -> usize {
        self.cache.len
    }

    /// Fixes the RoPE frequencies of a request of `tokens` prompt tokens
    /// (only `Dynamic` depends on it).
    fn resolve_rope(&mut self, tokens: usize) {
        let resolved = self.options.rope_scaling.resolve(tokens);
        if resolved != self.rope.scaling {
            let c = &self.model.config;
            self.rope = Rope::new(c.rope_theta, c.rope_dim, self.model.rope_layout(), resolved);
        }
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.cache.clear();
        self.attention_stats = AttentionStats::default();
        self.declared_length = 0;
    }

    /// Declares, on an empty cache, how many tokens the request will hold,
    /// so `Dynamic` RoPE is resolved for the whole request rather than its
    /// first chunk.
    pub fn declare_length(&mut self, total: usize) {
        if self.cache.len == 0 {
            self.declared_length = total;
        }
    }

    /// Runs `tokens` through the model in chunks, appending to the cache.
    pub fn forward(&mut self, tokens: &[u32], logits: Logits) -> Result<Vec<f32>> {
        crate::threads::install(|| self.forward_in_pool(tokens, logits))
    }

    fn forward_in_pool(&mut self, tokens: &[u32], logits: Logits) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            bail!("forward called with no tokens");
        }
        if self.cache.len == 0 {
            self.resolve_rope(tokens.len().max(self.declared_length));
        }
        self.cache.reserve(tokens.len());
        let chunk = self.options.prefill_chunk.max(1);
        let mut out = Vec::new();
        let n_chunks = tokens.len().div_ceil(chunk);
        for (i, piece) in tokens.chunks(chunk).enumerate() {
            let want = match logits {
                Logits::All => Some(0..piece.len()),
                Logits::Last if i + 1 == n_chunks => Some(piece.len() - 1..piece.len()),
                Logits::Last => None,
            };
            out.extend(self.forward_chunk(piece, want)?);
        }
        Ok(out)
    }

    fn forward_chunk(
        &mut self,
        tokens: &[u32],
        logit_rows: Option<std::ops::Range<usize>>,
    ) -> Result<Vec<f32>> {
        let c = &self.model.config;
        let w = &self.model.weights;
        let products = if !self.options.quantized_activations {
            Products::F32Tiles
        } else if tokens.len() <= DECODE_ROWS || self.options.int8_prefill {
            Products::Int8
        } else {
            Products::F32Tiles
        };
        let (t, h, d) = (tokens.len(), c.hidden, c.head_dim);
        let start = self.cache.len;
        let mut x = Vec::with_capacity(t * h);
        for &tok in tokens {
            let tok = tok as usize;
            if tok >= c.vocab_size {
                bail!(
                    "token id {tok} is outside the vocabulary ({})",
                    c.vocab_size
                );
            }
            w.embed(tok, &mut x);
        }
        let (q_dim, kv_dim) = (c.n_heads * d, c.n_kv_heads * d);
        let scale = self.rope.scaling.attention_factor() / (d as f32).sqrt();
        let shape = AttentionShape {
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: d,
            q_len: t,
            kv_len: start + t,
            q_start: start,
        };
        let mut normed = vec![0f32; t * h];
        let mut act = vec![0f32; t * c.ffn_hidden];
        let rope_table = self.rope.table(start, t);
        let mut q = vec![0f32; t * q_dim];
        let mut attn = vec![0f32; t * q_dim];
        let (mut new_keys, mut new_values) = (vec![0f32; t * kv_dim], vec![0f32; t * kv_dim]);
        for (layer, kv) in w.layers.iter().zip(self.cache.layers.iter_mut()) {
            rms_norm(&x, &layer.attn_norm, c.rms_eps, &mut normed);
            let qkv = layer.qkv.forward(&normed, t, products);
            for (r, row) in qkv.chunks_exact(q_dim + 2 * kv_dim).enumerate() {
                q[r * q_dim..(r + 1) * q_dim].copy_from_slice(&row[..q_dim]);
                new_keys[r * kv_dim..(r + 1) * kv_dim].copy_from_slice(&row[q_dim..q_dim + kv_dim]);
                new_values[r * kv_dim..(r + 1) * kv_dim].copy_from_slice(&row[q_dim + kv_dim..]);
            }
            self.rope.apply(&rope_table, &mut q, c.n_heads, d);
            self.rope.apply(&rope_table, &mut new_keys, c.n_kv_heads, d);
            kv.append(&new_keys, &new_values);
            let view = kv.view(&mut self.scratch, start + t);
            let stats = self
                .options
                .attention
                .attend(&q, &view, &mut attn, shape, scale);
            self.attention_stats.merge(stats);
            add_in_place(&mut x, &layer.attn_out.forward(&attn, t, products));
            rms_norm(&x, &layer.ffn_norm, c.rms_eps, &mut normed);
            let gate_up = layer.gate_up.forward(&normed, t, products);
            swiglu(&gate_up, c.ffn_hidden, &mut act);
            add_in_place(&mut x, &layer.down.forward(&act, t, products));
        }
        self.cache.len += t;
        let Some(rows) = logit_rows else {
            return Ok(Vec::new());
        };
        let n = rows.len();
        let mut last = vec![0f32; n * h];
        rms_norm(
            &x[rows.start * h..rows.end * h],
            &w.output_norm,
            c.rms_eps,
            &mut last,
        );
        // A prompt's last row alone goes the generation way.
        let last_products = if self.options.quantized_activations && n <= DECODE_ROWS {
            Products::Int8
        } else {
            products
        };
        Ok(w.output.forward(&last, n, last_products))
    }
}
