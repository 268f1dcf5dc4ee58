//! One line of `results.jsonl`: an item answered by one strategy, scored,
//! with what the answer cost.

use folio_engine::ask::{says_not_found, Answer};
use serde::{Deserialize, Serialize};

use super::items::{Item, Scoring};
use crate::metrics::{contains_answer, exact_match, f1};

/// Seconds per stage, as measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stages {
    /// Loading and indexing the item's documents.
    pub ingest: f64,
    /// Searching the index (retrieval plans).
    pub retrieve: f64,
    /// Compressing the context (compression plans).
    pub compress: f64,
    /// Reading the prompt into the model.
    pub prefill: f64,
    /// Generating the answer (and any stage not listed above).
    pub decode: f64,
    /// The reader's quote and answerability check.
    #[serde(default)]
    pub quote: f64,
}

/// An item answered by one strategy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EvalRecord {
    /// The item's suite.
    pub suite: String,
    /// The item's id, unique within the suite.
    pub id: String,
    /// The item's breakdown label (`niah_single`, `answerable`, …).
    pub kind: String,
    /// What was asked for: `rag`, `compress`, `full` or `auto`.
    pub strategy: String,
    /// The plan that produced the final answer (after any fallback).
    pub chosen: String,
    /// Its kind (`rag`, `compress`, `full`).
    pub chosen_kind: String,
    /// The answering model's id.
    pub model: String,
    /// Synthetic suites: the context length asked for, in the model's tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<usize>,
    /// Synthetic suites: the needle's relative depth, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<f64>,
    /// The question put to the model.
    pub question: String,
    /// Accepted answers (empty: the documents do not hold one).
    pub golds: Vec<String>,
    /// The model's answer, trimmed.
    pub answer: String,
    /// The item's main score in [0, 1]: containment for QA (refusal for an
    /// unanswerable item), the fraction of golds for RULER's multi-answer
    /// tasks.
    pub score: f64,
    /// `score` is 1.
    pub correct: bool,
    /// SQuAD exact match and token F1 (refusal counts 1 on unanswerable).
    pub exact: bool,
    /// Best word-overlap F1 against a gold answer.
    pub f1: f64,
    /// RULER's substring scores: all golds / any gold in the answer.
    pub substring_all: f64,
    /// Whether any gold is in the answer (1 or 0).
    pub substring_part: f64,
    /// The model's answer says the documents do not tell.
    pub refused: bool,
    /// folio flagged the answer not found (refusal, withheld or unsupported).
    pub flagged_not_found: bool,
    /// The reader's answerability score (none: no check ran, for a refusal
    /// or under `--no-quote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answerability: Option<f64>,
    /// The reader's own answer, kept or not (equal to `answer` unless the
    /// answerability withheld it): what no abstention would have answered.
    #[serde(default)]
    pub raw_answer: String,
    /// `raw_answer` scores as correct (accuracy without abstention).
    #[serde(default)]
    pub raw_correct: bool,
    /// Mean log-probability of the answer's tokens (another confidence
    /// signal, recorded to compare with `answerability`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_logprob: Option<f64>,
    /// The passage the reader quoted, copied from what it read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// The quote is the document's own text at its offsets.
    #[serde(default)]
    pub quote_verified: bool,
    /// Fraction of the gold passages a retrieved chunk overlaps (retrieval
    /// plans with known gold passages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval_recall: Option<f64>,
    /// The item's documents in the answering model's tokens.
    pub corpus_tokens: usize,
    /// Prompt tokens sent (context, question, instructions, template).
    pub tokens_sent: usize,
    /// Fraction of the documents' bytes the model read.
    pub coverage: f64,
    /// Measured seconds per stage.
    pub stages: Stages,
    /// Measured seconds of the whole answer, a first plan's included after an escalation.
    pub seconds: f64,
    /// The seconds the router predicted for the plan it chose.
    pub predicted_seconds: f64,
    /// Peak resident bytes while this answer ran (the peak is reset before
    /// each answer where the kernel allows).
    pub peak_memory_bytes: u64,
    /// Bytes the KV cache held at the end of the answer.
    pub kv_bytes: usize,
    /// Attention mode of the read (`dense`, `flash`, `sparse`).
    pub attention: String,
    /// RoPE scaling in effect, with its factor when it stretches (`yarn x4`).
    pub rope: String,
    /// The prompt and answer ran past the positions the model was trained on.
    pub beyond_trained_range: bool,
    /// Self-Route: the plan it escalated from, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// `auto` picked the same plan as this forced run: its answer and
    /// measurements are reused (greedy decoding makes them identical).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
    /// Why no answer was produced (the item then scores 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EvalRecord {
    /// A record with the item's fields and nothing measured yet.
    pub fn new(item: &Item, strategy: &str, model: &str) -> Self {
        Self {
            suite: item.suite.to_string(),
            id: item.id.clone(),
            kind: item.kind.clone(),
            strategy: strategy.to_string(),
            model: model.to_string(),
            length: item.length,
            depth: item.depth,
            question: item.question.clone(),
            golds: item.answers.clone(),
            ..Default::default()
        }
    }

    /// Fills the answer, its scores and its costs from `answer`.
    pub fn fill(&mut self, item: &Item, answer: &Answer) {
        let t = &answer.trade_offs;
        self.answer = answer.answer.trim().to_string();
        self.chosen = t.plan.strategy.describe();
        self.chosen_kind = t.plan.strategy.kind().name().to_string();
        self.refused = says_not_found(&self.answer);
        self.flagged_not_found = t.support.not_found;
        self.answerability = t.support.answerability;
        self.quote = t.support.quote.as_ref().map(|q| q.text.clone());
        self.answer_logprob = t.support.quote.as_ref().map(|q| q.answer_logprob);
        self.quote_verified = t.support.quote.as_ref().is_some_and(|q| q.verified);
        self.raw_answer = t
            .support
            .withheld_answer
            .clone()
            .unwrap_or_else(|| self.answer.clone());
        let mut raw = EvalRecord {
            answer: self.raw_answer.clone(),
            refused: says_not_found(&self.raw_answer),
            ..Default::default()
        };
        score(&mut raw, item);
        self.raw_correct = raw.correct;
        score(self, item);
        self.retrieval_recall = retrieval_recall(item, answer);
        self.corpus_tokens = t.coverage.corpus_tokens;
        self.tokens_sent = t.coverage.tokens_sent;
        self.coverage = t.coverage.read_fraction;
        for s in &t.cost.stages {
            let slot = match s.stage {
                "ingest" => &mut self.stages.ingest,
                "retrieve" => &mut self.stages.retrieve,
                "compress" => &mut self.stages.compress,
                // Restoring a saved prefix stands in for its prefill.
                "prefill" | "kv cache" => &mut self.stages.prefill,
                "quote" => &mut self.stages.quote,
                _ => &mut self.stages.decode,
            };
            *slot += s.measured_s;
        }
        // After an escalation the first plan's time is not in the stages.
        let first = t
            .plan
            .fallback
            .as_ref()
            .filter(|f| f.to.is_some())
            .map_or(0.0, |f| f.first_seconds);
        self.seconds = t.cost.measured_seconds + first;
        self.predicted_seconds = t.cost.predicted_seconds;
        self.peak_memory_bytes = t.cost.measured_peak_memory_bytes;
        self.kv_bytes = t.read.stats.kv_cache_bytes;
        self.attention = t.read.stats.attention.to_string();
        let rope = &t.read.stats.rope_scaling;
        self.rope = match rope.factor() {
            f if f > 1.0 => format!("{} x{f}", rope.name()),
            _ => rope.name().to_string(),
        };
        self.beyond_trained_range = t.read.beyond_trained_range;
        self.fallback = t
            .plan
            .fallback
            .as_ref()
            .map(|f| format!("from {}: {}", f.from.describe(), f.reason));
    }
}

/// Scores the record's answer against the item's golds.
pub fn score(record: &mut EvalRecord, item: &Item) {
    let answer = record.answer.as_str();
    if item.unanswerable() {
        // SQuAD v2 credits an abstention, not an answer folio merely
        // flagged as unsupported.
        let refused = record.refused;
        record.score = f64::from(u8::from(refused));
        record.correct = refused;
        record.exact = refused;
        record.f1 = record.score;
        record.substring_all = record.score;
        record.substring_part = record.score;
        return;
    }
    let lower = answer.to_lowercase();
    let found = item
        .answers
        .iter()
        .filter(|g| lower.contains(&g.to_lowercase()))
        .count();
    record.substring_all = found as f64 / item.answers.len() as f64;
    record.substring_part = f64::from(u8::from(found > 0));
    record.exact = exact_match(answer, &item.answers);
    record.f1 = f1(answer, &item.answers);
    record.score = match item.scoring {
        Scoring::Qa => f64::from(u8::from(contains_answer(answer, &item.answers))),
        Scoring::All => record.substring_all,
    };
    record.correct = record.score >= 1.0;
}

/// Fraction of the item's gold passages that some retrieved chunk overlaps.
fn retrieval_recall(item: &Item, answer: &Answer) -> Option<f64> {
    let chunks = &answer.trade_offs.coverage.chunks;
    if chunks.is_empty() || item.gold.is_empty() {
        return None;
    }
    let hit = item
        .gold
        .iter()
        .filter(|g| {
            chunks.iter().any(|c| {
                file_name(&c.path) == g.doc && c.span.start < g.end && g.start < c.span.end
            })
        })
        .count();
    Some(hit as f64 / item.gold.len() as f64)
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::items::ItemDoc;

    fn item(answers: &[&str], scoring: Scoring) -> Item {
        Item {
            suite: "test",
            id: "1".into(),
            kind: "k".into(),
            question: "q".into(),
            docs: vec![ItemDoc::Text {
                name: "d.txt".into(),
                text: "t".into(),
            }],
            answers: answers.iter().map(|s| s.to_string()).collect(),
            scoring,
            gold: Vec::new(),
            length: None,
            depth: None,
        }
    }

    fn scored(item: &Item, answer: &str) -> EvalRecord {
        let mut r = EvalRecord::new(item, "full", "m");
        r.answer = answer.into();
        r.refused = says_not_found(answer);
        score(&mut r, item);
        r
    }

    #[test]
    fn qa_answers_score_by_containment_with_official_em_and_f1() {
        let i = item(&["Denver Broncos"], Scoring::Qa);
        let r = scored(&i, "The Denver Broncos won.");
        assert!(r.correct && !r.exact);
        // Hand computed: answer words {denver, broncos, won}, gold {denver,
        // broncos}: precision 2/3, recall 1, F1 0.8.
        assert!((r.f1 - 0.8).abs() < 1e-9, "{}", r.f1);
        let r = scored(&i, "the Denver Broncos");
        assert!(r.exact && r.f1 == 1.0);
        let r = scored(&i, "Carolina Panthers");
        assert!(!r.correct && r.score == 0.0 && r.f1 == 0.0);
    }

    #[test]
    fn multi_answer_tasks_score_the_fraction_found() {
        let i = item(&["1111111", "2222222", "3333333", "4444444"], Scoring::All);
        let r = scored(&i, "The numbers are 1111111 and 3333333.");
        assert_eq!(r.substring_all, 0.5);
        assert_eq!(r.substring_part, 1.0);
        assert_eq!(r.score, 0.5);
        assert!(!r.correct);
    }

    #[test]
    fn unanswerable_items_score_refusals() {
        let i = item(&[], Scoring::Qa);
        let r = scored(&i, "The text does not mention it.");
        assert!(r.correct && r.score == 1.0 && r.exact);
        let r = scored(&i, "It was 1887.");
        assert!(!r.correct && r.score == 0.0);
    }
}
