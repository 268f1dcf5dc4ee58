//! `folio bench kv-reuse`: what reading a document once saves the next
//! question. Per document length: a first question (prefill of everything,
//! prefix saved to a fresh cache folder), then a second question with the
//! prefix restored from disk, then from memory (the TUI's way). Time to
//! the first token is tokenizing plus prefill (plus restore).

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use folio_engine::answer::{answer_from_text, AnswerOptions, AnswerReport};
use folio_engine::llm::{GenerateOptions, Model, SessionOptions};
use folio_engine::models::load_model;
use folio_engine::prefix_cache::{PrefixCache, DEFAULT_MAX_BYTES};
use serde::Serialize;

use crate::cli::BenchKvReuseArgs;
use crate::output::{human_bytes, print_json};

#[derive(Serialize)]
struct Row {
    model: String,
    document_tokens: usize,
    prompt_tokens: usize,
    /// First question: tokenize + prefill of the whole prompt (+ save).
    first_ttft_s: f64,
    first_prefill_s: f64,
    save_s: f64,
    cache_bytes: u64,
    /// Second question, prefix from disk.
    second_ttft_s: f64,
    restore_s: f64,
    reused_tokens: usize,
    /// Second question, prefix from memory.
    memory_ttft_s: f64,
    /// first_ttft_s / second_ttft_s.
    speedup: f64,
    disk_and_memory_answers_agree: bool,
}

const FIRST: &str = "What does the word 'hacker' mean?";
const SECOND: &str = "Who maintains the Jargon File?";

pub fn run(args: BenchKvReuseArgs) -> Result<()> {
    folio_engine::threads::init(None);
    let model = load_model(&args.model, !args.json)?;
    let mut rows = Vec::new();
    for &length in &args.lengths {
        let text = document(&model, length)?;
        let dir = tempfile::tempdir()?;
        let folder = dir.path().to_path_buf();
        // One prefill per length: the first read saves the prefix to disk
        // and keeps it in memory; the second question is asked once of the
        // disk alone, once of the memory.
        let both = Arc::new(
            PrefixCache::on_disk(folder.clone(), DEFAULT_MAX_BYTES).keeping_last_in_memory(),
        );
        let disk = Arc::new(PrefixCache::on_disk(folder, DEFAULT_MAX_BYTES));
        let first = read(&model, &text, FIRST, Some(both.clone()))?;
        let second = read(&model, &text, SECOND, Some(disk))?;
        let from_memory = read(&model, &text, SECOND, Some(both))?;
        let saved = first.prefix.clone().unwrap_or_default();
        let restored = second.prefix.clone().unwrap_or_default();
        let row = Row {
            model: model.config.name.clone(),
            document_tokens: first.document_tokens,
            prompt_tokens: first.prompt_tokens,
            first_ttft_s: ttft(&first),
            first_prefill_s: first.seconds.prefill,
            save_s: saved.save_seconds,
            cache_bytes: saved.saved_bytes,
            second_ttft_s: ttft(&second),
            restore_s: restored.restore_seconds,
            reused_tokens: restored.reused_tokens,
            memory_ttft_s: ttft(&from_memory),
            speedup: ttft(&first) / ttft(&second).max(1e-9),
            disk_and_memory_answers_agree: second.answer == from_memory.answer,
        };
        if let Some(out) = &args.out {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(out)
                .with_context(|| format!("opening {}", out.display()))?;
            writeln!(f, "{}", serde_json::to_string(&row)?)?;
        }
        if !args.json {
            println!(
                "{:>6} tokens: first question {:.1} s to its first token, second {:.2} s from \
                 disk ({:.2} s restore of {}), {:.2} s from memory: {:.0}× faster",
                row.document_tokens,
                row.first_ttft_s,
                row.second_ttft_s,
                row.restore_s,
                human_bytes(row.cache_bytes),
                row.memory_ttft_s,
                row.speedup
            );
        }
        rows.push(row);
    }
    if args.json {
        print_json(&rows)?;
    }
    Ok(())
}

/// Seconds to the first answer token: tokenizing, restoring, prefilling.
fn ttft(r: &AnswerReport) -> f64 {
    r.seconds.tokenize + r.seconds.prefill + r.prefix.as_ref().map_or(0.0, |p| p.restore_seconds)
}

/// About `tokens` tokens of the bundled Jargon File, cut at a line end.
fn document(model: &Model, tokens: usize) -> Result<String> {
    let text = folio_corpora::bundled::jargon().text;
    let ids = model.tokenizer.encode_text(&text)?;
    anyhow::ensure!(
        ids.len() > tokens,
        "the bundled text has {} tokens, fewer than {tokens}",
        ids.len()
    );
    let piece = model.tokenizer.decode(&ids[..tokens])?;
    let cut = piece.rfind('\n').unwrap_or(piece.len());
    Ok(piece[..cut].to_string())
}

fn read(
    model: &Model,
    text: &str,
    question: &str,
    cache: Option<Arc<PrefixCache>>,
) -> Result<AnswerReport> {
    let options = AnswerOptions {
        generate: GenerateOptions {
            max_new_tokens: 8,
            ..Default::default()
        },
        session: SessionOptions::for_model(model),
        prefix_cache: cache,
        ..Default::default()
    };
    answer_from_text(model, "jargon", text, question, &options, &mut |_| {})
}
