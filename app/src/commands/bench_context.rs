//! `folio bench context`: what each RoPE scaling does to a model beyond its
//! trained context, measured two ways on the Paul Graham essays: perplexity
//! (can it still predict text?) and passkey retrieval (can it still use a
//! far position?). Each run is one prefill; results are appended as JSON
//! lines as they come, so a long sweep can be stopped and kept.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};
use folio_corpora::datasets;
use folio_engine::device::{DeviceRequest, Placement};
use folio_engine::llm::{generate, token_losses, GenerateOptions, Model, Sampling};
use folio_engine::models::load_model;
use folio_evals::passkey::passkey_case;
use serde::Serialize;

use crate::cli::convert::session_options;
use crate::cli::{BenchContextArgs, LongContextArgs, RopeArg};
use crate::output::print_json;

#[derive(Serialize)]
struct Row {
    model: String,
    length: usize,
    trained_context: usize,
    /// The scaling asked for (`dynamic` may resolve to `none` or `ntk`).
    rope_requested: String,
    /// The scaling the run used.
    rope: &'static str,
    factor: f32,
    device: &'static str,
    attention: &'static str,
    kv: &'static str,
    /// Perplexity over every token of the context.
    perplexity: f64,
    /// Perplexity over the last quarter (the farthest positions).
    perplexity_last_quarter: f64,
    passkey: String,
    /// Relative depth of the passkey in the filler.
    depth: f64,
    answer: String,
    passkey_found: bool,
    attended_fraction: f64,
    kv_cache_bytes: usize,
    seconds: f64,
}

pub fn run(args: BenchContextArgs) -> Result<()> {
    folio_engine::threads::init(None);
    let model = load_model(&args.model, !args.json)?;
    let trained = model.config.trained_positions();
    let lengths = if args.lengths.is_empty() {
        vec![trained, 2 * trained, 4 * trained]
    } else {
        args.lengths.clone()
    };
    let longest = *lengths.iter().max().expect("at least one length");
    let factor = args
        .factor
        .unwrap_or((longest as f32 / trained as f32).max(1.0));
    let essays = datasets::paul_graham_essays(!args.json)?;
    // ~4 characters per token: tokenize only what the longest run needs.
    let filler = model
        .tokenizer
        .encode_text(&essays[..essays.len().min(longest * 6)])?;
    let mut out = match &args.out {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?,
        ),
        None => None,
    };
    let device = Placement::prepare(&model, args.device);
    if let (Some(note), true) = (device.note(), args.device != DeviceRequest::Cpu) {
        // A benchmark of the GPU that would measure the CPU is no benchmark.
        anyhow::bail!("--device {:?}: {note}", args.device);
    }
    let mut rows = Vec::new();
    for &length in &lengths {
        for &rope in &args.ropes {
            let row = run_one(&args, &model, &device, &filler, length, rope, factor)?;
            if !args.json {
                println!(
                    "{:>6} tokens  rope {:<7} → {:<4} ×{:<4} ppl {:>8.2} (last quarter {:>8.2})  passkey {} ({:?})  {:.0} s",
                    row.length,
                    row.rope_requested,
                    row.rope,
                    row.factor,
                    row.perplexity,
                    row.perplexity_last_quarter,
                    if row.passkey_found { "found" } else { "MISSED" },
                    row.answer,
                    row.seconds
                );
            }
            if let Some(file) = &mut out {
                writeln!(file, "{}", serde_json::to_string(&row)?)?;
                file.flush()?;
            }
            rows.push(row);
        }
    }
    if args.json {
        print_json(&rows)?;
    }
    Ok(())
}

fn run_one(
    args: &BenchContextArgs,
    model: &Model,
    device: &Placement,
    filler: &[u32],
    length: usize,
    rope: RopeArg,
    factor: f32,
) -> Result<Row> {
    let flags = LongContextArgs {
        rope,
        rope_factor: match rope {
            RopeArg::None | RopeArg::Auto => None,
            RopeArg::Dynamic => Some(1.0),
            _ => Some(factor),
        },
        ..args.long_context.clone()
    };
    let options = session_options(&flags, model)?;
    let key = 10_000 + (length as u32).wrapping_mul(2_654_435_761) % 90_000;
    let case = passkey_case(&model.tokenizer, filler, length, args.depth, key)?;
    let start = Instant::now();
    let (mut session, fallback) = device.decoder(model, &options)?;
    if let Some(why) = fallback {
        anyhow::bail!("{why}");
    }
    let losses = token_losses(session.as_mut(), &case.context)?;
    let generation = generate(
        session.as_mut(),
        &case.question,
        &GenerateOptions {
            max_new_tokens: 8,
            sampling: Sampling::Greedy,
            extra_stop_tokens: Vec::new(),
            cancel: None,
        },
        usize::MAX,
        &mut |_| {},
    )?;
    let mean = |xs: &[f64]| (xs.iter().sum::<f64>() / xs.len() as f64).exp();
    let read = session.read_stats();
    let scaling = read.rope_scaling;
    Ok(Row {
        model: model.config.name.clone(),
        length,
        trained_context: model.config.trained_positions(),
        rope_requested: format!("{rope:?}").to_lowercase(),
        rope: scaling.name(),
        factor: scaling.factor(),
        device: read.device,
        attention: read.attention,
        kv: read.kv_dtype,
        perplexity: mean(&losses),
        perplexity_last_quarter: mean(&losses[losses.len() * 3 / 4..]),
        passkey_found: case.is_found(&generation.text),
        passkey: case.key.clone(),
        depth: args.depth,
        answer: generation.text.trim().to_string(),
        attended_fraction: read.attended_fraction,
        kv_cache_bytes: read.kv_cache_bytes,
        seconds: start.elapsed().as_secs_f64(),
    })
}
