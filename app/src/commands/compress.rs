//! `folio compress FILE --question Q --ratio R`: question-aware compression
//! of a document, printed with what it kept and what it cost; and `folio
//! bench compress`: answer accuracy under compression on SQuAD v2 and
//! HotpotQA against random-sentence and truncation baselines.

use std::path::PathBuf;

use anyhow::Result;
use folio_corpora::Document;
use folio_engine::compress::{compress, CompressOptions, Compressed, Target};
use folio_engine::models::{load_model, DEFAULT_MODEL, TEST_MODEL};
use folio_evals::compression::{read_records, Method, RunConfig, Suite};
use folio_evals::compression_report::summarize;

use crate::output::print_json;

/// `folio compress`: the compressed text on stdout, a summary on stderr.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["ratio", "tokens"])))]
pub struct CompressArgs {
    /// The document (.txt, .md, .html, .pdf).
    pub file: PathBuf,
    /// The question the compressed text must still answer.
    #[arg(long, short)]
    pub question: String,
    /// Keep 1/R of the tokens (2, 4, 8…).
    #[arg(long)]
    pub ratio: Option<f32>,
    /// Keep at most N tokens (of the scorer model).
    #[arg(long)]
    pub tokens: Option<usize>,
    /// The small scorer model (see `folio models list`).
    #[arg(long, default_value = TEST_MODEL)]
    pub model: String,
    /// Weight of the scorer's question-conditioned score against BM25 in the
    /// sentence ranking (0: lexical only).
    #[arg(long, default_value_t = CompressOptions::default().lm_weight)]
    pub lm_weight: f64,
    /// Print the whole record (kept and dropped byte spans, stage stats) as JSON.
    #[arg(long)]
    pub json: bool,
}

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

/// `folio bench compress`: accuracy under compression, one JSON line per
/// (question, method, ratio) appended to `--out`.
#[derive(Debug, clap::Args)]
pub struct BenchCompressArgs {
    /// `squad` (SQuAD v2 dev, answerable questions, one paragraph each),
    /// `squad-article` (the same questions over the article window around
    /// the paragraph, ~1.2K tokens) or `hotpotqa` (dev, distractor).
    #[arg(long, default_value = "squad")]
    pub suite: String,
    /// Questions, spread evenly over the dev set.
    #[arg(long, default_value_t = 200)]
    pub n: usize,
    /// Compression ratios; 1 is the whole document.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1.0f32, 2.0, 4.0, 8.0])]
    pub ratios: Vec<f32>,
    /// llmlingua, random, truncate.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["llmlingua".to_string(), "random".into(), "truncate".into()])]
    pub methods: Vec<String>,
    /// JSON lines file: appended to, and lines already there are skipped.
    #[arg(long)]
    pub out: PathBuf,
    /// The model that answers.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// The compressor's scorer model.
    #[arg(long, default_value = TEST_MODEL)]
    pub scorer: String,
    /// Most answer tokens.
    #[arg(long, default_value_t = 32)]
    pub max_tokens: usize,
    /// The compressor's model weight against BM25 (0: lexical ranking only).
    #[arg(long, default_value_t = CompressOptions::default().lm_weight)]
    pub lm_weight: f64,
    /// The compressor's coarse budget as a multiple of the target (1: whole
    /// sentences only, the fine stage drops words only to fit).
    #[arg(long, default_value_t = CompressOptions::default().coarse_slack)]
    pub coarse_slack: f64,
    /// Weight of the compressor's second hop: sentences naming what the
    /// best passage names and the question does not (0: off).
    #[arg(long, default_value_t = CompressOptions::default().second_hop_weight)]
    pub second_hop_weight: f64,
    /// The compressor's surprisal bonus (nats) of the best kept sentence's
    /// words over the worst's.
    #[arg(long, default_value_t = CompressOptions::default().rank_bonus)]
    pub rank_bonus: f64,
    /// Compress only (no answers): measures whether gold answers survive,
    /// for quick ablations. Records get an empty answer.
    #[arg(long)]
    pub compress_only: bool,
    /// Only print the summary of what `--out` holds.
    #[arg(long)]
    pub summary_only: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
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
