//! Copy-constrained quoting: after its answer the model copies a passage of
//! the text it read, one token at a time, allowed only the tokens that keep
//! the copy a contiguous run of that text's own tokens. The quote cannot be
//! invented, and its byte offsets are known rather than searched for.

use anyhow::Result;

use super::generate::{negative_log_likelihood, Decoder};
use super::model::Logits;
use super::tokenizer::TextTokenizer;

/// The text a quote may copy, in the model's tokens with their bytes.
pub struct QuoteSource<'t> {
    text: &'t str,
    ids: Vec<u32>,
    /// Byte range of each token in `text`; byte-level tokens inside one
    /// multi-byte character all carry that character's range.
    offsets: Vec<(usize, usize)>,
}

impl<'t> QuoteSource<'t> {
    /// Tokenizes `text` as document text (no control token can appear).
    pub fn new(tokenizer: &TextTokenizer, text: &'t str) -> Result<Self> {
        let (ids, offsets) = tokenizer.encode_with_offsets(text)?;
        Ok(Self { text, ids, offsets })
    }

    /// The source's token ids.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Tokens of the source.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The source has no tokens (nothing can be quoted).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The first token that reaches past byte `at` (the one a passage
    /// starting there starts with; `len()` when none does).
    fn token_at(&self, at: usize) -> usize {
        self.offsets.partition_point(|o| o.1 <= at)
    }

    /// The `tokens` tokens from `first` as a quote: their bytes, surrounding
    /// whitespace trimmed. Token offsets fall on character boundaries; a
    /// tokenizer that broke that gives no quote rather than a panic, as does
    /// a run that is only whitespace.
    fn copied(&self, first: usize, tokens: usize) -> Option<Copied> {
        let (a, b) = (self.offsets[first].0, self.offsets[first + tokens - 1].1);
        let raw = self.text.get(a..b)?;
        let start = a + (raw.len() - raw.trim_start().len());
        let end = b - (raw.len() - raw.trim_end().len());
        (start < end).then_some(Copied {
            first_token: first,
            tokens,
            start,
            end,
        })
    }

    /// Token `i` begins a character (a quote may start there).
    fn starts_char(&self, i: usize) -> bool {
        i == 0 || self.offsets[i].0 >= self.offsets[i - 1].1
    }

    /// Token `i` is only whitespace.
    fn is_blank(&self, i: usize) -> bool {
        let (a, b) = self.offsets[i];
        self.text.get(a..b).is_none_or(|t| t.trim().is_empty())
    }

    /// Token `i` ends a character (a quote may end after it).
    fn ends_char(&self, i: usize) -> bool {
        i + 1 == self.ids.len() || self.offsets[i + 1].0 >= self.offsets[i].1
    }
}

/// A run of the source the model copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Index of the first copied token in the source.
    pub first_token: usize,
    /// Tokens copied.
    pub tokens: usize,
    /// The copied bytes of the source, surrounding whitespace trimmed.
    pub start: usize,
    /// End (exclusive) of the copied bytes.
    pub end: usize,
}

impl Copied {
    /// The quote: the source's own bytes at [`Copied::start`]..[`Copied::end`].
    pub fn text<'a>(&self, source: &QuoteSource<'a>) -> &'a str {
        source.text.get(self.start..self.end).unwrap_or_default()
    }
}

/// Tokens a quote copies before it may close early (a quote of "The" says
/// nothing); reaching the end of its passage closes it whatever its length.
pub const MIN_QUOTE_TOKENS: usize = 4;

/// Greedy copy: `lead_in` (already the model's own text, ending where the
/// quote begins) is read, then at each step the most likely of the tokens
/// that continue some occurrence of the copy so far is taken. A copy starts
/// at the start of one of `passages` (byte ranges of the source, e.g. its
/// candidate sentences) and stays inside it. It ends at the passage's end,
/// when one of `closers` (a closing quote mark, the end of the turn) is
/// likelier than every allowed continuation after [`MIN_QUOTE_TOKENS`], or
/// after `max_tokens`. `None` when nothing was copied.
pub fn copy_quote(
    decoder: &mut dyn Decoder<'_>,
    lead_in: &[u32],
    source: &QuoteSource<'_>,
    passages: &[(usize, usize)],
    closers: &[u32],
    max_tokens: usize,
) -> Result<Option<Copied>> {
    let n = source.len();
    // Each occurrence the copy may still be: (first token, passage end).
    let mut open: Vec<(usize, usize)> = passages
        .iter()
        .filter_map(|&(a, b)| {
            let first = source.token_at(a);
            (first < n && source.offsets[first].0 < b).then_some((first, b))
        })
        .filter(|&(p, _)| source.starts_char(p))
        .collect();
    open.sort_unstable();
    open.dedup();
    if open.is_empty() || max_tokens == 0 {
        return Ok(None);
    }
    let inside = |p: usize, end: usize, k: usize| p + k < n && source.offsets[p + k].0 < end;
    let mut logits = decoder.forward(lead_in, Logits::Last)?;
    let mut copied = 0;
    loop {
        let best = open
            .iter()
            .filter(|&&(p, end)| inside(p, end, copied))
            .map(|&(p, _)| source.ids[p + copied])
            .map(|t| (t, logits[t as usize]))
            .fold(None, |acc: Option<(u32, f32)>, (t, l)| match acc {
                Some((_, bl)) if bl >= l => acc,
                _ => Some((t, l)),
            });
        let close = closers
            .iter()
            .filter_map(|&t| logits.get(t as usize).copied())
            .fold(f32::NEG_INFINITY, f32::max);
        let can_close = copied >= MIN_QUOTE_TOKENS
            && open.iter().any(|&(p, _)| source.ends_char(p + copied - 1));
        let Some((next, next_logit)) = best else {
            break;
        };
        if copied == max_tokens || (can_close && close > next_logit) {
            break;
        }
        open.retain(|&(p, end)| inside(p, end, copied) && source.ids[p + copied] == next);
        copied += 1;
        if copied < max_tokens {
            logits = decoder.forward(&[next], Logits::Last)?;
        }
    }
    // End on a whole character: drop trailing tokens of a split one.
    while copied > 0 && !open.iter().any(|&(p, _)| source.ends_char(p + copied - 1)) {
        copied -= 1;
    }
    let Some(&(first, _)) = open
        .iter()
        .find(|&&(p, _)| copied > 0 && source.ends_char(p + copied - 1))
    else {
        return Ok(None);
    };
    Ok(source.copied(first, copied))
}

/// The quote the model finds likeliest: each of `passages` (from its
/// start, at most `max_tokens`) is read after `lead_in` from one shared
/// cache, cut back after each, and the one with the highest mean token
/// log-probability is taken whole. Every token of every candidate is
/// scored, so a passage is not lost to a likelier first word elsewhere (the
/// weakness of greedy copying). Where the cache cannot be cut,
/// [`copy_quote`] copies greedily instead.
pub fn choose_quote(
    decoder: &mut dyn Decoder<'_>,
    lead_in: &[u32],
    source: &QuoteSource<'_>,
    passages: &[(usize, usize)],
    closers: &[u32],
    max_tokens: usize,
) -> Result<Option<Copied>> {
    let base = decoder.position();
    if !decoder.truncate(base) {
        return copy_quote(decoder, lead_in, source, passages, closers, max_tokens);
    }
    let n = source.len();
    // Each passage as a run of whole source tokens: [first, last).
    let runs: Vec<(usize, usize)> = passages
        .iter()
        .filter_map(|&(a, b)| {
            let first = source.token_at(a);
            let mut last = source
                .offsets
                .partition_point(|o| o.0 < b)
                .min(first + max_tokens);
            while last > first && (!source.ends_char(last - 1) || source.is_blank(last - 1)) {
                last -= 1;
            }
            (first < n && last > first && source.starts_char(first)).then_some((first, last))
        })
        .collect();
    if runs.is_empty() || max_tokens == 0 {
        return Ok(None);
    }
    let tokenizer = &decoder.model().tokenizer;
    let after_lead = decoder.forward(lead_in, Logits::Last)?;
    let start = decoder.position();
    let mut best: Option<(f64, (usize, usize))> = None;
    for &(first, last) in &runs {
        // A sentence inside a paragraph starts with its space (" The");
        // right after the opening quote mark it is read as the bare word.
        let mut ids = source.ids[first..last].to_vec();
        ids[0] = without_leading_space(tokenizer, ids[0]);
        let mut sum = log_softmax_at(&after_lead, ids[0]);
        if ids.len() > 1 {
            let rows = decoder.forward(&ids[..ids.len() - 1], Logits::All)?;
            let vocab = rows.len() / (ids.len() - 1);
            for (row, &next) in rows.chunks_exact(vocab).zip(&ids[1..]) {
                sum += log_softmax_at(row, next);
            }
            if !decoder.truncate(start) {
                anyhow::bail!("the cache could not be cut back after scoring a quote");
            }
        }
        let mean = sum / ids.len() as f64;
        if best.is_none_or(|(b, _)| mean > b) {
            best = Some((mean, (first, last)));
        }
    }
    decoder.truncate(base);
    let Some((_, (first, last))) = best else {
        return Ok(None);
    };
    Ok(source.copied(first, last - first))
}

/// The id of `id`'s text without its leading space (`Ġ`, `▁`, ` `), when
/// the vocabulary has one; else `id`.
fn without_leading_space(tokenizer: &TextTokenizer, id: u32) -> u32 {
    let Some(text) = tokenizer.token(id) else {
        return id;
    };
    let bare = text
        .strip_prefix('Ġ')
        .or_else(|| text.strip_prefix('▁'))
        .or_else(|| text.strip_prefix(' '));
    bare.filter(|b| !b.is_empty())
        .and_then(|b| tokenizer.token_id(b))
        .filter(|&b| !tokenizer.is_special(b))
        .unwrap_or(id)
}

/// `ln softmax(logits)[token]`.
fn log_softmax_at(logits: &[f32], token: u32) -> f64 {
    -negative_log_likelihood(logits, token)
}

/// Probability the model gives "yes" over "no" as the first token of its
/// reply to `prompt` (a rendered conversation ending in an open assistant
/// turn), read from one forward pass on a fresh cache. Both spellings
/// (`yes`, `Yes`, with and without a leading space) count.
pub fn yes_probability(decoder: &mut dyn Decoder<'_>, prompt: &[u32]) -> Result<f64> {
    let tokenizer = &decoder.model().tokenizer;
    let first_ids = |words: &[&str]| -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for w in words {
            if let Some(&id) = tokenizer.encode_text(w)?.first() {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    };
    let yes = first_ids(&["yes", "Yes", " yes", " Yes", "YES"])?;
    let no = first_ids(&["no", "No", " no", " No", "NO"])?;
    decoder.reset();
    decoder.declare_length(prompt.len() + 1);
    let logits = decoder.forward(prompt, Logits::Last)?;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mass = |ids: &[u32]| -> f64 {
        ids.iter()
            .map(|&t| (logits[t as usize] as f64 - max).exp())
            .sum()
    };
    let (y, n) = (mass(&yes), mass(&no));
    Ok(if y + n > 0.0 { y / (y + n) } else { 0.5 })
}
