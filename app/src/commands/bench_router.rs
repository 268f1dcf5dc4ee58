//! `folio bench router`: runs every strategy on the same questions and
//! compares the router's predicted latency with the measured one, per
//! stage, so the cost model's error is a number, not a claim.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use folio_corpora::bundled::{jargon, jargon_entries};
use folio_engine::ask::{Answer, AskOptions, Asker, Corpus, Models};
use folio_engine::device::DeviceRequest;
use folio_engine::llm::GenerateOptions;
use folio_engine::models::{load_model, TEST_MODEL};
use folio_engine::router::{Budget, StrategyKind};

use super::calibrate::ensure_profile;
use crate::cli::BenchRouterArgs;
use crate::output::print_json;

/// One strategy on one question: predicted and measured seconds.
#[derive(Debug, serde::Serialize)]
struct Row {
    strategy: &'static str,
    question: String,
    tokens_sent: usize,
    predicted_s: f64,
    /// The cost model at the sizes that happened (answer length known).
    model_s: f64,
    measured_s: f64,
    /// (measured − model) / model.
    error: f64,
    answer: String,
}

/// Runs `folio bench router`.
pub fn run(args: BenchRouterArgs) -> Result<()> {
    let paths = if args.corpus.is_empty() {
        vec![default_corpus()?]
    } else {
        args.corpus.clone()
    };
    let mut corpus = Corpus::open(&paths, !args.json)?;
    let profile = ensure_profile(!args.json)?;
    // The router's predictions are of CPU reads (the device profile's),
    // or of the server's (its measured rates).
    let (answerer, placement) =
        crate::cli::convert::answerer(&args.model, DeviceRequest::Cpu, &args.backend, !args.json)?;
    let scorer = load_model(TEST_MODEL, !args.json)?;
    let models = Models {
        answerer: &answerer,
        device: Some(&placement),
        scorer: Some(&scorer),
    };
    // Index first so the retrieval rows time searching, not ingesting.
    corpus.store(!args.json)?;
    let mut out = match &args.out {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => None,
    };
    let options = AskOptions {
        budget: Budget::default(),
        self_route: false,
        generate: GenerateOptions {
            max_new_tokens: args.max_tokens,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut asker = Asker::new(&mut corpus, models, &profile, options);
    let mut rows = Vec::new();
    for question in &args.questions {
        for (kind, a) in asker.compare(question, &mut |_, _| {}) {
            let a = a?;
            let row = row(kind, question, &a);
            if !args.json {
                eprintln!(
                    "{:<9} {:>6} tokens  predicted {:>7.2} s  model {:>7.2} s  measured {:>7.2} s  ({:+.0}%)",
                    row.strategy, row.tokens_sent, row.predicted_s, row.model_s, row.measured_s, row.error * 100.0
                );
            }
            if let Some(f) = out.as_mut() {
                writeln!(f, "{}", serde_json::to_string(&a)?)?;
            }
            rows.push(row);
        }
    }
    if args.json {
        return print_json(&rows);
    }
    let worst = rows.iter().map(|r| r.error.abs()).fold(0.0, f64::max);
    println!(
        "{} runs; worst |measured − model| / model = {:.0}% (profile: {})",
        rows.len(),
        worst * 100.0,
        folio_engine::calibrate::profile_path().display()
    );
    Ok(())
}

fn row(kind: StrategyKind, question: &str, a: &Answer) -> Row {
    let t = &a.trade_offs;
    let model_s: f64 = t.cost.stages.iter().map(|s| s.model_s).sum();
    Row {
        strategy: kind.name(),
        question: question.to_string(),
        tokens_sent: t.coverage.tokens_sent,
        predicted_s: t.cost.predicted_seconds,
        model_s,
        measured_s: t.cost.measured_seconds,
        error: (t.cost.measured_seconds - model_s) / model_s.max(1e-9),
        answer: a.answer.clone(),
    }
}

/// Three Jargon File excerpts (entries "flush" to "fry", ~9K tokens).
fn default_corpus() -> Result<PathBuf> {
    let dir = folio_corpora::fetch::folio_home()
        .join("bench")
        .join("jargon-f");
    std::fs::create_dir_all(&dir)?;
    let text = jargon().text;
    for (name, a, b) in [
        ("f-flush.txt", "flush", "fork"),
        ("f-fork.txt", "fork", "frog"),
        ("f-frog.txt", "frog", "fry"),
    ] {
        let span = jargon_entries(a, b).expect("bundled entries exist");
        let path = dir.join(name);
        let body = &text[span.start..span.end];
        if std::fs::read_to_string(&path).ok().as_deref() != Some(body) {
            std::fs::write(&path, body)?;
        }
    }
    Ok(dir)
}
