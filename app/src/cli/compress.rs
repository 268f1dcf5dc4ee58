//! The flags of `folio compress` and `folio bench compress`.

use std::path::PathBuf;

use folio_engine::compress::CompressOptions;
use folio_engine::models::{DEFAULT_MODEL, TEST_MODEL};

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
