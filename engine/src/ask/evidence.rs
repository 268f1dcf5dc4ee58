//! Evidence: the sentences of what was read that support the answer, each
//! checked to occur in its document at the offsets given.

use std::collections::HashSet;

use folio_corpora::Span;
use folio_retrieval::chunk::sentences;
use serde::Serialize;

use super::corpus::Corpus;

/// A sentence of a document that supports the answer.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// Path of the document the sentence is in.
    pub path: String,
    /// Byte offsets into the document's loaded text.
    pub span: Span,
    /// The sentence as cited.
    pub text: String,
    /// The document's bytes at `span` are exactly `text`.
    pub verified: bool,
    /// Answer words (weighted) and question words the sentence holds.
    pub score: f64,
}

/// Phrases with which an answer says the text does not hold it.
const NOT_FOUND: &[&str] = &[
    "unanswerable",
    "does not contain",
    "doesn't contain",
    "does not mention",
    "doesn't mention",
    "not mentioned",
    "no information",
    "not provided",
    "does not provide",
    "doesn't provide",
    "does not say",
    "doesn't say",
    "does not specify",
    "not specified",
    "not stated",
    "cannot find",
    "can't find",
    "could not find",
    "unable to find",
    "cannot be determined",
    "no mention",
    "not in the document",
    "not included in",
    "cannot answer",
    "can't answer",
];

/// Whether `answer` says the documents do not contain the answer.
pub fn says_not_found(answer: &str) -> bool {
    let a = answer.to_lowercase().replace('’', "'");
    a.trim().is_empty() || NOT_FOUND.iter().any(|p| a.contains(p))
}

const STOPWORDS: &[&str] = &[
    "the", "a", "an", "of", "to", "in", "on", "and", "or", "is", "was", "are", "were", "be", "by",
    "for", "with", "as", "at", "it", "its", "this", "that", "from", "he", "she", "they", "his",
    "her", "their", "which", "who", "what", "when", "where", "how", "why", "did", "does", "do",
    "has", "have", "had", "not", "but", "into", "than", "then", "there", "these", "those",
    "document", "answer", "question", "yes", "no",
];

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .filter(|w| {
            (w.len() > 1 || w.chars().all(|c| c.is_ascii_digit()))
                && !STOPWORDS.contains(&w.as_str())
        })
        .collect()
}

/// The question's content words, and the answer's words the question lacks
/// (what the answer itself claims).
fn answer_words(question: &str, answer: &str) -> (HashSet<String>, HashSet<String>) {
    let question_words: HashSet<String> = words(question).into_iter().collect();
    let own = words(answer)
        .into_iter()
        .filter(|w| !question_words.contains(w))
        .collect();
    (question_words, own)
}

/// Fraction of the answer's own words (those the question lacks) that occur
/// anywhere in the text read. A small model that cannot find an answer
/// often invents one instead of saying so; an answer whose words the text
/// never uses is not supported by it. 1.0 when there is nothing to check.
pub fn support(corpus: &Corpus, regions: &[(usize, Span)], question: &str, answer: &str) -> f64 {
    let (_, answer_words) = answer_words(question, answer);
    if answer_words.is_empty() {
        return 1.0;
    }
    let mut read = HashSet::new();
    for &(doc, r) in regions {
        read.extend(words(&corpus.docs[doc].text[r.start..r.end]));
    }
    answer_words.iter().filter(|w| read.contains(*w)).count() as f64 / answer_words.len() as f64
}

/// Below this [`support`], an answer counts as not found in what was read.
pub const MIN_SUPPORT: f64 = 0.5;

/// Up to `max` sentences of the `regions` read (document, span) that share
/// the most words with the answer, preferring those that also echo the
/// question. A sentence must hold at least one answer word the question
/// lacks, so restating the question is not evidence. None for an answer
/// that says it was not found.
pub fn find_evidence(
    corpus: &Corpus,
    regions: &[(usize, Span)],
    question: &str,
    answer: &str,
    max: usize,
) -> Vec<Evidence> {
    if says_not_found(answer) {
        return Vec::new();
    }
    let (question_words, answer_words) = answer_words(question, answer);
    if answer_words.is_empty() {
        return Vec::new();
    }
    let mut scored = Vec::new();
    for &(doc, region) in regions {
        let text = &corpus.docs[doc].text;
        for s in sentences(text, region) {
            let (hits, echo) = overlap(&text[s.start..s.end], &question_words, &answer_words);
            if hits > 0.0 {
                scored.push((hits + 0.3 * echo, doc, s));
            }
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2.start.cmp(&b.2.start)));
    let mut seen = HashSet::new();
    scored
        .into_iter()
        .filter(|(_, doc, s)| seen.insert((*doc, s.start)))
        .take(max)
        .map(|(score, doc, span)| {
            let d = &corpus.docs[doc];
            let text = d.text[span.start..span.end].to_string();
            Evidence {
                path: d.path.clone(),
                verified: d.text.get(span.start..span.end) == Some(text.as_str()),
                span,
                text,
                score,
            }
        })
        .collect()
}

/// Answer words (a number counts twice) and question words that `sentence` holds.
fn overlap(
    sentence: &str,
    question_words: &HashSet<String>,
    answer_words: &HashSet<String>,
) -> (f64, f64) {
    let present: HashSet<String> = words(sentence).into_iter().collect();
    let hits = answer_words
        .iter()
        .filter(|w| present.contains(*w))
        .map(|w| {
            if w.chars().any(|c| c.is_ascii_digit()) {
                2.0
            } else {
                1.0
            }
        })
        .sum();
    let echo = question_words
        .iter()
        .filter(|w| present.contains(*w))
        .count() as f64;
    (hits, echo)
}

/// The sentences of `regions` of `text` (the document runs of a context,
/// so no quote takes in a file header) a quote for `answer` may copy: up to `k` of
/// those that share the most words with the answer (then the question), at
/// least half the best sentence's score, best first; every sentence when
/// none shares a word, so the reader can still point at the closest
/// passage it read.
pub fn quote_candidates(
    text: &str,
    regions: &[Span],
    question: &str,
    answer: &str,
    k: usize,
) -> Vec<Span> {
    let (question_words, answer_words) = answer_words(question, answer);
    let all: Vec<Span> = regions.iter().flat_map(|r| sentences(text, *r)).collect();
    let mut scored: Vec<(f64, Span)> = all
        .iter()
        .map(|s| {
            let (hits, echo) = overlap(&text[s.start..s.end], &question_words, &answer_words);
            (hits + 0.3 * echo, *s)
        })
        .filter(|(score, _)| *score > 0.0)
        .collect();
    if scored.is_empty() {
        return all;
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.start.cmp(&b.1.start)));
    let best = scored[0].0;
    scored
        .into_iter()
        .take_while(|(score, _)| *score >= best / 2.0)
        .take(k)
        .map(|(_, s)| s)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_phrasings() {
        assert!(says_not_found("The document does not mention the price."));
        assert!(says_not_found(
            "I can’t find that in the text, it is not provided."
        ));
        assert!(!says_not_found("Viaweb was founded in 1995."));
    }
}
