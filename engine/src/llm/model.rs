//! Our forward pass for the decoders of [`Arch`]: llama, qwen2, qwen3, phi3
//! and gemma2 differ only in the steps marked by their weights and
//! [`ArchNumerics`](super::config::ArchNumerics).
//!
//! A [`Model`] is immutable after load and can serve many [`Session`]s; a
//! session owns a KV cache, the attention algorithm and the RoPE frequencies,
//! which is where long-context techniques plug in.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::Content;
use folio_kernels::attention::{capped, Capping};
use folio_kernels::ops::{add_in_place, geglu, rms_norm, swiglu};
use folio_kernels::{AttentionShape, AttentionStats};

use super::attention::{Attention, CappedAttention, FlashAttention};
use super::chat::ChatTemplate;
use super::config::{Arch, ModelConfig};
use super::evict::{accumulate_attention, Eviction, EvictionPolicy};
use super::kv_cache::{KvCache, KvDtype, KvScratch};
use super::rope::{Rope, RopeLayout, RopeScaling};
use super::tokenizer::TextTokenizer;
use super::weights::{Products, Weights, DECODE_ROWS};

/// A loaded model: configuration, weights, tokenizer and chat template.
pub struct Model {
    /// Shape and numerics read from the GGUF header.
    pub config: ModelConfig,
    /// Every weight, mapped from the file in its blocks.
    pub weights: Weights,
    /// The GGUF's own tokenizer.
    pub tokenizer: TextTokenizer,
    /// How turns are delimited and which tokens end an answer.
    pub chat: ChatTemplate,
    /// Seconds spent reading the header and mapping the weights.
    pub load_seconds: f64,
    /// The GGUF file the weights are mapped from.
    pub path: std::path::PathBuf,
    /// Hex sha256 of the file: known from the manifest or the registry of
    /// the user's models, else computed on first use ([`Model::sha256`]).
    sha256: std::sync::OnceLock<String>,
}

impl Model {
    /// Loads a GGUF file: metadata, tokenizer, then the weights mapped in place.
    pub fn load(path: &Path) -> Result<Self> {
        let start = Instant::now();
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening model {}", path.display()))?;
        // The header is hundreds of thousands of small fields (the
        // vocabulary): buffered, they are not a system call each.
        let mut file = std::io::BufReader::with_capacity(1 << 20, file);
        // candle's header reader panics on some crafted headers (an
        // alignment of 0): contained, that is an error like any other.
        let content = folio_corpora::contain::catch(|| Content::read(&mut file))
            .map_err(|panic| anyhow::anyhow!("{panic}"))
            .and_then(|read| read.map_err(anyhow::Error::from))
            .map_err(|e| {
                // candle appends a backtrace to its message when
                // RUST_BACKTRACE is set: the reason is the first line.
                let reason = e.to_string();
                let reason = reason.lines().next().unwrap_or_default();
                anyhow::anyhow!(
                    "{} is not a readable GGUF file ({reason}); `folio models verify` checks it",
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
            path: path.to_path_buf(),
            sha256: std::sync::OnceLock::new(),
        })
    }

    /// Records the file's sha256 where it is already known (checked when
    /// the file was fetched or added), so [`Model::sha256`] need not read it.
    pub fn with_known_sha256(self, sha256: &str) -> Self {
        let _ = self.sha256.set(sha256.to_string());
        self
    }

    /// Hex sha256 of the model file: what a saved KV cache is keyed by
    /// (reads the whole file once for a GGUF the user named by path).
    pub fn sha256(&self) -> Result<&str> {
        if let Some(s) = self.sha256.get() {
            return Ok(s);
        }
        let computed = crate::models::local::sha256_file(&self.path)?;
        Ok(self.sha256.get_or_init(|| computed))
    }

    /// The rotary layout this architecture's GGUF weights expect.
    pub fn rope_layout(&self) -> RopeLayout {
        self.config.arch.rope_layout()
    }

    /// The rotary embedding of a request of `tokens` tokens under
    /// `scaling`, with the per-pair factors the file carries for that
    /// length (Llama 3.1's fixed set, Phi-3's short or long set).
    pub fn rope(&self, scaling: RopeScaling, tokens: usize) -> Rope {
        let c = &self.config;
        let original = c.rope_scaling_original_context.unwrap_or(c.trained_context);
        Rope::new(c.rope_theta, c.rope_dim, self.rope_layout(), scaling)
            .with_factors(self.weights.rope_factors.for_length(tokens, original))
    }

    /// The softmax changes of layer `layer` (Gemma 2's caps and its
    /// windows on even layers), `None` for plain attention.
    pub fn capping(&self, layer: usize) -> Option<Capping> {
        let n = &self.config.numerics;
        let capping = Capping {
            softcap: n.attn_softcap,
            window: n.sliding_window.filter(|_| layer.is_multiple_of(2)),
        };
        (capping != Capping::default()).then_some(capping)
    }
}

/// How a session runs: the pluggable parts of the forward pass.
#[derive(Clone)]
pub struct SessionOptions {
    /// The attention kernel (flash by default; dense and sparse to compare).
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
    /// activations for every block type. Off by default: prompts then take
    /// int8 only for the block types whose int8 kernel is the faster on
    /// this CPU (K-quants on AVX2), f32 tiles and gemm for the rest
    /// (BENCHMARKS.md).
    pub int8_prefill: bool,
    /// Keep at most a budget of positions per layer and KV head
    /// ([`super::evict`]); `None`: every position.
    pub eviction: Option<Eviction>,
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
            eviction: None,
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
    /// Keys and values of the tokens read so far, every layer.
    pub cache: KvCache,
    scratch: KvScratch,
    rope: Rope,
    options: SessionOptions,
    /// Attention work done so far (for reporting keys attended).
    pub attention_stats: AttentionStats,
    /// Tokens the request declared before its first forward (0: unknown).
    declared_length: usize,
    /// Per layer and KV head, the attention each cached row received (kept
    /// only for an eviction that ranks by it).
    attention_received: Vec<Vec<Vec<f32>>>,
    /// What eviction did so far.
    pub eviction_stats: EvictionStats,
    /// A prompt was read since the last SnapKV eviction.
    snap_pending: bool,
}

/// What a session's eviction did: the card's numbers.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct EvictionStats {
    /// Times the cache was cut back to the budget.
    pub evictions: usize,
    /// Positions dropped from each layer and KV head in all.
    pub positions_dropped: usize,
    /// Most bytes the cache held at once.
    pub peak_cache_bytes: usize,
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
    /// A fresh session (empty cache) over `model`; Gemma 2 always runs its capped kernel.
    pub fn new(model: &'m Model, mut options: SessionOptions) -> Self {
        let c = &model.config;
        // Gemma 2's capped softmax is run by one exact kernel whatever mode
        // was asked for; the session reports that kernel, not the request.
        if let Some(capping) = model.capping(0) {
            options.attention = Arc::new(CappedAttention {
                softcap: capping.softcap,
            });
        }
        let mut cache = KvCache::new(c.n_layers, c.n_kv_heads, c.head_dim, options.kv_dtype);
        if let Some(block) = options.attention.key_summary_block() {
            cache.keep_key_summaries(block);
        }
        Self {
            model,
            cache,
            scratch: KvScratch::default(),
            rope: model.rope(options.rope_scaling, 0),
            options,
            attention_stats: AttentionStats::default(),
            declared_length: 0,
            attention_received: Vec::new(),
            eviction_stats: EvictionStats::default(),
            snap_pending: false,
        }
    }

    /// The model the session runs.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// The options it was made with (attention as run, not as asked).
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

    /// Tokens read so far (cached or evicted): the next token's position.
    pub fn position(&self) -> usize {
        self.cache.position()
    }

    /// Fixes the RoPE frequencies of a request of `tokens` prompt tokens
    /// (`Dynamic` scaling and the choice of LongRoPE factors depend on it).
    fn resolve_rope(&mut self, tokens: usize) {
        let resolved = self.options.rope_scaling.resolve(tokens);
        self.rope = self.model.rope(resolved, tokens);
    }

    /// The factor on `q·k`: the model's query scale (`1/sqrt(head_dim)`
    /// unless it says otherwise), YaRN's temperature, and LongRoPE's
    /// attention factor on queries and keys both.
    fn attention_scale(&self) -> f32 {
        let c = &self.model.config;
        let query = c
            .numerics
            .query_scale
            .unwrap_or(1.0 / (c.head_dim as f32).sqrt());
        let long_rope = c.numerics.rope_attn_factor.unwrap_or(1.0);
        query * self.rope.scaling.attention_factor() * long_rope * long_rope
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.cache.clear();
        self.attention_stats = AttentionStats::default();
        self.declared_length = 0;
        self.attention_received.clear();
        self.eviction_stats = EvictionStats::default();
        self.snap_pending = false;
    }

    /// Puts `cache` (a saved prompt prefix) in place of this session's, for
    /// a request of `total` tokens, as if this session had read it; gives
    /// it back when its dtype or shape is not this session's.
    pub fn restore(&mut self, mut cache: KvCache, total: usize) -> Result<(), Box<KvCache>> {
        let c = &self.model.config;
        let shape = (cache.layers.len(), cache.row(), cache.dtype);
        if shape != (c.n_layers, c.n_kv_heads * c.head_dim, self.options.kv_dtype) {
            return Err(Box::new(cache));
        }
        if let Some(block) = self.options.attention.key_summary_block() {
            cache.keep_key_summaries(block);
        }
        self.cache = cache;
        self.attention_stats = AttentionStats::default();
        self.declared_length = total;
        self.resolve_rope(total);
        Ok(())
    }

    /// Takes the cache out, leaving an empty one of the same kind (so a
    /// prefix can be kept in memory without a copy).
    pub fn take_cache(&mut self) -> KvCache {
        let c = &self.model.config;
        let mut empty = KvCache::new(c.n_layers, c.n_kv_heads, c.head_dim, self.options.kv_dtype);
        if let Some(block) = self.options.attention.key_summary_block() {
            empty.keep_key_summaries(block);
        }
        self.declared_length = 0;
        std::mem::replace(&mut self.cache, empty)
    }

    /// Cuts the cache back to the eviction budget when the policy says so:
    /// after every prefill chunk (StreamingLLM, H2O), or once a prompt of
    /// more than one token has been read and decoding starts (SnapKV).
    fn evict_if_due(&mut self, tokens: usize) {
        self.eviction_stats.peak_cache_bytes =
            self.eviction_stats.peak_cache_bytes.max(self.cache.bytes());
        let Some(e) = self.options.eviction else {
            return;
        };
        let due = if e.during_prefill() {
            self.cache.len > e.budget
        } else {
            // SnapKV: when decoding starts after a prompt (a call of one
            // token after one of several), with the prompt's votes in.
            let due = tokens == 1 && self.snap_pending && self.cache.len > e.budget;
            self.snap_pending = tokens > 1;
            due
        };
        if !due {
            return;
        }
        let heads = self.model.config.n_kv_heads;
        let keep: Vec<Vec<Vec<usize>>> = (0..self.cache.layers.len())
            .map(|l| {
                let scores = self.attention_received.get(l).map(Vec::as_slice);
                e.keep(self.cache.len, heads, scores)
            })
            .collect();
        for (scores, keep) in self.attention_received.iter_mut().zip(&keep) {
            for (s, rows) in scores.iter_mut().zip(keep) {
                *s = rows.iter().map(|&r| s[r]).collect();
            }
        }
        let before = self.cache.len;
        self.cache.evict(&keep);
        self.eviction_stats.evictions += 1;
        self.eviction_stats.positions_dropped += before - self.cache.len;
    }

    /// Forgets the cached tokens from `len` on (see [`super::Decoder::truncate`]).
    pub fn truncate(&mut self, len: usize) -> bool {
        self.cache.truncate(len)
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
            Products::Prompt
        };
        let (t, h, d) = (tokens.len(), c.hidden, c.head_dim);
        if self.options.eviction.is_some_and(|e| !e.during_prefill()) {
            self.evict_if_due(t);
        }
        let start = self.cache.len;
        let position = self.cache.position();
        let ranking = self.options.eviction.filter(|e| e.needs_scores());
        if ranking.is_some() {
            let heads = c.n_kv_heads;
            self.attention_received
                .resize_with(c.n_layers, || vec![Vec::new(); heads]);
            for layer in &mut self.attention_received {
                for head in layer.iter_mut() {
                    // SnapKV counts only the last call's votes.
                    if ranking.is_some_and(|e| !e.during_prefill()) {
                        head.iter_mut().for_each(|s| *s = 0.0);
                    }
                    head.resize(start + t, 0.0);
                }
            }
        }
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
        if c.arch == Arch::Gemma2 {
            let s = (h as f32).sqrt();
            x.iter_mut().for_each(|v| *v *= s);
        }
        let (q_dim, kv_dim) = (c.n_heads * d, c.n_kv_heads * d);
        let scale = self.attention_scale();
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
        let rope_table = self.rope.table(position, t);
        let mut q = vec![0f32; t * q_dim];
        let mut attn = vec![0f32; t * q_dim];
        let (mut new_keys, mut new_values) = (vec![0f32; t * kv_dim], vec![0f32; t * kv_dim]);
        let mut post = vec![0f32; t * h];
        let mut head_normed = Vec::new();
        for (i, (layer, kv)) in w
            .layers
            .iter()
            .zip(self.cache.layers.iter_mut())
            .enumerate()
        {
            rms_norm(&x, &layer.attn_norm, c.rms_eps, &mut normed);
            let qkv = layer.qkv.forward(&normed, t, products);
            for (r, row) in qkv.chunks_exact(q_dim + 2 * kv_dim).enumerate() {
                q[r * q_dim..(r + 1) * q_dim].copy_from_slice(&row[..q_dim]);
                new_keys[r * kv_dim..(r + 1) * kv_dim].copy_from_slice(&row[q_dim..q_dim + kv_dim]);
                new_values[r * kv_dim..(r + 1) * kv_dim].copy_from_slice(&row[q_dim + kv_dim..]);
            }
            if let Some((q_norm, k_norm)) = &layer.qk_norms {
                // Each head's vector is one row of `head_dim`.
                for (buf, weight) in [(&mut q, q_norm), (&mut new_keys, k_norm)] {
                    head_normed.resize(buf.len(), 0.0);
                    rms_norm(buf, weight, c.rms_eps, &mut head_normed);
                    buf.copy_from_slice(&head_normed);
                }
            }
            self.rope.apply(&rope_table, &mut q, c.n_heads, d);
            self.rope.apply(&rope_table, &mut new_keys, c.n_kv_heads, d);
            kv.append(&new_keys, &new_values);
            let view = kv.view(&mut self.scratch, start + t);
            let stats = match self.model.capping(i) {
                Some(capping) => {
                    capped(&q, view.keys, view.values, &mut attn, shape, scale, capping)
                }
                None => self
                    .options
                    .attention
                    .attend(&q, &view, &mut attn, shape, scale),
            };
            self.attention_stats.merge(stats);
            if let Some(e) = ranking {
                let rows = match e.policy {
                    EvictionPolicy::SnapKv { window, .. } => t.saturating_sub(window)..t,
                    _ => 0..t,
                };
                accumulate_attention(
                    &mut self.attention_received[i],
                    &q,
                    view.keys,
                    shape,
                    scale,
                    rows,
                );
            }
            let attn_out = layer.attn_out.forward(&attn, t, products);
            add_residual(
                &mut x,
                &attn_out,
                layer.attn_post_norm.as_deref(),
                c.rms_eps,
                &mut post,
            );
            rms_norm(&x, &layer.ffn_norm, c.rms_eps, &mut normed);
            let gate_up = layer.gate_up.forward(&normed, t, products);
            if c.arch == Arch::Gemma2 {
                geglu(&gate_up, c.ffn_hidden, &mut act);
            } else {
                swiglu(&gate_up, c.ffn_hidden, &mut act);
            }
            let ffn_out = layer.down.forward(&act, t, products);
            add_residual(
                &mut x,
                &ffn_out,
                layer.ffn_post_norm.as_deref(),
                c.rms_eps,
                &mut post,
            );
        }
        self.cache.len += t;
        if self.options.eviction.is_some_and(|e| e.during_prefill()) {
            self.evict_if_due(t);
        }
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
        let mut logits = w.output.forward(&last, n, last_products);
        if let Some(cap) = c.numerics.final_softcap {
            logits.iter_mut().for_each(|l| *l = cap * (*l / cap).tanh());
        }
        Ok(logits)
    }
}

/// `x += y`, through an RMS norm of `y` first where the block has one
/// (Gemma 2's post-attention and post-FFN norms); `scratch` is `y`-sized.
fn add_residual(x: &mut [f32], y: &[f32], norm: Option<&[f32]>, eps: f32, scratch: &mut [f32]) {
    match norm {
        Some(weight) => {
            rms_norm(y, weight, eps, scratch);
            add_in_place(x, scratch);
        }
        None => add_in_place(x, y),
    }
}
