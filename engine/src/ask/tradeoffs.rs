//! The answer's trade-off record: one serializable value that the CLI card,
//! `--json`, the TUI and the evals all print.

use folio_corpora::Span;
use serde::Serialize;

use super::evidence::Evidence;
use crate::llm::{ReadStats, StopReason};
use crate::router::{Budget, Candidate, QuestionKind, Strategy};

/// Predicted and measured seconds of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub stage: &'static str,
    /// What the router predicted before running.
    pub predicted_s: f64,
    /// The cost model at the sizes that happened (prompt and answer
    /// tokens as generated): the model's own error, apart from the guess
    /// of the answer's length.
    pub model_s: f64,
    pub measured_s: f64,
}

/// A retrieved chunk the model read.
#[derive(Debug, Clone, Serialize)]
pub struct UsedChunk {
    pub path: String,
    pub span: Span,
    pub rank: usize,
    /// Fused (hybrid) or single-retriever score.
    pub score: f32,
    pub bm25_rank: Option<usize>,
    pub dense_rank: Option<usize>,
}

/// Bytes of a document the model did not see.
#[derive(Debug, Clone, Serialize)]
pub struct DroppedSpan {
    pub path: String,
    pub span: Span,
}

/// The plan was changed after a first answer (Self-Route).
#[derive(Debug, Clone, Serialize)]
pub struct Fallback {
    pub from: Strategy,
    /// What the first plan answered.
    pub first_answer: String,
    /// Seconds the first plan took (not in the final stages).
    pub first_seconds: f64,
    pub reason: String,
    /// `None`: escalation was considered and not affordable.
    pub to: Option<Strategy>,
}

/// How an answer was read, and what that cost and left out.
#[derive(Debug, Clone, Serialize)]
pub struct TradeOffs {
    pub strategy: Strategy,
    pub question_kind: QuestionKind,
    /// Why the router chose this plan.
    pub reasons: Vec<String>,
    /// The budget it was chosen within.
    pub budget: Budget,
    /// Every plan the router weighed, with predicted costs and the budget
    /// dimensions each breaks.
    pub alternatives: Vec<Candidate>,
    pub corpus_documents: usize,
    /// The corpus in the answering model's tokens.
    pub corpus_tokens: usize,
    pub corpus_tokens_estimated: bool,
    /// Prompt tokens sent (context, question, instructions, template).
    pub tokens_sent: usize,
    /// Fraction of the corpus' bytes the model read.
    pub coverage: f64,
    /// Documents none of whose text was read.
    pub unread_documents: usize,
    /// Retrieval: the chunks read, with their scores.
    pub chunks: Vec<UsedChunk>,
    /// Compression (and retrieval): the spans the model did not see within
    /// the documents it read from; capped at [`MAX_DROPPED_LISTED`], the
    /// totals count all.
    pub dropped: Vec<DroppedSpan>,
    pub dropped_spans: usize,
    pub dropped_bytes: usize,
    /// Device, attention, keys attended, RoPE, KV cache.
    #[serde(flatten)]
    pub read: ReadStats,
    /// Why the read did not run on the device that was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_note: Option<String>,
    pub beyond_trained_range: bool,
    pub trained_context: usize,
    pub stages: Vec<StageReport>,
    pub predicted_seconds: f64,
    pub measured_seconds: f64,
    pub predicted_peak_memory_bytes: u64,
    /// The process' peak resident memory so far (`VmHWM`).
    pub measured_peak_memory_bytes: u64,
    pub generated_tokens: usize,
    pub stop_reason: StopReason,
    pub evidence: Vec<Evidence>,
    /// The answer says the documents read do not contain it, or is not
    /// supported by them (see `support`).
    pub not_found: bool,
    /// Fraction of the answer's own words that occur in the text read.
    pub support: f64,
    pub fallback: Option<Fallback>,
}

/// Dropped spans listed one by one in a record (the rest are counted).
pub const MAX_DROPPED_LISTED: usize = 200;

/// An answer with its trade-offs.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub question: String,
    pub answer: String,
    pub model: String,
    pub trade_offs: TradeOffs,
}

/// Peak resident bytes of this process (Linux), 0 when unknown.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
