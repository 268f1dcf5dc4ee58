//! `folio demo` and `folio read`: read a document in full and answer.

use std::io::Write;

use anyhow::Result;
use folio_corpora::{bundled, Document};
use folio_engine::answer::{answer_from_document, AnswerOptions, AnswerReport};
use folio_engine::models::load_model;
use folio_engine::prefix_cache::PrefixCache;

use crate::cli::{convert, BackendArg, DemoArgs, GenerationArgs, ReadArgs};
use crate::output::{human_bytes, print_json};

pub fn demo(args: DemoArgs) -> Result<()> {
    let case = bundled::demo_case();
    let question = args.question.unwrap_or_else(|| case.question.to_string());
    answer(&case.document, &question, &args.generation, None)
}

pub fn read(args: ReadArgs) -> Result<()> {
    let document = Document::from_path(&args.file)?;
    let cache = convert::prefix_cache(&args.kv_cache, false)?;
    answer(&document, &args.question, &args.generation, cache)
}

fn answer(
    document: &Document,
    question: &str,
    g: &GenerationArgs,
    prefix_cache: Option<std::sync::Arc<PrefixCache>>,
) -> Result<()> {
    // A first run fetches the model before loading it; only the load is timed.
    let (model, server) = match g.backend.backend {
        BackendArg::Local => (load_model(&g.model, true)?, None),
        BackendArg::Openai => {
            let (model, server) = convert::answerer(&g.model, g.device, &g.backend, !g.json)?;
            (model, Some(server))
        }
    };
    let options = AnswerOptions {
        prefix_cache,
        ..convert::answer_options(g, &model, server)?
    };
    let load_seconds = model.load_seconds;
    if !g.json {
        eprintln!(
            "document: {} ({}, {})",
            document.id,
            document.source,
            human_bytes(document.text.len() as u64)
        );
        eprintln!("question: {question}");
        eprintln!(
            "model:    {} (loaded in {load_seconds:.1} s)\n",
            model.config.name
        );
    }
    let mut stdout = std::io::stdout();
    let mut stream = |piece: &str| {
        if !g.json {
            let _ = write!(stdout, "{piece}");
            let _ = stdout.flush();
        }
    };
    let report = answer_from_document(&model, document, question, &options, &mut stream)?;
    if g.json {
        #[derive(serde::Serialize)]
        struct Record<'a> {
            #[serde(flatten)]
            report: &'a AnswerReport,
            load_seconds: f64,
            threads: usize,
        }
        return print_json(&Record {
            report: &report,
            load_seconds,
            threads: folio_engine::threads::init(None),
        });
    }
    println!();
    print_card(&report, load_seconds);
    Ok(())
}

fn print_card(r: &AnswerReport, load_seconds: f64) {
    eprintln!("\n── how it was read ─────────────────────────────");
    eprintln!("strategy      full context: the whole document was read");
    eprintln!(
        "tokens read   {} prompt tokens ({} of document, {} bytes)",
        r.prompt_tokens, r.document_tokens, r.document_bytes
    );
    eprintln!(
        "attention     {} on {} ({:.1}% of causal keys attended)",
        r.read.attention,
        r.read.device,
        r.read.attended_fraction * 100.0,
    );
    if let Some(note) = &r.device_note {
        eprintln!("device        {note}");
    }
    eprintln!(
        "RoPE          {}",
        crate::card::rope_text(
            r.read.rope_scaling,
            r.beyond_trained_range,
            r.trained_context
        )
    );
    eprintln!(
        "KV cache      {} ({})",
        human_bytes(r.read.kv_cache_bytes as u64),
        r.read.kv_dtype
    );
    eprintln!(
        "time          load {load_seconds:.1} s · tokenize {:.2} s · prefill {:.1} s ({:.0} tok/s) · decode {:.1} s ({} tokens, {:.1} tok/s)",
        r.seconds.tokenize, r.seconds.prefill, r.prefill_tok_per_s, r.seconds.decode, r.generated_tokens, r.decode_tok_per_s
    );
    if let Some(e) = &r.read.eviction {
        eprintln!(
            "evicted       {}",
            crate::card::eviction_text(e, r.read.kv_cache_bytes)
        );
    }
    if let Some(line) = r.prefix.as_ref().and_then(crate::card::prefix_text) {
        eprintln!("prefix        {line}");
    }
    if let Some(g) = &r.grounding {
        eprintln!(
            "confidence    {:.2} answerability (the reader's probability that its quote states the answer; quote and check {:.1} s)",
            g.answerability, g.seconds
        );
        match g.quote {
            Some((start, end)) => eprintln!(
                "quote         \"{}\" (bytes {start}–{end} of the document, copied by the reader)",
                g.quote_text
            ),
            None => eprintln!("quote         none (no room left in the context for one)"),
        }
    }
}
