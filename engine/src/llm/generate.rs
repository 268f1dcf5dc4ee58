//! Prompt in, streamed answer out, with the time each stage took.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::model::{Logits, Session};
use super::sampling::{Sampler, Sampling};
use super::tokenizer::StreamDecoder;

/// What to generate and when to stop.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Extra stop ids beside the chat template's.
    pub extra_stop_tokens: Vec<u32>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            sampling: Sampling::Greedy,
            extra_stop_tokens: Vec::new(),
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    StopToken,
    MaxTokens,
    ContextFull,
}

/// The answer and what it cost.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub text: String,
    pub tokens: Vec<u32>,
    pub prompt_tokens: usize,
    pub prefill_seconds: f64,
    pub decode_seconds: f64,
    pub stop_reason: StopReason,
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
pub fn generate(
    session: &mut Session,
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
    let mut logits = session.forward(prompt, Logits::Last)?;
    let prefill_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut tokens = Vec::new();
    let stop_reason = loop {
        let next = sampler.sample(&logits);
        if stops.contains(&next) {
            break StopReason::StopToken;
        }
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
        logits = session.forward(&[next], Logits::Last)?;
    };
    let text = model.tokenizer.decode(&tokens)?;
    Ok(Generation {
        text,
        tokens,
        prompt_tokens: prompt.len(),
        prefill_seconds,
        decode_seconds: t1.elapsed().as_secs_f64(),
        stop_reason,
    })
}

/// Perplexity of `tokens` under the model (exp of the mean negative log
/// likelihood of each token after the first), on a fresh cache.
pub fn perplexity(session: &mut Session, tokens: &[u32]) -> Result<f64> {
    let losses = token_losses(session, tokens)?;
    Ok((losses.iter().sum::<f64>() / losses.len() as f64).exp())
}

/// Negative log likelihood of each token after the first, on a fresh cache.
/// Logits are scored chunk by chunk, so a 32K-token text never holds more
/// than one chunk's `[tokens, vocab]` logits.
pub fn token_losses(session: &mut Session, tokens: &[u32]) -> Result<Vec<f64>> {
    anyhow::ensure!(tokens.len() >= 2, "perplexity needs at least two tokens");
    session.reset();
    let chunk = session.options().prefill_chunk.max(1);
    let mut losses = Vec::with_capacity(tokens.len() - 1);
    for (c, piece) in tokens.chunks(chunk).enumerate() {
        let logits = session.forward(piece, Logits::All)?;
        let vocab = logits.len() / piece.len();
        for (j, row) in logits.chunks_exact(vocab).enumerate() {
            let Some(&next) = tokens.get(c * chunk + j + 1) else {
                break;
            };
            losses.push(negative_log_likelihood(row, next));
        }
    }
    Ok(losses)
}

fn negative_log_likelihood(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let log_z = max
        + logits
            .iter()
            .map(|l| (*l as f64 - max).exp())
            .sum::<f64>()
            .ln();
    log_z - logits[target as usize] as f64
}
