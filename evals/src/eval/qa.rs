//! Question-answering suites over real text: SQuAD v2 dev, HotpotQA dev
//! (distractor setting) and the user's own `jsonl` set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use folio_corpora::datasets::{self, SquadQuestion};
use serde::Deserialize;

use super::items::{file_name_of, spread, GoldSpan, Item, ItemDoc, Scoring, NOT_IN_DOCUMENT};
use super::Split;

/// Characters of an article a SQuAD item reads: the question's paragraph
/// and its neighbours (about 1,500 tokens), so retrieval has something to
/// choose from and a full read stays affordable.
pub const SQUAD_WINDOW_CHARS: usize = 6000;

/// SQuAD v2 dev questions, answerable (`kind` "answerable") and not
/// ("unanswerable"), spread over the dev set. The document is the window of
/// the article around the question's paragraph; that paragraph is the gold
/// passage.
pub fn squad(limit: Option<usize>, split: Option<Split>, progress: bool) -> Result<Vec<Item>> {
    let questions = datasets::squad(progress)?;
    let articles = squad_articles(&questions);
    let mut titles: Vec<&str> = Vec::new();
    for q in &questions {
        if !titles.contains(&q.title.as_str()) {
            titles.push(&q.title);
        }
    }
    let in_split = |q: &&SquadQuestion| {
        let at = titles.iter().position(|t| *t == q.title).unwrap_or(0);
        match split {
            None => true,
            Some(Split::Calibration) => at % 2 == 1,
            Some(Split::Test) => at % 2 == 0,
        }
    };
    let picked = spread(questions.iter().filter(in_split).collect(), limit);
    Ok(picked
        .into_iter()
        .map(|q| {
            let (text, gold) = squad_window(&articles, q);
            Item {
                suite: "squad",
                id: q.id.clone(),
                kind: if q.answers.is_empty() {
                    "unanswerable".into()
                } else {
                    "answerable".into()
                },
                question: q.question.clone(),
                docs: vec![ItemDoc::Text {
                    name: file_name_of(0, &q.title),
                    text,
                }],
                answers: q.answers.iter().map(|(a, _)| a.clone()).collect(),
                scoring: Scoring::Qa,
                gold: if q.answers.is_empty() {
                    Vec::new()
                } else {
                    vec![GoldSpan {
                        doc: file_name_of(0, &q.title),
                        start: gold.0,
                        end: gold.1,
                    }]
                },
                length: None,
                depth: None,
            }
        })
        .collect())
}

/// SQuAD's paragraphs grouped by article title, in dev-set order: what
/// [`squad_window`] cuts a question's document from.
pub(crate) fn squad_articles(questions: &[SquadQuestion]) -> HashMap<&str, Vec<&str>> {
    let mut articles: HashMap<&str, Vec<&str>> = HashMap::new();
    for q in questions {
        let paras = articles.entry(q.title.as_str()).or_default();
        if paras.last() != Some(&q.context.as_str()) {
            paras.push(q.context.as_str());
        }
    }
    articles
}

/// The window of `q`'s article around its paragraph (see [`window`]): the
/// text and the paragraph's byte range in it.
pub(crate) fn squad_window(
    articles: &HashMap<&str, Vec<&str>>,
    q: &SquadQuestion,
) -> (String, (usize, usize)) {
    let paras = &articles[q.title.as_str()];
    let at = paras.iter().position(|p| *p == q.context).unwrap_or(0);
    window(paras, at)
}

/// Paragraphs around `at`, added alternately after and before it while the
/// text stays within [`SQUAD_WINDOW_CHARS`]; returns the text and the byte
/// range of paragraph `at` in it.
fn window(paras: &[&str], at: usize) -> (String, (usize, usize)) {
    let (mut lo, mut hi) = (at, at + 1);
    let mut chars = paras[at].len();
    loop {
        let mut grew = false;
        if hi < paras.len() && chars + paras[hi].len() <= SQUAD_WINDOW_CHARS {
            chars += paras[hi].len();
            hi += 1;
            grew = true;
        }
        if lo > 0 && chars + paras[lo - 1].len() <= SQUAD_WINDOW_CHARS {
            chars += paras[lo - 1].len();
            lo -= 1;
            grew = true;
        }
        if !grew {
            break;
        }
    }
    let mut text = String::new();
    let mut gold = (0, 0);
    for (i, p) in paras[lo..hi].iter().enumerate() {
        if i > 0 {
            text.push_str("\n\n");
        }
        if lo + i == at {
            gold = (text.len(), text.len() + p.len());
        }
        text.push_str(p);
    }
    (text, gold)
}

/// HotpotQA dev questions in the distractor setting: ten paragraphs, each
/// its own document, two of them gold. `kind` is HotpotQA's type (bridge or
/// comparison).
pub fn hotpotqa(limit: Option<usize>, progress: bool) -> Result<Vec<Item>> {
    let questions = spread(datasets::hotpotqa(progress)?, limit);
    Ok(questions
        .into_iter()
        .map(|q| {
            let mut docs = Vec::new();
            let mut gold = Vec::new();
            for (i, (title, text)) in q.paragraphs.iter().enumerate() {
                let name = file_name_of(i, title);
                let text = format!("{title}\n{text}\n");
                if q.gold_titles.contains(title) {
                    gold.push(GoldSpan {
                        doc: name.clone(),
                        start: 0,
                        end: text.len(),
                    });
                }
                docs.push(ItemDoc::Text { name, text });
            }
            Item {
                suite: "hotpotqa",
                id: q.id,
                kind: if q.kind.is_empty() {
                    "hotpotqa".into()
                } else {
                    q.kind
                },
                question: q.question,
                docs,
                answers: vec![q.answer],
                scoring: Scoring::Qa,
                gold,
                length: None,
                depth: None,
            }
        })
        .collect())
}

#[derive(Deserialize)]
struct JsonlLine {
    id: serde_json::Value,
    doc: String,
    question: String,
    answers: Vec<String>,
    #[serde(default)]
    kind: Option<String>,
}

/// The user's own set: one JSON object per line, `{"id", "doc" (relative to
/// `docs`), "question", "answers", "kind"}`; an answer of
/// `NOT_IN_DOCUMENT` makes the question unanswerable.
pub fn jsonl(qa: &Path, docs: &Path, limit: Option<usize>) -> Result<Vec<Item>> {
    let text = std::fs::read_to_string(qa)
        .with_context(|| format!("reading the question file {}", qa.display()))?;
    let mut items = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let where_ = || format!("{} line {}", qa.display(), n + 1);
        let raw: JsonlLine = serde_json::from_str(line).with_context(|| {
            format!(
                "{} is not {{\"id\", \"doc\", \"question\", \"answers\": [..], \"kind\"}}",
                where_()
            )
        })?;
        let id = match raw.id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        if !seen.insert(id.clone()) {
            bail!("{}: the id {id:?} is used twice", where_());
        }
        let path = inside_docs(docs, &raw.doc).with_context(where_)?;
        if !path.is_file() {
            bail!(
                "{}: the document {} does not exist (\"doc\" is relative to --docs {})",
                where_(),
                path.display(),
                docs.display()
            );
        }
        if raw.answers.is_empty() {
            bail!(
                "{}: \"answers\" is empty; use [\"{NOT_IN_DOCUMENT}\"] for a question the \
                 document does not answer",
                where_()
            );
        }
        let unanswerable = raw.answers.iter().any(|a| a == NOT_IN_DOCUMENT);
        items.push(Item {
            suite: "jsonl",
            id,
            kind: raw.kind.unwrap_or_else(|| "jsonl".into()),
            question: raw.question,
            docs: vec![ItemDoc::File(path)],
            answers: if unanswerable {
                Vec::new()
            } else {
                raw.answers
            },
            scoring: Scoring::Qa,
            gold: Vec::new(),
            length: None,
            depth: None,
        });
    }
    if items.is_empty() {
        bail!("{} holds no questions", qa.display());
    }
    Ok(spread(items, limit))
}

/// `docs/doc`, refused unless it stays inside `docs`: no absolute path, no
/// `..`, and no link that resolves outside (the document's text goes into
/// the evaluation's records).
fn inside_docs(docs: &Path, doc: &str) -> Result<PathBuf> {
    use std::path::Component;
    let rel = Path::new(doc);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        bail!(
            "the document {doc:?} is not a path inside --docs {} (no absolute paths, no \"..\")",
            docs.display()
        );
    }
    let path = docs.join(rel);
    if let (Ok(real), Ok(root)) = (path.canonicalize(), docs.canonicalize()) {
        if !real.starts_with(&root) {
            bail!(
                "the document {doc:?} links to {}, outside --docs {}",
                real.display(),
                docs.display()
            );
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bounded-time fuzzing of the question-file reader: 2 000 mutated
    /// copies of a valid file load or are refused with a line number; none
    /// panics.
    #[test]
    fn mutated_question_files_never_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let docs = tmp.path().join("docs");
        std::fs::create_dir(&docs).unwrap();
        std::fs::write(docs.join("a.txt"), "The sky is blue.").unwrap();
        std::fs::write(docs.join("b.md"), "# B\n\nGrass is green.").unwrap();
        let good = concat!(
            r#"{"id": 1, "doc": "a.txt", "question": "What colour is the sky?", "answers": ["blue"], "kind": "lookup"}"#,
            "\n",
            r#"{"id": "two", "doc": "b.md", "question": "Grass?", "answers": ["green", "verdant"]}"#,
            "\n",
            r#"{"id": 3, "doc": "a.txt", "question": "Price?", "answers": ["NOT_IN_DOCUMENT"]}"#,
            "\n"
        );
        let qa = tmp.path().join("qa.jsonl");
        let mut m = folio_corpora::mutate::Mutator::new(8);
        let mut loaded = 0;
        for round in 0..2000 {
            let bytes = m.mutate(good.as_bytes());
            std::fs::write(&qa, &bytes).unwrap();
            let result = std::panic::catch_unwind(|| jsonl(&qa, &docs, Some(2)).map(|i| i.len()));
            assert!(
                result.is_ok(),
                "round {round}: {}",
                String::from_utf8_lossy(&bytes)
            );
            loaded += usize::from(matches!(result, Ok(Ok(_))));
        }
        assert!(loaded > 100, "only {loaded} of 2000 loaded");
    }

    /// A question file cannot make folio read, and copy into its records,
    /// a file outside `--docs`: by `..`, by an absolute path or by a link.
    #[test]
    fn documents_outside_the_docs_folder_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let docs = tmp.path().join("docs");
        std::fs::create_dir(&docs).unwrap();
        std::fs::write(docs.join("ok.txt"), "The sky is blue.").unwrap();
        let secret = tmp.path().join("secret.txt");
        std::fs::write(&secret, "password=hunter2").unwrap();
        std::os::unix::fs::symlink(&secret, docs.join("link.txt")).unwrap();
        let line = |doc: &str| {
            serde_json::json!({"id": 1, "doc": doc, "question": "q?", "answers": ["a"]}).to_string()
        };
        let qa = tmp.path().join("qa.jsonl");
        for doc in [
            "../secret.txt",
            secret.to_str().unwrap(),
            "link.txt",
            "./../docs/../secret.txt",
        ] {
            std::fs::write(&qa, line(doc)).unwrap();
            let err = format!("{:#}", jsonl(&qa, &docs, None).expect_err(doc));
            assert!(err.contains("--docs"), "{doc}: {err}");
        }
        std::fs::write(&qa, line("./ok.txt")).unwrap();
        let items = jsonl(&qa, &docs, None).unwrap();
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn window_keeps_the_gold_paragraph_and_its_offsets() {
        let a = "a".repeat(2500);
        let b = "gold paragraph";
        let c = "c".repeat(2500);
        let d = "d".repeat(2500);
        let (text, (s, e)) = window(&[&a, b, &c, &d], 1);
        assert_eq!(&text[s..e], b);
        // a and c fit beside b; d would pass the window.
        assert!(text.starts_with(&a) && text.ends_with(&c));
    }
}
