//! The cost model: from a model's shape and a measured [`DeviceProfile`],
//! predict what a plan will take, stage by stage, before running it.
//!
//! Prefill is compute-bound: projections cost `2·params` FLOPs per token at
//! the measured matrix-product rate (int8 for the share of the weights whose
//! prompt products run int8, f32 for the rest), attention `4·head_dim` FLOPs per
//! (query head, key) pair at the measured rate of the chosen kernel.
//! Decoding is memory-bound: each token reads the quantized weights once at
//! the measured matrix-vector bandwidth, plus attention over the cache.

use serde::{Deserialize, Serialize};

use super::records::{CorpusStats, ModelLimits, PlannedAttention, PrefixPricing, StageSeconds};
use crate::llm::{KvDtype, RopeScaling, SparseConfig};

/// Throughputs of this machine, measured once by `folio calibrate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceProfile {
    /// Layout version of the cached file.
    pub version: u32,
    /// Seconds since the Unix epoch when it was measured.
    pub measured_at: u64,
    /// The CPU's model name (`/proc/cpuinfo`), to tell profiles of machines apart.
    pub cpu: String,
    /// Compute threads the measurements ran with.
    pub threads: usize,
    /// f32 matrix products at prefill shapes (GFLOP/s).
    pub matmul_gflops: f64,
    /// Matrix products of K-quant blocks with 8-bit activations at prefill
    /// shapes (GFLOP/s): the prompt path of the matrices that take it
    /// ([`ModelLimits::prompt_int8_share`]); the f32 rate where the CPU
    /// has no fast int8 kernel.
    pub int8_matmul_gflops: f64,
    /// Quantized matrix-vector products while decoding (GB/s of weights).
    pub decode_gbps: f64,
    /// Exact tiled attention during prefill (GFLOP/s over causal pairs).
    pub flash_gflops: f64,
    /// Sparse attention during prefill (GFLOP/s over attended pairs,
    /// indexer included).
    pub sparse_gflops: f64,
    /// Attention of one decoding step over a long cache (GFLOP/s).
    pub decode_attention_gflops: f64,
    /// Retrieval chunks embedded per second (ingest); `None`: not measured.
    pub embed_chunks_per_s: Option<f64>,
    /// Physical memory (`MemTotal`), in bytes.
    pub memory_total_bytes: u64,
    /// Memory available when measured (`MemAvailable`), in bytes.
    pub memory_available_bytes: u64,
}

/// The profile's layout version.
pub const PROFILE_VERSION: u32 = 2;

/// Bytes of the process beyond the model: tokenizer, runtime, buffers.
const BASE_BYTES: u64 = 150 << 20;
/// Embedding model, tokenizer and index readers of a RAG answer.
const RETRIEVAL_BYTES: u64 = 120 << 20;
/// Extra peak of indexing a corpus first (ONNX runtime arenas, embedding
/// batches, index writers): `folio ask` measured ~1.9 GB above the model
/// while ingesting the Jargon File on the 2-core test machine.
const INGEST_BYTES: u64 = 2 << 30;
/// Seconds of a search: BM25, query embedding, fetching chunk texts.
const SEARCH_SECONDS: f64 = 0.05;
/// Tokens of instructions, chat template and question around the context.
pub const PROMPT_OVERHEAD_TOKENS: usize = 96;
/// Tokens an answer is expected to take (one short sentence) when
/// predicting before it exists.
pub const EXPECTED_ANSWER_TOKENS: usize = 24;
/// Passages the compressor scores with its model (the best lexical
/// matches; `CompressOptions::max_lm_candidates`).
pub const COMPRESS_LM_CANDIDATES: usize = 48;
/// Scorer tokens of one candidate pass: a passage of a few sentences and
/// the question (`folio compress --json` on the Jargon excerpt: 118
/// sentences in 48 passages took 18 s, ~190 tokens a pass).
const COMPRESS_PASS_TOKENS: usize = 192;

/// A full read's prefill seconds and its prefix cache seconds: with a
/// saved prefix of `document` tokens that fits the plan (flash, f32, no
/// RoPE scaling, as saved), the prefill of the rest of the `prompt` plus
/// the restore; else the whole prefill plus saving the prefix (when the
/// read has a cache folder).
pub fn full_prefill_seconds(
    m: &ModelLimits,
    p: &DeviceProfile,
    (prompt, document): (usize, usize),
    (attention, kv, rope): (PlannedAttention, KvDtype, RopeScaling),
    prefix: Option<&PrefixPricing>,
) -> (f64, f64) {
    let whole = prefill_seconds(m, p, prompt, attention);
    let Some(prefix) = prefix else {
        return (whole, 0.0);
    };
    let matches =
        attention == PlannedAttention::Flash && kv == KvDtype::F32 && rope == RopeScaling::None;
    if matches && prefix.cached_tokens > 0 && prefix.cached_tokens < prompt {
        let spared = prefill_seconds(m, p, prefix.cached_tokens, attention);
        return ((whole - spared).max(0.0), prefix.restore_seconds);
    }
    let save = m.kv_bytes(document, kv) as f64 / prefix.save_bytes_per_s;
    (whole, save)
}

/// Seconds to prefill `tokens` tokens onto an empty cache.
pub fn prefill_seconds(
    m: &ModelLimits,
    p: &DeviceProfile,
    tokens: usize,
    attention: PlannedAttention,
) -> f64 {
    if let Some(s) = &m.served {
        let n = tokens as f64;
        return s.request_seconds + n / s.prompt_tok_per_s.max(1e-9) + n * n * s.prompt_quadratic_s;
    }
    let n = tokens as f64;
    let share = m.prompt_int8_share.clamp(0.0, 1.0);
    let seconds_per_flop =
        share / (p.int8_matmul_gflops * 1e9) + (1.0 - share) / (p.matmul_gflops * 1e9);
    let linear = n * m.linear_flops_per_token() * seconds_per_flop
        + m.head_flops() / (p.matmul_gflops * 1e9);
    let pair_flops = (m.n_heads * m.n_layers * 4 * m.head_dim) as f64;
    let attn = match attention {
        PlannedAttention::Flash => n * (n + 1.0) / 2.0 * pair_flops / (p.flash_gflops * 1e9),
        PlannedAttention::Sparse => {
            sparse_pairs(tokens, &SparseConfig::default()) * pair_flops / (p.sparse_gflops * 1e9)
        }
    };
    linear + attn
}

/// (query, key) pairs sparse attention reads for a prompt of `tokens`: each
/// row attends all earlier keys up to its keep size (top-k, sinks, window).
pub fn sparse_pairs(tokens: usize, cfg: &SparseConfig) -> f64 {
    let keep = (cfg.top_k.div_ceil(cfg.block) * cfg.block + cfg.sinks + cfg.window) as f64;
    let n = tokens as f64;
    if n <= keep {
        return n * (n + 1.0) / 2.0;
    }
    keep * (keep + 1.0) / 2.0 + (n - keep) * keep
}

/// Seconds to decode `answer` tokens after a `context`-token prompt.
pub fn decode_seconds(m: &ModelLimits, p: &DeviceProfile, context: usize, answer: usize) -> f64 {
    if let Some(s) = &m.served {
        return answer.saturating_sub(1) as f64 / s.decode_tok_per_s.max(1e-9);
    }
    let weights = m.decode_bytes as f64 / (p.decode_gbps * 1e9);
    let mean_len = context as f64 + answer as f64 / 2.0;
    let attn = (m.n_heads * m.n_layers * 4 * m.head_dim) as f64 * mean_len
        / (p.decode_attention_gflops * 1e9);
    answer.saturating_sub(1) as f64 * (weights + attn)
}

/// Peak bytes of answering with a `context`-token prompt.
pub fn answer_memory(m: &ModelLimits, context: usize, kv: KvDtype, prefill_chunk: usize) -> u64 {
    // A served model's weights, cache and activations are the server's.
    if m.served.is_some() {
        return BASE_BYTES;
    }
    let chunk = prefill_chunk.min(context.max(1)) as u64;
    let q = (m.n_heads * m.head_dim) as u64;
    let kvd = (m.n_kv_heads * m.head_dim) as u64;
    let h = m.hidden as u64;
    // Per chunk row: residual, norm, qkv, q, attention output, new k/v,
    // gate/up and activation, all f32; the output head's logits.
    let activations =
        chunk * 4 * (3 * h + 2 * (q + 2 * kvd) + 3 * m.ffn_hidden as u64) + m.vocab_size as u64 * 4;
    // A compressed cache is expanded to f32 one layer at a time.
    let scratch = match kv {
        KvDtype::F32 => 0,
        _ => 2 * kvd * context as u64 * 4,
    };
    BASE_BYTES + m.resident_bytes + m.kv_bytes(context, kv) + activations + scratch
}

/// Stage times of a retrieval answer reading `context` tokens.
pub fn rag_seconds(
    m: &ModelLimits,
    p: &DeviceProfile,
    corpus: &CorpusStats,
    context: usize,
) -> StageSeconds {
    let ingest = if corpus.indexed {
        0.0
    } else {
        // Reading and BM25 indexing are cheap beside embedding.
        let rate = p.embed_chunks_per_s.unwrap_or(50.0);
        corpus.chunks as f64 / rate + corpus.bytes as f64 / 50e6
    };
    StageSeconds {
        ingest,
        retrieve: SEARCH_SECONDS,
        prefill: prefill_seconds(m, p, context, PlannedAttention::Flash),
        decode: decode_seconds(m, p, context, EXPECTED_ANSWER_TOKENS),
        ..Default::default()
    }
}

/// Tokens the quote and the check read, typically: one to five candidate
/// sentences of about 30 tokens after a 12-token lead-in, and a yes/no
/// prompt of about 70. A guess from the prompts' sizes (a one-candidate
/// quote of the 1.5B took 6.3 s where 280 tokens predicted 23 s, debug
/// build); not yet fitted to measurements.
pub const QUOTE_TOKENS: usize = 160;

/// Seconds of the reader's quote and answerability check (`ground`: they
/// run), priced as a prefill of [`QUOTE_TOKENS`].
pub fn quote_seconds(m: &ModelLimits, p: &DeviceProfile, ground: bool) -> f64 {
    // A server is asked the yes/no check alone (one short request): the
    // quote is chosen by word overlap, here.
    let tokens = match m.served {
        Some(_) => REMOTE_CHECK_TOKENS,
        None => QUOTE_TOKENS,
    };
    if ground {
        prefill_seconds(m, p, tokens, PlannedAttention::Flash)
    } else {
        0.0
    }
}

/// Tokens of the yes/no check prompt a remote read sends (template, the
/// quote, the question).
pub const REMOTE_CHECK_TOKENS: usize = 64;

/// Peak bytes of a retrieval answer (`ingest`: the index is built first).
pub fn rag_memory(m: &ModelLimits, context: usize, ingest: bool) -> u64 {
    let indexing = if ingest { INGEST_BYTES } else { 0 };
    answer_memory(m, context, KvDtype::F32, 512) + RETRIEVAL_BYTES + indexing
}

/// Seconds the compressor's scorer spends on `source` tokens compressed to
/// `target`: tokenizing the source, one pass per candidate passage
/// (question-conditioned score), then the surprisal pass over what the
/// coarse stage kept (about the target), in 1024-token windows.
pub fn compress_seconds(
    scorer: &ModelLimits,
    p: &DeviceProfile,
    source: usize,
    target: usize,
) -> f64 {
    let passages = (source / COMPRESS_PASS_TOKENS).clamp(1, COMPRESS_LM_CANDIDATES) as f64 + 1.0;
    let coarse =
        passages * prefill_seconds(scorer, p, COMPRESS_PASS_TOKENS, PlannedAttention::Flash);
    let kept = target.min(source);
    let windows = kept.div_ceil(1024) as f64;
    let fine = windows * prefill_seconds(scorer, p, kept.min(1024), PlannedAttention::Flash);
    source as f64 / 1e6 + coarse + fine
}
