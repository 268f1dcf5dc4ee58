//! The records the router reads and writes. Everything here is plain data,
//! serializable, so the CLI's `--json`, the TUI card and the evals print the
//! same thing, and tests can build any situation by hand.

use serde::{Deserialize, Serialize};

use crate::llm::{Eviction, KvDtype, Model, RopeScaling};

/// What the user will spend on one answer. `None` leaves a dimension free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Seconds from question to the end of the answer.
    pub latency_s: Option<f64>,
    /// Peak bytes of memory the answer may hold (weights included).
    pub memory_bytes: Option<u64>,
    /// Most tokens sent to the model (prompt), whatever the strategy.
    pub context_tokens: Option<usize>,
}

/// The model facts the router needs, read from the GGUF and the loaded
/// weights (no weights themselves, so tests can describe any model).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelLimits {
    /// The model's `general.name` (what [`measured_whole_read`] looks up).
    pub name: String,
    /// Positions the model was trained on.
    pub trained_context: usize,
    /// The longest corpus (tokens) the model was measured to read whole as
    /// well as a focused read; past it the router prefers retrieval or
    /// compression even when a full read fits (see [`measured_whole_read`]).
    /// The trained context when nothing was measured.
    pub whole_read_tokens: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Width of the residual stream.
    pub hidden: usize,
    /// Width of the feed-forward layer.
    pub ffn_hidden: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (they size the KV cache).
    pub n_kv_heads: usize,
    /// Values per head.
    pub head_dim: usize,
    /// Tokens in the vocabulary (they size the output head).
    pub vocab_size: usize,
    /// Bytes the loaded weights hold (f32 copies and decode blocks).
    pub resident_bytes: u64,
    /// Bytes one decoding step reads (the quantized copies).
    pub decode_bytes: u64,
    /// Share of the blocks' weights whose prompt products run int8 (priced
    /// at [`DeviceProfile::int8_matmul_gflops`](super::DeviceProfile), the
    /// rest at the f32 rate); 0 for models described by hand.
    #[serde(default)]
    pub prompt_int8_share: f64,
    /// A model a serving engine runs (`--backend openai`): its measured
    /// rates price the reads, and its memory is the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<ServedRates>,
}

impl ServedRates {
    /// What a server is assumed to do before it is measured: a modest GPU
    /// server's speed. Only a first plan uses it (connecting measures).
    pub const UNMEASURED: ServedRates = ServedRates {
        prompt_tok_per_s: 2000.0,
        prompt_quadratic_s: 0.0,
        decode_tok_per_s: 30.0,
        request_seconds: 0.2,
    };
}

/// A serving engine's measured speed for one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServedRates {
    /// Prompt tokens read per second (the linear part of prefill).
    pub prompt_tok_per_s: f64,
    /// Seconds per squared prompt token: attention's share of prefill,
    /// which grows with the prompt's length.
    #[serde(default)]
    pub prompt_quadratic_s: f64,
    /// Answer tokens generated per second.
    pub decode_tok_per_s: f64,
    /// Fixed seconds of a request (network, queueing, the first token).
    pub request_seconds: f64,
}

/// Models whose whole reads lose to focused reads past a length, by GGUF
/// `general.name`, with that length in tokens. Measured, not assumed
/// (BENCHMARKS.md, "Batch evaluation"): Qwen2.5-0.5B reading ~1.2K-token
/// SQuAD articles whole answers 40 % against 66 % compressed and 47 %
/// retrieved; HotpotQA's ~1.4K-token documents 24 % against 28 % retrieved;
/// needles at 2K-8K tokens 80-90 % against 90-100 %; at 1K all tie (100 %).
/// Qwen2.5-1.5B (BENCHMARKS.md, "Choosing the default reader") answered
/// each of 30 SQuAD articles of 1 021-1 421 tokens the same read whole as
/// retrieved; longer whole reads were not measured.
const WHOLE_READ_LIMITS: &[(&str, usize)] = &[
    ("Qwen2.5 Coder 0.5B Instruct AWQ", 1024),
    ("Qwen2.5 Coder 1.5B Instruct GGUF", 1400),
];

/// The measured whole-read span of the model named `gguf_name`, if any.
pub fn measured_whole_read(gguf_name: &str) -> Option<usize> {
    WHOLE_READ_LIMITS
        .iter()
        .find(|(name, _)| *name == gguf_name)
        .map(|&(_, tokens)| tokens)
}

impl ModelLimits {
    /// The limits of a loaded model.
    pub fn of(model: &Model) -> Self {
        let c = &model.config;
        Self {
            name: c.name.clone(),
            trained_context: c.trained_positions(),
            whole_read_tokens: measured_whole_read(&c.name)
                .map_or(c.trained_positions(), |t| t.min(c.trained_positions())),
            n_layers: c.n_layers,
            hidden: c.hidden,
            ffn_hidden: c.ffn_hidden,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim,
            vocab_size: c.vocab_size,
            resident_bytes: model.weights.bytes() as u64,
            decode_bytes: model.weights.decode_bytes().0 as u64,
            prompt_int8_share: model.weights.prompt_int8_share(),
            served: None,
        }
    }

    /// These limits for the model `server` serves: its context (where it
    /// reports one) and its measured rates.
    pub fn served_by(mut self, server: &crate::remote::RemoteServer) -> Self {
        if let Some(context) = server.info.context {
            self.trained_context = context;
            self.whole_read_tokens = self.whole_read_tokens.min(context);
        }
        self.served = Some(server.rates.unwrap_or(ServedRates::UNMEASURED));
        self
    }

    /// Multiply-adds ×2 of the projections one token goes through (the
    /// output head excluded: prefill runs it for the last row only).
    pub fn linear_flops_per_token(&self) -> f64 {
        let (h, d) = (self.hidden as f64, self.head_dim as f64);
        let q = self.n_heads as f64 * d;
        let kv = self.n_kv_heads as f64 * d;
        let per_layer = h * (q + 2.0 * kv) + q * h + 3.0 * h * self.ffn_hidden as f64;
        2.0 * per_layer * self.n_layers as f64
    }

    /// FLOPs of the output head for one row.
    pub fn head_flops(&self) -> f64 {
        2.0 * self.hidden as f64 * self.vocab_size as f64
    }

    /// KV cache bytes for `tokens` tokens in `dtype`.
    pub fn kv_bytes(&self, tokens: usize, dtype: KvDtype) -> u64 {
        let values = 2 * self.n_layers * self.n_kv_heads * self.head_dim * tokens;
        (values as f64 * dtype.bytes_per_value(self.head_dim)) as u64
    }
}

/// What is known about the corpus a question is asked of.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorpusStats {
    /// Documents in the corpus.
    pub documents: usize,
    /// Bytes of loaded text.
    pub bytes: u64,
    /// The text in the answering model's tokens.
    pub tokens: usize,
    /// `tokens` was extrapolated from a sample rather than counted.
    pub tokens_estimated: bool,
    /// Retrieval chunks and their mean length in model tokens.
    pub chunks: usize,
    /// Mean length of a chunk, in model tokens.
    pub chunk_tokens: usize,
    /// A retrieval index exists; else RAG must ingest first.
    pub indexed: bool,
    /// The index has dense vectors (hybrid search) besides BM25.
    pub dense: bool,
}

/// What a question asks for, as far as the choice of reading goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// One fact somewhere in the text: retrieval finds it.
    Lookup,
    /// Counting, listing, summarising, comparing across the text: retrieval
    /// would see only pieces.
    Wide,
}

/// A strategy, as `--strategy` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// Retrieval: read the best chunks only.
    Rag,
    /// Compression: read the corpus cut down to a token target.
    Compress,
    /// A full read of the whole corpus.
    Full,
}

impl StrategyKind {
    /// Name for flags and cards.
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Rag => "rag",
            StrategyKind::Compress => "compress",
            StrategyKind::Full => "full",
        }
    }
}

impl std::str::FromStr for StrategyKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "rag" => StrategyKind::Rag,
            "compress" => StrategyKind::Compress,
            "full" => StrategyKind::Full,
            _ => anyhow::bail!("unknown strategy {s:?}: rag, compress or full"),
        })
    }
}

/// Attention of a full read, as the router plans it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedAttention {
    /// Exact tiled attention (FlashAttention's algorithm).
    Flash,
    /// Block-sparse attention over the keys an indexer picks: cheaper, approximate.
    Sparse,
}

/// How the question will be answered: the strategy and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum Strategy {
    /// Retrieve `k` chunks, assemble them in document order, read those.
    Rag {
        /// Chunks retrieved and read.
        k: usize,
    },
    /// Compress the corpus to `target_tokens` with the scorer model.
    Compress {
        /// Size of the compressed text, in the scorer's tokens.
        target_tokens: usize,
    },
    /// Read everything.
    Full {
        /// The attention kernel the read runs.
        attention: PlannedAttention,
        /// RoPE scaling, to reach past the trained context.
        rope: RopeScaling,
        /// Element type of the KV cache.
        kv: KvDtype,
        /// Positions evicted to fit a memory budget a full cache exceeds
        /// (`None`: every position kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        eviction: Option<Eviction>,
    },
}

impl Strategy {
    /// The kind, for `--strategy` and grouping.
    pub fn kind(&self) -> StrategyKind {
        match self {
            Strategy::Rag { .. } => StrategyKind::Rag,
            Strategy::Compress { .. } => StrategyKind::Compress,
            Strategy::Full { .. } => StrategyKind::Full,
        }
    }

    /// One line for cards: `rag k=5`, `full flash f32 yarn×4`.
    pub fn describe(&self) -> String {
        match self {
            Strategy::Rag { k } => format!("rag (top {k} chunks, document order)"),
            Strategy::Compress { target_tokens } => {
                format!("compress (to {target_tokens} tokens)")
            }
            Strategy::Full {
                attention,
                rope,
                kv,
                eviction,
            } => {
                let att = match attention {
                    PlannedAttention::Flash => "flash",
                    PlannedAttention::Sparse => "sparse",
                };
                let rope = match rope {
                    RopeScaling::None => String::new(),
                    r => format!(", RoPE {} ×{}", r.name(), r.factor()),
                };
                let evict = match eviction {
                    Some(e) => format!(", {} keeps {} positions", e.policy.name(), e.budget),
                    None => String::new(),
                };
                format!(
                    "full context ({att} attention, {} KV{rope}{evict})",
                    kv.name()
                )
            }
        }
    }
}

/// Predicted seconds per stage of a plan. Stages a plan lacks stay 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSeconds {
    /// Building the retrieval index (a corpus not yet ingested).
    pub ingest: f64,
    /// Searching the index and reading the chunks.
    pub retrieve: f64,
    /// The scorer compressing the corpus.
    pub compress: f64,
    /// Reading the prompt into the answering model.
    pub prefill: f64,
    /// Generating the answer.
    pub decode: f64,
    /// The reader's quote and its answerability check (0 when not asked).
    #[serde(default)]
    pub quote: f64,
    /// Restoring a saved document prefix, or saving this read's for later
    /// questions (full reads with a prefix cache).
    #[serde(default)]
    pub kv_cache: f64,
}

impl StageSeconds {
    /// Sum over stages.
    pub fn total(&self) -> f64 {
        self.ingest
            + self.retrieve
            + self.compress
            + self.prefill
            + self.decode
            + self.quote
            + self.kv_cache
    }
}

/// What the prefix cache changes in a full read's cost (see
/// `crate::prefix_cache`): a saved prefix replaces its prefill by a
/// restore; a read without one saves its own.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrefixPricing {
    /// Document tokens a saved prefix of this corpus holds (0: none), for
    /// a flash read with an f32 cache and no RoPE scaling.
    pub cached_tokens: usize,
    /// Predicted seconds to restore it.
    pub restore_seconds: f64,
    /// Bytes per second a save is predicted at (infinite: nothing is saved
    /// to disk).
    pub save_bytes_per_s: f64,
}

/// What a plan is predicted to cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Predicted seconds per stage.
    pub seconds: StageSeconds,
    /// Predicted peak memory, weights included, in bytes.
    pub peak_memory_bytes: u64,
    /// Prompt tokens sent to the answering model.
    pub context_tokens: usize,
    /// Fraction of the corpus' tokens the model reads (≤ 1).
    pub coverage: f64,
    /// Predicted bytes of the KV cache at the end of the answer.
    pub kv_bytes: u64,
    /// Positions past the trained context.
    pub beyond_trained_range: bool,
}

/// A strategy with its predicted cost and whether the budget allows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    /// The plan weighed.
    pub strategy: Strategy,
    /// What it is predicted to cost.
    pub cost: Cost,
    /// Budget dimensions it breaks, in words (empty: it fits).
    pub violations: Vec<String>,
}

impl Candidate {
    /// Fits every budget dimension.
    pub fn fits(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The router's answer: the chosen plan, the others it weighed, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    /// The plan to run, with its predicted cost.
    pub chosen: Candidate,
    /// Lookup or wide: which the rules weighed the plans by.
    pub question_kind: QuestionKind,
    /// Why this plan, in the order the rules applied.
    pub reasons: Vec<String>,
    /// Every plan considered, the chosen one included.
    pub candidates: Vec<Candidate>,
    /// The corpus is within the span the model reads whole well (rule 1);
    /// [`Decision::wider_reads`] orders escalations by it.
    #[serde(default)]
    pub whole_read_well: bool,
}
