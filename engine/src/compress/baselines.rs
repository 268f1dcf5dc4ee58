//! The baselines compression is measured against: random sentences and
//! plain truncation, to the same token budget and in the same record.

use std::time::Instant;

use anyhow::Result;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::spans::{assemble, identity};
use super::units::Layout;
use super::{Compressed, Target};
use crate::llm::Model;

/// Keeps randomly chosen whole sentences (shuffled with `seed`) while they
/// fit `target`, in document order. When no sentence fits, the start of a
/// random one. Tokens are `scorer`'s, as in [`super::compress`].
pub fn random_sentences(
    scorer: &Model,
    text: &str,
    target: Target,
    seed: u64,
) -> Result<Compressed> {
    let start = Instant::now();
    let layout = Layout::new(text, &scorer.tokenizer, &Default::default())?;
    let budget = target.tokens(layout.source_tokens)?;
    let mut order: Vec<usize> = (0..layout.units.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let mut chosen = Vec::new();
    let mut used = 0;
    for &u in &order {
        // A unit may cost a separator token beside its own.
        let cost = layout.units[u].tokens + 1;
        if used + cost <= budget {
            chosen.push(u);
            used += cost;
        }
    }
    // Word order to give up: the last chosen unit's words first; with no
    // unit chosen, the end of the first shuffled unit.
    let mut keep = vec![false; layout.words.len()];
    let mut give_up = Vec::new();
    if chosen.is_empty() {
        if let Some(&u) = order.first() {
            chosen.push(u);
        }
    }
    for &u in &chosen {
        let range = layout.units[u].words.clone();
        keep[range.clone()].fill(true);
        give_up.splice(0..0, range.rev());
    }
    finish(
        scorer, text, &layout, keep, &give_up, budget, "random", start,
    )
}

/// Keeps the first words of the text that fit `target`.
pub fn truncate(scorer: &Model, text: &str, target: Target) -> Result<Compressed> {
    let start = Instant::now();
    let layout = Layout::new(text, &scorer.tokenizer, &Default::default())?;
    let budget = target.tokens(layout.source_tokens)?;
    let mut keep = vec![false; layout.words.len()];
    let mut used = 0;
    for (i, w) in layout.words.iter().enumerate() {
        if used + w.tokens > budget {
            break;
        }
        keep[i] = true;
        used += w.tokens;
    }
    let give_up: Vec<usize> = (0..layout.words.len()).rev().collect();
    finish(
        scorer, text, &layout, keep, &give_up, budget, "truncate", start,
    )
}

/// Assembles `keep`, dropping words in `give_up` order until the text is
/// within `budget` tokens, and fills the record.
#[allow(clippy::too_many_arguments)]
fn finish(
    scorer: &Model,
    text: &str,
    layout: &Layout,
    mut keep: Vec<bool>,
    give_up: &[usize],
    budget: usize,
    method: &'static str,
    start: Instant,
) -> Result<Compressed> {
    let tok = &scorer.tokenizer;
    if budget >= layout.source_tokens {
        let a = identity(text);
        return Ok(Compressed::new(
            method,
            scorer,
            a,
            layout.source_tokens,
            layout.source_tokens,
            budget,
            start.elapsed().as_secs_f64(),
            None,
            None,
        ));
    }
    let give_up: Vec<usize> = give_up.iter().copied().filter(|w| keep[*w]).collect();
    let mut give_up = give_up.into_iter();
    loop {
        let a = assemble(text, layout, &keep);
        let tokens = tok.encode_text(&a.text)?.len();
        if tokens <= budget {
            return Ok(Compressed::new(
                method,
                scorer,
                a,
                layout.source_tokens,
                tokens,
                budget,
                start.elapsed().as_secs_f64(),
                None,
                None,
            ));
        }
        match give_up.next() {
            Some(w) => keep[w] = false,
            None => anyhow::bail!("{method}: could not fit {budget} tokens (internal error)"),
        }
    }
}
