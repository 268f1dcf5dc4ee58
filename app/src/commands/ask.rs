//! `folio ask`: route the question, stream the answer, print the trade-off
//! card; `--compare` runs every strategy side by side.

use std::io::Write;

use anyhow::{bail, Context, Result};
use folio_engine::ask::{Answer, AskEvent, Asker, Corpus, Models};
use folio_engine::models::load_model;
use folio_engine::router::StrategyKind;

use super::calibrate::ensure_profile;
use crate::card::{self, clip};
use crate::cli::{convert, AskArgs};
use crate::output::print_json;

/// Runs `folio ask`.
pub fn run(args: AskArgs) -> Result<()> {
    let options = convert::ask_options(&args)?;
    let mut paths = args.corpus.clone();
    paths.extend(args.file.clone());
    if paths.is_empty() {
        let store = convert::default_store();
        if !store.join("manifest.json").is_file() {
            bail!(
                "no documents to ask about: pass --corpus FILES|DIR (or --file F), or build the \
                 default store with `folio ingest PATH…` ({} has none yet)",
                store.display()
            );
        }
        paths.push(store);
    }
    let mut corpus = Corpus::open_with(&paths, !args.json, args.qdrant_url.as_deref())?;
    for s in &corpus.skipped {
        eprintln!("folio: {s}");
    }
    let profile = ensure_profile(!args.json)?;
    let (answerer, placement) = convert::answerer(
        &args.plan.model,
        args.plan.device,
        &args.plan.backend,
        !args.json,
    )?;
    let scorer = load_model(&args.plan.scorer, !args.json)
        .with_context(|| format!("loading the compressor's scorer {}", args.plan.scorer))?;
    let models = Models {
        answerer: &answerer,
        device: Some(&placement),
        scorer: Some(&scorer),
    };
    let mut asker = Asker::new(&mut corpus, models, &profile, options);
    if args.compare {
        return compare(&mut asker, &args);
    }
    let mut stdout = std::io::stdout();
    let json = args.json;
    let answer = asker.ask(&args.question, &mut |event| {
        if json {
            return;
        }
        let text = match event {
            AskEvent::Text(piece) => piece.to_string(),
            AskEvent::Escalating { to, .. } => format!(
                "\n[retrieval found nothing; escalating to {}]\n",
                to.kind().name()
            ),
            _ => return,
        };
        let _ = write!(stdout, "{text}");
        let _ = stdout.flush();
    })?;
    if json {
        return print_json(&answer);
    }
    println!();
    let support = &answer.trade_offs.support;
    if let (Some(_), Some(score)) = (&support.withheld_answer, support.answerability) {
        // The streamed text was the reader's; what folio answers is this.
        println!(
            "→ {} (the answer above is withheld: answerability {score:.2}, below {:.2})",
            answer.answer, support.min_confidence
        );
    }
    card::print(&answer);
    Ok(())
}

/// Runs each strategy on the same question and prints them side by side.
fn compare(asker: &mut Asker, args: &AskArgs) -> Result<()> {
    let mut current = None;
    let results = asker.compare(&args.question, &mut |kind, event| {
        if args.json {
            return;
        }
        if current != Some(kind) {
            if current.is_some() {
                eprintln!();
            }
            eprintln!("── {} ──", kind.name());
            current = Some(kind);
        }
        if let AskEvent::Text(piece) = event {
            eprint!("{piece}");
        }
    });
    if args.json {
        let records: Vec<serde_json::Value> = results
            .iter()
            .map(|(kind, r)| match r {
                Ok(a) => serde_json::json!({"strategy": kind.name(), "answer": a}),
                Err(e) => serde_json::json!({"strategy": kind.name(), "error": format!("{e:#}")}),
            })
            .collect();
        return print_json(&records);
    }
    eprintln!();
    print_table(&results);
    Ok(())
}

fn print_table(results: &[(StrategyKind, Result<Answer>)]) {
    let w = 30;
    let values: Vec<Option<[String; 8]>> = results
        .iter()
        .map(|(_, r)| r.as_ref().ok().map(card::compare_values))
        .collect();
    let mut header = format!("{:<18}", "");
    for (kind, _) in results {
        header += &format!(" │ {:<w$}", kind.name());
    }
    println!("{header}");
    for (i, name) in card::COMPARE_ROWS.iter().enumerate() {
        let mut line = format!("{name:<18}");
        for v in &values {
            let cell = v.as_ref().map_or("—".into(), |v| clip(&v[i], w));
            line += &format!(" │ {cell:<w$}");
        }
        println!("{line}");
    }
    for (kind, r) in results {
        if let Err(e) = r {
            println!("{}: not run: {}", kind.name(), clip(&format!("{e:#}"), 400));
        }
    }
}
