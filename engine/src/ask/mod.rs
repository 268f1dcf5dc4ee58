//! Answering a question about a corpus: route it, run the chosen strategy
//! (retrieval, compression or a full read), find the evidence, and report
//! every trade-off made, with the predicted cost next to the measured one.
//!
//! [`plan`] asks the router; [`execute`] runs one plan; [`ask`] does both
//! and, when retrieval answers that the documents do not say, escalates to
//! a wider read if the budget allows (Self-Route), saying so.

pub mod context;
pub mod corpus;
pub mod evidence;
pub mod tradeoffs;

use std::time::Instant;

use anyhow::{anyhow, Result};
use folio_corpora::{Document, Span};
use folio_retrieval::Mode;

use crate::answer::{answer_from_document, AnswerOptions, AnswerReport};
use crate::compress::{compress, CompressOptions, Target};
use crate::device::Placement;
use crate::llm::{AttentionMode, GenerateOptions, Model, SessionOptions, SparseConfig};
use crate::router::{
    cost, route, Budget, Candidate, CorpusStats, Decision, DeviceProfile, ModelLimits,
    PlannedAttention, RouteInput, StageSeconds, Strategy, StrategyKind,
};
pub use context::Context;
pub use corpus::{Corpus, CorpusDoc};
pub use evidence::{find_evidence, says_not_found, support, Evidence, MIN_SUPPORT};
pub use tradeoffs::{Answer, DroppedSpan, Fallback, StageReport, TradeOffs, UsedChunk};

/// How to answer: the budget, an optional forced strategy, generation.
#[derive(Debug, Clone)]
pub struct AskOptions {
    pub budget: Budget,
    /// `--strategy`: skip the router's choice of kind.
    pub forced: Option<StrategyKind>,
    /// Chunks a retrieval plan reads.
    pub rag_k: usize,
    pub generate: GenerateOptions,
    /// Escalate when retrieval's answer says the documents do not say.
    pub self_route: bool,
    /// Progress bars for indexing.
    pub progress: bool,
}

impl Default for AskOptions {
    fn default() -> Self {
        Self {
            budget: Budget::default(),
            forced: None,
            rag_k: 5,
            generate: GenerateOptions {
                max_new_tokens: 96,
                ..Default::default()
            },
            self_route: true,
            progress: false,
        }
    }
}

/// The models an answer uses: the one that answers, where it runs, and
/// the compressor's scorer (none: compression is not offered).
#[derive(Clone, Copy)]
pub struct Models<'a> {
    pub answerer: &'a Model,
    /// The answerer's placement (`None`: the CPU).
    pub device: Option<&'a Placement>,
    pub scorer: Option<&'a Model>,
}

impl<'a> Models<'a> {
    /// The answerer on the CPU, with an optional scorer.
    pub fn cpu(answerer: &'a Model, scorer: Option<&'a Model>) -> Self {
        Self {
            answerer,
            device: None,
            scorer,
        }
    }
}

/// Corpus statistics and the router's decision for `question`.
pub fn plan(
    corpus: &Corpus,
    models: Models,
    profile: &DeviceProfile,
    question: &str,
    options: &AskOptions,
) -> Result<(CorpusStats, Decision)> {
    if question.trim().is_empty() {
        return Err(anyhow!("the question is empty"));
    }
    let stats = corpus.stats(models.answerer)?;
    let model = ModelLimits::of(models.answerer);
    let scorer = models.scorer.map(ModelLimits::of);
    let decision = route(&RouteInput {
        question,
        corpus: &stats,
        budget: &options.budget,
        profile,
        model: &model,
        scorer: scorer.as_ref(),
        forced: options.forced,
        max_answer_tokens: options.generate.max_new_tokens,
        rag_k: options.rag_k,
    })?;
    Ok((stats, decision))
}

/// Plans, executes, and escalates a retrieval answer that found nothing
/// when the rest of the latency budget allows a wider read.
pub fn ask(
    corpus: &mut Corpus,
    models: Models,
    profile: &DeviceProfile,
    question: &str,
    options: &AskOptions,
    on_text: &mut dyn FnMut(&str),
) -> Result<Answer> {
    let (stats, decision) = plan(corpus, models, profile, question, options)?;
    let first = execute(
        corpus, models, profile, &stats, &decision, question, options, on_text,
    )?;
    let t = &first.trade_offs;
    if !(options.self_route
        && options.forced.is_none()
        && t.not_found
        && t.stop_reason != crate::llm::StopReason::Cancelled
        && decision.chosen.strategy.kind() == StrategyKind::Rag)
    {
        return Ok(first);
    }
    let remaining = options.budget.latency_s.map(|l| l - t.measured_seconds);
    let escalation = decision
        .wider_reads()
        .into_iter()
        .find(|c| affordable(c, &options.budget, remaining))
        .cloned();
    let mut fallback = Fallback {
        from: decision.chosen.strategy.clone(),
        first_answer: first.answer.clone(),
        first_seconds: t.measured_seconds,
        reason: if says_not_found(&first.answer) {
            "the answer from retrieval's chunks says they do not hold it".into()
        } else {
            format!(
                "the answer from retrieval's chunks is not supported by them ({:.0}% of its words occur in what was read)",
                t.support * 100.0
            )
        },
        to: None,
    };
    let Some(next) = escalation else {
        fallback.reason += ", and no wider read fits the rest of the budget";
        let mut first = first;
        first.trade_offs.fallback = Some(fallback);
        return Ok(first);
    };
    fallback.reason += &format!("; reading wider with {}", next.strategy.describe());
    fallback.to = Some(next.strategy.clone());
    on_text(&format!(
        "\n[retrieval found nothing; escalating to {}]\n",
        next.strategy.kind().name()
    ));
    // The last reason is the retrieval plan's coverage; the card shows the
    // fallback on its own line.
    let mut reasons = decision.reasons.clone();
    reasons.pop();
    reasons.push(format!(
        "after the fallback: sends about {} tokens ({:.1}% of the corpus)",
        next.cost.context_tokens,
        next.cost.coverage * 100.0
    ));
    let second = Decision {
        chosen: next,
        reasons,
        ..decision
    };
    let mut answer = execute(
        corpus, models, profile, &stats, &second, question, options, on_text,
    )?;
    answer.trade_offs.fallback = Some(fallback);
    Ok(answer)
}

/// Whether `c` fits the budget with `remaining` seconds left.
fn affordable(c: &Candidate, budget: &Budget, remaining: Option<f64>) -> bool {
    remaining.is_none_or(|r| c.cost.seconds.total() <= r)
        && budget
            .memory_bytes
            .is_none_or(|m| c.cost.peak_memory_bytes <= m)
        && budget
            .context_tokens
            .is_none_or(|t| c.cost.context_tokens <= t)
}

/// What running a strategy produced before the answer is assembled.
struct Run {
    report: AnswerReport,
    /// Document regions the model saw.
    regions: Vec<(usize, Span)>,
    dropped: Vec<(usize, Span)>,
    chunks: Vec<UsedChunk>,
    measured: StageSeconds,
    /// Source tokens the compressor read (scorer tokens), for the model.
    compressed_source_tokens: usize,
}

/// Runs `decision`'s plan and builds the answer with its trade-offs.
#[allow(clippy::too_many_arguments)]
pub fn execute(
    corpus: &mut Corpus,
    models: Models,
    profile: &DeviceProfile,
    stats: &CorpusStats,
    decision: &Decision,
    question: &str,
    options: &AskOptions,
    on_text: &mut dyn FnMut(&str),
) -> Result<Answer> {
    let model = models.answerer;
    let strategy = &decision.chosen.strategy;
    let run = run_strategy(corpus, models, strategy, question, options, on_text)?;
    let report = &run.report;
    let limits = ModelLimits::of(model);
    let predicted = decision.chosen.cost.seconds;
    let attention = match strategy {
        Strategy::Full { attention, .. } => *attention,
        _ => PlannedAttention::Flash,
    };
    let at_sizes = StageSeconds {
        compress: match (strategy, models.scorer) {
            (Strategy::Compress { target_tokens }, Some(s)) => cost::compress_seconds(
                &ModelLimits::of(s),
                profile,
                run.compressed_source_tokens,
                *target_tokens,
            ),
            _ => 0.0,
        },
        prefill: cost::prefill_seconds(&limits, profile, report.prompt_tokens, attention),
        decode: cost::decode_seconds(
            &limits,
            profile,
            report.prompt_tokens,
            report.generated_tokens,
        ),
        ..predicted
    };
    let stages = stage_reports(&predicted, &at_sizes, &run.measured);
    let corpus_bytes: usize = corpus.docs.iter().map(|d| d.text.len()).sum();
    let read_bytes: usize = run.regions.iter().map(|(_, s)| s.end - s.start).sum();
    let read_docs: std::collections::HashSet<usize> = run.regions.iter().map(|r| r.0).collect();
    let dropped_bytes = run.dropped.iter().map(|(_, s)| s.end - s.start).sum();
    let support = support(corpus, &run.regions, question, &report.answer);
    let not_found = says_not_found(&report.answer) || support < MIN_SUPPORT;
    let evidence = if not_found {
        Vec::new()
    } else {
        find_evidence(corpus, &run.regions, question, &report.answer, 2)
    };
    let trade_offs = TradeOffs {
        strategy: strategy.clone(),
        question_kind: decision.question_kind,
        reasons: decision.reasons.clone(),
        budget: options.budget,
        alternatives: decision.candidates.clone(),
        corpus_documents: stats.documents,
        corpus_tokens: stats.tokens,
        corpus_tokens_estimated: stats.tokens_estimated,
        tokens_sent: report.prompt_tokens,
        coverage: read_bytes as f64 / corpus_bytes.max(1) as f64,
        unread_documents: corpus.docs.len() - read_docs.len(),
        chunks: run.chunks,
        dropped: run
            .dropped
            .iter()
            .take(tradeoffs::MAX_DROPPED_LISTED)
            .map(|(d, s)| DroppedSpan {
                path: corpus.docs[*d].path.clone(),
                span: *s,
            })
            .collect(),
        dropped_spans: run.dropped.len(),
        dropped_bytes,
        read: report.read.clone(),
        device_note: report.device_note.clone(),
        beyond_trained_range: report.beyond_trained_range,
        trained_context: report.trained_context,
        predicted_seconds: predicted.total(),
        measured_seconds: run.measured.total(),
        stages,
        predicted_peak_memory_bytes: decision.chosen.cost.peak_memory_bytes,
        measured_peak_memory_bytes: tradeoffs::peak_rss_bytes(),
        generated_tokens: report.generated_tokens,
        stop_reason: report.stop_reason,
        not_found,
        support,
        evidence,
        fallback: None,
    };
    Ok(Answer {
        question: question.to_string(),
        answer: report.answer.clone(),
        model: model.config.name.clone(),
        trade_offs,
    })
}

fn stage_reports(
    predicted: &StageSeconds,
    at_sizes: &StageSeconds,
    measured: &StageSeconds,
) -> Vec<StageReport> {
    let rows = [
        ("ingest", predicted.ingest, at_sizes.ingest, measured.ingest),
        (
            "retrieve",
            predicted.retrieve,
            at_sizes.retrieve,
            measured.retrieve,
        ),
        (
            "compress",
            predicted.compress,
            at_sizes.compress,
            measured.compress,
        ),
        (
            "prefill",
            predicted.prefill,
            at_sizes.prefill,
            measured.prefill,
        ),
        ("decode", predicted.decode, at_sizes.decode, measured.decode),
    ];
    rows.into_iter()
        .filter(|r| r.1 > 0.0 || r.3 > 0.0)
        .map(|(stage, predicted_s, model_s, measured_s)| StageReport {
            stage,
            predicted_s,
            model_s,
            measured_s,
        })
        .collect()
}

fn run_strategy(
    corpus: &mut Corpus,
    models: Models,
    strategy: &Strategy,
    question: &str,
    options: &AskOptions,
    on_text: &mut dyn FnMut(&str),
) -> Result<Run> {
    let model = models.answerer;
    let mut measured = StageSeconds::default();
    let mut session = SessionOptions::for_model(model);
    let mut chunks = Vec::new();
    let mut dropped = Vec::new();
    let mut compressed_source_tokens = 0;
    let (text, regions) = match strategy {
        Strategy::Rag { k } => {
            let t = Instant::now();
            let (store, ingested) = corpus.store(options.progress)?;
            if ingested.is_some() {
                measured.ingest = t.elapsed().as_secs_f64();
            }
            let t = Instant::now();
            let mode = if store.has_dense() {
                Mode::Hybrid
            } else {
                Mode::Bm25
            };
            let hits = store.search(question, mode, *k)?.hits;
            let passages = store.assemble(&hits)?;
            measured.retrieve = t.elapsed().as_secs_f64();
            chunks = hits
                .iter()
                .map(|h| UsedChunk {
                    path: h.path.clone(),
                    span: h.span,
                    rank: h.rank,
                    score: h.score,
                    bm25_rank: h.bm25.map(|r| r.rank),
                    dense_rank: h.dense.map(|r| r.rank),
                })
                .collect();
            let ctx = Context::passages(corpus, &passages)?;
            let regions = ctx.regions();
            (ctx.text, regions)
        }
        Strategy::Compress { target_tokens } => {
            let scorer = models.scorer.ok_or_else(|| {
                anyhow!("compression needs its scorer model, which was not loaded")
            })?;
            let ctx = Context::full(corpus);
            let compressed = compress(
                scorer,
                &ctx.text,
                question,
                &CompressOptions {
                    target: Target::Tokens(*target_tokens),
                    ..Default::default()
                },
            )?;
            measured.compress = compressed.seconds;
            compressed_source_tokens = compressed.source_tokens;
            let regions = compressed
                .kept
                .iter()
                .flat_map(|s| ctx.to_docs(*s))
                .collect();
            dropped = compressed
                .dropped
                .iter()
                .flat_map(|s| ctx.to_docs(*s))
                .collect();
            (compressed.text, regions)
        }
        Strategy::Full {
            attention,
            rope,
            kv,
        } => {
            session.attention = match attention {
                PlannedAttention::Flash => AttentionMode::Flash,
                PlannedAttention::Sparse => AttentionMode::Sparse(SparseConfig::default()),
            }
            .build();
            if rope.factor() > 1.0 {
                session.rope_scaling = *rope;
            }
            session.kv_dtype = *kv;
            let ctx = Context::full(corpus);
            let regions = ctx.regions();
            (ctx.text, regions)
        }
    };
    let document = Document::plain("context", strategy.kind().name(), text);
    let report = answer_from_document(
        model,
        &document,
        question,
        &AnswerOptions {
            generate: options.generate.clone(),
            session,
            device: models.device.cloned().unwrap_or_default(),
        },
        on_text,
    )?;
    measured.prefill = report.seconds.tokenize + report.seconds.prefill;
    measured.decode = report.seconds.decode;
    Ok(Run {
        report,
        regions,
        dropped,
        chunks,
        measured,
        compressed_source_tokens,
    })
}
