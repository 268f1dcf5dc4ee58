//! `folio compress FILE --question Q --ratio R`: question-aware compression
//! of a document, printed with what it kept and what it cost; and `folio
//! bench compress`: answer accuracy under compression on SQuAD v2 and
//! HotpotQA against random-sentence and truncation baselines.

use anyhow::Result;
use folio_corpora::Document;
use folio_engine::compress::{compress, CompressOptions, Compressed, Target};
use folio_engine::models::load_model;
use folio_evals::compression::{read_records, Method, RunConfig, Suite};
use folio_evals::compression_report::summarize;

use crate::cli::{BenchCompressArgs, CompressArgs};
use crate::output::print_json;

/// Compresses the file and prints the result.
pub fn run(args: &CompressArgs) -> Result<()> {
    let document = Document::from_path(&args.file)?;
    let target = match (args.ratio, args.tokens) {
        (_, Some(n)) => Target::Tokens(n),
        (Some(r), None) => Target::Ratio(r),
        (None, None) => anyhow::bail!("give --ratio R or --tokens N"),
    };
    let scorer = load_model(&args.model, true)?;
    let options = CompressOptions {
        target,
        lm_weight: args.lm_weight,
        ..CompressOptions::default()
    };
    let c = compress(&scorer, &document.text, &args.question, &options)?;
    if args.json {
        #[derive(serde::Serialize)]
        struct Record<'a> {
            document_id: &'a str,
            source: &'a str,
            question: &'a str,
            #[serde(flatten)]
            compressed: &'a Compressed,
        }
        return print_json(&Record {
            document_id: &document.id,
            source: &document.source,
            question: &args.question,
            compressed: &c,
        });
    }
    println!("{}", c.text);
    eprintln!("\n{}", summary_line(&c));
    Ok(())
}

/// `source → kept tokens (ratio), time, ms per 1K, dropped spans`.
fn summary_line(c: &Compressed) -> String {
    let mut line = format!(
        "{} → {} tokens ({:.1}×, budget {}) of {} · {:.2} s ({:.0} ms per 1K input tokens) · {} dropped spans",
        c.source_tokens,
        c.compressed_tokens,
        c.ratio,
        c.target_tokens,
        c.scorer,
        c.seconds,
        c.ms_per_1k_tokens(),
        c.dropped.len()
    );
    if let (Some(coarse), Some(fine)) = (&c.coarse, &c.fine) {
        line.push_str(&format!(
            "\ncoarse: kept {} of {} sentences (model scored {}) · fine: dropped {} of {} words ({} protected)",
            coarse.kept_units - fine.units_removed,
            coarse.units,
            coarse.lm_scored,
            fine.dropped_words,
            fine.words,
            fine.protected_words
        ));
    }
    line
}

/// Runs (or resumes) the benchmark, then prints the summary.
pub fn run_bench(args: &BenchCompressArgs) -> Result<()> {
    if !args.summary_only {
        let config = RunConfig {
            suite: args.suite.parse::<Suite>()?,
            n: args.n,
            ratios: args.ratios.clone(),
            methods: args
                .methods
                .iter()
                .map(|m| m.parse::<Method>())
                .collect::<Result<_>>()?,
            out: args.out.clone(),
            max_tokens: args.max_tokens,
            compress: CompressOptions {
                lm_weight: args.lm_weight,
                coarse_slack: args.coarse_slack,
                rank_bonus: args.rank_bonus,
                second_hop_weight: args.second_hop_weight,
                ..CompressOptions::default()
            },
            answer: !args.compress_only,
        };
        let answerer = load_model(&args.model, true)?;
        let scorer = load_model(&args.scorer, true)?;
        let mut count = 0;
        folio_evals::compression::run(&config, &answerer, &scorer, &mut |r| {
            count += 1;
            eprintln!(
                "[{count}] {} {} {}× {} ({} → {} tokens, {:.2}+{:.1} s) {:?}{}",
                r.id,
                r.method,
                r.ratio,
                if r.correct { "✓" } else { "✗" },
                r.source_tokens,
                r.compressed_tokens,
                r.compress_seconds,
                r.answer_seconds,
                r.answer,
                r.error
                    .as_deref()
                    .map(|e| format!(" error: {e}"))
                    .unwrap_or_default()
            );
        })?;
    }
    let summaries = summarize(&read_records(&args.out)?);
    if args.json {
        return print_json(&summaries);
    }
    for s in summaries {
        println!("{}", s.render());
    }
    Ok(())
}
