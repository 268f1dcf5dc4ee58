//! Prompt in, streamed answer out, with the time each stage took.

use std::time::Instant;

use anyhow::Result;
use rayon::prelude::*;
use serde::Serialize;

use super::kv_cache::KvCache;
use super::model::{Logits, Model, Session};
use super::sampling::{Sampler, Sampling};
use super::tokenizer::StreamDecoder;

/// What generation and scoring need from a running model, on any device:
/// the CPU [`Session`] and the GPU session both implement it.
pub trait Decoder<'m> {
    /// The model (tokenizer, chat template, stop tokens).
    fn model(&self) -> &'m Model;
    /// Runs `tokens` through the model, appending to the cache.
    fn forward(&mut self, tokens: &[u32], logits: Logits) -> Result<Vec<f32>>;
    /// Tokens in the cache.
    fn position(&self) -> usize;
    /// Forgets the conversation.
    fn reset(&mut self);
    /// Declares, before the first forward, how many tokens the request will
    /// hold (fixes `Dynamic` RoPE for all of it).
    fn declare_length(&mut self, total: usize);
    /// Prompt tokens per forward chunk (scoring holds one chunk of logits).
    fn prefill_chunk(&self) -> usize;
    /// How the cached tokens were read, for the answer's trade-offs.
    fn read_stats(&self) -> ReadStats;
    /// Forgets every cached token from `len` on, so alternatives can be
    /// scored from one shared prefix; `false` (nothing changed) where the
    /// cache cannot be cut (int8 keys, sparse attention's summaries).
    fn truncate(&mut self, _len: usize) -> bool {
        false
    }
    /// The KV cache in host memory, which the prefix cache saves; `None`
    /// where the decoder keeps it elsewhere (the GPU).
    fn kv_cache(&self) -> Option<&KvCache> {
        None
    }
    /// Puts `cache` (a saved prompt prefix) in place of the decoder's own
    /// for a request of `total` tokens; gives it back where the decoder
    /// cannot take it (the GPU, another dtype or shape).
    fn restore_kv(&mut self, cache: KvCache, _total: usize) -> Result<(), Box<KvCache>> {
        Err(Box::new(cache))
    }
    /// Takes the cache out (an empty one stays), for keeping in memory.
    fn take_kv(&mut self) -> Option<KvCache> {
        None
    }
}

/// How a session read what it holds: the facts an answer reports.
#[derive(Debug, Clone, Serialize)]
pub struct ReadStats {
    /// `cpu` or `cuda`.
    pub device: &'static str,
    /// Attention mode (`dense`, `flash`, `sparse`).
    pub attention: &'static str,
    /// Fraction of causal (query, key) pairs that entered a softmax.
    pub attended_fraction: f64,
    /// The RoPE scaling in effect (`Dynamic` resolved).
    pub rope_scaling: super::RopeScaling,
    /// Element type of the KV cache (`f32`, `f16`, `int8`, `bf16`).
    pub kv_dtype: &'static str,
    /// Bytes the KV cache holds (key summaries included).
    pub kv_cache_bytes: usize,
    /// What KV eviction kept, when the read evicted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eviction: Option<EvictionReport>,
    /// The serving engine that ran the read, when one did
    /// (`--backend openai`): then the attention, RoPE and KV fields are the
    /// server's own, unknown here ([`crate::remote::ServerInfo::server_side`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<crate::remote::ServerInfo>,
}

/// What a read's KV eviction kept and saved: the card's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct EvictionReport {
    /// The policy and its budget, in words.
    pub policy: String,
    /// Positions kept per layer and KV head at the end.
    pub kept_positions: usize,
    /// Positions read (kept or evicted).
    pub read_positions: usize,
    /// Bytes the cache would hold with nothing evicted.
    pub full_cache_bytes: usize,
    /// Most bytes the cache held at once.
    pub peak_cache_bytes: usize,
}

impl<'m> Decoder<'m> for Session<'m> {
    fn model(&self) -> &'m Model {
        Session::model(self)
    }
    fn forward(&mut self, tokens: &[u32], logits: Logits) -> Result<Vec<f32>> {
        Session::forward(self, tokens, logits)
    }
    fn position(&self) -> usize {
        Session::position(self)
    }
    fn reset(&mut self) {
        Session::reset(self)
    }
    fn declare_length(&mut self, total: usize) {
        Session::declare_length(self, total)
    }
    fn prefill_chunk(&self) -> usize {
        self.options().prefill_chunk
    }
    fn truncate(&mut self, len: usize) -> bool {
        Session::truncate(self, len)
    }
    fn kv_cache(&self) -> Option<&KvCache> {
        Some(&self.cache)
    }
    fn restore_kv(&mut self, cache: KvCache, total: usize) -> Result<(), Box<KvCache>> {
        self.restore(cache, total)
    }
    fn take_kv(&mut self) -> Option<KvCache> {
        Some(self.take_cache())
    }
    fn read_stats(&self) -> ReadStats {
        ReadStats {
            device: "cpu",
            attention: self.options().attention.name(),
            attended_fraction: self.attention_stats.attended_fraction(),
            rope_scaling: self.rope_scaling(),
            kv_dtype: self.cache.dtype.name(),
            kv_cache_bytes: self.cache.bytes(),
            eviction: self.options().eviction.map(|e| {
                let per_row = self.cache.bytes() as f64 / self.cache.len.max(1) as f64;
                EvictionReport {
                    policy: e.to_string(),
                    kept_positions: self.cache.len,
                    read_positions: self.cache.position(),
                    full_cache_bytes: (per_row * self.cache.position() as f64) as usize,
                    peak_cache_bytes: self.eviction_stats.peak_cache_bytes,
                }
            }),
            server: None,
        }
    }
}

/// What to generate and when to stop.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Most tokens to generate; the stop token does not count.
    pub max_new_tokens: usize,
    /// How each next token is picked (greedy by default).
    pub sampling: Sampling,
    /// Extra stop ids beside the chat template's.
    pub extra_stop_tokens: Vec<u32>,
    /// Set from another thread to stop early (the TUI's cancel key): read
    /// before the prefill and once per decoded token, so a cancelled answer
    /// ends with [`StopReason::Cancelled`] and the text so far. A prefill
    /// already running is not interrupted.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl GenerateOptions {
    /// Whether [`GenerateOptions::cancel`] has been set.
    pub fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            sampling: Sampling::Greedy,
            extra_stop_tokens: Vec::new(),
            cancel: None,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced a stop token of the template (or an extra one).
    StopToken,
    /// `max_new_tokens` were generated.
    MaxTokens,
    /// The cache reached the context limit given to [`generate`].
    ContextFull,
    /// [`GenerateOptions::cancel`] was set.
    Cancelled,
}

/// The answer and what it cost.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// The generated text, decoded.
    pub text: String,
    /// The generated token ids, the stop token excluded.
    pub tokens: Vec<u32>,
    /// Tokens of the prompt read before generating.
    pub prompt_tokens: usize,
    /// Seconds of prefill, the first token's logits included.
    pub prefill_seconds: f64,
    /// Seconds spent generating after the first token.
    pub decode_seconds: f64,
    /// Why generation ended.
    pub stop_reason: StopReason,
    /// Mean log-probability the model gave the tokens it generated (0 when
    /// none): how sure it was of its own answer.
    pub mean_logprob: f64,
}

impl Generation {
    /// Prompt tokens per second of prefill.
    pub fn prefill_tok_per_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_seconds.max(1e-9)
    }

    /// Generated tokens per second (the first token comes from prefill).
    pub fn decode_tok_per_s(&self) -> f64 {
        self.tokens.len().saturating_sub(1) as f64 / self.decode_seconds.max(1e-9)
    }
}

/// Prefills `prompt` and decodes until a stop token, `max_new_tokens`, or
/// `max_context` total tokens; `on_text` receives each completed piece of text
/// as it is produced.
pub fn generate<'m>(
    session: &mut dyn Decoder<'m>,
    prompt: &[u32],
    options: &GenerateOptions,
    max_context: usize,
    on_text: &mut dyn FnMut(&str),
) -> Result<Generation> {
    let model = session.model();
    let mut stops = model.chat.stop_tokens.clone();
    stops.extend(&options.extra_stop_tokens);
    let mut sampler = Sampler::new(options.sampling);
    let mut decoder = StreamDecoder::new();
    let t0 = Instant::now();
    if options.cancelled() {
        return Ok(Generation {
            text: String::new(),
            tokens: Vec::new(),
            prompt_tokens: prompt.len(),
            prefill_seconds: 0.0,
            decode_seconds: 0.0,
            stop_reason: StopReason::Cancelled,
            mean_logprob: 0.0,
        });
    }
    session.declare_length(session.position() + prompt.len() + options.max_new_tokens);
    let mut logits = session.forward(prompt, Logits::Last)?;
    let prefill_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut tokens = Vec::new();
    let mut logprob_sum = 0.0;
    let stop_reason = loop {
        let next = sampler.sample(&logits);
        if stops.contains(&next) {
            break StopReason::StopToken;
        }
        logprob_sum -= negative_log_likelihood(&logits, next);
        tokens.push(next);
        if let Some(piece) = decoder.push(&model.tokenizer, next)? {
            on_text(&piece);
        }
        if tokens.len() >= options.max_new_tokens {
            break StopReason::MaxTokens;
        }
        if session.position() + 1 > max_context {
            break StopReason::ContextFull;
        }
        if options.cancelled() {
            break StopReason::Cancelled;
        }
        logits = session.forward(&[next], Logits::Last)?;
    };
    let text = model.tokenizer.decode(&tokens)?;
    let mean_logprob = logprob_sum / tokens.len().max(1) as f64;
    Ok(Generation {
        text,
        tokens,
        prompt_tokens: prompt.len(),
        prefill_seconds,
        decode_seconds: t1.elapsed().as_secs_f64(),
        stop_reason,
        mean_logprob,
    })
}

/// Perplexity of `tokens` under the model (exp of the mean negative log
/// likelihood of each token after the first), on a fresh cache.
pub fn perplexity(session: &mut dyn Decoder<'_>, tokens: &[u32]) -> Result<f64> {
    let losses = token_losses(session, tokens)?;
    Ok((losses.iter().sum::<f64>() / losses.len() as f64).exp())
}

/// Negative log likelihood of each token after the first, on a fresh cache.
/// Logits are scored chunk by chunk, so a 32K-token text never holds more
/// than one chunk's `[tokens, vocab]` logits.
pub fn token_losses(session: &mut dyn Decoder<'_>, tokens: &[u32]) -> Result<Vec<f64>> {
    anyhow::ensure!(tokens.len() >= 2, "perplexity needs at least two tokens");
    session.reset();
    session.declare_length(tokens.len());
    let chunk = session.prefill_chunk().max(1);
    let mut losses = Vec::with_capacity(tokens.len() - 1);
    for (c, piece) in tokens.chunks(chunk).enumerate() {
        let logits = session.forward(piece, Logits::All)?;
        let vocab = logits.len() / piece.len();
        let targets = &tokens[(c * chunk + 1).min(tokens.len())..];
        let scored: Vec<f64> = crate::threads::install(|| {
            logits
                .par_chunks_exact(vocab)
                .zip(targets.par_iter())
                .map(|(row, &next)| negative_log_likelihood(row, next))
                .collect()
        });
        losses.extend(scored);
    }
    Ok(losses)
}

/// `-ln softmax(logits)[target]`.
pub(crate) fn negative_log_likelihood(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let log_z = max
        + logits
            .iter()
            .map(|l| (*l as f64 - max).exp())
            .sum::<f64>()
            .ln();
    log_z - logits[target as usize] as f64
}
