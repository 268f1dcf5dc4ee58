//! The flags of the commands that answer: `read`, `demo`, `ask` and `tui`,
//! with the generation, long-context, plan and budget groups they share.

use std::path::PathBuf;

use clap::{Args, Parser, ValueEnum};
use folio_engine::device::DeviceRequest;

/// Options shared by every command that generates text.
#[derive(Debug, Args, Clone)]
pub struct GenerationArgs {
    /// Model id (see `folio models list`) or the path of a GGUF file.
    #[arg(long, default_value = folio_engine::models::DEFAULT_MODEL)]
    pub model: String,
    /// Most answer tokens to generate.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
    /// Sampling temperature; 0 is greedy decoding (reproducible).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling mass when temperature > 0.
    #[arg(long, default_value_t = 0.9)]
    pub top_p: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub long_context: LongContextArgs,
    /// Where the model runs: `auto` uses an NVIDIA GPU (compute capability
    /// 9.0+, CUDA 13 libraries) when one is usable and the options are ones
    /// the GPU path runs (flash attention, default KV cache), else the CPU;
    /// `cuda` falls back to the CPU with the reason.
    #[arg(long, default_value = "auto")]
    pub device: DeviceRequest,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Print one JSON record instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Where answers are generated: folio's own forward pass, or a serving
/// engine over the OpenAI-compatible HTTP API.
#[derive(Debug, Args, Clone)]
pub struct BackendArgs {
    /// `local` (folio's forward pass) or `openai` (an OpenAI-compatible
    /// server: vLLM, SGLang, llama.cpp's llama-server; give --base-url,
    /// and --model is then the served model's name; the key, if the
    /// server wants one, comes from FOLIO_API_KEY).
    #[arg(long, value_enum, default_value_t = BackendArg::Local)]
    pub backend: BackendArg,
    /// The server of --backend openai, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "FOLIO_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,
    /// With --backend openai: the GGUF (a model id from `folio models
    /// list`, or a path) with the served model's tokenizer and chat
    /// template; folio renders prompts with it and sends token ids.
    /// Default: --model, when it names a model folio has.
    #[arg(long, value_name = "MODEL")]
    pub tokenizer: Option<String>,
    /// With --backend openai: seconds the server may stay silent
    /// (connecting, before its answer starts, between streamed pieces).
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub server_timeout: u64,
}

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Local,
    Openai,
}

/// How the forward pass reads a long prompt: attention, RoPE scaling, KV
/// cache. Shared by every command that runs the model.
#[derive(Debug, Args, Clone)]
pub struct LongContextArgs {
    /// Attention algorithm: exact tiled (flash), the exact reference that
    /// holds the whole score matrix (dense), or top-k sparse.
    #[arg(long, value_enum, default_value_t = AttentionArg::Flash)]
    pub attention: AttentionArg,
    /// Sparse attention: keys each query attends beside sinks and window
    /// (rounded up to whole blocks).
    #[arg(long, default_value_t = folio_engine::llm::SparseConfig::default().top_k)]
    pub top_k: usize,
    /// Sparse attention: tokens per key block the indexer scores.
    #[arg(long, default_value_t = folio_engine::llm::SparseConfig::default().block)]
    pub sparse_block: usize,
    /// Sparse attention: leading tokens every query attends ("attention sinks").
    #[arg(long, default_value_t = folio_engine::llm::SparseConfig::default().sinks)]
    pub sinks: usize,
    /// Sparse attention: most recent tokens every query attends.
    #[arg(long, default_value_t = folio_engine::llm::SparseConfig::default().window)]
    pub window: usize,
    /// RoPE scaling for positions beyond the trained context (`auto`: what
    /// the GGUF declares, usually none).
    #[arg(long, value_enum, default_value_t = RopeArg::Auto)]
    pub rope: RopeArg,
    /// Scaling factor for --rope pi|ntk|yarn (context covered = trained × S);
    /// for dynamic, the Hugging Face factor (default 1).
    #[arg(long, value_name = "S")]
    pub rope_factor: Option<f32>,
    /// Element type of the KV cache.
    #[arg(long = "kv", value_enum, default_value_t = KvArg::F32)]
    pub kv: KvArg,
    /// Prompt tokens per prefill chunk.
    #[arg(long, default_value_t = 512)]
    pub prefill_chunk: usize,
    #[command(flatten)]
    pub evict: KvEvictArgs,
}

/// KV cache eviction: a bounded number of positions per layer and KV head.
#[derive(Debug, Args, Clone)]
pub struct KvEvictArgs {
    /// Evict KV positions: `streaming` (4 attention sinks + the most
    /// recent), `h2o` (the positions that received the most attention,
    /// evicting during prefill) or `snapkv` (the positions the question's
    /// attention selects, once the prompt is read). Needs --kv-budget.
    #[arg(long, value_name = "POLICY")]
    pub kv_evict: Option<String>,
    /// Positions each layer and KV head keeps under --kv-evict.
    #[arg(long, value_name = "N")]
    pub kv_budget: Option<usize>,
}

/// `--attention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AttentionArg {
    Dense,
    Flash,
    Sparse,
}

/// `--rope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RopeArg {
    Auto,
    None,
    /// Position Interpolation (linear).
    Pi,
    /// NTK-aware base change.
    Ntk,
    /// YaRN (NTK-by-parts + temperature).
    Yarn,
    /// Dynamic NTK, factor chosen from the prompt length.
    Dynamic,
}

/// `--kv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KvArg {
    F32,
    F16,
    Int8,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Ask this instead of the demo's own question.
    #[arg(long)]
    pub question: Option<String>,
    #[command(flatten)]
    pub generation: GenerationArgs,
}

/// `folio read`: one document read whole, with the long-context flags.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The question.
    pub question: String,
    /// The document (.txt, .md, .html, .pdf).
    #[arg(long, short)]
    pub file: PathBuf,
    #[command(flatten)]
    pub generation: GenerationArgs,
    #[command(flatten)]
    pub kv_cache: KvCacheArgs,
}

/// Where full reads keep a document's prompt prefix for the next question
/// (`read`, `ask`, `tui`).
#[derive(Debug, Args, Clone)]
pub struct KvCacheArgs {
    /// Most bytes of saved document prefixes on disk ($FOLIO_HOME/kv-cache;
    /// least recently used out first), e.g. `4GiB`; `0` saves none and
    /// reuses none. `folio cache list` shows them.
    #[arg(long, default_value = "4GiB")]
    pub kv_cache_max: String,
    /// The folder of saved document prefixes (default: $FOLIO_HOME/kv-cache).
    #[arg(long, env = "FOLIO_KV_CACHE_DIR")]
    pub kv_cache_dir: Option<PathBuf>,
}

/// `folio ask`: the router's answer with its trade-off card.
#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question.
    pub question: String,
    /// Files, folders, or a corpus store folder (from `folio ingest`);
    /// default: the store at $FOLIO_HOME/corpus.
    #[arg(long, short = 'c')]
    pub corpus: Vec<PathBuf>,
    /// One file to ask about (same as --corpus FILE).
    #[arg(long, short)]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub budget: BudgetArgs,
    /// Skip the router's choice: rag, compress or full.
    #[arg(long)]
    pub strategy: Option<String>,
    /// Run retrieval, compression and a full read on the same question and
    /// print them side by side.
    #[arg(long)]
    pub compare: bool,
    /// Keep a retrieval answer that found nothing instead of escalating to a
    /// wider read (Self-Route).
    #[arg(long)]
    pub no_fallback: bool,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// The Qdrant server (gRPC) of a store whose vectors live there.
    #[arg(long, env = "FOLIO_QDRANT_URL")]
    pub qdrant_url: Option<String>,
    /// Most answer tokens to generate.
    #[arg(long, default_value_t = 96)]
    pub max_tokens: usize,
    /// Print one JSON record instead of the streamed answer and the card.
    #[arg(long)]
    pub json: bool,
}

/// The models and retrieval depth the router plans with (`ask`, `tui`,
/// `eval`): one set of flags with one meaning.
#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    /// The answering model's id (see `folio models list`), or the path of
    /// a GGUF file.
    #[arg(long, default_value = folio_engine::models::DEFAULT_MODEL)]
    pub model: String,
    /// The compressor's scoring model (an id or a GGUF file's path).
    #[arg(long, default_value = folio_engine::models::TEST_MODEL)]
    pub scorer: String,
    /// Chunks a retrieval plan reads.
    #[arg(long, default_value_t = 5)]
    pub chunks: usize,
    /// Where the answering model runs: `auto` (an NVIDIA GPU, compute
    /// capability 9.0+ with the CUDA 13 libraries, when one is usable, else
    /// the CPU), `cuda` (the GPU, or the CPU with the reason) or `cpu`.
    /// Reads whose plan the GPU path cannot run (sparse attention, an f16
    /// or int8 KV cache) run on the CPU and their card says so.
    #[arg(long, default_value = "auto")]
    pub device: DeviceRequest,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Keep an answer only when the reader's answerability score (its
    /// probability that the quote it copied states the answer) reaches
    /// this; below it a retrieval plan reads wider, then the answer is
    /// "not in the documents". 0 keeps every answer. Default: the model's
    /// calibrated threshold (0.5 for a model not calibrated).
    #[arg(long, value_parser = confidence)]
    pub min_confidence: Option<f64>,
    /// Skip the quote and the answerability check (faster; the answer's
    /// support is then judged by word overlap only).
    #[arg(long)]
    pub no_quote: bool,
    #[command(flatten)]
    pub kv_cache: KvCacheArgs,
    #[command(flatten)]
    pub evict: KvEvictArgs,
}

/// A `--min-confidence` value: a number in [0, 1].
fn confidence(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a confidence: give a number from 0 (keep every answer) to 1"
        )),
    }
}

/// The budget an answer must fit (`ask`, the TUI's starting budget, `eval`'s
/// `auto`): one set of flags with one syntax.
#[derive(Debug, Args, Clone)]
pub struct BudgetArgs {
    /// Most seconds for the whole answer (`30s`, `2m`, `none`).
    #[arg(long, default_value = "60s")]
    pub budget_latency: String,
    /// Most memory (`4GiB`, `512MiB`, `none`; default: what is available now).
    #[arg(long)]
    pub budget_memory: Option<String>,
    /// Most prompt tokens sent to the model (`none`: no limit).
    #[arg(long, default_value = "none")]
    pub budget_tokens: String,
}

/// `folio tui`: the terminal UI over a corpus.
#[derive(Debug, Args, Clone)]
pub struct TuiArgs {
    /// Files, folders, or a corpus store folder (default: the store at
    /// $FOLIO_HOME/corpus if it exists, else the bundled Jargon File).
    #[arg(long, short = 'c')]
    pub corpus: Vec<PathBuf>,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// The Qdrant server (gRPC) of a store whose vectors live there.
    #[arg(long, env = "FOLIO_QDRANT_URL")]
    pub qdrant_url: Option<String>,
    /// Most answer tokens to generate.
    #[arg(long, default_value_t = 96)]
    pub max_tokens: usize,
    #[command(flatten)]
    pub budget: BudgetArgs,
}

impl TuiArgs {
    /// The defaults of `folio tui`, for a bare `folio`.
    pub fn defaults() -> Self {
        #[derive(Parser)]
        struct Bare {
            #[command(flatten)]
            args: TuiArgs,
        }
        Bare::parse_from(["folio"]).args
    }
}
