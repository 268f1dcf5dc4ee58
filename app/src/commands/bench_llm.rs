//! `folio bench llm`: prompt-processing and generation speed, measured the
//! way llama-bench does (pp: a prompt of N tokens on an empty cache; tg: N
//! tokens generated one by one from an empty cache).

use std::time::Instant;

use anyhow::Result;
use folio_corpora::bundled;
use folio_engine::llm::{Logits, Session};
use folio_engine::models::load_model;
use serde::Serialize;

use crate::cli::convert::session_options;
use crate::cli::BenchLlmArgs;
use crate::output::print_json;

#[derive(Serialize)]
struct Row {
    model: String,
    test: String,
    tokens: usize,
    tok_per_s_mean: f64,
    tok_per_s_std: f64,
    reps: usize,
    threads: usize,
    attention: &'static str,
    rope: &'static str,
    kv: &'static str,
    /// Seconds to load the model (header read, file mapped).
    load_seconds: f64,
    /// The process's peak resident memory after this test (`VmHWM`; it only
    /// grows, so run one model per process to read one model's peak).
    peak_rss_mb: f64,
}

pub fn llm(args: BenchLlmArgs) -> Result<()> {
    let threads = folio_engine::threads::init(None);
    let text = bundled::jargon().text;
    let mut rows = Vec::new();
    for id in &args.models {
        let model = load_model(id, true)?;
        let (decode_bytes, formats) = model.weights.decode_bytes();
        if !args.json {
            let formats: Vec<String> = formats
                .iter()
                .map(|(f, b)| format!("{f} {:.0} MB", *b as f64 / 1e6))
                .collect();
            println!(
                "{}: loaded in {:.2} s, maps {:.0} MB of weights (the file's own blocks); a decoding step reads {:.0} MB ({})",
                model.config.name,
                model.load_seconds,
                model.weights.bytes() as f64 / 1e6,
                decode_bytes as f64 / 1e6,
                formats.join(", ")
            );
        }
        let corpus = model
            .tokenizer
            .encode_text(&text[..text.len().min(400_000)])?;
        let options = session_options(&args.long_context, &model)?;
        let mut tests: Vec<(String, usize)> =
            args.pp.iter().map(|n| (format!("pp{n}"), *n)).collect();
        tests.push((format!("tg{}", args.tg), args.tg));
        let limit = options
            .rope_scaling
            .covered_context(model.config.trained_positions());
        if let Some((name, n)) = tests
            .iter()
            .find(|(_, n)| *n > limit || *n + 7 * args.reps > corpus.len())
        {
            anyhow::bail!(
                "{name}: {n} tokens exceed what {} reads ({limit}) or the benchmark text",
                model.config.name
            );
        }
        for (name, n) in tests {
            let mut rates = Vec::new();
            for rep in 0..args.reps.max(1) {
                let mut session = Session::new(&model, options.clone());
                let tokens = &corpus[rep * 7..rep * 7 + n];
                let start = Instant::now();
                if name.starts_with("pp") {
                    session.forward(tokens, Logits::Last)?;
                } else {
                    for t in tokens {
                        session.forward(&[*t], Logits::Last)?;
                    }
                }
                rates.push(n as f64 / start.elapsed().as_secs_f64());
            }
            let mean = rates.iter().sum::<f64>() / rates.len() as f64;
            let std =
                (rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / rates.len() as f64).sqrt();
            let peak_rss_mb = folio_corpora::memory::peak_rss_bytes() as f64 / 1e6;
            if !args.json {
                println!(
                    "{:<40} {:>7} {:>9.1} ± {:>5.1} tok/s  ({} threads, peak RSS {:.0} MB)",
                    model.config.name, name, mean, std, threads, peak_rss_mb
                );
            }
            rows.push(Row {
                model: model.config.name.clone(),
                test: name,
                tokens: n,
                tok_per_s_mean: mean,
                tok_per_s_std: std,
                reps: rates.len(),
                threads,
                attention: options.attention.name(),
                rope: options.rope_scaling.name(),
                kv: options.kv_dtype.name(),
                load_seconds: model.load_seconds,
                peak_rss_mb,
            });
        }
    }
    if args.json {
        print_json(&rows)?;
    }
    Ok(())
}
