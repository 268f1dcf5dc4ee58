//! The coarse stage: ranks units (sentences) by relevance to the question
//! with a lexical BM25 score and the scorer model's question-conditioned
//! score (LongLLMLingua: how much the unit lowers the negative log
//! likelihood of the question), then keeps the best within a budget.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use folio_corpora::Span;
use serde::Serialize;

use super::units::{is_name_or_number, terms, Layout};
use super::CompressOptions;
use crate::llm::{Logits, Model, Session, SessionOptions};

/// Tokens of one passage the model reads when scoring it (the rest is cut).
const LM_PASSAGE_TOKENS: usize = 256;

/// What the coarse stage did, for the record.
#[derive(Debug, Clone, Serialize)]
pub struct CoarseStats {
    /// Sentences (or pieces of long ones) the text was cut into.
    pub units: usize,
    /// Units with a model score; the rest, outside the `max_lm_candidates`
    /// best lexical passages, were ranked lexically only.
    pub lm_scored: usize,
    /// Passages the scorer read: paragraphs when the text has at least
    /// three, else sentences.
    pub lm_passages: usize,
    /// Units kept for the fine stage (before any later removal).
    pub kept_units: usize,
    /// Mean NLL (nats/token) of the question with no passage before it.
    pub question_nll: f64,
    /// The lowest mean question NLL any unit gave (the best unit's).
    pub best_conditioned_nll: f64,
    /// Wall time of the preparation (splitting and ranking units), in seconds.
    pub seconds: f64,
}

/// Units ranked by relevance: `order` is best first.
pub(crate) struct Ranking {
    pub order: Vec<usize>,
    pub lm_scored: usize,
    pub lm_passages: usize,
    pub question_nll: f64,
    pub best_conditioned_nll: f64,
}

/// BM25 (k1 = 1.2, b = 0.75) of every unit against the question's terms.
pub(crate) fn bm25(text: &str, layout: &Layout, question_terms: &HashSet<String>) -> Vec<f64> {
    let docs: Vec<Vec<String>> = layout
        .units
        .iter()
        .map(|u| terms(&text[u.span.start..u.span.end]))
        .collect();
    let n = docs.len().max(1) as f64;
    let avg = docs.iter().map(Vec::len).sum::<usize>() as f64 / n;
    let mut df: HashMap<&str, usize> = HashMap::new();
    for d in &docs {
        let unique: HashSet<&str> = d.iter().map(String::as_str).collect();
        for t in unique {
            *df.entry(t).or_default() += 1;
        }
    }
    docs.iter()
        .map(|d| {
            let len = d.len() as f64;
            question_terms
                .iter()
                .map(|q| {
                    let tf = d.iter().filter(|t| *t == q).count() as f64;
                    if tf == 0.0 {
                        return 0.0;
                    }
                    let df = df.get(q.as_str()).copied().unwrap_or(0) as f64;
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len / avg.max(1e-9)))
                })
                .sum()
        })
        .collect()
}

/// Ranks the units: z-scored lexical and model scores mixed with
/// `options.lm_weight`, then the second hop when its weight is positive. The
/// model reads passages: the paragraphs when the text has at least three
/// (LongLLMLingua scores documents; a sentence keeps its paragraph's
/// context), else the sentences; only the `options.max_lm_candidates`
/// passages with the best lexical match are read.
pub(crate) fn rank(
    scorer: &Model,
    text: &str,
    layout: &Layout,
    question: &str,
    question_terms: &HashSet<String>,
    options: &CompressOptions,
) -> Result<Ranking> {
    let (lm_weight, max_lm) = (options.lm_weight, options.max_lm_candidates);
    let second_hop_weight = options.second_hop_weight;
    let lexical = bm25(text, layout, question_terms);
    let passages = passages(text, layout);
    let mut by_lexical: Vec<usize> = (0..passages.len()).collect();
    let best = |p: usize| {
        passages[p]
            .1
            .iter()
            .map(|u| lexical[*u])
            .fold(0.0, f64::max)
    };
    by_lexical.sort_by(|a, b| best(*b).total_cmp(&best(*a)).then(a.cmp(b)));
    let candidates = if lm_weight > 0.0 {
        &by_lexical[..max_lm.min(by_lexical.len())]
    } else {
        &[][..]
    };

    let tok = &scorer.tokenizer;
    let suffix = tok.encode_text(&format!(
        "\n\nQuestion: {}\nWe can get the answer to this question in the given text.",
        question.trim()
    ))?;
    let mut session = Session::new(scorer, SessionOptions::for_model(scorer));
    let question_nll = suffix_nll(&mut session, &lead_tokens(scorer)?, &suffix)?;
    let mut lm = vec![None; layout.units.len()];
    for &p in candidates {
        let (span, units) = &passages[p];
        let mut ids = tok.encode_text(&text[span.start..span.end])?;
        ids.truncate(LM_PASSAGE_TOKENS);
        if ids.is_empty() {
            ids = lead_tokens(scorer)?;
        }
        let nll = suffix_nll(&mut session, &ids, &suffix)?;
        for &u in units {
            lm[u] = Some(nll);
        }
    }
    let best_conditioned_nll = lm.iter().flatten().copied().fold(f64::INFINITY, f64::min);
    // Gain: how much the unit lowers the question's NLL (higher is better).
    let gains: Vec<Option<f64>> = lm.iter().map(|c| c.map(|c| question_nll - c)).collect();
    let z_lex = zscores(&lexical.iter().map(|x| Some(*x)).collect::<Vec<_>>());
    let z_lm = zscores(&gains);
    let mut combined: Vec<f64> = (0..layout.units.len())
        .map(|u| (1.0 - lm_weight) * z_lex[u] + lm_weight * z_lm[u])
        .collect();
    let by_score = |combined: &[f64]| {
        let mut order: Vec<usize> = (0..layout.units.len()).collect();
        order.sort_by(|a, b| combined[*b].total_cmp(&combined[*a]).then(a.cmp(b)));
        order
    };
    let mut order = by_score(&combined);
    if second_hop_weight > 0.0 && passages.len() > 1 {
        let hop = second_hop(text, layout, &passages, order[0], question_terms);
        let z_hop = zscores(&hop);
        for (u, c) in combined.iter_mut().enumerate() {
            if hop[u].is_some() {
                *c += second_hop_weight * z_hop[u];
            }
        }
        order = by_score(&combined);
    }
    Ok(Ranking {
        order,
        lm_scored: lm.iter().flatten().count(),
        lm_passages: candidates.len(),
        question_nll,
        best_conditioned_nll,
    })
}

/// The second hop of a multi-hop question: BM25 of every unit against the
/// names and numbers of the best unit's passage that the question does not
/// use (the bridge entity: "the director of film X" → X's passage names the
/// director, whose own passage holds the answer and shares few words with
/// the question). Units of that passage get `None`: they already rank first
/// and keep their score.
fn second_hop(
    text: &str,
    layout: &Layout,
    passages: &[(Span, Vec<usize>)],
    best_unit: usize,
    question_terms: &HashSet<String>,
) -> Vec<Option<f64>> {
    let Some((span, own)) = passages
        .iter()
        .find(|(_, units)| units.contains(&best_unit))
    else {
        return vec![None; layout.units.len()];
    };
    let bridge: HashSet<String> = text[span.start..span.end]
        .split_whitespace()
        .filter(|w| is_name_or_number(w))
        .flat_map(terms)
        .filter(|t| !question_terms.contains(t))
        .collect();
    let mut hop: Vec<Option<f64>> = bm25(text, layout, &bridge).into_iter().map(Some).collect();
    for &u in own {
        hop[u] = None;
    }
    hop
}

/// Mean NLL (nats per token) of `suffix` read after `prefix` on a fresh
/// cache. The prefix's own logits are never computed (only its last row,
/// which predicts the suffix's first token): a fifth of the work per token
/// for a small model's large vocabulary.
fn suffix_nll(session: &mut Session, prefix: &[u32], suffix: &[u32]) -> Result<f64> {
    anyhow::ensure!(
        !prefix.is_empty() && !suffix.is_empty(),
        "scoring needs text before and after"
    );
    session.reset();
    session.declare_length(prefix.len() + suffix.len());
    let first = session.forward(prefix, Logits::Last)?;
    let vocab = first.len();
    let mut total = nll(&first, suffix[0]);
    if suffix.len() > 1 {
        let rest = session.forward(&suffix[..suffix.len() - 1], Logits::All)?;
        for (row, &next) in rest.chunks_exact(vocab).zip(&suffix[1..]) {
            total += nll(row, next);
        }
    }
    Ok(total / suffix.len() as f64)
}

/// −log softmax(logits)[target].
fn nll(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let z: f64 = logits.iter().map(|l| (*l as f64 - max).exp()).sum();
    max + z.ln() - logits[target as usize] as f64
}

/// The passages the model scores, each with its units: the blank-line
/// separated paragraphs (cut into pieces of at most [`LM_PASSAGE_TOKENS`])
/// when there are at least three, else every unit alone.
fn passages(text: &str, layout: &Layout) -> Vec<(Span, Vec<usize>)> {
    let mut paragraphs: Vec<(Span, Vec<usize>)> = Vec::new();
    let mut last_end = 0;
    for (u, unit) in layout.units.iter().enumerate() {
        let gap = &text[last_end..unit.span.start];
        let new_paragraph = gap.matches('\n').count() >= 2 || paragraphs.is_empty();
        match paragraphs.last_mut() {
            Some((span, units)) if !new_paragraph => {
                span.end = unit.span.end;
                units.push(u);
            }
            _ => paragraphs.push((unit.span, vec![u])),
        }
        last_end = unit.span.end;
    }
    if paragraphs.len() >= 3 {
        // Long paragraphs are read in pieces the model sees whole.
        return paragraphs
            .into_iter()
            .flat_map(|(_, units)| pieces(layout, units))
            .collect();
    }
    layout
        .units
        .iter()
        .enumerate()
        .map(|(u, unit)| (unit.span, vec![u]))
        .collect()
}

/// Consecutive `units` grouped into passages of at most
/// [`LM_PASSAGE_TOKENS`] tokens (a longer unit stands alone).
fn pieces(layout: &Layout, units: Vec<usize>) -> Vec<(Span, Vec<usize>)> {
    let mut out = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut tokens = 0;
    let group = |units: Vec<usize>| {
        let span = Span {
            start: layout.units[units[0]].span.start,
            end: layout.units[units[units.len() - 1]].span.end,
        };
        (span, units)
    };
    for u in units {
        if !current.is_empty() && tokens + layout.units[u].tokens > LM_PASSAGE_TOKENS {
            out.push(group(std::mem::take(&mut current)));
            tokens = 0;
        }
        tokens += layout.units[u].tokens;
        current.push(u);
    }
    if !current.is_empty() {
        out.push(group(current));
    }
    out
}

/// Z-scores of the present values; absent ones get the lowest present score.
fn zscores(values: &[Option<f64>]) -> Vec<f64> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    if present.is_empty() {
        return vec![0.0; values.len()];
    }
    let n = present.len() as f64;
    let mean = present.iter().sum::<f64>() / n;
    let sd = (present.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let z = |x: f64| if sd > 1e-12 { (x - mean) / sd } else { 0.0 };
    let floor = present.iter().copied().map(z).fold(f64::INFINITY, f64::min);
    values.iter().map(|v| v.map_or(floor, z)).collect()
}

/// Units in rank order whose tokens fit `budget` (the best one always).
pub(crate) fn select(layout: &Layout, order: &[usize], budget: usize) -> Vec<usize> {
    let mut kept = Vec::new();
    let mut used = 0;
    for &u in order {
        // Each kept unit may cost a separator token or two.
        let cost = layout.units[u].tokens + 1;
        if kept.is_empty() || used + cost <= budget {
            kept.push(u);
            used += cost;
        }
    }
    kept
}

/// A token to put before text so its first token gets a score: the BOS
/// token when the model has one, else a newline.
pub(crate) fn lead_tokens(model: &Model) -> Result<Vec<u32>> {
    match model.tokenizer.bos_id {
        Some(id) => Ok(vec![id]),
        None => model.tokenizer.encode_text("\n"),
    }
}
