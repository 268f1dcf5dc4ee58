//! An [`Answer`] from a strategy's run: the trade-off record built from
//! what the plan predicted and what the run measured, read and dropped.

use super::evidence::{find_evidence, says_not_found, support, MIN_SUPPORT};
use super::strategies::Run;
use super::tradeoffs::{self, Answer, DroppedSpan, StageReport, TradeOffs};
use super::{Corpus, Models, Plan};
use crate::router::{cost, DeviceProfile, ModelLimits, PlannedAttention, StageSeconds, Strategy};

/// The answer to `plan` with its trade-offs, from `run`.
pub(super) fn answer(
    corpus: &Corpus,
    models: Models,
    profile: &DeviceProfile,
    plan: &Plan,
    budget: crate::router::Budget,
    run: Run,
) -> Answer {
    let model = models.answerer;
    let decision = &plan.decision;
    let strategy = &decision.chosen.strategy;
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
    let support = support(corpus, &run.regions, &plan.question, &report.answer);
    let not_found = says_not_found(&report.answer) || support < MIN_SUPPORT;
    let evidence = if not_found {
        Vec::new()
    } else {
        find_evidence(corpus, &run.regions, &plan.question, &report.answer, 2)
    };
    let stats = &plan.stats;
    let trade_offs = TradeOffs {
        strategy: strategy.clone(),
        question_kind: decision.question_kind,
        reasons: decision.reasons.clone(),
        budget,
        alternatives: decision.candidates.clone(),
        corpus_documents: stats.documents,
        corpus_tokens: stats.tokens,
        corpus_tokens_estimated: stats.tokens_estimated,
        tokens_sent: report.prompt_tokens,
        coverage: read_bytes as f64 / corpus_bytes.max(1) as f64,
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
        read: report.read.clone(),
        device_note: report.device_note.clone(),
        beyond_trained_range: report.beyond_trained_range,
        trained_context: report.trained_context,
        predicted_seconds: predicted.total(),
        measured_seconds: run.measured.total(),
        stages,
        predicted_peak_memory_bytes: decision.chosen.cost.peak_memory_bytes,
        measured_peak_memory_bytes: folio_corpora::memory::peak_rss_bytes(),
        generated_tokens: report.generated_tokens,
        stop_reason: report.stop_reason,
        not_found,
        support,
        evidence,
        fallback: None,
    };
    Answer {
        question: plan.question.clone(),
        answer: run.report.answer,
        model: model.config.name.clone(),
        trade_offs,
    }
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
