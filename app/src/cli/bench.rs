//! The flags of `folio calibrate` and the `folio bench` commands.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use folio_engine::device::DeviceRequest;

use super::{AttentionArg, LongContextArgs, RopeArg};

/// `folio calibrate`: measure and cache the device profile.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Skip the embedding-rate measurement (no embedding model fetch).
    #[arg(long)]
    pub no_embed: bool,
    /// Print the cached profile without measuring (measures if none).
    #[arg(long)]
    pub show: bool,
    /// With --backend openai: the served model whose prompt and
    /// generation speed is measured (the router prices its reads with it).
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten)]
    pub backend: super::BackendArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Prompt processing and generation tok/s (llama-bench's pp/tg).
    Llm(BenchLlmArgs),
    /// Time and peak memory of dense, flash and sparse attention on one
    /// layer, then model prefill per attention mode.
    Attention(BenchAttentionArgs),
    /// Perplexity and passkey retrieval vs context length per RoPE scaling.
    Context(BenchContextArgs),
    /// Answer accuracy under prompt compression (SQuAD v2, HotpotQA) against
    /// random-sentence and truncation baselines.
    Compress(super::BenchCompressArgs),
    /// The router's predicted latency against the measured one, per
    /// strategy and stage.
    Router(BenchRouterArgs),
    /// Read once, ask many: time to the first token of a first and a
    /// second question over one document, with the saved prefix restored
    /// from disk and from memory.
    KvReuse(BenchKvReuseArgs),
}

#[derive(Debug, Args)]
pub struct BenchKvReuseArgs {
    /// The reader (default: folio's default reader).
    #[arg(long, default_value = folio_engine::models::DEFAULT_MODEL)]
    pub model: String,
    /// Document lengths in the model's tokens (32000: a 32K document whose
    /// prompt and answer still fit a 32,768-token context).
    #[arg(long, value_delimiter = ',', default_values_t = vec![4096usize, 16384, 32000])]
    pub lengths: Vec<usize>,
    /// Append one JSON line per length to this file (results survive a kill).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchAttentionArgs {
    /// Model whose layer shape (heads, KV heads, head dim) is measured, and
    /// which runs the prefill test.
    #[arg(long, default_value = folio_engine::models::DEFAULT_MODEL)]
    pub model: String,
    /// Sequence lengths of the single-layer test (queries = keys = L).
    #[arg(long, value_delimiter = ',', default_values_t = vec![2048usize, 4096, 8192, 16384, 32768])]
    pub lengths: Vec<usize>,
    /// Attention modes to compare.
    #[arg(long, value_delimiter = ',', value_enum, default_values_t = vec![AttentionArg::Dense, AttentionArg::Flash, AttentionArg::Sparse])]
    pub modes: Vec<AttentionArg>,
    /// Longest L the dense reference runs at (it holds L×L scores per head).
    #[arg(long, default_value_t = 32768)]
    pub dense_max: usize,
    /// Prompt tokens of the model prefill test (0 skips it).
    #[arg(long, default_value_t = 4096)]
    pub prefill_tokens: usize,
    /// Sparse settings (top-k, block, sinks, window) and the rest.
    #[command(flatten)]
    pub long_context: LongContextArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchContextArgs {
    /// Model to measure (its trained context sets the 1×, 2×, 4× lengths).
    #[arg(long, default_value = folio_engine::models::TEST_MODEL)]
    pub model: String,
    /// Context lengths in tokens (default: 1×, 2×, 4× the trained context).
    #[arg(long, value_delimiter = ',')]
    pub lengths: Vec<usize>,
    /// RoPE scalings to compare.
    #[arg(long = "ropes", value_delimiter = ',', value_enum, default_values_t = vec![RopeArg::None, RopeArg::Pi, RopeArg::Ntk, RopeArg::Yarn])]
    pub ropes: Vec<RopeArg>,
    /// Factor of pi/ntk/yarn at every length (default: longest length /
    /// trained context), so 1× shows what scaling costs inside the range.
    #[arg(long = "factor")]
    pub factor: Option<f32>,
    /// Relative depth of the passkey in the haystack.
    #[arg(long, default_value_t = 0.5)]
    pub depth: f64,
    /// Append one JSON line per result to this file (results survive a kill).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// `cpu` (default: the modes under test) or `cuda` (exact flash
    /// attention and a bf16 KV cache; RoPE scaling as asked).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceRequest,
    /// Attention, KV and chunking of the runs (--rope is set per run).
    #[command(flatten)]
    pub long_context: LongContextArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchLlmArgs {
    /// Models to measure.
    #[arg(long = "model", default_values_t = vec![folio_engine::models::TEST_MODEL.to_string(), folio_engine::models::DEFAULT_MODEL.to_string()])]
    pub models: Vec<String>,
    /// Prompt lengths to measure (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = vec![512usize, 2048])]
    pub pp: Vec<usize>,
    /// Tokens to generate for the generation test.
    #[arg(long, default_value_t = 64)]
    pub tg: usize,
    /// Repetitions of each test (the mean and spread are reported).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    #[command(flatten)]
    pub long_context: LongContextArgs,
    #[arg(long)]
    pub json: bool,
}

/// `folio bench router`: predicted vs measured latency per strategy.
#[derive(Debug, Args)]
pub struct BenchRouterArgs {
    /// Files or a store to ask about (default: three Jargon File excerpts,
    /// about 9K tokens, written under $FOLIO_HOME/bench/jargon-f).
    #[arg(long)]
    pub corpus: Vec<PathBuf>,
    /// Questions to ask with every strategy.
    #[arg(long = "question", default_values_t = vec![
        "What is a fork bomb also called?".to_string(),
        "What does the frog entry say about boiling?".to_string(),
    ])]
    pub questions: Vec<String>,
    /// Model id of the answering model, or the path of a GGUF file.
    #[arg(long, default_value = folio_engine::models::DEFAULT_MODEL)]
    pub model: String,
    /// Most answer tokens.
    #[arg(long, default_value_t = 48)]
    pub max_tokens: usize,
    /// In-process (the CPU), or through a server (`--backend openai`).
    #[command(flatten)]
    pub backend: super::BackendArgs,
    /// Append one JSON line per run to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}
