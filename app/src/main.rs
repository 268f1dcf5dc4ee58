//! `folio`: answers questions about documents and says how it read them.
//!
//! A thin entry point: parse the command line, set the thread count, hand off
//! to one module per command.

mod cli;
mod commands;
mod long_context;
mod output;
mod peak_alloc;
mod tui;

/// Counts heap bytes so `folio bench` can report peak memory.
#[global_allocator]
pub static HEAP: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc::new();

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    folio_engine::threads::init(args.threads);
    if let Err(err) = commands::run(args) {
        eprintln!("folio: error: {err:#}");
        std::process::exit(1);
    }
}
