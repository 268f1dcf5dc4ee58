//! `folio bench attention`: what exact, tiled and sparse attention cost.
//!
//! Part one runs one layer's attention (the model's heads, KV heads and head
//! dim; queries = keys = L, causal) on random inputs and reports time,
//! GFLOP/s and the peak heap the call needed on top of its inputs: dense
//! holds an L×L score matrix per head, flash only tiles. Part two prefills
//! the model on real text with each mode.

use std::time::Instant;

use anyhow::Result;
use folio_corpora::bundled;
use folio_engine::llm::{
    AttentionMode, AttentionShape, KeySummaries, KvView, Logits, Session, SparseConfig,
};
use folio_engine::models::load_model;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::cli::convert::{attention_mode, session_options};
use crate::cli::{AttentionArg, BenchAttentionArgs};
use crate::output::{human_bytes, print_json};
use crate::HEAP;

#[derive(Serialize)]
struct LayerRow {
    mode: &'static str,
    length: usize,
    seconds: f64,
    gflop_per_s: f64,
    /// Heap the call allocated beyond its inputs and output, at its peak.
    peak_extra_bytes: usize,
    attended_fraction: f64,
}

#[derive(Serialize)]
struct PrefillRow {
    mode: &'static str,
    tokens: usize,
    seconds: f64,
    tok_per_s: f64,
    attended_fraction: f64,
    kv_cache_bytes: usize,
}

#[derive(Serialize)]
struct Report {
    model: String,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
    threads: usize,
    /// Sparse settings: top-k keys, block, sinks, window.
    sparse: [usize; 4],
    layer: Vec<LayerRow>,
    prefill: Vec<PrefillRow>,
}

pub fn run(args: BenchAttentionArgs) -> Result<()> {
    let threads = folio_engine::threads::init(None);
    let model = load_model(&args.model, !args.json)?;
    let c = &model.config;
    let sparse = match attention_mode(&crate::cli::LongContextArgs {
        attention: AttentionArg::Sparse,
        ..args.long_context.clone()
    })? {
        AttentionMode::Sparse(cfg) => cfg,
        _ => unreachable!("asked for sparse"),
    };
    if !args.json {
        println!(
            "one layer of {}: {} heads, {} KV heads, head dim {}; {threads} threads; sparse top-k {} block {} sinks {} window {}",
            c.name, c.n_heads, c.n_kv_heads, c.head_dim, sparse.top_k, sparse.block, sparse.sinks, sparse.window
        );
        println!(
            "{:<7} {:>7} {:>10} {:>9} {:>12} {:>9}",
            "mode", "L", "seconds", "GFLOP/s", "peak extra", "attended"
        );
    }
    let mut layer = Vec::new();
    for &length in &args.lengths {
        let shape = AttentionShape {
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim,
            q_len: length,
            kv_len: length,
            q_start: 0,
        };
        let inputs = Inputs::random(shape, length as u64);
        for &mode in &args.modes {
            if mode == AttentionArg::Dense && length > args.dense_max {
                continue;
            }
            let row = time_layer(mode, &inputs, sparse)?;
            if !args.json {
                println!(
                    "{:<7} {:>7} {:>10.3} {:>9.1} {:>12} {:>8.1}%",
                    row.mode,
                    row.length,
                    row.seconds,
                    row.gflop_per_s,
                    human_bytes(row.peak_extra_bytes as u64),
                    row.attended_fraction * 100.0
                );
            }
            layer.push(row);
        }
    }
    let prefill = prefill_rows(&args, &model)?;
    let report = Report {
        model: c.name.clone(),
        n_heads: c.n_heads,
        n_kv_heads: c.n_kv_heads,
        head_dim: c.head_dim,
        threads,
        sparse: [sparse.top_k, sparse.block, sparse.sinks, sparse.window],
        layer,
        prefill,
    };
    if args.json {
        print_json(&report)?;
    }
    Ok(())
}

/// Random queries, keys and values of one layer (uniform in ±1, never zero
/// rows; the softmax then spreads over many keys, the costly case).
struct Inputs {
    shape: AttentionShape,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
}

impl Inputs {
    fn random(shape: AttentionShape, seed: u64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut fill =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let q = fill(shape.q_len * shape.n_heads * shape.head_dim);
        let k = fill(shape.kv_len * shape.n_kv_heads * shape.head_dim);
        let v = fill(shape.kv_len * shape.n_kv_heads * shape.head_dim);
        Self { shape, q, k, v }
    }
}

fn time_layer(mode: AttentionArg, inputs: &Inputs, sparse: SparseConfig) -> Result<LayerRow> {
    let s = inputs.shape;
    let attention = match mode {
        AttentionArg::Dense => AttentionMode::Dense,
        AttentionArg::Flash => AttentionMode::Flash,
        AttentionArg::Sparse => AttentionMode::Sparse(sparse),
    }
    .build();
    let mut summaries = attention
        .key_summary_block()
        .map(|block| KeySummaries::new(block, s.n_kv_heads, s.head_dim));
    let mut out = vec![0f32; inputs.q.len()];
    let scale = 1.0 / (s.head_dim as f32).sqrt();
    HEAP.reset_peak();
    let before = HEAP.live();
    let start = Instant::now();
    if let Some(summaries) = &mut summaries {
        summaries.update(&inputs.k, s.kv_len);
    }
    let view = KvView {
        keys: &inputs.k,
        values: &inputs.v,
        summaries: summaries.as_ref(),
    };
    let stats =
        folio_engine::threads::install(|| attention.attend(&inputs.q, &view, &mut out, s, scale));
    let seconds = start.elapsed().as_secs_f64();
    let peak_extra_bytes = HEAP.peak().saturating_sub(before);
    // Softmax(QK^T)V: 2·d multiply-adds per (query, head, key) pair for
    // the scores and 2·d for the weighted sum.
    let flops = stats.attended_pairs as f64 * 4.0 * s.head_dim as f64;
    Ok(LayerRow {
        mode: attention.name(),
        length: s.q_len,
        seconds,
        gflop_per_s: flops / seconds / 1e9,
        peak_extra_bytes,
        attended_fraction: stats.attended_fraction(),
    })
}

fn prefill_rows(
    args: &BenchAttentionArgs,
    model: &folio_engine::llm::Model,
) -> Result<Vec<PrefillRow>> {
    let n = args.prefill_tokens;
    if n == 0 {
        return Ok(Vec::new());
    }
    let text = bundled::jargon().text;
    let tokens = model.tokenizer.encode_text(&text)?;
    anyhow::ensure!(
        tokens.len() >= n,
        "--prefill-tokens {n} is more than the {} tokens of the benchmark text",
        tokens.len()
    );
    if !args.json {
        println!(
            "\nprefill of {n} tokens of the Jargon File, {}:",
            model.config.name
        );
    }
    let mut rows = Vec::new();
    for &mode in &args.modes {
        let flags = crate::cli::LongContextArgs {
            attention: mode,
            ..args.long_context.clone()
        };
        let mut session = Session::new(model, session_options(&flags, model)?);
        let start = Instant::now();
        session.forward(&tokens[..n], Logits::Last)?;
        let seconds = start.elapsed().as_secs_f64();
        let row = PrefillRow {
            mode: session.options().attention.name(),
            tokens: n,
            seconds,
            tok_per_s: n as f64 / seconds,
            attended_fraction: session.attention_stats.attended_fraction(),
            kv_cache_bytes: session.cache.bytes(),
        };
        if !args.json {
            println!(
                "{:<7} {:>8.2} s {:>8.1} tok/s  {:>6.1}% of keys attended  KV {}",
                row.mode,
                row.seconds,
                row.tok_per_s,
                row.attended_fraction * 100.0,
                human_bytes(row.kv_cache_bytes as u64)
            );
        }
        rows.push(row);
    }
    Ok(rows)
}
