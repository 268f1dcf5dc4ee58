//! Telling look-up questions from questions that need a wide read.

use super::records::QuestionKind;

/// Phrases that ask for counting, listing, summarising or comparing across
/// a text: retrieval's few chunks cannot answer them.
const WIDE_MARKERS: &[&str] = &[
    "how many",
    "how often",
    "list ",
    "list all",
    "enumerate",
    "count ",
    "summar",
    "overview",
    "main points",
    "main themes",
    "key points",
    "compare",
    "comparison",
    "contrast",
    "differences",
    "difference between",
    "similarities",
    "all the ",
    "all of the ",
    "every ",
    "each of",
    "throughout",
    "across the",
    "in total",
    "overall",
    "what are the",
    "which of the",
];

/// Classifies a question by the words that ask for a wide read; anything
/// else is a look-up. Cheap and explainable: the card says which marker hit.
pub fn classify(question: &str) -> (QuestionKind, Option<&'static str>) {
    let q = format!(" {} ", question.to_lowercase());
    match WIDE_MARKERS.iter().find(|m| q.contains(*m)) {
        Some(marker) => (QuestionKind::Wide, Some(marker.trim())),
        None => (QuestionKind::Lookup, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_and_lookup_questions() {
        for q in [
            "How many times does the author mention Lisp?",
            "Summarize the essay.",
            "List the startups the author funded.",
            "Compare the two proposals.",
            "What are the main themes of the document?",
        ] {
            assert_eq!(classify(q).0, QuestionKind::Wide, "{q}");
        }
        for q in [
            "Who founded Viaweb?",
            "What year was the company sold?",
            "Where did the author study painting?",
        ] {
            assert_eq!(classify(q).0, QuestionKind::Lookup, "{q}");
        }
    }
}
