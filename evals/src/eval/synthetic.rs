//! Synthetic long-context suites, generated from a seed: needle in a
//! haystack over the Paul Graham essays (gkamradt's NIAH; RULER's
//! niah_single, niah_multikey, niah_multivalue) and RULER's variable
//! tracking and common-words extraction.
//!
//! Lengths are in the answering model's tokens: the document is cut to
//! within a few percent of the length asked for (the record keeps the
//! exact count).

use anyhow::Result;
use folio_engine::llm::TextTokenizer;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::items::{GoldSpan, Item, ItemDoc, Scoring};

/// Needle depths of the grid: start, quarters, end.
pub const DEPTHS: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

/// Needles of the multi-key and multi-value variants.
const NEEDLES: usize = 4;

const ADJECTIVES: &[&str] = &[
    "quiet", "amber", "brisk", "clever", "dusty", "eager", "fuzzy", "gentle", "hollow", "icy",
    "jolly", "kind", "lucky", "misty", "noble", "olive", "proud", "rapid", "silent", "tidy",
];
const NOUNS: &[&str] = &[
    "otter", "harbor", "lantern", "meadow", "falcon", "canyon", "violin", "pepper", "glacier",
    "saddle", "orchid", "beacon", "marble", "thimble", "quartz", "walrus", "cobalt", "ferry",
];

/// What the synthetic suites are made from.
pub struct Source<'a> {
    /// The essays' text (the haystack).
    pub essays: &'a str,
    /// The answering model's tokenizer (lengths are in its tokens).
    pub tokenizer: &'a TextTokenizer,
    /// Seed of the generator; each item's randomness derives from it and its id.
    pub seed: u64,
}

impl Source<'_> {
    fn count(&self, text: &str) -> usize {
        self.tokenizer.encode_text(text).map_or(0, |t| t.len())
    }

    fn rng(&self, id: &str) -> StdRng {
        let h = id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        StdRng::seed_from_u64(self.seed ^ h)
    }

    /// About `tokens` tokens of essay text from a random paragraph start.
    fn haystack(&self, tokens: usize, rng: &mut StdRng) -> String {
        let sample = &self.essays[..floor(self.essays, 40_000)];
        let chars_per_token = sample.len() as f64 / self.count(sample).max(1) as f64;
        let want = (tokens as f64 * chars_per_token) as usize;
        let latest = self.essays.len().saturating_sub(want + 1);
        let mut start = floor(self.essays, rng.random_range(0..=latest));
        if let Some(p) = self.essays[start..].find("\n\n") {
            start += p + 2;
        }
        let mut text = take(&self.essays[start..], want);
        // One correction from the exact count keeps lengths within ~2%.
        let got = self.count(&text).max(1);
        if got.abs_diff(tokens) * 50 > tokens {
            let scaled = (text.len() as f64 * tokens as f64 / got as f64) as usize;
            text = take(&self.essays[start..], scaled);
        }
        text
    }
}

fn floor(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The first `bytes` of `s` (wrapping around if short), cut after a
/// sentence end when there is one in the last fifth.
fn take(s: &str, bytes: usize) -> String {
    let mut out = String::new();
    while out.len() < bytes {
        let need = bytes - out.len();
        out.push_str(&s[..floor(s, need)]);
        if out.len() < bytes {
            out.push_str("\n\n");
        }
    }
    let from = floor(&out, out.len() * 4 / 5);
    let cut = out[from..].rfind(". ").map_or(out.len(), |p| from + p + 1);
    out.truncate(floor(&out, cut));
    out
}

/// Inserts `pieces` at relative depths of `text` (each at a sentence
/// boundary), returning the text and each piece's byte range.
fn insert(text: &str, pieces: &[(f64, String)]) -> (String, Vec<(usize, usize)>) {
    let mut at: Vec<(usize, usize)> = pieces
        .iter()
        .enumerate()
        .map(|(i, (depth, _))| {
            let target = floor(text, (depth * text.len() as f64) as usize);
            let pos = if target == 0 || target >= text.len() {
                target
            } else {
                text[target..]
                    .find(". ")
                    .map_or(text.len(), |p| target + p + 2)
            };
            (pos, i)
        })
        .collect();
    at.sort();
    let mut out = String::with_capacity(text.len() + 512);
    let mut spans = vec![(0, 0); pieces.len()];
    let mut last = 0;
    for (pos, i) in at {
        out.push_str(&text[last..pos]);
        let piece = format!(" {} ", pieces[i].1);
        spans[i] = (out.len() + 1, out.len() + piece.len() - 1);
        out.push_str(&piece);
        last = pos;
    }
    out.push_str(&text[last..]);
    (out, spans)
}

fn gold_spans(doc: &str, spans: &[(usize, usize)]) -> Vec<GoldSpan> {
    spans
        .iter()
        .map(|&(start, end)| GoldSpan {
            doc: doc.to_string(),
            start,
            end,
        })
        .collect()
}

/// The three NIAH variants over `lengths` × [`DEPTHS`].
pub fn niah(source: &Source, lengths: &[usize]) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for &length in lengths {
        for &depth in &DEPTHS {
            for variant in ["niah_single", "niah_multikey", "niah_multivalue"] {
                let id = format!("{variant}-{length}-d{:03}", (depth * 100.0) as u32);
                items.push(needle_item(source, &id, variant, length, depth));
            }
        }
    }
    Ok(items)
}

fn needle_item(source: &Source, id: &str, variant: &str, length: usize, depth: f64) -> Item {
    let mut rng = source.rng(id);
    let key = |rng: &mut StdRng| {
        format!(
            "{}-{}",
            ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
            NOUNS[rng.random_range(0..NOUNS.len())]
        )
    };
    let target = key(&mut rng);
    let value = |rng: &mut StdRng| rng.random_range(1_000_000..10_000_000u32).to_string();
    let needle = |k: &str, v: &str| format!("One of the special magic numbers for {k} is: {v}.");
    let mut pieces = Vec::new();
    let mut answers = Vec::new();
    match variant {
        "niah_multikey" => {
            let v = value(&mut rng);
            pieces.push((depth, needle(&target, &v)));
            answers.push(v);
            let mut others = Vec::new();
            while others.len() < NEEDLES - 1 {
                let k = key(&mut rng);
                if k != target && !others.contains(&k) {
                    others.push(k);
                }
            }
            for k in others {
                let v = value(&mut rng);
                pieces.push((rng.random_range(0.0..1.0), needle(&k, &v)));
            }
        }
        "niah_multivalue" => {
            for i in 0..NEEDLES {
                let v = value(&mut rng);
                let d = if i == 0 {
                    depth
                } else {
                    rng.random_range(0.0..1.0)
                };
                pieces.push((d, needle(&target, &v)));
                answers.push(v);
            }
        }
        _ => {
            let v = value(&mut rng);
            pieces.push((depth, needle(&target, &v)));
            answers.push(v);
        }
    }
    let needle_tokens: usize = pieces.iter().map(|(_, p)| source.count(p) + 2).sum();
    let hay = source.haystack(length.saturating_sub(needle_tokens).max(64), &mut rng);
    let (text, spans) = insert(&hay, &pieces);
    let name = "haystack.txt".to_string();
    let gold_count = if variant == "niah_multikey" {
        1
    } else {
        spans.len()
    };
    let question = if variant == "niah_multivalue" {
        format!("What are all the special magic numbers for {target} mentioned in the text?")
    } else {
        format!("What is the special magic number for {target} mentioned in the text?")
    };
    Item {
        suite: "niah",
        id: id.to_string(),
        kind: variant.to_string(),
        question,
        gold: gold_spans(&name, &spans[..gold_count]),
        docs: vec![ItemDoc::Text { name, text }],
        scoring: if variant == "niah_multivalue" {
            Scoring::All
        } else {
            Scoring::Qa
        },
        answers,
        length: Some(length),
        depth: Some(depth),
    }
}

/// RULER's variable tracking and common-words extraction at `lengths`.
pub fn ruler(source: &Source, lengths: &[usize]) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for &length in lengths {
        items.push(variable_tracking(source, length));
        items.push(common_words(source, length));
    }
    Ok(items)
}

const NOISE: &str = "The grass is green. The sky is blue. The sun is yellow. Here we go. \
There and back again. ";

/// A chain `VAR A = 12345`, `VAR B = VAR A`, … (four hops) spread through
/// repeated noise; the answer is every variable in the chain.
fn variable_tracking(source: &Source, length: usize) -> Item {
    let id = format!("ruler_vt-{length}");
    let mut rng = source.rng(&id);
    let value = rng.random_range(10_000..100_000u32).to_string();
    let mut names: Vec<String> = Vec::new();
    while names.len() < 5 {
        let n: String = (0..5)
            .map(|_| (b'A' + rng.random_range(0..26u8)) as char)
            .collect();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let statements: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let rhs = if i == 0 {
                value.clone()
            } else {
                format!("VAR {}", names[i - 1])
            };
            format!("VAR {n} = {rhs}.")
        })
        .collect();
    let per_noise = source.count(NOISE).max(1);
    let fixed: usize = statements.iter().map(|s| source.count(s) + 2).sum();
    let noise = NOISE.repeat(length.saturating_sub(fixed) / per_noise + 1);
    let pieces: Vec<(f64, String)> = statements
        .iter()
        .enumerate()
        .map(|(i, s)| ((i as f64 + 0.5) / statements.len() as f64, s.clone()))
        .collect();
    let (text, spans) = insert(&noise, &pieces);
    let name = "noise.txt".to_string();
    Item {
        suite: "ruler",
        id,
        kind: "ruler_vt".into(),
        question: format!("Find all variables that are assigned the value {value} in the text."),
        gold: gold_spans(&name, &spans),
        docs: vec![ItemDoc::Text { name, text }],
        answers: names,
        scoring: Scoring::All,
        length: Some(length),
        depth: None,
    }
}

/// A numbered list of words in which ten appear far more often than the
/// rest; the answer is those ten.
fn common_words(source: &Source, length: usize) -> Item {
    let id = format!("ruler_cwe-{length}");
    let mut rng = source.rng(&id);
    let mut vocab: Vec<&str> = source
        .essays
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| (4..=10).contains(&w.len()) && w.chars().all(|c| c.is_ascii_lowercase()))
        .collect();
    vocab.sort_unstable();
    vocab.dedup();
    vocab.shuffle(&mut rng);
    let common_freq = (length / 128).clamp(4, 30);
    let rare_freq = (common_freq / 10).max(1);
    let common = &vocab[..10.min(vocab.len())];
    // About 4 tokens per "N. word" entry.
    let entries = length.saturating_sub(60) / 4;
    let rare_count = entries.saturating_sub(10 * common_freq) / rare_freq;
    let rare = &vocab[10.min(vocab.len())..(10 + rare_count).min(vocab.len())];
    let mut words: Vec<&str> = Vec::new();
    for w in common {
        words.extend(std::iter::repeat_n(*w, common_freq));
    }
    for w in rare {
        words.extend(std::iter::repeat_n(*w, rare_freq));
    }
    words.shuffle(&mut rng);
    let list = |words: &[&str]| {
        let mut text = String::from(
            "Below is a numbered list of words. In these words, some appear more often than \
             others. Memorize the ones that appear most often.\n",
        );
        for (i, w) in words.iter().enumerate() {
            text.push_str(&format!("{}. {w}\n", i + 1));
        }
        text
    };
    // Entries cost 4-8 tokens depending on the tokenizer (digits may be one
    // token each): measure once and drop rare words to fit the length.
    let mut text = list(&words);
    let tokens = source.count(&text);
    if tokens > length {
        let per_entry = tokens as f64 / words.len().max(1) as f64;
        let excess = ((tokens - length) as f64 / per_entry).ceil() as usize;
        let mut dropped = 0;
        words.retain(|w| {
            let rare = !common.contains(w);
            if rare && dropped < excess {
                dropped += 1;
                return false;
            }
            true
        });
        text = list(&words);
    }
    Item {
        suite: "ruler",
        id,
        kind: "ruler_cwe".into(),
        question: "What are the 10 most common words in the list?".into(),
        docs: vec![ItemDoc::Text {
            name: "words.txt".into(),
            text,
        }],
        answers: common.iter().map(|w| w.to_string()).collect(),
        scoring: Scoring::All,
        gold: Vec::new(),
        length: Some(length),
        depth: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_pieces_sit_at_their_spans_and_depths() {
        let text = "One. Two. Three. Four. Five. Six. Seven. Eight. ".repeat(20);
        let pieces = vec![(0.0, "NEEDLE-A".to_string()), (0.5, "NEEDLE-B".to_string())];
        let (out, spans) = insert(&text, &pieces);
        assert_eq!(&out[spans[0].0..spans[0].1], "NEEDLE-A");
        assert_eq!(&out[spans[1].0..spans[1].1], "NEEDLE-B");
        assert!(spans[0].0 < 3);
        let mid = spans[1].0 as f64 / out.len() as f64;
        assert!((0.45..0.56).contains(&mid), "depth 0.5 landed at {mid}");
        // Inserted at sentence boundaries: the text around is intact.
        assert_eq!(
            out.replace(" NEEDLE-A ", "").replace(" NEEDLE-B ", ""),
            text
        );
    }

    #[test]
    fn take_wraps_and_cuts_at_a_sentence() {
        let t = take("Alpha beta. Gamma delta. ", 60);
        assert!(t.len() <= 60 && t.len() > 40, "{t:?}");
        assert!(t.ends_with('.'), "{t:?}");
    }
}
