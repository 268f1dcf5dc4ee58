//! One module per `folio` command.

mod answer;
mod ask;
mod bench;
mod bench_attention;
mod bench_context;
mod calibrate;
mod card;
mod ingest;
mod models;
mod search;

use crate::cli::{BenchWhat, Cli, Command};

/// Dispatches the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Models { action } => models::run(action),
        Command::Demo(args) => answer::demo(args),
        Command::Ask(args) => ask::run(args),
        Command::Read(args) => answer::read(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Bench {
            what: BenchWhat::Llm(args),
        } => bench::llm(args),
        Command::Bench {
            what: BenchWhat::Attention(args),
        } => bench_attention::run(args),
        Command::Bench {
            what: BenchWhat::Context(args),
        } => bench_context::run(args),
        Command::Ingest(args) => ingest::run(args, cli.threads),
        Command::Search(args) => search::run(args, cli.threads),
    }
}
