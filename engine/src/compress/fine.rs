//! The fine stage: drops the least informative words of the kept units,
//! scored by their self-information (surprisal) under the scorer model,
//! until the text fits the budget. Numbers, names and question words stay.

use anyhow::Result;
use serde::Serialize;

use super::coarse::lead_tokens;
use super::spans::{assemble, Assembly};
use super::units::{first_visible, Layout};
use crate::llm::{token_losses, Model, Session, SessionOptions, TextTokenizer};

/// What the fine stage did, for the record.
#[derive(Debug, Clone, Serialize)]
pub struct FineStats {
    /// Tokens the scorer read to score words.
    pub scored_tokens: usize,
    /// Words in the units the coarse stage kept.
    pub words: usize,
    /// Words the fine stage dropped from the kept units.
    pub dropped_words: usize,
    /// Numbers, names and question words among the kept units' words
    /// (question words are never dropped; numbers and names only after
    /// every ordinary word).
    pub protected_words: usize,
    /// Units the coarse stage kept that had to go to meet the budget.
    pub units_removed: usize,
    /// Wall time of the fine stage, in seconds.
    pub seconds: f64,
}

/// Mean surprisal (nats per token) of every word of `units`, read in
/// document order in windows of at most `window` tokens; words outside
/// `units` get NaN. Returns the scores and the tokens read.
pub(crate) fn surprisal(
    scorer: &Model,
    text: &str,
    layout: &Layout,
    units: &[usize],
    window: usize,
) -> Result<(Vec<f64>, usize)> {
    let mut units = units.to_vec();
    units.sort_unstable();
    let mut sums = vec![0.0; layout.words.len()];
    let mut counts = vec![0usize; layout.words.len()];
    let mut session = Session::new(scorer, SessionOptions::for_model(scorer));
    let lead = lead_tokens(scorer)?;
    let mut read = 0;
    let mut start = 0;
    while start < units.len() {
        let mut end = start;
        let mut tokens = 0;
        while end < units.len()
            && (end == start || tokens + layout.units[units[end]].tokens <= window)
        {
            tokens += layout.units[units[end]].tokens;
            end += 1;
        }
        // The window's units joined by spaces, with where each came from.
        let mut joined = String::new();
        let mut pieces = Vec::new();
        for &u in &units[start..end] {
            if !joined.is_empty() {
                joined.push(' ');
            }
            let span = layout.units[u].span;
            pieces.push((joined.len(), span.start));
            joined.push_str(&text[span.start..span.end]);
        }
        let (ids, offsets) = scorer.tokenizer.encode_with_offsets(&joined)?;
        let mut all = lead.clone();
        all.extend(&ids);
        let losses = token_losses(&mut session, &all)?;
        read += all.len();
        for (k, &(a, b)) in offsets.iter().enumerate() {
            let Some(key) = first_visible(&joined, a, b) else {
                continue;
            };
            let p = pieces.partition_point(|(at, _)| *at <= key) - 1;
            let source = pieces[p].1 + (key - pieces[p].0);
            let w = layout.words.partition_point(|w| w.span.end <= source);
            if w < layout.words.len() {
                sums[w] += losses[lead.len() - 1 + k];
                counts[w] += 1;
            }
        }
        start = end;
    }
    let scores = sums
        .iter()
        .zip(&counts)
        .map(|(s, c)| if *c == 0 { f64::NAN } else { s / *c as f64 })
        .collect();
    Ok((scores, read))
}

/// A choice of words that meets the budget.
pub(crate) struct Fit {
    pub keep: Vec<bool>,
    pub assembly: Assembly,
    pub tokens: usize,
    pub dropped_words: usize,
    pub protected_words: usize,
}

/// Keeps the words of `units` and drops the least informative ones until
/// the assembled text is at most `target` tokens (re-tokenized, not
/// estimated). `None` when even the question words (or, in a unit without
/// any, its best word) do not fit.
pub(crate) fn fit(
    text: &str,
    tokenizer: &TextTokenizer,
    layout: &Layout,
    units: &[usize],
    scores: &[f64],
    target: usize,
) -> Result<Option<Fit>> {
    let mut keep = vec![false; layout.words.len()];
    let mut candidates = Vec::new();
    let mut protected_words = 0;
    for &u in units {
        let range = layout.units[u].words.clone();
        keep[range.clone()].fill(true);
        // A unit without question words still keeps its most informative word.
        let anchor = (!range.clone().any(|w| layout.words[w].question))
            .then(|| {
                range.clone().max_by(|a, b| {
                    rank_key(layout, scores, *a).total_cmp(&rank_key(layout, scores, *b))
                })
            })
            .flatten();
        for w in range {
            if layout.words[w].protected {
                protected_words += 1;
            }
            if !layout.words[w].question && Some(w) != anchor {
                candidates.push(w);
            }
        }
    }
    // Ordinary words go first, least informative first; names and numbers
    // only once no ordinary word is left.
    candidates.sort_by(|a, b| {
        rank_key(layout, scores, *a)
            .total_cmp(&rank_key(layout, scores, *b))
            .then(b.cmp(a))
    });
    // Words are dropped in `candidates` order; find the fewest drops whose
    // re-tokenized text fits (binary search: the count falls, nearly
    // monotonically, with each drop; only verified counts are accepted).
    let at = |k: usize| -> Result<(Vec<bool>, Assembly, usize)> {
        let mut keep = keep.clone();
        for &w in &candidates[..k] {
            keep[w] = false;
        }
        let assembly = assemble(text, layout, &keep);
        let tokens = tokenizer.encode_text(&assembly.text)?.len();
        Ok((keep, assembly, tokens))
    };
    let mut best = at(candidates.len())?;
    if best.2 > target {
        return Ok(None);
    }
    let (mut lo, mut hi) = (0, candidates.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let probe = at(mid)?;
        if probe.2 <= target {
            (hi, best) = (mid, probe);
        } else {
            lo = mid + 1;
        }
    }
    let (keep, assembly, tokens) = best;
    Ok(Some(Fit {
        keep,
        assembly,
        tokens,
        dropped_words: hi,
        protected_words,
    }))
}

/// The order words are given up in: ordinary words by surprisal, then
/// names and numbers by surprisal; unscored words last.
fn rank_key(layout: &Layout, scores: &[f64], w: usize) -> f64 {
    const TIER: f64 = 1e6;
    let s = if scores[w].is_nan() {
        TIER / 2.0
    } else {
        scores[w]
    };
    s + if layout.words[w].protected { TIER } else { 0.0 }
}
