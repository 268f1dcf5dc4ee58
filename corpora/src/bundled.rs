//! The Jargon File 4.4.7 (public domain), compiled into the binary so that
//! `folio demo` and the tests have a real document on any machine.

use crate::{Document, Span};

const JARGON: &str = include_str!("../data/jargon-4.4.7.txt");

/// The whole Jargon File as one document.
pub fn jargon() -> Document {
    Document::plain(
        "jargon-4.4.7",
        "bundled:jargon-4.4.7.txt",
        JARGON.to_string(),
    )
}

/// The span of consecutive lexicon entries from the entry `first` up to (not
/// including) the entry `end`; entries are the lines `   :term: …`.
pub fn jargon_entries(first: &str, end: &str) -> Option<Span> {
    let start = find_entry(first)?;
    let stop = find_entry(end)?;
    (start < stop).then_some(Span { start, end: stop })
}

fn find_entry(term: &str) -> Option<usize> {
    let needle = format!("\n   :{term}:");
    JARGON.find(&needle).map(|i| i + 1)
}

/// The document and question `folio demo` answers, and a phrase a correct
/// answer contains.
pub struct DemoCase {
    /// The excerpt the question is asked about.
    pub document: Document,
    /// The question, as a user would type it.
    pub question: &'static str,
    /// A phrase a correct answer contains.
    pub expected: &'static str,
}

/// Three neighbouring Jargon File entries (about 600 tokens) and a question
/// whose answer is stated in one of them.
pub fn demo_case() -> DemoCase {
    let span = jargon_entries("fork", "Formosa's Law").expect("bundled entries exist");
    DemoCase {
        document: jargon()
            .excerpt(span, "jargon: fork, fork bomb, forked")
            .expect("span is valid"),
        question: "According to the Jargon File, what else is a fork bomb called?",
        expected: "fork bunny",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_case_contains_its_answer_and_is_cut_at_entry_boundaries() {
        let case = demo_case();
        assert!(case.document.text.starts_with("   :fork:\n"));
        assert!(case.document.text.contains("Also called a fork bunny"));
        assert!(!case.document.text.contains(":Formosa's Law:"));
        assert!(jargon_entries("no such entry", "forked").is_none());
    }
}
