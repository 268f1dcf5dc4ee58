//! The flags of `folio eval` and `folio seed-claims`.

use std::path::PathBuf;

use clap::Args;

use super::{BudgetArgs, PlanArgs};

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
    /// SQuAD: `calibration` or `test`, halves of the dev set by article
    /// (thresholds are calibrated on one, reported on the other); all when
    /// not given.
    #[arg(long)]
    pub split: Option<folio_evals::eval::Split>,
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
    /// Shares of each item's context a full read with `--kv-evict` keeps,
    /// e.g. `10%,25%,50%`: with `--kv-evict` (here a comma list of
    /// policies), one full-read column per policy and share, beside the
    /// strategies (`--kv-budget N` keeps N positions instead).
    #[arg(long, value_name = "SHARES")]
    pub kv_budgets: Option<String>,
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
