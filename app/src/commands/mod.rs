//! One module per `folio` command.

mod ask;
mod bench_attention;
mod bench_context;
mod bench_kv_reuse;
mod bench_llm;
mod bench_router;
mod cache;
pub(crate) mod calibrate;
mod compress;
mod eval;
mod ingest;
mod models;
mod read;
mod search;

use crate::cli::{BenchWhat, Cli, Command};

/// Dispatches the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli
        .command
        .unwrap_or_else(|| Command::Tui(crate::cli::TuiArgs::defaults()));
    match command {
        Command::Tui(args) => crate::tui::run(args),
        Command::Models { action } => models::run(action),
        Command::Demo(args) => read::demo(args),
        Command::Ask(args) => ask::run(args),
        Command::Read(args) => read::read(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Compress(args) => compress::run(&args),
        Command::Bench {
            what: BenchWhat::Compress(args),
        } => compress::run_bench(&args),
        Command::Bench {
            what: BenchWhat::Router(args),
        } => bench_router::run(args),
        Command::Bench {
            what: BenchWhat::Llm(args),
        } => bench_llm::llm(args),
        Command::Bench {
            what: BenchWhat::Attention(args),
        } => bench_attention::run(args),
        Command::Bench {
            what: BenchWhat::Context(args),
        } => bench_context::run(args),
        Command::Bench {
            what: BenchWhat::KvReuse(args),
        } => bench_kv_reuse::run(args),
        Command::Ingest(args) => ingest::run(args, cli.threads),
        Command::Search(args) => search::run(args, cli.threads),
        Command::Eval(args) => eval::run_eval(args),
        Command::SeedClaims(args) => eval::seed_claims(args),
        Command::Cache { action } => cache::run(action),
    }
}
