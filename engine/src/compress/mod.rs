//! Question-aware prompt compression (LongLLMLingua-style, coarse to fine)
//! on the CPU, with a small scorer model (SmolLM2 by default).
//!
//! Why: a long document costs prefill time and crowds a small answer model;
//! most of it is irrelevant to the question. [`compress`] keeps what matters
//! within a token budget and says exactly what it dropped:
//!
//! 1. **Coarse**: the text is cut into sentences; each is scored by BM25
//!    against the question and by how much its passage (its paragraph when
//!    the text has paragraphs, else itself) lowers the scorer's NLL of the
//!    question (LongLLMLingua's question-conditioned score). The best are
//!    kept, in document order, within `coarse_slack` × the budget.
//! 2. **Fine**: every word of the kept sentences gets its mean surprisal under
//!    the scorer (one streaming pass); the least informative words go until
//!    the text fits. Words are whole (a number or a name is never cut into
//!    pieces); the question's words are never dropped, numbers and
//!    capitalised names only after every ordinary word, and higher-ranked
//!    sentences lose fewer words (LongLLMLingua's dynamic ratio).
//!
//! All token counts are in the **scorer model's** tokens: the budget, the
//! source and the result. The result's `compressed_tokens` is the final
//! text re-tokenized, never an estimate, and never exceeds the budget.

mod baselines;
mod coarse;
mod fine;
mod spans;
mod units;

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{bail, Result};
use folio_corpora::{Document, Span};
use serde::Serialize;

pub use baselines::{random_sentences, truncate};
pub use coarse::CoarseStats;
pub use fine::FineStats;
pub use spans::{complement, GAP, JOIN};

use crate::answer::{answer_from_document, AnswerOptions, AnswerReport};
use crate::llm::Model;
use units::{terms, Layout};

/// How small the result must be.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Source tokens ÷ this (2.0 keeps half); at least 1.
    Ratio(f32),
    /// At most this many scorer tokens.
    Tokens(usize),
}

impl Target {
    /// The budget in tokens for a source of `source_tokens`.
    pub fn tokens(&self, source_tokens: usize) -> Result<usize> {
        match *self {
            Target::Ratio(r) if !r.is_finite() || r < 1.0 => {
                bail!("a compression ratio must be a number ≥ 1 (got {r}): 2 keeps half the tokens, 4 a quarter")
            }
            Target::Ratio(r) => Ok(((source_tokens as f64 / r as f64).floor() as usize).max(1)),
            Target::Tokens(0) => bail!("a token budget must be at least 1"),
            Target::Tokens(n) => Ok(n),
        }
    }
}

/// What to compress to and how the stages weigh their evidence.
#[derive(Debug, Clone)]
pub struct CompressOptions {
    /// The budget: a ratio or a token count.
    pub target: Target,
    /// Weight of the scorer's question-conditioned score against BM25 in
    /// the coarse ranking (0: lexical only, no model calls in that stage).
    pub lm_weight: f64,
    /// Most units the scorer reads in the coarse stage: the best lexical
    /// matches. Bounds the cost on big inputs; the rest rank by BM25 alone.
    pub max_lm_candidates: usize,
    /// The coarse stage keeps up to this × the budget, leaving the fine
    /// stage words to drop. 1.0 by default: on SQuAD (60 questions, 4×) it
    /// kept the gold answer in 73 % of texts against 68 % at 1.35, since
    /// dropping words breaks multi-word answers; the fine stage then only
    /// trims sentences that do not fit.
    pub coarse_slack: f64,
    /// Surprisal bonus (nats) of the best-ranked kept unit's words over the
    /// worst's: better sentences lose fewer words.
    pub rank_bonus: f64,
    /// Tokens per scorer pass of the fine stage.
    pub window_tokens: usize,
    /// Weight (z units) of the second hop: units matching the names in the
    /// best passage that the question lacks (see `coarse::second_hop`).
    /// 0 by default: an experiment for multi-hop questions, measured in
    /// BENCHMARKS.md.
    pub second_hop_weight: f64,
}

impl Default for CompressOptions {
    fn default() -> Self {
        Self {
            target: Target::Ratio(4.0),
            lm_weight: 0.5,
            max_lm_candidates: 48,
            coarse_slack: 1.0,
            rank_bonus: 1.0,
            window_tokens: 1024,
            second_hop_weight: 0.0,
        }
    }
}

/// A compressed text and exactly what it left out.
///
/// `kept` and `dropped` are byte spans of the source: sorted, disjoint,
/// together covering `[0, len)`. `text` is the kept spans' source text in
/// order, joined by [`GAP`] where whole sentences were dropped between them
/// and by [`JOIN`] where only words were.
#[derive(Debug, Clone, Serialize)]
pub struct Compressed {
    /// `llmlingua`, `random` or `truncate`.
    pub method: &'static str,
    /// The model whose tokens are counted (and who scored, for `llmlingua`).
    pub scorer: String,
    /// What the answer model reads instead of the source.
    pub text: String,
    /// Byte spans of the source that `text` holds, in order.
    pub kept: Vec<Span>,
    /// Where each `kept` span's copy starts in `text` (quotes from the
    /// compressed text map back to the source through it).
    pub kept_at: Vec<usize>,
    /// Byte spans of the source the model will not see, in order.
    pub dropped: Vec<Span>,
    /// Tokens of the source.
    pub source_tokens: usize,
    /// Tokens of `text`, re-tokenized: at most `target_tokens`.
    pub compressed_tokens: usize,
    /// The budget the target came to.
    pub target_tokens: usize,
    /// `source_tokens / compressed_tokens`.
    pub ratio: f64,
    /// Wall time of the whole compression, model scoring included.
    pub seconds: f64,
    /// The coarse stage's work (`llmlingua` only, and not at 1×).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coarse: Option<CoarseStats>,
    /// The fine stage's work (`llmlingua` only, and not at 1×).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fine: Option<FineStats>,
}

impl Compressed {
    #[allow(clippy::too_many_arguments)]
    fn new(
        method: &'static str,
        scorer: &Model,
        a: spans::Assembly,
        source_tokens: usize,
        compressed_tokens: usize,
        target_tokens: usize,
        seconds: f64,
        coarse: Option<CoarseStats>,
        fine: Option<FineStats>,
    ) -> Self {
        assert!(
            compressed_tokens <= target_tokens,
            "{method}: {compressed_tokens} tokens overshoot the budget of {target_tokens}"
        );
        Self {
            method,
            scorer: scorer.config.name.clone(),
            text: a.text,
            kept: a.kept,
            kept_at: a.kept_at,
            dropped: a.dropped,
            source_tokens,
            compressed_tokens,
            target_tokens,
            ratio: source_tokens as f64 / compressed_tokens.max(1) as f64,
            seconds,
            coarse,
            fine,
        }
    }

    /// Compression time per 1,000 source tokens, in milliseconds.
    pub fn ms_per_1k_tokens(&self) -> f64 {
        self.seconds * 1e6 / self.source_tokens.max(1) as f64
    }
}

/// Compresses `text` for `question` to `options.target` (see the module
/// documentation). Fails on an empty question or text, a ratio below 1, or
/// a budget too small for the question's words in every sentence.
pub fn compress(
    scorer: &Model,
    text: &str,
    question: &str,
    options: &CompressOptions,
) -> Result<Compressed> {
    Prepared::new(scorer, text, question, options)?.finish(options.target)
}

/// A text cut into units and ranked for one question: compressing it to
/// several targets (2×, 4×, 8×) pays the coarse stage's model calls once.
pub struct Prepared<'a> {
    scorer: &'a Model,
    text: &'a str,
    layout: Layout,
    ranking: coarse::Ranking,
    options: CompressOptions,
    prepare_seconds: f64,
}

impl<'a> Prepared<'a> {
    /// Cuts and ranks `text` for `question` (the coarse stage's scoring).
    pub fn new(
        scorer: &'a Model,
        text: &'a str,
        question: &str,
        options: &CompressOptions,
    ) -> Result<Self> {
        let start = Instant::now();
        if question.trim().is_empty() {
            bail!("the question is empty: compression keeps what is relevant to a question, so pass one (--question \"…\")");
        }
        if text.trim().is_empty() {
            bail!("the text to compress is empty");
        }
        let question_terms: HashSet<String> = terms(question).into_iter().collect();
        let layout = Layout::new(text, &scorer.tokenizer, &question_terms)?;
        let ranking = coarse::rank(scorer, text, &layout, question, &question_terms, options)?;
        Ok(Self {
            scorer,
            text,
            layout,
            ranking,
            options: options.clone(),
            prepare_seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Tokens of the source, in the scorer's tokens.
    pub fn source_tokens(&self) -> usize {
        self.layout.source_tokens
    }

    /// Compresses to `target`; `seconds` includes the shared preparation.
    pub fn finish(&self, target: Target) -> Result<Compressed> {
        let start = Instant::now();
        let seconds = || self.prepare_seconds + start.elapsed().as_secs_f64();
        let (text, layout, scorer) = (self.text, &self.layout, self.scorer);
        let budget = target.tokens(layout.source_tokens)?;
        if budget >= layout.source_tokens {
            let a = spans::identity(text);
            let n = layout.source_tokens;
            return Ok(Compressed::new(
                "llmlingua",
                scorer,
                a,
                n,
                n,
                budget,
                seconds(),
                None,
                None,
            ));
        }
        let coarse_budget =
            ((budget as f64 * self.options.coarse_slack).ceil() as usize).max(budget);
        let mut kept = coarse::select(layout, &self.ranking.order, coarse_budget);
        let mut coarse_stats = CoarseStats {
            units: layout.units.len(),
            lm_scored: self.ranking.lm_scored,
            lm_passages: self.ranking.lm_passages,
            kept_units: kept.len(),
            question_nll: self.ranking.question_nll,
            best_conditioned_nll: self.ranking.best_conditioned_nll,
            seconds: self.prepare_seconds,
        };
        let fine_start = Instant::now();
        // Whole sentences that already fit need no word scores.
        let mut keep_all = vec![false; layout.words.len()];
        for &u in &kept {
            keep_all[layout.units[u].words.clone()].fill(true);
        }
        let whole = spans::assemble(text, layout, &keep_all);
        let whole_tokens = scorer.tokenizer.encode_text(&whole.text)?.len();
        if whole_tokens <= budget {
            let (whole, whole_tokens) =
                self.fill(&mut kept, &mut keep_all, whole, whole_tokens, budget)?;
            coarse_stats.kept_units = kept.len();
            let kept_words = layout.words.iter().zip(&keep_all).filter(|(_, k)| **k);
            let fine_stats = FineStats {
                scored_tokens: 0,
                words: kept_words.clone().count(),
                dropped_words: 0,
                protected_words: kept_words.filter(|(w, _)| w.protected).count(),
                units_removed: 0,
                seconds: fine_start.elapsed().as_secs_f64(),
            };
            return Ok(Compressed::new(
                "llmlingua",
                scorer,
                whole,
                layout.source_tokens,
                whole_tokens,
                budget,
                seconds(),
                Some(coarse_stats),
                Some(fine_stats),
            ));
        }
        let (mut scores, mut scored_tokens) =
            fine::surprisal(scorer, text, layout, &kept, self.options.window_tokens)?;
        let bonus = |scores: &mut Vec<f64>, kept: &[usize]| {
            for (i, &u) in kept.iter().enumerate() {
                let b = self.options.rank_bonus * (1.0 - i as f64 / kept.len() as f64);
                for w in layout.units[u].words.clone() {
                    scores[w] += b;
                }
            }
        };
        bonus(&mut scores, &kept);
        let initial = kept.len();
        let words = kept.iter().map(|u| layout.units[*u].words.len()).sum();
        // Drop the worst-ranked units until the rest fits; then try single
        // units in rank order (the best one's protected words may not fit).
        let mut singles = self.ranking.order.iter();
        let fit = loop {
            if let Some(fit) = fine::fit(text, &scorer.tokenizer, layout, &kept, &scores, budget)? {
                break fit;
            }
            if kept.len() > 1 {
                kept.pop();
                continue;
            }
            let Some(&u) = singles.find(|u| self.least_tokens(**u) <= budget && !kept.contains(u))
            else {
                let need = (0..layout.units.len())
                    .map(|u| self.least_tokens(u))
                    .min()
                    .unwrap_or(0);
                bail!(
                    "a budget of {budget} tokens cannot hold the question's words in any sentence \
                     (the least needs {need} tokens); ask for at least --tokens {need} \
                     (a ratio of at most {:.1})",
                    layout.source_tokens as f64 / need.max(1) as f64
                );
            };
            kept = vec![u];
            let (s, read) =
                fine::surprisal(scorer, text, layout, &kept, self.options.window_tokens)?;
            (scores, scored_tokens) = (s, scored_tokens + read);
            bonus(&mut scores, &kept);
        };
        let fine_stats = FineStats {
            scored_tokens,
            words,
            dropped_words: fit.dropped_words,
            protected_words: fit.protected_words,
            units_removed: initial.saturating_sub(kept.len()),
            seconds: fine_start.elapsed().as_secs_f64(),
        };
        debug_assert!(fit.keep.len() == layout.words.len());
        Ok(Compressed::new(
            "llmlingua",
            scorer,
            fit.assembly,
            layout.source_tokens,
            fit.tokens,
            budget,
            seconds(),
            Some(coarse_stats),
            Some(fine_stats),
        ))
    }

    /// Adds whole units in rank order while the re-tokenized text still fits
    /// `budget`: the coarse selection counts each unit's tokens plus a
    /// separator, an overestimate. (On SQuAD paragraphs at 4× this moved the
    /// achieved ratio only from 4.67× to 4.56×: what is left of a ~43-token
    /// budget is rarely a whole sentence.)
    fn fill(
        &self,
        kept: &mut Vec<usize>,
        keep: &mut [bool],
        mut assembly: spans::Assembly,
        mut tokens: usize,
        budget: usize,
    ) -> Result<(spans::Assembly, usize)> {
        let layout = &self.layout;
        for &u in &self.ranking.order {
            if kept.contains(&u) || tokens + layout.units[u].tokens > budget {
                continue;
            }
            let words = layout.units[u].words.clone();
            keep[words.clone()].fill(true);
            let trial = spans::assemble(self.text, layout, keep);
            let n = self.scorer.tokenizer.encode_text(&trial.text)?.len();
            if n <= budget {
                kept.push(u);
                (assembly, tokens) = (trial, n);
            } else {
                keep[words].fill(false);
            }
        }
        Ok((assembly, tokens))
    }

    /// Fewest tokens unit `u` can shrink to: its question words, or its
    /// cheapest word when it has none.
    fn least_tokens(&self, u: usize) -> usize {
        let words = &self.layout.words[self.layout.units[u].words.clone()];
        if words.iter().any(|w| w.question) {
            words.iter().filter(|w| w.question).map(|w| w.tokens).sum()
        } else {
            words.iter().map(|w| w.tokens).min().unwrap_or(0)
        }
    }
}

/// A compressed prompt and the answer read from it.
#[derive(Debug, Clone, Serialize)]
pub struct CompressedAnswer {
    /// What was kept and dropped, and what compressing cost.
    pub compression: Compressed,
    /// The answer read from the compressed text.
    pub answer: AnswerReport,
}

/// The compression strategy end to end: compresses `document` for
/// `question` with `scorer`, then answers from the compressed text with
/// `answerer` (the full-context path on fewer tokens).
pub fn answer_compressed(
    answerer: &Model,
    scorer: &Model,
    document: &Document,
    question: &str,
    compress_options: &CompressOptions,
    answer_options: &AnswerOptions,
    on_text: &mut dyn FnMut(&str),
) -> Result<CompressedAnswer> {
    let compression = compress(scorer, &document.text, question, compress_options)?;
    let compressed = Document::plain(
        format!("{} (compressed)", document.id),
        document.source.clone(),
        compression.text.clone(),
    );
    let answer = answer_from_document(answerer, &compressed, question, answer_options, on_text)?;
    Ok(CompressedAnswer {
        compression,
        answer,
    })
}
