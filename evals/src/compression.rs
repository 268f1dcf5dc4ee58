//! The compression benchmark: answer accuracy of the default model on SQuAD
//! v2 and HotpotQA questions when the document is compressed 2×, 4×, 8× by
//! question-aware compression (`llmlingua`), random sentences or truncation,
//! against reading it whole (1×).
//!
//! One JSON line per (question, method, ratio) is appended to the output
//! file as soon as it exists, so a killed run loses nothing and a rerun
//! skips what is there. [`crate::compression_report`] summarizes the file.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use folio_corpora::{datasets, Document};
use folio_engine::answer::{answer_from_document, AnswerOptions};
use folio_engine::compress::{
    random_sentences, truncate, CompressOptions, Compressed, Prepared, Target,
};
use folio_engine::llm::{GenerateOptions, Model, SessionOptions};
use serde::{Deserialize, Serialize};

use crate::eval::items::spread;
use crate::eval::qa::{squad_articles, squad_window};
use crate::metrics::{contains_answer, exact_match, f1};

/// The question sets the benchmark runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// SQuAD v2 dev, answerable questions only (one Wikipedia paragraph).
    Squad,
    /// The same questions, each reading the window of its article around
    /// the paragraph (as `folio eval --suite squad` does: ~1.2K tokens, the
    /// gold paragraph among its neighbours), the multi-passage setting that
    /// question-aware compression is built for.
    SquadArticle,
    /// HotpotQA dev, distractor setting (ten paragraphs, two of them gold).
    Hotpotqa,
}

impl std::str::FromStr for Suite {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "squad" => Ok(Suite::Squad),
            "squad-article" => Ok(Suite::SquadArticle),
            "hotpotqa" => Ok(Suite::Hotpotqa),
            _ => bail!("unknown suite {s:?}: squad, squad-article or hotpotqa"),
        }
    }
}

impl Suite {
    /// The name written in records.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Squad => "squad",
            Suite::SquadArticle => "squad-article",
            Suite::Hotpotqa => "hotpotqa",
        }
    }
}

/// One question with its document and gold answers.
#[derive(Debug, Clone)]
pub struct Case {
    /// The dataset's question id.
    pub id: String,
    /// The question, as the dataset asks it.
    pub question: String,
    /// The text the model reads (compressed or whole).
    pub document: String,
    /// Accepted answers.
    pub golds: Vec<String>,
}

/// `n` questions of `suite`, spread evenly over the dev set (every k-th, so
/// a small `n` still spans many articles), chosen before their documents
/// are built. SQuAD's unanswerable questions are left out: accuracy here is
/// about keeping the answer. `squad` and `squad-article` pick the same
/// questions. HotpotQA's documents are its ten titled paragraphs, blank-line
/// separated.
pub fn load_cases(suite: Suite, n: usize) -> Result<Vec<Case>> {
    Ok(match suite {
        Suite::Squad | Suite::SquadArticle => {
            let questions = datasets::squad(true)?;
            let articles = squad_articles(&questions);
            let answerable: Vec<_> = questions.iter().filter(|q| !q.answers.is_empty()).collect();
            spread(answerable, Some(n))
                .into_iter()
                .map(|q| Case {
                    id: q.id.clone(),
                    question: q.question.clone(),
                    document: match suite {
                        Suite::SquadArticle => squad_window(&articles, q).0,
                        _ => q.context.clone(),
                    },
                    golds: q.answers.iter().map(|(a, _)| a.clone()).collect(),
                })
                .collect()
        }
        Suite::Hotpotqa => spread(datasets::hotpotqa(true)?, Some(n))
            .into_iter()
            .map(|q| Case {
                id: q.id,
                question: q.question,
                document: q
                    .paragraphs
                    .iter()
                    .map(|(title, text)| format!("{title}\n{text}"))
                    .collect::<Vec<_>>()
                    .join("\n\n"),
                golds: vec![q.answer],
            })
            .collect(),
    })
}

/// How a document is shortened before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Question-aware coarse-to-fine compression (folio's compressor).
    Llmlingua,
    /// Random whole sentences to the same budget.
    Random,
    /// The first tokens, to the same budget.
    Truncate,
}

impl std::str::FromStr for Method {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "llmlingua" => Ok(Method::Llmlingua),
            "random" => Ok(Method::Random),
            "truncate" => Ok(Method::Truncate),
            _ => bail!("unknown method {s:?}: llmlingua, random or truncate"),
        }
    }
}

impl Method {
    /// The name written in records.
    pub fn name(self) -> &'static str {
        match self {
            Method::Llmlingua => "llmlingua",
            Method::Random => "random",
            Method::Truncate => "truncate",
        }
    }
}

/// One answered question under one method and ratio: a line of the output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// `squad` or `hotpotqa`.
    pub suite: String,
    /// The dataset's question id.
    pub id: String,
    /// `none` (the whole document, ratio 1), `llmlingua`, `random`, `truncate`.
    pub method: String,
    /// The requested compression ratio (1: the whole document).
    pub ratio: f32,
    /// The question, as the dataset asks it.
    pub question: String,
    /// Accepted answers.
    pub golds: Vec<String>,
    /// The model's answer.
    pub answer: String,
    /// A gold answer's words appear in the answer ([`contains_answer`]).
    pub correct: bool,
    /// The normalized answer equals a gold answer (SQuAD EM).
    pub exact: bool,
    /// Best word-overlap F1 against a gold answer (SQuAD F1).
    pub f1: f64,
    /// A gold answer's words survive in the text the model read.
    pub gold_kept: bool,
    /// Scorer tokens (the compressor's model) of the document and of what
    /// was kept, and the budget.
    pub source_tokens: usize,
    /// Scorer tokens of the text the model read.
    pub compressed_tokens: usize,
    /// The scorer-token budget asked of the compressor (the source for ratio 1).
    pub target_tokens: usize,
    /// Wall time of compressing (0 for the whole document).
    pub compress_seconds: f64,
    /// Tokens the answer model was prompted with (template and question too).
    pub prompt_tokens: usize,
    /// Wall time of prefill and decoding.
    pub answer_seconds: f64,
    /// The compressed text the model read (absent for the whole document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<String>,
    /// Why compression or answering failed (the answer then counts wrong).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What to run and where to write it.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The dataset the questions come from.
    pub suite: Suite,
    /// Questions to run (spread over the dev set).
    pub n: usize,
    /// 1 means the whole document; others are compression targets.
    pub ratios: Vec<f32>,
    /// Methods run at every ratio above 1.
    pub methods: Vec<Method>,
    /// The JSON lines file (appended to; existing lines are skipped).
    pub out: PathBuf,
    /// Most answer tokens (one short sentence needs ~32).
    pub max_tokens: usize,
    /// Options of `llmlingua` (its target is set per ratio).
    pub compress: CompressOptions,
    /// Answer the questions (false: compress only, to see what survives).
    pub answer: bool,
}

/// Records already in `path` (none if it does not exist), the latest per
/// (suite, question, method, ratio): a file appended to by several runs may
/// hold a cell twice, and the later record replaces the earlier one (as
/// `eval::run::read_results` does for eval results).
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut latest: Vec<Record> = Vec::new();
    let mut at: HashMap<(String, String, String, String), usize> = HashMap::new();
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let record: Record = serde_json::from_str(line).with_context(|| {
            format!(
                "{} line {} is not a benchmark record",
                path.display(),
                i + 1
            )
        })?;
        let key = (
            record.suite.clone(),
            record.id.clone(),
            record.method.clone(),
            record.ratio.to_string(),
        );
        match at.get(&key) {
            Some(&slot) => latest[slot] = record,
            None => {
                at.insert(key, latest.len());
                latest.push(record);
            }
        }
    }
    Ok(latest)
}

/// Runs the benchmark, appending each new record to `config.out` and
/// handing it to `on_record`; records already in the file are skipped.
pub fn run(
    config: &RunConfig,
    answerer: &Model,
    scorer: &Model,
    on_record: &mut dyn FnMut(&Record),
) -> Result<()> {
    let done: HashSet<(String, String, String)> = read_records(&config.out)?
        .into_iter()
        .filter(|r| r.suite == config.suite.name())
        .map(|r| (r.id, r.method, r.ratio.to_string()))
        .collect();
    let cases = load_cases(config.suite, config.n)?;
    if let Some(dir) = config.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.out)
        .with_context(|| format!("opening {}", config.out.display()))?;
    let answer_options = AnswerOptions {
        generate: GenerateOptions {
            max_new_tokens: config.max_tokens,
            ..Default::default()
        },
        session: SessionOptions::for_model(answerer),
        ..Default::default()
    };
    for (index, case) in cases.iter().enumerate() {
        let mut jobs: Vec<(&'static str, f32)> = Vec::new();
        for &r in &config.ratios {
            if r <= 1.0 {
                jobs.push(("none", 1.0));
            } else {
                jobs.extend(config.methods.iter().map(|m| (m.name(), r)));
            }
        }
        jobs.retain(|(m, r)| !done.contains(&(case.id.clone(), m.to_string(), r.to_string())));
        jobs.dedup();
        if jobs.is_empty() {
            continue;
        }
        // The coarse ranking is shared by every llmlingua ratio of a case.
        let mut prepared: Option<Result<Prepared>> = None;
        for (method, ratio) in jobs {
            let target = Target::Ratio(ratio);
            let compressed: Result<Option<Compressed>> = match method {
                "none" => Ok(None),
                "llmlingua" => {
                    let p = prepared.get_or_insert_with(|| {
                        Prepared::new(scorer, &case.document, &case.question, &config.compress)
                    });
                    match p {
                        Ok(p) => p.finish(target).map(Some),
                        Err(e) => Err(anyhow::anyhow!("{e:#}")),
                    }
                }
                "random" => {
                    random_sentences(scorer, &case.document, target, index as u64).map(Some)
                }
                _ => truncate(scorer, &case.document, target).map(Some),
            };
            let record = answer(
                config,
                case,
                method,
                ratio,
                compressed,
                answerer,
                scorer,
                &answer_options,
            );
            writeln!(file, "{}", serde_json::to_string(&record)?)?;
            file.flush()?;
            on_record(&record);
        }
    }
    Ok(())
}

/// Answers from the compressed (or whole) document and scores the answer.
#[allow(clippy::too_many_arguments)]
fn answer(
    config: &RunConfig,
    case: &Case,
    method: &str,
    ratio: f32,
    compressed: Result<Option<Compressed>>,
    answerer: &Model,
    scorer: &Model,
    options: &AnswerOptions,
) -> Record {
    let mut record = Record {
        suite: config.suite.name().to_string(),
        id: case.id.clone(),
        method: method.to_string(),
        ratio,
        question: case.question.clone(),
        golds: case.golds.clone(),
        answer: String::new(),
        correct: false,
        exact: false,
        f1: 0.0,
        gold_kept: false,
        source_tokens: 0,
        compressed_tokens: 0,
        target_tokens: 0,
        compress_seconds: 0.0,
        prompt_tokens: 0,
        answer_seconds: 0.0,
        read: None,
        error: None,
    };
    let text = match compressed {
        Ok(Some(c)) => {
            record.source_tokens = c.source_tokens;
            record.compressed_tokens = c.compressed_tokens;
            record.target_tokens = c.target_tokens;
            record.compress_seconds = c.seconds;
            record.read = Some(c.text.clone());
            c.text
        }
        Ok(None) => {
            let n = scorer
                .tokenizer
                .encode_text(&case.document)
                .map_or(0, |t| t.len());
            (
                record.source_tokens,
                record.compressed_tokens,
                record.target_tokens,
            ) = (n, n, n);
            case.document.clone()
        }
        Err(e) => {
            record.error = Some(format!("compress: {e:#}"));
            return record;
        }
    };
    record.gold_kept = contains_answer(&text, &case.golds);
    if !config.answer {
        return record;
    }
    let start = Instant::now();
    let doc = Document::plain(
        case.id.clone(),
        format!("{}:{}", record.suite, case.id),
        text,
    );
    match answer_from_document(answerer, &doc, &case.question, options, &mut |_| {}) {
        Ok(report) => {
            record.correct = contains_answer(&report.answer, &case.golds);
            record.exact = exact_match(&report.answer, &case.golds);
            record.f1 = f1(&report.answer, &case.golds);
            record.prompt_tokens = report.prompt_tokens;
            record.answer = report.answer;
        }
        Err(e) => record.error = Some(format!("answer: {e:#}")),
    }
    record.answer_seconds = start.elapsed().as_secs_f64();
    record
}
