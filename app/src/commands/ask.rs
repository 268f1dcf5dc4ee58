//! `folio ask`: route the question, stream the answer, print the trade-off
//! card; `--compare` runs every strategy side by side.

use std::io::Write;

use anyhow::{bail, Context, Result};
use folio_engine::ask::{Answer, AskEvent, AskOptions, Asker, Corpus, Models};
use folio_engine::llm::GenerateOptions;
use folio_engine::models::load_model;
use folio_engine::router::{Budget, StrategyKind};

use super::calibrate::ensure_profile;
use super::card::{self, clip};
use crate::cli::{AskArgs, BudgetArgs};
use crate::output::print_json;

/// Runs `folio ask`.
pub fn run(args: AskArgs) -> Result<()> {
    let options = AskOptions {
        budget: budget(&args.budget)?,
        forced: args.strategy.as_deref().map(str::parse).transpose()?,
        rag_k: args.plan.chunks.max(1),
        generate: GenerateOptions {
            max_new_tokens: args.max_tokens,
            ..Default::default()
        },
        self_route: !args.no_fallback,
        progress: !args.json,
    };
    let mut paths = args.corpus.clone();
    paths.extend(args.file.clone());
    if paths.is_empty() {
        let store = super::ingest::default_store();
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
    let answerer = load_model(&args.plan.model, !args.json)?;
    let scorer = load_model(&args.plan.scorer, !args.json)
        .with_context(|| format!("loading the compressor's scorer {}", args.plan.scorer))?;
    let placement = crate::device::place(&answerer, args.plan.device);
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
    card::print(&answer);
    Ok(())
}

/// The budget from the flags; memory defaults to what is available now.
pub fn budget(args: &BudgetArgs) -> Result<Budget> {
    budget_from(
        &args.budget_latency,
        args.budget_memory.as_deref(),
        &args.budget_tokens,
    )
}

/// A budget from `--budget-latency`, `--budget-memory` (`None`: what is
/// available now) and `--budget-tokens` values.
pub fn budget_from(latency: &str, memory: Option<&str>, tokens: &str) -> Result<Budget> {
    let memory = match memory {
        Some(m) => parse_bytes(m)?,
        None => Some(folio_engine::calibrate::memory()?.1).filter(|b| *b > 0),
    };
    Ok(Budget {
        latency_s: parse_seconds(latency)?,
        memory_bytes: memory,
        context_tokens: match tokens {
            "none" => None,
            n => Some(n.parse().with_context(|| {
                format!("--budget-tokens {n:?} is not a number of tokens (or `none`)")
            })?),
        },
    })
}

/// `value` and `unit` of `30s` or `4GiB` (unit possibly empty); `None` for
/// `none`. `what` names the expected kind in the error.
fn split_quantity<'a>(s: &'a str, what: &str) -> Result<Option<(f64, &'a str)>> {
    let s = s.trim();
    if s == "none" {
        return Ok(None);
    }
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("{s:?} is not {what}"))?;
    Ok(Some((value, unit)))
}

/// `30s`, `1.5m`, `500ms`, `2h`, a bare number of seconds, or `none`.
pub fn parse_seconds(s: &str) -> Result<Option<f64>> {
    let Some((value, unit)) = split_quantity(s, "a duration (try 30s, 2m or none)")? else {
        return Ok(None);
    };
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => bail!("unknown unit in {:?}: use ms, s, m or h", s.trim()),
    };
    if value <= 0.0 {
        bail!("a latency budget must be positive (got {:?})", s.trim());
    }
    Ok(Some(value * scale))
}

/// `4GiB`, `512MiB`, `2GB`, a bare number of bytes, or `none`.
pub fn parse_bytes(s: &str) -> Result<Option<u64>> {
    let Some((value, unit)) = split_quantity(s, "a size (try 4GiB, 512MiB or none)")? else {
        return Ok(None);
    };
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => bail!(
            "unknown unit in {:?}: use B, kB, MB, GB, KiB, MiB or GiB",
            s.trim()
        ),
    };
    Ok(Some((value * scale) as u64))
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
