//! `folio`: answers questions about documents and says how it read them.
//!
//! A thin entry point: parse the command line, set the thread count, hand off
//! to one module per command.

mod card;
mod cli;
mod commands;
mod notices;
mod output;
mod tui;

/// Counts heap bytes so `folio bench` can report peak memory.
#[global_allocator]
pub static HEAP: folio_corpora::peak_alloc::PeakAlloc = folio_corpora::peak_alloc::PeakAlloc::new();

use clap::Parser;

fn main() {
    quiet_on_closed_stdout();
    notices::init();
    let args = cli::Cli::parse();
    folio_engine::threads::init(args.threads);
    if let Err(err) = commands::run(args) {
        eprintln!("folio: error: {err:#}");
        std::process::exit(1);
    }
}

/// `folio … | head` closes stdout early; Rust ignores SIGPIPE, so the next
/// `println!` panics with "failed printing to stdout: Broken pipe". Exit
/// quietly instead, with the shell's code for a SIGPIPE death (128 + 13),
/// as a C tool would. Other panics keep the default report.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if folio_corpora::contain::active() {
            return; // caught and reported as an error by the caller
        }
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
