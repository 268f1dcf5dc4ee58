//! The answer's trade-off record: one serializable value that the CLI card,
//! `--json`, the TUI and the evals all print.

use folio_corpora::Span;
use serde::Serialize;

use super::abstain::ThresholdSource;
use super::evidence::Evidence;
use crate::llm::{ReadStats, StopReason};
use crate::router::{Budget, Candidate, QuestionKind, Strategy};

/// Predicted and measured seconds of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// `ingest`, `retrieve`, `compress`, `prefill`, `decode` or `quote`.
    pub stage: &'static str,
    /// What the router predicted before running.
    pub predicted_s: f64,
    /// The cost model at the sizes that happened (prompt and answer
    /// tokens as generated): the model's own error, apart from the guess
    /// of the answer's length.
    pub model_s: f64,
    /// Seconds the stage took.
    pub measured_s: f64,
}

/// A retrieved chunk the model read.
#[derive(Debug, Clone, Serialize)]
pub struct UsedChunk {
    /// The file the chunk is from.
    pub path: String,
    /// The chunk's bytes in the document's loaded text.
    pub span: Span,
    /// 1-based position in the search results.
    pub rank: usize,
    /// Fused (hybrid) or single-retriever score.
    pub score: f32,
    /// Its rank in the BM25 list, if it was in it.
    pub bm25_rank: Option<usize>,
    /// Its rank in the dense list, if it was in it.
    pub dense_rank: Option<usize>,
}

/// Bytes of a document the model did not see.
#[derive(Debug, Clone, Serialize)]
pub struct DroppedSpan {
    /// The file the bytes are in.
    pub path: String,
    /// The bytes left out, in the document's loaded text.
    pub span: Span,
}

/// The plan was changed after a first answer (Self-Route).
#[derive(Debug, Clone, Serialize)]
pub struct Fallback {
    /// The plan that answered first (a retrieval plan).
    pub from: Strategy,
    /// What the first plan answered.
    pub first_answer: String,
    /// Seconds the first plan took (not in the final stages).
    pub first_seconds: f64,
    /// Why the first answer was not kept, and what was done instead.
    pub reason: String,
    /// `None`: escalation was considered and not affordable.
    pub to: Option<Strategy>,
}

/// How an answer was read, and what that cost and left out: one record
/// per question, in five groups that the card prints in this order.
#[derive(Debug, Clone, Serialize)]
pub struct TradeOffs {
    /// What the router chose, why, and what it weighed.
    pub plan: PlanChoice,
    /// How much of the corpus the model saw, and what it did not.
    pub coverage: Coverage,
    /// How the model read: device, attention, RoPE, KV cache, generation.
    pub read: ReadReport,
    /// Seconds and memory, predicted and measured.
    pub cost: Cost,
    /// What in the text read stands behind the answer.
    pub support: Support,
}

/// The router's choice for a question.
#[derive(Debug, Clone, Serialize)]
pub struct PlanChoice {
    /// The plan that produced the answer (after any fallback).
    pub strategy: Strategy,
    /// What the router took the question to be; it shapes the choice of plan.
    pub question_kind: QuestionKind,
    /// Why the router chose this plan.
    pub reasons: Vec<String>,
    /// The budget it was chosen within.
    pub budget: Budget,
    /// Every plan the router weighed, with predicted costs and the budget
    /// dimensions each breaks.
    pub alternatives: Vec<Candidate>,
    /// Self-Route: set when the first (retrieval) answer found nothing, widened or not.
    pub fallback: Option<Fallback>,
}

/// What of the corpus reached the model.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// Documents in the corpus.
    pub corpus_documents: usize,
    /// The corpus in the answering model's tokens.
    pub corpus_tokens: usize,
    /// `corpus_tokens` was extrapolated from a sample (a large corpus).
    pub corpus_tokens_estimated: bool,
    /// Prompt tokens sent (context, question, instructions, template).
    pub tokens_sent: usize,
    /// Fraction of the corpus' bytes the model read.
    pub read_fraction: f64,
    /// Documents none of whose text was read.
    pub unread_documents: usize,
    /// Retrieval: the chunks read, with their scores.
    pub chunks: Vec<UsedChunk>,
    /// Compression (and retrieval): the spans the model did not see within
    /// the documents it read from; capped at [`MAX_DROPPED_LISTED`], the
    /// totals count all.
    pub dropped: Vec<DroppedSpan>,
    /// Dropped spans in all, listed or not.
    pub dropped_spans: usize,
    /// Bytes of all the dropped spans.
    pub dropped_bytes: usize,
}

/// How the model read what it was sent.
#[derive(Debug, Clone, Serialize)]
pub struct ReadReport {
    /// Device, attention, keys attended, RoPE, KV cache.
    #[serde(flatten)]
    pub stats: ReadStats,
    /// Why the read did not run on the device that was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_note: Option<String>,
    /// The prompt and answer ran past the positions the model was trained on.
    pub beyond_trained_range: bool,
    /// Positions the model was trained on.
    pub trained_context: usize,
    /// Tokens of the answer, the stop token excluded.
    pub generated_tokens: usize,
    /// Why generation ended.
    pub stop_reason: StopReason,
    /// What the document prefix cache reused or saved (full reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_cache: Option<crate::prefix_cache::PrefixReport>,
}

/// Time and memory of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    /// Predicted and measured seconds per stage that ran or was predicted.
    pub stages: Vec<StageReport>,
    /// The router's predicted seconds for the plan, all stages.
    pub predicted_seconds: f64,
    /// Measured seconds of the plan, all stages (a first plan's are in
    /// the plan's `fallback`).
    pub measured_seconds: f64,
    /// The router's predicted peak memory for the plan, weights included.
    pub predicted_peak_memory_bytes: u64,
    /// The process' peak resident memory so far (`VmHWM`).
    pub measured_peak_memory_bytes: u64,
}

/// The answer's footing in the text read.
#[derive(Debug, Clone, Serialize)]
pub struct Support {
    /// The passage the reader copied to support its answer (copy-constrained,
    /// so it is the document's own text at `span`).
    pub quote: Option<Quote>,
    /// The reader's probability that its quote states the answer and the
    /// answer agrees with it; `None` when no check ran (a refusal, or
    /// grounding off).
    pub answerability: Option<f64>,
    /// The threshold the answerability was held to.
    pub min_confidence: f64,
    /// Where that threshold came from.
    pub min_confidence_source: ThresholdSource,
    /// The reader's answer when it was not kept (answerability below the
    /// threshold): the answer given is then "not in the documents".
    pub withheld_answer: Option<String>,
    /// Sentences of the text read that support the answer (none when it was not found).
    pub evidence: Vec<Evidence>,
    /// The answer says the documents read do not contain it, or is not
    /// supported by them (answerability below the threshold, or too little
    /// `word_overlap`).
    pub not_found: bool,
    /// Fraction of the answer's own words that occur in the text read.
    pub word_overlap: f64,
}

/// A quote of a document, as the reader copied it.
#[derive(Debug, Clone, Serialize)]
pub struct Quote {
    /// The file the quote is from.
    pub path: String,
    /// Its bytes in the document's loaded text.
    pub span: Span,
    /// The quoted text.
    pub text: String,
    /// The document's bytes at `span` are exactly `text`.
    pub verified: bool,
    /// Mean log-probability of the answer's tokens (the reader's own
    /// confidence in its wording; null for a remote read).
    pub answer_logprob: f64,
    /// The sentence closest to the answer by shared words, not one the
    /// reader copied (a remote read).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub by_overlap: bool,
}

/// What an answer that was not kept says instead.
pub const NOT_IN_DOCUMENTS: &str = "Not in the documents.";

/// Dropped spans listed one by one in a record (the rest are counted).
pub const MAX_DROPPED_LISTED: usize = 200;

/// An answer with its trade-offs.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The question as asked.
    pub question: String,
    /// The model's answer, trimmed.
    pub answer: String,
    /// The answering model's name.
    pub model: String,
    /// How the answer was read, and what that cost and left out.
    pub trade_offs: TradeOffs,
}
