//! The unit of an evaluation: one question over its own documents, with the
//! answers that count and how an answer is scored.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The answer that, in a `jsonl` set, means "this document does not say".
pub const NOT_IN_DOCUMENT: &str = "NOT_IN_DOCUMENT";

/// Where one of an item's documents comes from.
#[derive(Debug, Clone)]
pub enum ItemDoc {
    /// Generated or dataset text, written to `name` under the run's folder
    /// so the corpus loaders read a real file.
    Text {
        /// File name the text is written to (and cited by).
        name: String,
        /// The document's text.
        text: String,
    },
    /// A file of the user's (`jsonl` suite), read where it is.
    File(PathBuf),
}

impl ItemDoc {
    /// The file name the document is known by in chunks and spans.
    pub fn file_name(&self) -> String {
        match self {
            ItemDoc::Text { name, .. } => name.clone(),
            ItemDoc::File(p) => p
                .file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into()),
        }
    }
}

/// How an answer is scored against the gold answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// SQuAD style: correct when a gold answer's words occur in the answer
    /// (EM and F1 are reported too).
    Qa,
    /// RULER's `string_match_all`: the fraction of the golds the answer
    /// contains (multi-value needles, variable tracking, common words).
    All,
}

/// A passage that holds the answer: a byte range of one document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GoldSpan {
    /// The document's file name.
    pub doc: String,
    /// First byte of the passage in the document's text.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
}

/// One question to answer, with everything needed to score it.
#[derive(Debug, Clone)]
pub struct Item {
    /// The suite's name, as in records (`niah`, `squad`, …).
    pub suite: &'static str,
    /// Unique within the suite and stable across runs with the same seed.
    pub id: String,
    /// The breakdown label (`niah_single`, `answerable`, `bridge`, the
    /// user's `kind`, …).
    pub kind: String,
    /// The question put to the model.
    pub question: String,
    /// The documents the question is asked over, its own corpus.
    pub docs: Vec<ItemDoc>,
    /// Accepted answers; empty when the documents do not hold one.
    pub answers: Vec<String>,
    /// How an answer is scored against `answers`.
    pub scoring: Scoring,
    /// Passages that hold the answer, for retrieval recall (none known:
    /// recall is not reported).
    pub gold: Vec<GoldSpan>,
    /// Synthetic suites: the context length asked for, in the answering
    /// model's tokens, and the needle's relative depth.
    pub length: Option<usize>,
    /// Synthetic suites: where the needle sits, 0 (start) to 1 (end) of the haystack.
    pub depth: Option<f64>,
}

impl Item {
    /// Whether a correct answer is a refusal.
    pub fn unanswerable(&self) -> bool {
        self.answers.is_empty()
    }
}

/// `n` of `items`, spread evenly (every k-th) so a small limit still spans
/// the whole grid or dataset.
pub fn spread<T>(items: Vec<T>, n: Option<usize>) -> Vec<T> {
    let Some(n) = n else { return items };
    let step = (items.len() / n.max(1)).max(1);
    items.into_iter().step_by(step).take(n).collect()
}

/// `n` items spread evenly within each kind (kinds interleave in the
/// generated grids, so a plain every-k-th pick could keep only one).
pub fn spread_by_kind(items: Vec<Item>, n: Option<usize>) -> Vec<Item> {
    let Some(n) = n else { return items };
    let mut kinds: Vec<String> = items.iter().map(|i| i.kind.clone()).collect();
    kinds.sort();
    kinds.dedup();
    let per_kind = n.div_ceil(kinds.len().max(1));
    let mut picked: Vec<Item> = Vec::new();
    for kind in &kinds {
        let of_kind: Vec<Item> = items.iter().filter(|i| &i.kind == kind).cloned().collect();
        picked.extend(spread(of_kind, Some(per_kind)));
    }
    // Back to the generation order (lengths first), then cut to n.
    let position: std::collections::HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(at, i)| (i.id.as_str(), at))
        .collect();
    picked.sort_by_key(|i| position.get(i.id.as_str()).copied().unwrap_or(usize::MAX));
    picked.truncate(n);
    picked
}

/// A file name safe on any file system, from a title.
pub fn file_name_of(index: usize, title: &str) -> String {
    let clean: String = title
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .take(48)
        .collect();
    format!("{index:02}-{}.txt", clean.trim_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: usize, kind: &str) -> Item {
        Item {
            suite: "niah",
            id: id.to_string(),
            kind: kind.into(),
            question: "q".into(),
            docs: Vec::new(),
            answers: vec!["a".into()],
            scoring: Scoring::Qa,
            gold: Vec::new(),
            length: None,
            depth: None,
        }
    }

    #[test]
    fn a_limit_keeps_every_kind_of_an_interleaved_grid() {
        let kinds = ["single", "multikey", "multivalue"];
        let items: Vec<Item> = (0..60).map(|i| item(i, kinds[i % 3])).collect();
        // Every 3rd would keep only "single"; per kind keeps all three.
        assert!(spread(items.clone(), Some(20))
            .iter()
            .all(|i| i.kind == "single"));
        let picked = spread_by_kind(items, Some(21));
        assert_eq!(picked.len(), 21);
        for k in kinds {
            assert_eq!(picked.iter().filter(|i| i.kind == k).count(), 7, "{k}");
        }
        let ids: Vec<usize> = picked.iter().map(|i| i.id.parse().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "generation order kept");
    }
}
