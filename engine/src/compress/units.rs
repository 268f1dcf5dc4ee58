//! How a text is cut for compression: sentences (the coarse stage's units),
//! words inside them (the fine stage's units), the scorer tokens each word
//! costs, and which words must never be dropped.

use std::collections::HashSet;
use std::ops::Range;

use anyhow::Result;
use folio_corpora::Span;

use crate::llm::TextTokenizer;

/// Sentences longer than this many tokens are cut into pieces of at most
/// [`PIECE_TOKENS`], so one run-on sentence cannot swallow a whole budget.
const MAX_UNIT_TOKENS: usize = 96;
const PIECE_TOKENS: usize = 64;

/// One whitespace-delimited word of the source.
#[derive(Debug, Clone)]
pub(crate) struct Word {
    pub span: Span,
    /// Scorer tokens that start inside this word (or in the whitespace
    /// before it).
    pub tokens: usize,
    pub unit: usize,
    /// A number or a name: the fine stage drops it only after every
    /// ordinary word of the kept units.
    pub protected: bool,
    /// A word of the question: the fine stage never drops it.
    pub question: bool,
}

/// A sentence (or a piece of a long one): what the coarse stage keeps or drops.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    pub span: Span,
    pub words: Range<usize>,
    pub tokens: usize,
}

/// The source cut into units and words, with scorer token counts.
pub(crate) struct Layout {
    pub words: Vec<Word>,
    pub units: Vec<Unit>,
    pub source_tokens: usize,
}

impl Layout {
    /// Cuts `text` into sentences and words and counts `tokenizer`'s tokens
    /// per word; `question_terms` are the question's content terms.
    pub fn new(
        text: &str,
        tokenizer: &TextTokenizer,
        question_terms: &HashSet<String>,
    ) -> Result<Self> {
        let (_, offsets) = tokenizer.encode_with_offsets(text)?;
        let mut words = Vec::new();
        let mut sentence_words = Vec::new();
        for sentence in folio_retrieval::chunk::sentences(
            text,
            Span {
                start: 0,
                end: text.len(),
            },
        ) {
            let first = words.len();
            for span in split_words(text, sentence) {
                let word = &text[span.start..span.end];
                let question = is_question_word(word, question_terms);
                let protected = question || is_name_or_number(word);
                words.push(Word {
                    span,
                    tokens: 0,
                    unit: 0,
                    protected,
                    question,
                });
            }
            sentence_words.push(first..words.len());
        }
        for &(start, end) in &offsets {
            let key = first_visible(text, start, end).unwrap_or(end);
            let i = words.partition_point(|w| w.span.end <= key);
            if let Some(w) = words.get_mut(i) {
                w.tokens += 1;
            }
        }
        let mut units = Vec::new();
        for range in sentence_words {
            let total: usize = words[range.clone()].iter().map(|w| w.tokens).sum();
            let mut pieces = Vec::new();
            if total <= MAX_UNIT_TOKENS {
                pieces.push(range);
            } else {
                let (mut start, mut acc) = (range.start, 0);
                for i in range.clone() {
                    if acc + words[i].tokens > PIECE_TOKENS && i > start {
                        pieces.push(start..i);
                        (start, acc) = (i, 0);
                    }
                    acc += words[i].tokens;
                }
                pieces.push(start..range.end);
            }
            for piece in pieces.into_iter().filter(|p| !p.is_empty()) {
                let unit = units.len();
                let mut tokens = 0;
                for w in &mut words[piece.clone()] {
                    w.unit = unit;
                    tokens += w.tokens;
                }
                units.push(Unit {
                    span: Span {
                        start: words[piece.start].span.start,
                        end: words[piece.end - 1].span.end,
                    },
                    words: piece,
                    tokens,
                });
            }
        }
        Ok(Self {
            words,
            units,
            source_tokens: offsets.len(),
        })
    }
}

/// The first non-whitespace byte of the token at `text[start..end]` (None
/// for a whitespace token, or offsets off a character boundary).
pub(crate) fn first_visible(text: &str, start: usize, end: usize) -> Option<usize> {
    text.get(start..end)?
        .char_indices()
        .find(|(_, c)| !c.is_whitespace())
        .map(|(i, _)| start + i)
}

/// Maximal runs of non-whitespace characters inside `region`.
fn split_words(text: &str, region: Span) -> Vec<Span> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text[region.start..region.end].char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(region.start + i),
            (true, Some(s)) => {
                out.push(Span {
                    start: s,
                    end: region.start + i,
                });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Span {
            start: s,
            end: region.end,
        });
    }
    out
}

/// Numbers and capitalised names (sentence-initial stopwords aside): what
/// answers are made of.
pub(crate) fn is_name_or_number(word: &str) -> bool {
    let core = word.trim_matches(|c: char| !c.is_alphanumeric());
    core.chars().any(|c| c.is_numeric())
        || core.chars().next().is_some_and(char::is_uppercase) && !is_stopword(&core.to_lowercase())
}

/// Whether `word` is one of the question's content words (same crude stem).
pub(crate) fn is_question_word(word: &str, question_terms: &HashSet<String>) -> bool {
    terms(word).iter().any(|t| question_terms.contains(t))
}

/// Lower-cased, crudely stemmed content words of `text` (stopwords removed):
/// the vocabulary of the lexical score and of question-word protection.
pub(crate) fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !is_stopword(w))
        .map(|w| stem(&w))
        .collect()
}

fn stem(w: &str) -> String {
    let n = w.len();
    let cut = |k: usize| w[..n - k].to_string();
    if !w.is_ascii() || n <= 3 {
        return w.to_string();
    }
    if n > 4 && w.ends_with("ies") {
        return format!("{}y", &w[..n - 3]);
    }
    if n > 5 && w.ends_with("ing") {
        return cut(3);
    }
    if n > 4 && w.ends_with("ed") {
        return cut(2);
    }
    if n > 4
        && (w.ends_with("ches") || w.ends_with("shes") || w.ends_with("sses") || w.ends_with("xes"))
    {
        return cut(2);
    }
    if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return cut(1);
    }
    w.to_string()
}

fn is_stopword(w: &str) -> bool {
    const STOP: &[&str] = &[
        "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and",
        "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between",
        "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during",
        "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her",
        "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is",
        "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not",
        "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over",
        "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
        "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to",
        "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where",
        "which", "while", "who", "whom", "whose", "why", "will", "with", "would", "you", "your",
        "yours", "s", "t", "many", "much", "name", "named", "kind", "type", "year", "however",
        "although", "though", "since", "like", "may", "might", "must", "shall", "upon", "within",
        "without", "among", "along", "around", "across", "behind", "beyond", "yet", "still",
        "even", "ever", "another",
    ];
    STOP.contains(&w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protection_and_terms() {
        let q: HashSet<String> = terms("When was the bridge built?").into_iter().collect();
        assert!(q.contains("bridge") && q.contains("built"));
        assert!(is_question_word("bridge,", &q));
        assert!(is_question_word("Bridges", &q));
        assert!(!is_question_word("quietly", &q));
        assert!(is_name_or_number("1,250"));
        assert!(is_name_or_number("(Kraków)."));
        assert!(!is_name_or_number("The"));
        assert!(!is_name_or_number("quietly"));
        assert_eq!(terms("Cities"), vec!["city"]);
    }

    #[test]
    fn words_cover_non_space() {
        let t = "ab  cd\te\n";
        let w = split_words(
            t,
            Span {
                start: 0,
                end: t.len(),
            },
        );
        let got: Vec<&str> = w.iter().map(|s| &t[s.start..s.end]).collect();
        assert_eq!(got, ["ab", "cd", "e"]);
    }
}
