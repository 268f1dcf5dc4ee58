//! An [`Answer`] from a strategy's run: the trade-off record built from
//! what the plan predicted and what the run measured, read and dropped.

use folio_corpora::Span;

use super::context::Context;
use super::evidence::{find_evidence, says_not_found, support, MIN_SUPPORT};
use super::strategies::Run;
use super::tradeoffs::{
    self, Answer, Cost, Coverage, DroppedSpan, PlanChoice, Quote, ReadReport, StageReport, Support,
    TradeOffs, NOT_IN_DOCUMENTS,
};
use super::{abstain, AskOptions, Corpus, Models, Plan};
use crate::grounding::Grounding;
use crate::router::{cost, DeviceProfile, ModelLimits, PlannedAttention, StageSeconds, Strategy};

/// The answer to `plan` with its trade-offs, from `run`.
pub(super) fn answer(
    corpus: &Corpus,
    models: Models,
    profile: &DeviceProfile,
    plan: &Plan,
    options: &AskOptions,
    run: Run,
) -> Answer {
    let budget = options.budget;
    let model = models.answerer;
    let decision = &plan.decision;
    let strategy = &decision.chosen.strategy;
    let report = &run.report;
    let limits = models.answerer_limits();
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
        // A restored prefix is not prefilled: the rest of the prompt is.
        prefill: cost::prefill_seconds(&limits, profile, report.prompt_tokens, attention)
            - report
                .prefix
                .as_ref()
                .filter(|p| p.reused_tokens > 0)
                .map_or(0.0, |p| {
                    cost::prefill_seconds(&limits, profile, p.reused_tokens, attention)
                }),
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
    let word_overlap = support(corpus, &run.regions, &plan.question, &report.answer);
    let grounding = report.grounding.as_ref();
    let answerability = grounding.map(|g| g.answerability);
    let (min_confidence, min_confidence_source) =
        abstain::min_confidence(&model.config.name, options.min_confidence);
    let below = answerability.is_some_and(|a| a < min_confidence);
    // The answerability withholds; word overlap still flags an answer whose
    // own words the text read never uses (a weak reader's check passes some).
    let not_found = says_not_found(&report.answer) || below || word_overlap < MIN_SUPPORT;
    let quote = grounding.and_then(|g| quote_in_documents(corpus, &run.context, g));
    let evidence = if not_found {
        Vec::new()
    } else {
        find_evidence(corpus, &run.regions, &plan.question, &report.answer, 2)
    };
    let stats = &plan.stats;
    let trade_offs = TradeOffs {
        plan: PlanChoice {
            strategy: strategy.clone(),
            question_kind: decision.question_kind,
            reasons: decision.reasons.clone(),
            budget,
            alternatives: decision.candidates.clone(),
            fallback: None,
        },
        coverage: Coverage {
            corpus_documents: stats.documents,
            corpus_tokens: stats.tokens,
            corpus_tokens_estimated: stats.tokens_estimated,
            tokens_sent: report.prompt_tokens,
            read_fraction: read_bytes as f64 / corpus_bytes.max(1) as f64,
            unread_documents: corpus.docs.len() - read_docs.len(),
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
            chunks: run.chunks,
        },
        read: ReadReport {
            stats: report.read.clone(),
            device_note: report.device_note.clone(),
            beyond_trained_range: report.beyond_trained_range,
            trained_context: report.trained_context,
            generated_tokens: report.generated_tokens,
            stop_reason: report.stop_reason,
            prefix_cache: report.prefix.clone(),
        },
        cost: Cost {
            predicted_seconds: predicted.total(),
            measured_seconds: run.measured.total(),
            stages,
            predicted_peak_memory_bytes: decision.chosen.cost.peak_memory_bytes,
            measured_peak_memory_bytes: folio_corpora::memory::peak_rss_bytes(),
        },
        support: Support {
            quote,
            answerability,
            min_confidence,
            min_confidence_source,
            withheld_answer: below.then(|| report.answer.clone()),
            evidence,
            not_found,
            word_overlap,
        },
    };
    Answer {
        question: plan.question.clone(),
        answer: if below {
            NOT_IN_DOCUMENTS.to_string()
        } else {
            run.report.answer
        },
        model: model.config.name.clone(),
        trade_offs,
    }
}

/// The reader's quote, from the context it read to its document (quotes
/// come from one document run, so there is one piece; the longest is taken
/// all the same), checked against the document's bytes.
fn quote_in_documents(corpus: &Corpus, context: &Context, grounding: &Grounding) -> Option<Quote> {
    let (start, end) = grounding.quote?;
    let (doc, span) = context
        .to_docs(Span { start, end })
        .into_iter()
        .max_by_key(|(_, s)| s.end - s.start)?;
    let text = corpus.docs[doc].text.get(span.start..span.end)?;
    Some(Quote {
        path: corpus.docs[doc].path.clone(),
        span,
        text: text.to_string(),
        verified: text == grounding.quote_text,
        answer_logprob: grounding.answer_logprob,
        by_overlap: grounding.quote_by_overlap,
    })
}

/// Predicted, modelled-at-the-real-sizes and measured seconds per stage
/// (stages that neither predicted nor took time are left out).
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
        ("quote", predicted.quote, at_sizes.quote, measured.quote),
        (
            "kv cache",
            predicted.kv_cache,
            at_sizes.kv_cache,
            measured.kv_cache,
        ),
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
