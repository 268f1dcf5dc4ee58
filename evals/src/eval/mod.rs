//! `folio eval`: batch evaluation of the strategies (RAG, compression, full
//! context, the router's choice) over suites of questions, with reports.
//!
//! Flow: a suite makes [`Item`]s (generated from a seed where synthetic),
//! [`run`] answers each with each strategy through the engine's `ask`
//! (the same code path as `folio ask`) and appends one [`EvalRecord`] per
//! answer to `results.jsonl`; [`summary`] and [`report`] turn that file
//! into `summary.json`, `report.md` and SVG charts.

pub mod abstention;
pub mod charts;
pub mod claims;
pub mod items;
pub mod qa;
pub mod record;
pub mod report;
pub mod run;
pub mod summary;
pub mod synthetic;

use std::path::PathBuf;

use anyhow::{bail, Result};
use folio_corpora::datasets;
use folio_engine::llm::TextTokenizer;

pub use items::{Item, ItemDoc, Scoring};
pub use record::EvalRecord;
pub use run::{
    already_done, columns, read_results, results_path, run, EvalEviction, EvalStrategy,
    EvictBudget, RunConfig,
};

/// The suites `folio eval` knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suite {
    /// Needle in a haystack: single, multi-key, multi-value.
    Niah,
    /// RULER's variable tracking and common-words extraction.
    Ruler,
    /// SQuAD v2 dev, answerable and unanswerable, each over its article's window.
    Squad,
    /// HotpotQA dev, distractor setting: ten paragraphs, two of them gold.
    Hotpotqa,
    /// The user's own questions: a JSON-lines file and its documents.
    Jsonl {
        /// The JSON-lines file of questions and answers.
        qa: PathBuf,
        /// The folder of the documents the questions are asked over.
        docs: PathBuf,
    },
}

impl Suite {
    /// Parses a suite name; `jsonl` needs the question file and documents.
    pub fn parse(name: &str, qa: Option<PathBuf>, docs: Option<PathBuf>) -> Result<Self> {
        Ok(match name {
            "niah" => Suite::Niah,
            "ruler" => Suite::Ruler,
            "squad" => Suite::Squad,
            "hotpotqa" => Suite::Hotpotqa,
            "jsonl" => match (qa, docs) {
                (Some(qa), Some(docs)) => Suite::Jsonl { qa, docs },
                _ => bail!("--suite jsonl needs --qa FILE.jsonl and --docs DIR"),
            },
            other => bail!("unknown suite {other:?}: niah, ruler, squad, hotpotqa or jsonl"),
        })
    }

    /// The name in records.
    pub fn name(&self) -> &'static str {
        match self {
            Suite::Niah => "niah",
            Suite::Ruler => "ruler",
            Suite::Squad => "squad",
            Suite::Hotpotqa => "hotpotqa",
            Suite::Jsonl { .. } => "jsonl",
        }
    }
}

/// What shapes a suite's items.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Context lengths of the synthetic suites, in the answering model's
    /// tokens.
    pub lengths: Vec<usize>,
    /// Most items (spread evenly over the grid or dataset).
    pub limit: Option<usize>,
    /// Seed of the synthetic suites: the same seed makes the same items.
    pub seed: u64,
    /// Progress bars while datasets are fetched.
    pub progress: bool,
    /// SQuAD: only the articles of one split (none: all).
    pub split: Option<Split>,
}

/// Halves of SQuAD v2 dev by article, so that what calibrates a threshold
/// (the answerability's) is never what reports its effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Articles at odd positions of the dev set (in order of appearance).
    Calibration,
    /// Articles at even positions: every reported number.
    Test,
}

impl std::str::FromStr for Split {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "calibration" => Ok(Self::Calibration),
            "test" => Ok(Self::Test),
            _ => anyhow::bail!("'{s}' is not a split: calibration or test"),
        }
    }
}

/// The items of `suite`; `tokenizer` (the answering model's) measures the
/// synthetic lengths.
pub fn load_items(
    suite: &Suite,
    options: &SuiteOptions,
    tokenizer: &TextTokenizer,
) -> Result<Vec<Item>> {
    let limit = options.limit;
    let synthetic = |make: fn(&synthetic::Source, &[usize]) -> Result<Vec<Item>>| {
        let essays = datasets::paul_graham_essays(options.progress)?;
        let source = synthetic::Source {
            essays: &essays,
            tokenizer,
            seed: options.seed,
        };
        Ok::<_, anyhow::Error>(items::spread_by_kind(
            make(&source, &options.lengths)?,
            limit,
        ))
    };
    match suite {
        Suite::Niah => synthetic(synthetic::niah),
        Suite::Ruler => synthetic(synthetic::ruler),
        Suite::Squad => qa::squad(limit, options.split, options.progress),
        Suite::Hotpotqa => qa::hotpotqa(limit, options.progress),
        Suite::Jsonl { qa, docs } => qa::jsonl(qa, docs, limit),
    }
}

/// Parses `4k,8k,16000` into token counts.
pub fn parse_lengths(text: &str) -> Result<Vec<usize>> {
    text.split(',')
        .map(|t| {
            let t = t.trim().to_lowercase();
            let (digits, scale) = match t.strip_suffix('k') {
                Some(d) => (d, 1024),
                None => (t.as_str(), 1),
            };
            match digits.parse::<usize>() {
                Ok(n) if n * scale >= 256 => Ok(n * scale),
                _ => bail!("bad length {t:?} in --lengths: use token counts like 4k,8k,16000 (at least 256)"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_parse_with_k_suffixes() {
        assert_eq!(
            parse_lengths("4k, 8K,1000").unwrap(),
            vec![4096, 8192, 1000]
        );
        assert!(parse_lengths("4x").is_err());
        assert!(parse_lengths("100").is_err());
    }
}
